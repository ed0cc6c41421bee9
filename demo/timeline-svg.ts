/**
 * The picture: a self-contained SVG. On one time axis: the scenario's phases, a swim lane per
 * provider coloured by its circuit state (with the recovery ramp drawn in its lane), and blocks per
 * second from each provider, with protection and without.
 */

import { seconds } from './format.ts'
import { FLAKY, HEALTHY, PEER_NAMES } from './recording.ts'
import { PHASES, SCENARIO } from './scenario.ts'
import type { PeerIndex, RunRecording } from './recording.ts'
import type { CircuitState } from '../src/index.ts'

const WIDTH = 1000
const LEFT = 150
const RIGHT = 24
const PLOT = WIDTH - LEFT - RIGHT
const LANE = 26
const CHART = 90
const BIN = 500

const COLOURS = {
  CLOSED: '#3a9d5d',
  HALF_OPEN: '#f0b429',
  OPEN: '#d64545',
  ramp: '#a8dbb8',
  rateLine: '#1f5e36',
  healthy: '#3b6fb6',
  flaky: '#e07b27',
  grid: '#e4e4e4',
  waiting: '#e9e0e0',
  text: '#222',
  muted: '#666'
} as const

const PHASE_FILL = ['#eef6ee', '#fdebe3', '#f1e6f7', '#eef6ee']

export function renderTimeline (withBreaker: RunRecording, without: RunRecording): string {
  const end = Math.ceil(Math.max(withBreaker.ms, without.ms) / 1000) * 1000
  const x = (t: number): number => LEFT + (Math.min(t, end) / end) * PLOT
  const peak = niceMax(Math.max(peakRate(withBreaker), peakRate(without)))
  const parts: string[] = []
  let y: number

  parts.push(text(LEFT, 30, 'bitswap-circuit-breaker demo: a consumer, a healthy provider and a flaky one', { size: 18, weight: 'bold' }))
  parts.push(text(LEFT, 50, `${withBreaker.total} blocks wanted in waves; the flaky provider resets every stream, then stalls, then heals`, { size: 12, fill: COLOURS.muted }))

  // phases
  y = 66
  for (let i = 0; i < PHASES.length; i++) {
    const from = PHASES[i].at
    const to = i + 1 < PHASES.length ? PHASES[i + 1].at : end
    parts.push(rect(x(from), y, x(to) - x(from), 22, PHASE_FILL[i % PHASE_FILL.length]))
    parts.push(text((x(from) + x(to)) / 2, y + 15, `flaky ${PHASES[i].name}`, { size: 12, anchor: 'middle' }))
  }
  parts.push(text(LEFT - 10, y + 15, 'scenario', { size: 12, anchor: 'end', fill: COLOURS.muted }))
  const gridTop = y

  // with protection
  y += 50
  parts.push(text(16, y, 'With the breaker', { size: 14, weight: 'bold' }))
  y += 12
  let flakyBottom = 0
  for (const index of [HEALTHY, FLAKY] as const) {
    parts.push(...lane(withBreaker, index, y, x))
    parts.push(text(LEFT - 10, y + 17, `${PEER_NAMES[index]} circuit`, { size: 12, anchor: 'end' }))
    y += LANE
    flakyBottom = y
    y += 10
  }
  parts.push(...markers(withBreaker, flakyBottom, x))
  y += 18
  parts.push(...chart(withBreaker, y, x, end, peak))
  y += CHART + 40

  // without
  parts.push(text(16, y, 'Same scenario, no breaker', { size: 14, weight: 'bold' }))
  y += 12
  parts.push(...chart(without, y, x, end, peak))
  if (without.lost > 0) {
    parts.push(text(x(without.ms) - 6, y + 16, `${without.lost} blocks never arrived`, { size: 12, anchor: 'end', fill: COLOURS.OPEN, weight: 'bold' }))
  }
  y += CHART

  // time axis and grid, behind everything else
  const grid: string[] = []
  for (let t = 0; t <= end; t += 2000) {
    grid.push(line(x(t), gridTop, x(t), y, COLOURS.grid))
    grid.push(text(x(t), y + 16, `${t / 1000}`, { size: 11, anchor: 'middle', fill: COLOURS.muted }))
  }
  grid.push(text(LEFT + PLOT, y + 32, 'seconds since the first wave', { size: 11, anchor: 'end', fill: COLOURS.muted }))
  y += 50

  // legend
  const legend: Array<Array<[string, string]>> = [
    [[COLOURS.CLOSED, 'CLOSED'], [COLOURS.HALF_OPEN, 'HALF_OPEN: probing'], [COLOURS.OPEN, 'OPEN: hung up, dials refused'],
      [COLOURS.ramp, 'CLOSED, ramping up (line: share of traffic admitted)']],
    [[COLOURS.healthy, 'blocks/s from the healthy provider'], [COLOURS.flaky, 'blocks/s from the flaky provider'],
      [COLOURS.waiting, 'waiting for blocks that never came']]
  ]
  for (const row of legend) {
    let lx = LEFT
    for (const [fill, label] of row) {
      parts.push(rect(lx, y - 10, 14, 12, fill))
      parts.push(text(lx + 19, y, label, { size: 11 }))
      lx += 19 + label.length * 6 + 22
    }
    y += 18
  }
  y += 8
  const lost = withBreaker.lost + withBreaker.corrupt
  parts.push(text(LEFT, y, `With the breaker: ${withBreaker.received}/${withBreaker.total} blocks, ${lost} lost, ${seconds(withBreaker.ms)}. ` +
    `Without: ${without.received}/${without.total} blocks, ${without.lost + without.corrupt} lost, ${seconds(without.ms)}.`, { size: 12, weight: 'bold' }))
  y += 16

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${WIDTH}" height="${y}" fill="#fff"/>`,
    ...grid,
    ...parts,
    '</svg>',
    ''
  ].join('\n')
}

