/**
 * ServiceMetrics against a stub libp2p `Metrics`: what is registered (names, labels, kinds), what
 * the scrape-time groups compute, and what each recording method moves.
 */

import assert from 'node:assert/strict'
import { METRIC_PREFIX, ServiceMetrics } from '../../../src/libp2p/metrics.ts'
import type { MetricsSource } from '../../../src/libp2p/metrics.ts'
import type { CalculatedMetricOptions, Counter, CounterGroup, Histogram, HistogramOptions, Metrics } from '@libp2p/interface'

type Kind = 'metric' | 'metricGroup' | 'counter' | 'counterGroup' | 'histogram'

interface Registration {
  kind: Kind
  options: Partial<CalculatedMetricOptions<unknown> & HistogramOptions>
  /** Every value passed to increment / observe */
  calls: unknown[]
}

/** A `Metrics` that records registrations and hands back recording counters and histograms */
class StubMetrics {
  readonly registered = new Map<string, Registration>()

  private add (kind: Kind, name: string, options: Registration['options'] = {}): Registration {
    assert.ok(!this.registered.has(name), `${name} registered twice`)
    const registration: Registration = { kind, options, calls: [] }
    this.registered.set(name, registration)
    return registration
  }

  /** Calculated metrics return nothing, the way @libp2p/prometheus-metrics does */
  registerMetric = (name: string, options?: Registration['options']): void => { this.add('metric', name, options) }
  registerMetricGroup = (name: string, options?: Registration['options']): void => { this.add('metricGroup', name, options) }

  registerCounter = (name: string, options?: Registration['options']): Counter => {
    const r = this.add('counter', name, options)
    return { increment: (value?: number) => { r.calls.push(value ?? 1) }, reset: () => {} }
  }

  registerCounterGroup = (name: string, options?: Registration['options']): CounterGroup => {
    const r = this.add('counterGroup', name, options)
    return { increment: (values) => { r.calls.push(values) }, reset: () => {} }
  }

  registerHistogram = (name: string, options?: Registration['options']): Histogram => {
    const r = this.add('histogram', name, options)
    return { observe: (value: number) => { r.calls.push(value) }, reset: () => {}, timer: () => () => {} }
  }

  get (name: string): Registration {
    const r = this.registered.get(`${METRIC_PREFIX}${name}`)
    assert.ok(r != null, `${METRIC_PREFIX}${name} is not registered`)
    return r
  }
}

function source (overrides: Partial<MetricsSource> = {}): MetricsSource {
  return {
    circuitStates: () => ({ closed: 5, open: 2, halfOpen: 1 }),
    healthStates: () => ({ healthy: 4, degraded: 2, unhealthy: 1, unknown: 1 }),
    localNetworkSuspected: () => 0,
    stalledMs: () => 0,
    ...overrides
  }
}

function setup (src: MetricsSource = source()): { stub: StubMetrics, metrics: ServiceMetrics } {
  const stub = new StubMetrics()
  return { stub, metrics: new ServiceMetrics(stub as unknown as Metrics, src) }
}

