import { systemClock } from '../clock.ts'
import { InvalidConfigError } from '../errors.ts'
import { EventEmitter } from '../event.ts'
import { PeerRecord } from '../peers/peer-record.ts'
import { resolveCircuitBreakerConfig } from './config.ts'
import { BreakerCore, TransitionReason } from './core.ts'
import { abortErrorFor, runAdmitted } from './execute.ts'
import { checkEngineOptions } from '../validate.ts'
import type { CircuitBreakerInit, Counts, ResolvedCircuitBreakerConfig } from './config.ts'
import type { ExecuteOptions, ProtectedFunction } from './execute.ts'
import type { Clock, RandomSource } from '../clock.ts'
import type { Disposable, Listener } from '../event.ts'
import type { CircuitState } from '../states.ts'

/** The breaker's runtime plumbing (not config): clock and jitter source, injectable for tests */
export interface CircuitBreakerOptions {
  /** @default systemClock */
  clock?: Clock
  /** Jitter source for backed-off open durations. @default Math.random */
  random?: RandomSource
}

/** What `onStateChange` listeners get: the breaker's name, the states before and after, and why */
export interface StateChangeEvent {
  /** The breaker's name (`bitswap-peer-<peer id>` for a peer's circuit) */
  name: string
  from: CircuitState
  to: CircuitState
  /** Why (see `TransitionReason`) */
  reason: TransitionReason
  /** The error that caused a trip, when there was one */
  cause?: unknown
}

/**
 * One circuit breaker with gobreaker semantics (see `CircuitBreakerInit`), plus open-duration
 * backoff, neutral outcomes for aborted calls, and manual trip / isolate / reset. No timers:
 * state is computed from the clock whenever it is looked at.
 */
export class CircuitBreaker {
  readonly name: string
  readonly config: ResolvedCircuitBreakerConfig
  /** Subscribes to state changes; returns a disposable that unsubscribes */
  readonly onStateChange: (listener: Listener<StateChangeEvent>) => Disposable

  private readonly core: BreakerCore
  /** The one circuit's state */
  private readonly record = new PeerRecord('')
  private readonly clock: Clock
  private readonly events = new EventEmitter<StateChangeEvent>()

  constructor (name: string, config: CircuitBreakerInit = {}, options: CircuitBreakerOptions = {}) {
    if (typeof name !== 'string') {
      throw new InvalidConfigError(`name must be a string, got ${String(name)}`)
    }
    this.name = name
    this.config = resolveCircuitBreakerConfig(config)
    checkEngineOptions(options)
    this.clock = options.clock ?? systemClock
    this.core = new BreakerCore({
      config: this.config,
      clock: this.clock,
      random: options.random,
      name: () => name
    })
    // gobreaker starts the first CLOSED window at construction
    this.core.stateOf(this.record, this.clock.now())
    this.onStateChange = this.events.listen
    this.core.onTransition((_record, from, to, reason, _now, cause) => {
      if (this.events.size > 0) {
        this.events.emit({ name, from, to, reason, cause })
      }
    })
  }

  /**
   * Runs `fn` if the circuit admits it. Rejects with `CircuitOpenError` when OPEN and
   * `TooManyRequestsError` when the HALF_OPEN quota is used up, without calling `fn`. Otherwise
   * returns `fn`'s result or rethrows its error unchanged.
   */
  execute<T> (fn: ProtectedFunction<T>, options?: ExecuteOptions): Promise<T> {
    // not `async`: a synchronous fn settles without extra microtask turns
    try {
      const signal = options?.signal
      if (signal?.aborted === true) {
        return Promise.reject(abortErrorFor(signal))
      }
      const admission = this.core.admit(this.record, this.clock.now())
      if (!admission.admitted) {
        return Promise.reject(admission.error)
      }
      return runAdmitted(admission, this.config.isSuccessful, fn, signal)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** The current state; reading it applies any time-driven change */
  get state (): CircuitState {
    return this.core.stateOf(this.record, this.clock.now())
  }

  /** The counts of the current generation (a copy) */
  counts (): Counts {
    return this.core.countsOf(this.record, this.clock.now())
  }

  /** When an OPEN circuit lets probes through (Infinity while isolated, 0 when not OPEN) */
  get openUntil (): number {
    this.core.stateOf(this.record, this.clock.now())
    return this.core.openUntil(this.record)
  }

  /** The backoff level: the next trip opens for about timeout × multiplier^level */
  get backoffLevel (): number {
    return this.core.backoffLevel(this.record, this.clock.now())
  }

  /** Forces the circuit OPEN now, as a trip (the open duration backs off as usual) */
  trip (reason: TransitionReason = TransitionReason.TRIP): void {
    this.core.trip(this.record, this.clock.now(), reason)
  }

  /**
   * Holds the circuit OPEN until the returned handle is disposed. Isolations nest: the circuit
   * resumes only when every handle is disposed.
   */
  isolate (): Disposable {
    this.core.isolate(this.record, this.clock.now())
    let released = false
    return {
      dispose: () => {
        if (!released) {
          released = true
          this.core.release(this.record, this.clock.now())
        }
      }
    }
  }

  /** Back to a fresh CLOSED circuit: counts, backoff and isolations cleared; running calls are ignored */
  reset (): void {
    this.core.clear(this.record, this.clock.now())
  }
}