/**
 * One provider's circuit over time: segments from the transition events (exact times), the ramp's
 * admitted share from the samples
 */
function lane (run: RunRecording, index: PeerIndex, y: number, x: (t: number) => number): string[] {
  const out: string[] = [rect(LEFT, y, PLOT, LANE, '#f6f6f6')]
  let state: CircuitState = 'CLOSED'
  let recovering = false
  let since = 0
  const segment = (until: number): void => {
    if (until > since) {
      out.push(rect(x(since), y, x(until) - x(since), LANE, state === 'CLOSED' && recovering ? COLOURS.ramp : COLOURS[state]))
    }
    since = until
  }
  for (const event of run.events) {
    if (event.peer !== index) {
      continue
    }
    segment(event.t)
    switch (event.kind) {
      case 'open': state = 'OPEN'; break
      case 'half-open': state = 'HALF_OPEN'; break
      case 'close': state = 'CLOSED'; break
      case 'recovery-start': recovering = true; break
      case 'recovery-complete':
      case 'recovery-fail': recovering = false; break
    }
  }
  segment(run.ms)

  // the admitted share while ramping up, as a line across the lane (bottom 0 %, top 100 %)
  const points: string[] = []
  let first = { t: 0, rate: 0 }
  let last = first
  const flush = (): void => {
    if (points.length > 1) {
      out.push(`<polyline points="${points.join(' ')}" fill="none" stroke="${COLOURS.rateLine}" stroke-width="2"/>`)
      if (x(last.t) - x(first.t) > 90) {
        const label = `ramp ${Math.round(first.rate * 100)} % → ${Math.round(last.rate * 100)} %`
        out.push(text((x(first.t) + x(last.t)) / 2, y + 11, label, { size: 10, anchor: 'middle', fill: COLOURS.rateLine }))
      }
    }
    points.length = 0
  }
  for (const sample of run.samples) {
    const peer = sample.peers[index]
    if (peer.circuit === 'CLOSED' && peer.recovering === true) {
      last = { t: sample.t, rate: peer.rate ?? 0 }
      if (points.length === 0) {
        first = last
      }
      points.push(`${x(sample.t).toFixed(1)},${(y + LANE - last.rate * LANE).toFixed(1)}`)
    } else {
      flush()
    }
  }
  flush()
  return out
}

/** Labels under the flaky lane for the moments that matter: first trip, each probe's verdict, close */
function markers (run: RunRecording, y: number, x: (t: number) => number): string[] {
  const out: string[] = []
  let lastLabelEnd = -Infinity
  for (const event of run.events) {
    if (event.peer !== FLAKY || (event.kind !== 'open' && event.kind !== 'close' && event.kind !== 'recovery-complete')) {
      continue
    }
    const label = event.kind === 'open'
      ? (event.from === 'HALF_OPEN' ? `probe failed ${seconds(event.t)}` : `tripped ${seconds(event.t)}`)
      : event.kind === 'close' ? `closed ${seconds(event.t)}` : `full traffic ${seconds(event.t)}`
    const at = x(event.t)
    out.push(line(at, y, at, y + 5, COLOURS.text))
    const start = Math.max(at, lastLabelEnd + 6)
    out.push(text(start, y + 15, label, { size: 10, fill: COLOURS.text }))
    lastLabelEnd = start + label.length * 5.4
  }
  return out
}

