/**
 * The end-of-demo summary: per phase what happened, the flaky provider's circuit arc, and both runs
 * side by side. Plain lines; the caller prints them.
 */

import { percent, seconds } from './format.ts'
import { FLAKY, HEALTHY, PEER_NAMES } from './recording.ts'
import { PHASES, SCENARIO } from './scenario.ts'
import type { DemoEvent, PeerIndex, RunRecording } from './recording.ts'

const INDENT = ' '.repeat(20)

export function summarize (withBreaker: RunRecording, without: RunRecording): string[] {
  const lines: string[] = ['', 'What happened, per phase:']
  const end = Math.max(withBreaker.ms, without.ms)

  for (let i = 0; i < PHASES.length; i++) {
    const from = PHASES[i].at
    const to = i + 1 < PHASES.length ? PHASES[i + 1].at : end
    lines.push(`  ${seconds(from).padStart(6)} – ${seconds(to).padStart(6)}  "${PHASES[i].name}": ${PHASES[i].description}`)
    const happened = withBreaker.events.filter(e => e.kind !== 'phase' && e.t >= from && e.t < to)
    lines.push(`${INDENT}breaker: ${happened.length === 0 ? 'no circuit changed' : happened.map(short).join(' · ')}`)
    lines.push(`${INDENT}blocks from healthy/flaky: ${served(withBreaker, from, to)} with the breaker, ${served(without, from, to)} without`)
  }

  lines.push('', ...arc(withBreaker), '')
  lines.push(`With protection:    ${outcome(withBreaker)}`)
  lines.push(`Without protection: ${outcome(without)}`)
  const why = whyLost(without)
  if (why != null) {
    lines.push(why)
  }
  return lines
}

/** The last line but one of the demo's output */
export function summaryLine (withBreaker: RunRecording, without: RunRecording): string {
  const lost = withBreaker.lost + withBreaker.corrupt
  return `Summary: ${withBreaker.received}/${withBreaker.total} blocks, ${lost} lost, ${(withBreaker.ms / 1000).toFixed(1)} s with protection, ${(without.ms / 1000).toFixed(1)} s without`
}

function served (run: RunRecording, from: number, to: number): string {
  const count = (index: PeerIndex): number => run.arrivals[index].filter(t => t >= from && t < to).length
  return `${count(HEALTHY)}/${count(FLAKY)}`
}

function short (event: DemoEvent): string {
  const who = PEER_NAMES[event.peer ?? FLAKY]
  const at = seconds(event.t)
  switch (event.kind) {
    case 'open':
      return `${at} ${who} ${event.from === 'HALF_OPEN' ? 'opened again' : 'opened'}${event.reason == null ? '' : ` (${event.reason})`}`
    case 'half-open':
      return `${at} half-open (probe)`
    case 'close':
      return `${at} ${who} closed`
    case 'recovery-start':
      return `${at} ramp-up started`
    case 'recovery-complete':
      return `${at} ramp-up complete`
    case 'recovery-fail':
      return `${at} ramp-up failed${event.reason == null ? '' : ` (${event.reason})`}`
    default:
      return at
  }
}

/** The flaky provider's circuit, from first trip to full traffic */
function arc (run: RunRecording): string[] {
  const lines: string[] = []
  for (const index of [FLAKY, HEALTHY] as const) {
    const name = PEER_NAMES[index]
    const events = run.events.filter(e => e.peer === index)
    const opens = events.filter(e => e.kind === 'open')
    if (opens.length === 0) {
      lines.push(`The ${name} provider's circuit never left CLOSED.`)
      continue
    }
    const firstOpen = opens[0].t
    const closes = events.filter(e => e.kind === 'close')
    const lastClose = closes.at(-1)
    const faultStart = PHASES.find(p => p.mode !== 'none')?.at ?? 0
    const healedAt = PHASES.findLast(p => p.mode === 'none')?.at ?? 0
    const parts = [`The ${name} provider's circuit opened at ${seconds(firstOpen)}`]
    if (index === FLAKY) {
      parts[0] += ` (${seconds(firstOpen - faultStart)} after its faults began)`
    }
    parts.push(`tripped ${opens.length} time${opens.length === 1 ? '' : 's'}`)
    if (lastClose != null && lastClose.t > opens.at(-1)!.t) {
      parts.push(`was open or half-open for ${seconds(lastClose.t - firstOpen)}`)
      parts.push(`closed at ${seconds(lastClose.t)}${index === FLAKY ? ` (${seconds(lastClose.t - healedAt)} after it healed)` : ''}`)
      const complete = events.findLast(e => e.kind === 'recovery-complete')
      if (complete != null && complete.t >= lastClose.t) {
        parts.push(`back to full traffic at ${seconds(complete.t)}`)
      } else {
        const last = run.samples.at(-1)?.peers[index]
        if (last?.recovering === true) {
          parts.push(`still ramping up at the end (${percent(last.rate ?? 0)})`)
        }
      }
    } else {
      parts.push(`and was still ${run.samples.at(-1)?.peers[index].circuit ?? 'not closed'} at the end`)
    }
    lines.push(`${parts.join(', ')}.`)
  }
  return lines
}

function outcome (run: RunRecording): string {
  const lost = run.lost + run.corrupt
  const parts = [`${run.received}/${run.total} blocks, ${lost} lost${run.corrupt > 0 ? ` (${run.corrupt} corrupt)` : ''}`]
  parts.push(run.gaveUp
    ? `gave up ${seconds(SCENARIO.grace)} after the last wave, at ${seconds(run.ms)}`
    : `done in ${seconds(run.ms)}`)
  parts.push(`longest wait for a block that came ${seconds(run.longestWait)}`)
  const flaky = run.arrivals[FLAKY].length
  parts.push(`${flaky} blocks came from the flaky provider`)
  return parts.join('; ')
}

function whyLost (run: RunRecording): string | undefined {
  if (run.lost === 0 || run.lostOwn !== run.lost) {
    return undefined
  }
  return `  The ${run.lost} lost blocks are ones only the flaky provider held, wanted while it was failing. Helia sent those ` +
    'wants into streams the provider accepted and never answered, and re-sends a wantlist only when a peer reconnects. ' +
    'The breaker hangs up on a failing peer and redials it, which makes Helia ask again.'
}
