/**
 * Text shared by the live view and the summary: seconds, event lines, optional ANSI colour.
 */

import { PEER_NAMES } from './recording.ts'
import { PHASES } from './scenario.ts'
import type { DemoEvent } from './recording.ts'

/** `12.3 s` */
export function seconds (ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

/** Right-aligned seconds for columns: ` 4.0 s` */
export function stamp (ms: number): string {
  return seconds(ms).padStart(6)
}

export function percent (share: number): string {
  return `${Math.round(share * 100)} %`
}

const ARROW = '→'

/** The event without its time stamp */
export function describeEvent (event: DemoEvent): string {
  const who = event.peer == null ? '' : PEER_NAMES[event.peer].padEnd(8)
  switch (event.kind) {
    case 'phase': {
      const phase = PHASES[event.phase ?? 0]
      return `phase "${phase.name}": ${phase.description}`
    }
    case 'open':
    case 'half-open':
    case 'close':
      return `${who}circuit ${event.from ?? '?'} ${ARROW} ${event.to ?? '?'}${because(event)}`
    case 'recovery-start':
      return `${who}recovery ramp started: traffic admitted gradually`
    case 'recovery-complete':
      return `${who}recovery complete: full traffic again`
    case 'recovery-fail':
      return `${who}recovery failed${event.reason == null ? '' : ` (${event.reason})`}`
  }
}

/** ` (reason; last error X)` for circuit changes that have them */
export function because (event: DemoEvent): string {
  const parts = []
  if (event.reason != null) {
    parts.push(event.reason)
  }
  if (event.kind === 'open' && event.error != null) {
    parts.push(`last error ${event.error}`)
  }
  return parts.length === 0 ? '' : ` (${parts.join('; ')})`
}

const UNITS = new Set(['s', 'ms', '%', 'KiB'])

/**
 * Word-wraps one line to `width` columns; continuation lines keep the line's own indentation plus
 * two spaces, so wrapped summary entries still read as one
 */
export function wrap (line: string, width: number): string[] {
  if (line.length <= width) {
    return [line]
  }
  const lead = line.slice(0, line.length - line.trimStart().length)
  const indent = `${lead}  `
  // a unit stays with its number
  const words: string[] = []
  for (const word of line.trimStart().split(' ')) {
    if (words.length > 0 && UNITS.has(word.replace(/[;,.:)]$/, ''))) {
      words[words.length - 1] += ` ${word}`
    } else {
      words.push(word)
    }
  }
  const out: string[] = []
  let current = lead + words[0]
  for (const word of words.slice(1)) {
    if (current.length + 1 + word.length <= width) {
      current += ` ${word}`
    } else {
      out.push(current)
      current = indent + word
    }
  }
  out.push(current)
  return out
}

export interface Palette {
  red(text: string): string
  yellow(text: string): string
  green(text: string): string
  dim(text: string): string
  bold(text: string): string
}

const plain = (text: string): string => text

export const NO_COLOUR: Palette = { red: plain, yellow: plain, green: plain, dim: plain, bold: plain }

const sgr = (code: string) => (text: string): string => `\x1b[${code}m${text}\x1b[0m`

export const ANSI: Palette = { red: sgr('31'), yellow: sgr('33'), green: sgr('32'), dim: sgr('2'), bold: sgr('1') }

/** Colour by meaning: a circuit state or a health status */
export function colourFor (value: string, palette: Palette): (text: string) => string {
  switch (value) {
    case 'OPEN':
    case 'UNHEALTHY':
      return palette.red
    case 'HALF_OPEN':
    case 'DEGRADED':
      return palette.yellow
    case 'CLOSED':
    case 'HEALTHY':
      return palette.green
    default:
      return palette.dim
  }
}
