import { CircuitOpenError, RecoveryThrottledError, TooManyRequestsError } from '../errors.ts'
import type { PeerRecord } from '../peers/peer-record.ts'
import type { Outcome } from '../states.ts'

/** Why a request was refused */
export type RejectionReason = 'open' | 'half-open-full' | 'recovery'

/** Who settles a permit: the breaker core, or the protection manager around it */
export interface PermitOwner {
  settlePermit(permit: Permit, outcome: Outcome, latencyMs: number, err: unknown, now: number | undefined): void
}

/**
 * An admitted request. Settle it once with how it ended; a permit of a past epoch (its circuit
 * changed state or started a new window meanwhile) or of a forgotten peer is dropped, as in
 * gobreaker. A permit without a record (the table is full of peers it must keep: fail open) only
 * lets the request through.
 */
export class Permit {
  /** On the prototype, not a field: a permit is made per request */
  get admitted (): true {
    return true
  }

  /** The epoch of the record when the permit was given */
  readonly epoch: number
  /** When it was given (clock ms): without a `now`, a settle happened `latencyMs` after this */
  readonly at: number
  private settled = false

  /** @internal */
  constructor (
    private readonly owner: PermitOwner | undefined,
    /** @internal */
    readonly record: PeerRecord | undefined,
    epoch: number,
    at: number
  ) {
    this.epoch = epoch
    this.at = at
  }

  /** Whether the request counts for a tracked peer (false: untracked, nothing to watch) */
  get tracked (): boolean {
    return this.record !== undefined
  }

  /**
   * Reports how the request ended; later calls are ignored. The end is taken to be `latencyMs`
   * after the admission unless `now` (clock ms) is given.
   */
  settle (outcome: Outcome, latencyMs: number, err?: unknown, now?: number): void {
    if (this.settled) {
      return
    }
    this.settled = true
    this.owner?.settlePermit(this, outcome, latencyMs, err, now)
  }
}

/** Lets a request of an untracked peer through: settling it does nothing */
export const UNTRACKED_PERMIT: Permit = new Permit(undefined, undefined, 0, 0)

/** A refused request. `error` is a new error at each read, to throw. */
export class Rejection {
  get admitted (): false {
    return false
  }

  readonly reason: RejectionReason

  constructor (reason: RejectionReason) {
    this.reason = reason
  }

  get error (): Error {
    if (this.reason === 'open') {
      return new CircuitOpenError()
    }
    return this.reason === 'half-open-full' ? new TooManyRequestsError() : new RecoveryThrottledError()
  }
}

// one of each, so that a refusal allocates nothing until its error is thrown
export const REJECTED_OPEN = new Rejection('open')
export const REJECTED_HALF_OPEN_FULL = new Rejection('half-open-full')
export const REJECTED_RECOVERY = new Rejection('recovery')

/** What `admit` returns */
export type Admission = Permit | Rejection
