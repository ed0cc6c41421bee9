import type { ReleaseReason } from './want-release.ts'

/** What a timely answer was: 'block' and 'have' are successes, 'dont-have' is neutral */
export type AnswerKind = 'block' | 'have' | 'dont-have'

/** Where verdicts go; the integrator plugs the breaker in here. Calls never overlap a mutation. */
export interface WantOutcomeSink {
  /** A timely answer: 'block' and 'have' are successes, 'dont-have' is neutral */
  answered(peerKey: string, kind: AnswerKind, latencyMs: number): void
  /** No answer before the deadline: a failure */
  missed(peerKey: string, ageMs: number, deadlineMs: number): void
  /** A block or presence we never asked this peer for: counts against the sender */
  unrequested(peerKey: string, what: 'block' | 'presence'): void
  /** An answer to a want that had already missed: informative only, the miss stands */
  late?(peerKey: string, kind: AnswerKind, latencyMs: number): void
  /** The peer will not answer this want: release Bitswap's wait on it (see want-release.ts) */
  released?(peerKey: string, cid: Uint8Array, reason: ReleaseReason): void
}

/** One conclusion of the ledger about one peer, as the sink will hear it */
export type WantVerdict =
  | { readonly type: 'answered', readonly peerKey: string, readonly kind: AnswerKind, readonly latencyMs: number }
  | { readonly type: 'missed', readonly peerKey: string, readonly ageMs: number, readonly deadlineMs: number }
  | { readonly type: 'unrequested', readonly peerKey: string, readonly what: 'block' | 'presence' }
  | { readonly type: 'late', readonly peerKey: string, readonly kind: AnswerKind, readonly latencyMs: number }
  | { readonly type: 'released', readonly peerKey: string, readonly cid: Uint8Array, readonly reason: ReleaseReason }

/** Hands one verdict to the sink method it names */
export function deliverVerdict (sink: WantOutcomeSink, verdict: WantVerdict): void {
  switch (verdict.type) {
    case 'answered':
      sink.answered(verdict.peerKey, verdict.kind, verdict.latencyMs)
      break
    case 'missed':
      sink.missed(verdict.peerKey, verdict.ageMs, verdict.deadlineMs)
      break
    case 'unrequested':
      sink.unrequested(verdict.peerKey, verdict.what)
      break
    case 'late':
      sink.late?.(verdict.peerKey, verdict.kind, verdict.latencyMs)
      break
    case 'released':
      sink.released?.(verdict.peerKey, verdict.cid, verdict.reason)
      break
    default:
  }
}

/**
 * Verdicts wait here while the ledger changes state and are delivered after, so a sink may call
 * back in (e.g. removePeer when a breaker trips) without seeing or corrupting a half-made change.
 */
export class VerdictQueue {
  private readonly sink: WantOutcomeSink
  /** Slots are reused and counted, not truncated: setting an array's length costs a runtime call per flush */
  private readonly queue: Array<WantVerdict | undefined> = []
  private count = 0
  private flushing = false

  constructor (sink: WantOutcomeSink) {
    this.sink = sink
  }

  push (verdict: WantVerdict): void {
    this.queue[this.count++] = verdict
  }

  /** Delivers everything queued, including what the sink's own calls queue meanwhile */
  flush (): void {
    if (this.flushing || this.count === 0) {
      return // the outer flush delivers what a re-entrant call queued
    }
    this.flushing = true
    const queue = this.queue
    try {
      for (let i = 0; i < this.count; i++) {
        const verdict = queue[i] as WantVerdict
        queue[i] = undefined
        try {
          deliverVerdict(this.sink, verdict)
        } catch {
          // the sink's errors are its own; the ledger is already consistent
        }
      }
    } finally {
      this.count = 0
      this.flushing = false
    }
  }
}