describe('ServiceMetrics', () => {
  it('is a no-op without a metrics component', () => {
    let reads = 0
    const metrics = new ServiceMetrics(undefined, source({ circuitStates: () => { reads++; return { closed: 0, open: 0, halfOpen: 0 } } }))

    metrics.trip()
    metrics.rejection('outbound', 'open')
    metrics.recovery('started')
    metrics.answer(12)
    metrics.miss()

    assert.equal(reads, 0)
  })

  it('registers every metric under the prefix, each with help text and the expected kind', () => {
    const { stub } = setup()

    assert.deepEqual(Object.fromEntries([...stub.registered].map(([name, r]) => [name, r.kind])), {
      [`${METRIC_PREFIX}peers`]: 'metricGroup',
      [`${METRIC_PREFIX}peer_health`]: 'metricGroup',
      [`${METRIC_PREFIX}local_network_suspected`]: 'metric',
      [`${METRIC_PREFIX}event_loop_stalled_seconds_total`]: 'counter',
      [`${METRIC_PREFIX}trips_total`]: 'counter',
      [`${METRIC_PREFIX}rejections_total`]: 'counterGroup',
      [`${METRIC_PREFIX}recoveries_total`]: 'counterGroup',
      [`${METRIC_PREFIX}want_response_seconds`]: 'histogram',
      [`${METRIC_PREFIX}want_misses_total`]: 'counter',
      [`${METRIC_PREFIX}released_wants_total`]: 'counterGroup'
    })
    assert.equal(METRIC_PREFIX, 'libp2p_bitswap_circuit_breaker_')
    for (const [name, r] of stub.registered) {
      assert.match(name, /^[a-z_][a-z0-9_]*$/, `${name} is a valid Prometheus name`)
      assert.ok(typeof r.options.help === 'string' && r.options.help.length > 0, `${name} has help`)
    }
  })

  it('computes peers per circuit state at scrape time, labelled closed / open / half_open', async () => {
    let open = 0
    const { stub } = setup(source({ circuitStates: () => ({ closed: 3, open, halfOpen: 1 }) }))
    const peers = stub.get('peers')

    assert.equal(peers.options.label, 'state')
    assert.deepEqual(await peers.options.calculate?.(), { closed: 3, open: 0, half_open: 1 })
    open = 2
    assert.deepEqual(await peers.options.calculate?.(), { closed: 3, open: 2, half_open: 1 })
  })

  it('computes peers per health status and the local-network flag at scrape time', async () => {
    let suspected = 0
    const { stub } = setup(source({ localNetworkSuspected: () => suspected }))
    const health = stub.get('peer_health')
    const local = stub.get('local_network_suspected')

    assert.equal(health.options.label, 'status')
    assert.deepEqual(await health.options.calculate?.(), { healthy: 4, degraded: 2, unhealthy: 1, unknown: 1 })
    assert.equal(await local.options.calculate?.(), 0)
    suspected = 1
    assert.equal(await local.options.calculate?.(), 1)
  })

  it('computes our event-loop stall time at scrape time, in seconds', async () => {
    let stalledMs = 0
    const { stub } = setup(source({ stalledMs: () => stalledMs }))
    const stalled = stub.get('event_loop_stalled_seconds_total')

    assert.equal(await stalled.options.calculate?.(), 0)
    stalledMs = 1500
    assert.equal(await stalled.options.calculate?.(), 1.5)
  })

  it('counts trips and want misses', () => {
    const { stub, metrics } = setup()

    metrics.trip()
    metrics.trip()
    metrics.miss()

    assert.deepEqual(stub.get('trips_total').calls, [1, 1])
    assert.deepEqual(stub.get('want_misses_total').calls, [1])
  })

  it('labels rejections direction_reason in one low-cardinality label', () => {
    const { stub, metrics } = setup()

    metrics.rejection('outbound', 'open')
    metrics.rejection('inbound', 'half_open')
    metrics.rejection('inbound', 'stream_limit')
    metrics.rejection('inbound', 'protocol_error')
    metrics.rejection('outbound', 'recovery')

    const rejections = stub.get('rejections_total')
    assert.equal(rejections.options.label, 'rejection')
    assert.deepEqual(rejections.calls, [
      { outbound_open: true },
      { inbound_half_open: true },
      { inbound_stream_limit: true },
      { inbound_protocol_error: true },
      { outbound_recovery: true }
    ])
  })

  it('counts recoveries by event', () => {
    const { stub, metrics } = setup()

    metrics.recovery('started')
    metrics.recovery('completed')
    metrics.recovery('started')
    metrics.recovery('failed')

    const recoveries = stub.get('recoveries_total')
    assert.equal(recoveries.options.label, 'event')
    assert.deepEqual(recoveries.calls, [{ started: true }, { completed: true }, { started: true }, { failed: true }])
  })

  it('observes want latency in seconds, in buckets from 5 ms up to Bitswap\'s 10 s send timeout', () => {
    const { stub, metrics } = setup()

    metrics.answer(250)
    metrics.answer(3)

    const latency = stub.get('want_response_seconds')
    assert.deepEqual(latency.calls, [0.25, 0.003])
    const buckets = latency.options.buckets ?? []
    assert.equal(buckets[0], 0.005)
    assert.equal(buckets[buckets.length - 1], 10)
    assert.deepEqual([...buckets].sort((a, b) => a - b), buckets, 'buckets ascend')
  })
})