/** Blocks per second from each provider, stacked: healthy below, flaky on top */
function chart (run: RunRecording, y: number, x: (t: number) => number, end: number, peak: number): string[] {
  const bins = Math.ceil(end / BIN)
  const counts = [binned(run.arrivals[HEALTHY], bins), binned(run.arrivals[FLAKY], bins)]
  const scale = (perSecond: number): number => y + CHART - (Math.min(perSecond, peak) / peak) * CHART
  const perSecond = 1000 / BIN
  const out: string[] = [rect(LEFT, y, PLOT, CHART, '#fbfbfb'), line(LEFT, y + CHART, LEFT + PLOT, y + CHART, '#999')]
  if (run.gaveUp) {
    // the grace period after the last wave, spent waiting for blocks that never came
    const from = Math.max(0, run.ms - SCENARIO.grace)
    out.push(rect(x(from), y, x(run.ms) - x(from), CHART, COLOURS.waiting))
  }
  const area = (lower: number[], upper: number[], fill: string): string => {
    const top: string[] = []
    const bottom: string[] = []
    for (let i = 0; i < bins; i++) {
      const x0 = x(i * BIN).toFixed(1)
      const x1 = x((i + 1) * BIN).toFixed(1)
      top.push(`${x0},${scale(upper[i] * perSecond).toFixed(1)} ${x1},${scale(upper[i] * perSecond).toFixed(1)}`)
      bottom.unshift(`${x1},${scale(lower[i] * perSecond).toFixed(1)} ${x0},${scale(lower[i] * perSecond).toFixed(1)}`)
    }
    return `<polygon points="${[...top, ...bottom].join(' ')}" fill="${fill}" fill-opacity="0.85"/>`
  }
  const zero = new Array<number>(bins).fill(0)
  const stacked = counts[0].map((c, i) => c + counts[1][i])
  out.push(area(zero, counts[0], COLOURS.healthy))
  out.push(area(counts[0], stacked, COLOURS.flaky))
  // bins above the axis maximum are clipped; say how high they went
  const reconnects = run.events.filter(e => e.kind === 'half-open').map(e => e.t)
  for (let i = 0; i < bins; i++) {
    if (stacked[i] * perSecond > peak) {
      const backlog = reconnects.some(t => t <= (i + 1) * BIN && (i + 1) * BIN - t < 1500)
      const label = `${stacked[i] * perSecond}/s${backlog ? ': the wants held back while it failed, answered on the redial' : ''}`
      out.push(text(x((i + 1) * BIN) + 4, y + 11, label, { size: 10, fill: COLOURS.text }))
    }
  }
  for (const v of [0, peak / 2, peak]) {
    out.push(text(LEFT - 6, scale(v) + 4, String(v), { size: 10, anchor: 'end', fill: COLOURS.muted }))
  }
  out.push(text(LEFT - 34, y + CHART / 2 + 4, 'blocks/s', { size: 12, anchor: 'end' }))
  return out
}

function binned (times: number[], bins: number): number[] {
  const counts = new Array<number>(bins).fill(0)
  for (const t of times) {
    counts[Math.min(bins - 1, Math.floor(t / BIN))]++
  }
  return counts
}

/**
 * The chart's top: the steady rate with headroom, so one burst (the backlog a healed peer serves at
 * once) does not flatten everything else; bursts above it are labelled instead
 */
function peakRate (run: RunRecording): number {
  const end = Math.max(run.ms, 1)
  const bins = Math.ceil(end / BIN)
  const totals = binned([...run.arrivals[HEALTHY], ...run.arrivals[FLAKY]], bins).map(c => c * 1000 / BIN).sort((a, b) => a - b)
  return totals[Math.floor(totals.length * 0.9)] ?? 1
}

function niceMax (value: number): number {
  const target = value * 1.5
  for (const step of [10, 20, 40, 60, 80, 100, 150, 200, 300, 400, 600, 800, 1000]) {
    if (target <= step) {
      return step
    }
  }
  return Math.ceil(target / 1000) * 1000
}

interface TextOptions {
  size?: number
  weight?: string
  anchor?: 'start' | 'middle' | 'end'
  fill?: string
}

function text (x: number, y: number, content: string, options: TextOptions = {}): string {
  const attrs = [
    `x="${x.toFixed(1)}"`, `y="${y.toFixed(1)}"`,
    `font-size="${options.size ?? 12}"`,
    `fill="${options.fill ?? COLOURS.text}"`
  ]
  if (options.weight != null) {
    attrs.push(`font-weight="${options.weight}"`)
  }
  if (options.anchor != null) {
    attrs.push(`text-anchor="${options.anchor}"`)
  }
  return `<text ${attrs.join(' ')}>${escape(content)}</text>`
}

function rect (x: number, y: number, width: number, height: number, fill: string): string {
  return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${width.toFixed(1)}" height="${height.toFixed(1)}" fill="${fill}"/>`
}

function line (x1: number, y1: number, x2: number, y2: number, stroke: string): string {
  return `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="${stroke}"/>`
}

function escape (value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
