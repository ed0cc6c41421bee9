import { ResponseDeadlineError } from '../errors.ts'
import { Outcome } from '../states.ts'
import type { DeadlineScheduler } from './deadline-scheduler.ts'
import type { Permit } from '../breaker/permit.ts'
import type { Clock } from '../clock.ts'
import type { Stream, StreamCloseEvent } from '@libp2p/interface'

/** Where a watched stream's outcome goes: the service settles the admission's permit with it */
export interface StreamOutcomeSink<T = Permit> {
  /** `now` is the time the latency was measured at (one clock read serves both) */
  settleStream(token: T, outcome: Outcome, latencyMs: number, err: Error | undefined, now: number): void
}

/**
 * How a Bitswap stream's life ended, from the breaker's point of view:
 * - a clean close is a success;
 * - the remote resetting it is a failure;
 * - our own abort (our caller gave up, or our circuit opened) says nothing about the peer: neutral,
 *   except an idle timeout, which means the remote went quiet on us: a failure.
 */
export function classifyClose (error: Error | undefined, local: boolean | undefined, cleanClose: Outcome = Outcome.SUCCESS): Outcome {
  if (error == null) {
    return cleanClose
  }
  if (local === true) {
    return error.name === 'TimeoutError' ? Outcome.FAILURE : Outcome.NEUTRAL
  }
  return Outcome.FAILURE
}

/**
 * Watches one admitted stream until it ends and settles its token exactly once. One small object
 * per stream, used as the event listener itself (`handleEvent`) so no closure is allocated.
 */
class StreamWatch<T = Permit> {
  private settled = false
  /** The scheduler entry of the stall deadline, cancelled when the stream ends first */
  deadline = 0
  scheduler: DeadlineScheduler | undefined

  constructor (
    private readonly sink: StreamOutcomeSink<T>,
    private readonly clock: Clock,
    private readonly token: T,
    private readonly startedAt: number,
    private readonly cleanClose: Outcome
  ) {}

  handleEvent (evt: Event): void {
    const { error, local } = evt as StreamCloseEvent
    this.settle(classifyClose(error, local, this.cleanClose), error)
  }

  /** Settles now (e.g. a deadline passed before the stream ended); later events are ignored */
  settle (outcome: Outcome, err?: Error): void {
    if (this.settled) {
      return
    }
    this.settled = true
    if (this.deadline !== 0) {
      this.scheduler?.cancel(this.deadline)
      this.deadline = 0
    }
    const now = this.clock.now()
    this.sink.settleStream(this.token, outcome, now - this.startedAt, err, now)
  }

  get done (): boolean {
    return this.settled
  }
}

export type { StreamWatch }

/** Scheduler callback (no closure per stream): the remote never finished the stream in time */
function stalled (watch: StreamWatch<unknown>): void {
  watch.deadline = 0
  watch.settle(Outcome.FAILURE, new ResponseDeadlineError())
}

/**
 * Starts watching `stream`; with a scheduler and `deadlineAt`, a stream still open then is a stall
 * (a failure). A stream can already be over when middleware runs (a peer that resets
 * everything often resets before our middleware sees the stream), and then no `close` event will
 * ever come: check its status on entry.
 */
export function watchStream<T = Permit> (stream: Stream, token: T, startedAt: number, clock: Clock, sink: StreamOutcomeSink<T>, cleanClose: Outcome, scheduler?: DeadlineScheduler, deadlineAt?: number): StreamWatch<T> {
  const watch = new StreamWatch<T>(sink, clock, token, startedAt, cleanClose)
  const status = stream.status
  if (status === 'reset' || status === 'aborted') {
    watch.settle(Outcome.FAILURE)
  } else if (status === 'closed') {
    watch.settle(cleanClose)
  } else {
    stream.addEventListener('close', watch, { once: true })
    // a peer that accepts our stream but never closes its side is stalling: no event would ever say so
    if (scheduler != null && deadlineAt != null) {
      watch.scheduler = scheduler
      watch.deadline = scheduler.schedule(deadlineAt, stalled, watch)
    }
  }
  return watch
}
