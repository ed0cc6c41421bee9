/**
 * docs/grafana-dashboard.json against a real scrape: a libp2p node running the service with
 * @libp2p/prometheus-metrics. Every query must name metrics the scrape has (with the label names they
 * carry), and every metric of the service must be on the dashboard.
 */

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { createLibp2p } from 'libp2p'
import { Registry } from 'prom-client'
import { bitswapCircuitBreaker } from '../../src/index.ts'
import { METRIC_PREFIX } from '../../src/libp2p/metrics.ts'
import type { Libp2p } from '@libp2p/interface'

interface Target { expr: string }
interface Panel { title: string, type: string, targets?: Target[], panels?: Panel[] }
interface Dashboard {
  panels: Panel[]
  templating: { list: Array<{ name: string, type: string, query?: { query: string } }> }
}

/** Labels Prometheus itself adds to every scraped series */
const TARGET_LABELS = new Set(['instance', 'job'])
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count']

const dashboard = JSON.parse(readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8')) as Dashboard

function queries (): Array<{ where: string, expr: string }> {
  const found: Array<{ where: string, expr: string }> = []
  const visit = (panels: Panel[]): void => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) found.push({ where: `panel "${panel.title}"`, expr: target.expr })
      visit(panel.panels ?? [])
    }
  }
  visit(dashboard.panels)
  for (const variable of dashboard.templating.list) {
    if (variable.query?.query != null) found.push({ where: `variable $${variable.name}`, expr: variable.query.query })
  }
  return found
}

/** Our metric names in a PromQL expression */
function metricNames (expr: string): string[] {
  return [...expr.matchAll(new RegExp(`\\b${METRIC_PREFIX}[a-zA-Z0-9_]+`, 'g'))].map(match => match[0])
}

/** Label names an expression groups by or matches on */
function labelNames (expr: string): string[] {
  const grouped = [...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap(match => match[1].split(',').map(label => label.trim()))
  const matched = [...expr.matchAll(/\{([^}]*)\}/g)].flatMap(match => [...match[1].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map(m => m[1]))
  const variables = [...expr.matchAll(/label_values\([^,]+,\s*([a-zA-Z_][a-zA-Z0-9_]*)\)/g)].map(match => match[1])
  return [...grouped, ...matched, ...variables].filter(label => label !== '')
}

describe('docs/grafana-dashboard.json', function () {
  this.timeout(30_000)

  let node: Libp2p
  /** metric name as scraped → its type and label names */
  const scraped = new Map<string, { type: string, labels: Set<string> }>()

  before(async () => {
    const registry = new Registry()
    node = await createLibp2p({
      metrics: prometheusMetrics({ registry, collectDefaultMetrics: false }),
      services: { bitswapCircuitBreaker: bitswapCircuitBreaker() }
    })
    const text = await registry.metrics()
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      if (!name.startsWith(METRIC_PREFIX)) continue
      const metric = registry.getSingleMetric(name) as unknown as { labelNames?: string[] } | undefined
      const labels = new Set<string>(metric?.labelNames ?? [])
      // metric groups carry their label only on samples
      for (const [, sampleLabels] of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\}`, 'gm'))) {
        for (const [, label] of sampleLabels.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(label)
      }
      if (type === 'histogram') {
        for (const suffix of HISTOGRAM_SUFFIXES) scraped.set(`${name}${suffix}`, { type, labels: new Set([...labels, ...(suffix === '_bucket' ? ['le'] : [])]) })
      } else {
        scraped.set(name, { type, labels })
      }
    }
  })

  after(async () => {
    await node?.stop()
  })

  it('the scrape has the service\'s metrics', () => {
    assert.ok(scraped.size >= 8, `scraped: ${[...scraped.keys()].join(', ')}`)
  })

  it('every query names only metrics the scrape has, and only labels they carry', () => {
    const all = queries()
    assert.ok(all.length >= 8)
    const problems: string[] = []
    for (const { where, expr } of all) {
      const names = metricNames(expr)
      if (names.length === 0) problems.push(`${where}: names none of our metrics: ${expr}`)
      for (const name of names) {
        const metric = scraped.get(name)
        if (metric == null) {
          problems.push(`${where}: ${name} is not in the scrape`)
          continue
        }
        const known = new Set(names.flatMap(n => [...scraped.get(n)?.labels ?? []]))
        for (const label of labelNames(expr)) {
          if (!TARGET_LABELS.has(label) && !known.has(label)) problems.push(`${where}: ${name} has no label '${label}'`)
        }
      }
    }
    assert.deepEqual(problems, [])
  })

  it('every metric of the service is on the dashboard', () => {
    const used = new Set(queries().flatMap(({ expr }) => metricNames(expr)))
    const base = (name: string): string => HISTOGRAM_SUFFIXES.reduce((n, suffix) => scraped.get(n)?.type === 'histogram' && n.endsWith(suffix) ? n.slice(0, -suffix.length) : n, name)
    const usedBase = new Set([...used].map(base))
    const missing = [...new Set([...scraped.keys()].map(base))].filter(name => !usedBase.has(name))
    assert.deepEqual(missing, [])
  })

  it('the README\'s metrics table lists exactly the scraped metrics', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    const table = readme.slice(readme.indexOf('## Metrics'), readme.indexOf('\n## ', readme.indexOf('## Metrics') + 1))
    const listed = [...table.matchAll(/^\| `([a-z0-9_]+)` \|/gm)].map(match => match[1]).sort()
    const base = (name: string): string => scraped.get(name)?.type === 'histogram' ? name.replace(/_(bucket|sum|count)$/, '') : name
    assert.deepEqual(listed, [...new Set([...scraped.keys()].map(base))].sort())
  })

  it('the checks are not vacuous', () => {
    assert.deepEqual(metricNames(`rate(${METRIC_PREFIX}trips_total{instance=~"$instance"}[5m]) + other_metric`), [`${METRIC_PREFIX}trips_total`])
    assert.deepEqual(labelNames('sum by (state, le) (x{instance=~"a",job="b"})'), ['state', 'le', 'instance', 'job'])
    assert.equal(scraped.get(`${METRIC_PREFIX}not_a_metric`), undefined)
  })
})
