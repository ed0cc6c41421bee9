/**
 * Error classes. Following the libp2p convention, callers match on `err.name`, so every class sets
 * `name` both statically and on the instance.
 */

/** The circuit for this peer (or breaker) is OPEN: the call was not made */
export class CircuitOpenError extends Error {
  static override name = 'CircuitOpenError'

  constructor (message = 'circuit breaker is open') {
    super(message)
    this.name = 'CircuitOpenError'
  }
}

/** The circuit is HALF_OPEN and its probe quota is used up: the call was not made */
export class TooManyRequestsError extends Error {
  static override name = 'TooManyRequestsError'

  constructor (message = 'too many requests') {
    super(message)
    this.name = 'TooManyRequestsError'
  }
}

/** The peer is ramping back up after recovery and this request fell outside the admitted fraction */
export class RecoveryThrottledError extends Error {
  static override name = 'RecoveryThrottledError'

  constructor (message = 'request rejected during recovery') {
    super(message)
    this.name = 'RecoveryThrottledError'
  }
}

/** A configuration value is out of range. The message names the field and the allowed range. */
export class InvalidConfigError extends Error {
  static override name = 'InvalidConfigError'

  constructor (message = 'invalid configuration') {
    super(message)
    this.name = 'InvalidConfigError'
  }
}

/** An outbound Bitswap stream did not finish protocol negotiation before the peer's deadline */
export class OpenStreamDeadlineError extends Error {
  static override name = 'OpenStreamDeadlineError'

  constructor (message = 'stream open deadline exceeded') {
    super(message)
    this.name = 'OpenStreamDeadlineError'
  }
}

/** An inbound Bitswap stream was refused because the peer exceeded a per-peer inbound limit */
export class InboundLimitError extends Error {
  static override name = 'InboundLimitError'

  constructor (message = 'inbound limit exceeded') {
    super(message)
    this.name = 'InboundLimitError'
  }
}

/** The component was closed; it no longer runs requests */
export class ClosedError extends Error {
  static override name = 'ClosedError'

  constructor (message = 'closed') {
    super(message)
    this.name = 'ClosedError'
  }
}

/** Matches the names of errors that mean "the caller gave up", which are neutral, never failures */
export function isAbortError (err: unknown): boolean {
  if (err == null || typeof err !== 'object') {
    return false
  }
  const name = (err as { name?: unknown }).name
  return name === 'AbortError'
}

/** The peer did not finish an outbound Bitswap stream (close its side) before its deadline: it stalls */
export class ResponseDeadlineError extends Error {
  static override name = 'ResponseDeadlineError'

  constructor (message = 'peer did not close the stream before its deadline') {
    super(message)
    this.name = 'ResponseDeadlineError'
  }
}

/**
 * A snapshot given to `restore()` or as `initialState` is malformed or from a later version. The
 * message names the path of the bad part (`initialState.peers[3].openUntil`) and what it got.
 */
export class InvalidSnapshotError extends Error {
  static override name = 'InvalidSnapshotError'

  constructor (message = 'invalid snapshot') {
    super(message)
    this.name = 'InvalidSnapshotError'
  }
}
