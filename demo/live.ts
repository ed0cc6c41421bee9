/**
 * The live view of one run. On a terminal: a table redrawn in place a few times a second, with the
 * latest events under it. Otherwise (piped, CI): one line per event and a status line every 2 s.
 */

import { ANSI, NO_COLOUR, colourFor, describeEvent, percent, seconds, stamp } from './format.ts'
import { FLAKY, HEALTHY, PEER_NAMES } from './recording.ts'
import { PHASES, SCENARIO, nominalDuration } from './scenario.ts'
import type { Palette } from './format.ts'
import type { DemoEvent, PeerSample, Sample } from './recording.ts'
import type { RunObserver } from './run-scenario.ts'

const REDRAW_EVERY = 200
const STATUS_EVERY = 2000
const RECENT_EVENTS = 7

export interface LiveViewInit {
  out: NodeJS.WriteStream
  title: string
  protect: boolean
  total: number
}

export class LiveView implements RunObserver {
  private readonly out: NodeJS.WriteStream
  private readonly tty: boolean
  private readonly palette: Palette
  private readonly title: string
  private readonly protect: boolean
  private readonly total: number
  private readonly recent: DemoEvent[] = []
  private latest: Sample | undefined
  private drawnLines = 0
  private lastDraw = -Infinity
  private lastStatus = 0
  private readonly restoreCursor = (): void => { this.out.write('\x1b[?25h') }

  constructor (init: LiveViewInit) {
    this.out = init.out
    this.tty = init.out.isTTY === true
    this.palette = this.tty && process.env.NO_COLOR == null ? ANSI : NO_COLOUR
    this.title = init.title
    this.protect = init.protect
    this.total = init.total
    if (this.tty) {
      this.out.write('\x1b[?25l')
      process.once('exit', this.restoreCursor)
    } else {
      this.out.write(`${this.title}\n`)
    }
  }

  sample (sample: Sample): void {
    this.latest = sample
    if (this.tty) {
      if (sample.t - this.lastDraw >= REDRAW_EVERY) {
        this.draw()
      }
    } else if (sample.t - this.lastStatus >= STATUS_EVERY) {
      this.lastStatus = sample.t
      this.out.write(`${stamp(sample.t)}  ${this.statusLine(sample)}\n`)
    }
  }

  event (event: DemoEvent): void {
    this.recent.push(event)
    if (this.recent.length > RECENT_EVENTS) {
      this.recent.shift()
    }
    if (this.tty) {
      this.draw()
    } else {
      this.out.write(`${stamp(event.t)}  ${describeEvent(event)}\n`)
    }
  }

  /** Leaves the last frame on screen */
  finish (): void {
    if (this.tty) {
      this.draw()
      this.restoreCursor()
      process.removeListener('exit', this.restoreCursor)
    } else if (this.latest != null) {
      this.out.write(`${stamp(this.latest.t)}  ${this.statusLine(this.latest)}\n`)
    }
  }

  private draw (): void {
    const sample = this.latest
    if (sample == null) {
      return
    }
    this.lastDraw = sample.t
    const width = Math.max(40, (this.out.columns ?? 100) - 1)
    const lines = this.frame(sample).map(line => fit(line, width))
    const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}F` : ''
    this.out.write(`${up}\x1b[J${lines.join('\n')}\n`)
    this.drawnLines = lines.length
  }

  private frame (sample: Sample): string[] {
    const p = this.palette
    const phase = PHASES[sample.phase]
    const lines = [
      `${p.bold(this.title)}  ${this.progress(sample)}`,
      `phase ${sample.phase + 1}/${PHASES.length} ${p.bold(`"${phase.name}"`)}: ${phase.description}`,
      `blocks: ${sample.received}/${this.total} received, ${sample.lost} lost` +
        `  (a wave of ${SCENARIO.sharedPerWave + SCENARIO.ownPerWave} every ${seconds(SCENARIO.period)})`,
      '',
      p.dim(row(['peer', 'circuit', 'health', 'ramp', 'ok / fail', 'blocks', this.protect ? 'last error' : 'connection']))
    ]
    for (const index of [HEALTHY, FLAKY] as const) {
      lines.push(this.peerRow(PEER_NAMES[index], sample.peers[index]))
    }
    lines.push('', p.dim('events'))
    if (this.recent.length === 0) {
      lines.push(p.dim('  (none yet)'))
    }
    for (const event of this.recent) {
      lines.push(`${stamp(event.t)}  ${describeEvent(event)}`)
    }
    return lines
  }

  private progress (sample: Sample): string {
    const missing = this.total - sample.received - sample.lost
    if (sample.t <= nominalDuration()) {
      return `${seconds(sample.t)} of ~${seconds(nominalDuration())}`
    }
    if (missing > 0) {
      return `${seconds(sample.t)}: waves done, waiting up to ${seconds(SCENARIO.grace)} for ${missing} missing blocks`
    }
    return sample.lost > 0 ? `${seconds(sample.t)}: gave up on ${sample.lost} blocks` : `${seconds(sample.t)}: done`
  }

  private peerRow (name: string, peer: PeerSample): string {
    const p = this.palette
    if (!this.protect) {
      return row([name, 'no breaker', '—', '—', '—', String(peer.blocks), peer.connected ? 'connected' : 'disconnected'])
    }
    const circuit = peer.circuit ?? '—'
    const circuitText = circuit === 'OPEN' && (peer.openFor ?? 0) > 0 ? `OPEN for ${seconds(peer.openFor ?? 0)}` : circuit
    const health = peer.health ?? '—'
    const ramp = peer.recovering === true ? percent(peer.rate ?? 0) : '—'
    const cells = [
      pad(name, WIDTHS[0]),
      colourFor(circuit, p)(pad(circuitText, WIDTHS[1])),
      colourFor(health, p)(pad(health, WIDTHS[2])),
      pad(ramp, WIDTHS[3], true),
      pad(`${peer.ok ?? 0} / ${peer.fail ?? 0}`, WIDTHS[4], true),
      pad(String(peer.blocks), WIDTHS[5], true),
      peer.lastError ?? ''
    ]
    return cells.join('  ')
  }

  private statusLine (sample: Sample): string {
    const peers = [HEALTHY, FLAKY].map(index => {
      const peer = sample.peers[index]
      const state = this.protect ? `${peer.circuit ?? '—'} ${peer.health ?? '—'}${peer.recovering === true ? ` ramp ${percent(peer.rate ?? 0)}` : ''}` : (peer.connected ? 'connected' : 'disconnected')
      return `${PEER_NAMES[index]} ${state}, ${peer.blocks} blocks`
    })
    const missing = this.total - sample.received - sample.lost
    const waiting = sample.t > nominalDuration() && missing > 0 ? ` (waves done, waiting for ${missing})` : ''
    return `[${PHASES[sample.phase].name}] ${sample.received}/${this.total} received, ${sample.lost} lost${waiting} · ${peers.join(' · ')}`
  }
}

const WIDTHS = [8, 14, 10, 6, 11, 6] as const

function row (cells: string[]): string {
  return cells.map((cell, i) => i < WIDTHS.length ? pad(cell, WIDTHS[i], i >= 3) : cell).join('  ')
}

function pad (text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width)
}

/** Cuts a line to the terminal width, so a wrapped line never breaks the in-place redraw */
function fit (line: string, width: number): string {
  let visible = 0
  let out = ''
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\x1b') {
      const end = line.indexOf('m', i)
      out += line.slice(i, end + 1)
      i = end
      continue
    }
    if (visible < width) {
      out += line[i]
    }
    visible++
  }
  return visible > width ? `${out}\x1b[0m` : out
}
