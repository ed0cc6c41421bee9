import { AbortError } from '@libp2p/interface'
import { OpenStreamDeadlineError } from '../errors.ts'
import { Outcome } from '../states.ts'
import { LinkedList, ListNode } from '../util/linked-list.ts'
import { OpenTiming } from './open-deadline.ts'
import type { DeferredStream } from './deferred-stream.ts'
import type { PeerId, Stream } from '@libp2p/interface'

export const PENDING = 0
export const SETTLED = 1
/** The caller has been released by an abort; whatever the inner open does now is cleaned up */
export const ABORTED = 2

/** A peer's open timing plus its in-flight guarded opens */
export class PeerOpens extends OpenTiming {
  readonly inFlight = new LinkedList<PendingOpen>()
  /** The peer disconnected while opens were in flight: forget it once they settle */
  detached = false
  /** An unproven open on this connection already held its caller: no caller waits for it again */
  held = false
}

/** Who ends an open early: the guard */
export interface OpenSettler {
  abortOpen(open: PendingOpen, reason: Error, outcome: Outcome): boolean
  /** Hands the caller a DeferredStream while the real open goes on */
  defer(open: PendingOpen): void
}

/** One guarded open. It is also the listener on the caller's signal (no closure per open). */
export class PendingOpen {
  readonly controller = new AbortController()
  readonly node = new ListNode<PendingOpen>(this)
  state = PENDING
  /** Its deadline's scheduler handle (0: none) */
  handle = 0
  /** The scheduler handle of the end of its caller's hold (0: none) */
  holdHandle = 0
  /** The protocol the caller asked for (the first, for a list) */
  protocol = ''
  /** What the caller got while the open goes on (an unproven peer past its hold) */
  deferred: DeferredStream | undefined
  reason: Error | undefined
  resolve!: (stream: Stream) => void
  reject!: (err: Error) => void

  constructor (
    readonly settler: OpenSettler,
    readonly peer: PeerId,
    readonly key: string,
    readonly peerState: PeerOpens,
    readonly token: unknown,
    readonly start: number,
    readonly deadline: number,
    readonly connected: boolean,
    readonly callerSignal: AbortSignal | undefined
  ) {}

  /** The caller's signal fired */
  handleEvent (): void {
    const reason = this.callerSignal?.reason
    this.settler.abortOpen(this, reason instanceof Error ? reason : new AbortError(), Outcome.NEUTRAL)
  }
}

/** Scheduler callback: an unproven peer's open is still not done when its caller's hold ends */
export function deferOpen (open: PendingOpen): void {
  open.holdHandle = 0
  open.settler.defer(open)
}

/** Scheduler callback (no closure per open): the open missed its deadline */
export function expireOpen (open: PendingOpen): void {
  open.handle = 0
  open.settler.abortOpen(open, new OpenStreamDeadlineError(`opening a stream to ${open.key} took longer than ${open.deadline} ms`), Outcome.FAILURE)
}
