/**
 * Errors of the Bitswap wire readers and of want deadlines. Callers match on `err.name` (libp2p convention), so each class
 * sets `name` both statically and on the instance.
 */

/** A length prefix announced a frame larger than the configured maximum message size */
export class FrameTooLargeError extends Error {
  static override name = 'FrameTooLargeError'

  constructor (message = 'frame too large') {
    super(message)
    this.name = 'FrameTooLargeError'
  }
}

/** A length prefix was not a valid minimal unsigned varint, or the stream ended inside a frame */
export class InvalidFrameError extends Error {
  static override name = 'InvalidFrameError'

  constructor (message = 'invalid frame') {
    super(message)
    this.name = 'InvalidFrameError'
  }
}

/** Why a protobuf message was rejected */
export type InvalidMessageReason = 'truncated' | 'varint' | 'wire-type' | 'field-number' | 'length' | 'group' | 'enum'

/** A Bitswap protobuf message was malformed. `reason` says which rule it broke. */
export class InvalidMessageError extends Error {
  static override name = 'InvalidMessageError'
  readonly reason: InvalidMessageReason

  constructor (reason: InvalidMessageReason, message = `invalid bitswap message: ${reason}`) {
    super(message)
    this.name = 'InvalidMessageError'
    this.reason = reason
  }
}

/** A want the peer was asked to answer either way (`sendDontHave`) got no answer before its deadline */
export class WantDeadlineError extends Error {
  static override name = 'WantDeadlineError'
  /** How long the want had waited, ms */
  readonly ageMs: number
  /** The peer's adaptive deadline it missed, ms */
  readonly deadlineMs: number

  constructor (ageMs: number, deadlineMs: number, message = `want unanswered after ${Math.round(ageMs)} ms (deadline ${Math.round(deadlineMs)} ms)`) {
    super(message)
    this.name = 'WantDeadlineError'
    this.ageMs = ageMs
    this.deadlineMs = deadlineMs
  }
}
