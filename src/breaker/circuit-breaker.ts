import { systemClock } from '../clock.ts'
import { InvalidConfigError } from '../errors.ts'
import { EventEmitter } from '../event.ts'
import { CIRCUIT_STATE_NAMES } from '../states.ts'
import { resolveCircuitBreakerConfig } from './config.ts'
import { BreakerCore, TransitionReason } from './core.ts'
import { abortErrorFor, rejectionError, runAdmitted } from './execute.ts'
import type { CircuitBreakerConfig, Counts, ResolvedCircuitBreakerConfig } from './config.ts'
import type { ExecuteOptions, ProtectedFunction } from './execute.ts'
import type { Clock, RandomSource } from '../clock.ts'
import type { Disposable, Listener } from '../event.ts'
import type { CircuitState } from '../states.ts'

export interface CircuitBreakerOptions {
  /** @default systemClock */
  clock?: Clock
  /** Jitter source for backed-off open durations. @default Math.random */
  random?: RandomSource
}

export interface StateChangeEvent {
  name: string
  from: CircuitState
  to: CircuitState
  /** Why (see `TransitionReason`, or the reason given to `trip()`) */
  reason: string
  /** The error that caused a trip, when there was one */
  cause?: unknown
}

const SLOT = 0

/**
 * One circuit breaker with gobreaker semantics (see `CircuitBreakerConfig`), plus open-duration
 * backoff, neutral outcomes for aborted calls, and manual trip / isolate / reset. No timers:
 * state is computed from the clock whenever it is looked at.
 */
export class CircuitBreaker {
  readonly name: string
  readonly config: ResolvedCircuitBreakerConfig
  /** Subscribes to state changes; returns a disposable that unsubscribes */
  readonly onStateChange: (listener: Listener<StateChangeEvent>) => Disposable

  private readonly core: BreakerCore
  private readonly clock: Clock
  private readonly events = new EventEmitter<StateChangeEvent>()

  constructor (name: string, config: CircuitBreakerConfig = {}, options: CircuitBreakerOptions = {}) {
    if (typeof name !== 'string') {
      throw new InvalidConfigError(`name must be a string, got ${String(name)}`)
    }
    this.name = name
    this.config = resolveCircuitBreakerConfig(config)
    this.clock = options.clock ?? systemClock
    this.core = new BreakerCore({
      config: this.config,
      clock: this.clock,
      random: options.random,
      name: () => name
    })
    this.core.grow(1)
    this.core.reset(SLOT)
    // gobreaker starts the first CLOSED window at construction
    this.core.stateOf(SLOT, this.clock.now())
    this.onStateChange = this.events.listen
    this.core.onTransition((_slot, from, to, reason, _now, cause) => {
      if (this.events.size > 0) {
        this.events.emit({ name, from: CIRCUIT_STATE_NAMES[from], to: CIRCUIT_STATE_NAMES[to], reason, cause })
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
      const token = this.core.acquire(SLOT, this.clock.now())
      if (token < 0) {
        return Promise.reject(rejectionError(token))
      }
      return runAdmitted(this.core, token, fn, signal, this.clock)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** The current state; reading it applies any time-driven change */
  get state (): CircuitState {
    return CIRCUIT_STATE_NAMES[this.core.stateOf(SLOT, this.clock.now())]
  }

  /** The counts of the current generation (a copy) */
  counts (): Counts {
    return this.core.countsOf(SLOT, this.clock.now())
  }

  /** When an OPEN circuit lets probes through (Infinity while isolated, 0 when not OPEN) */
  get openUntil (): number {
    this.core.stateOf(SLOT, this.clock.now())
    return this.core.openUntil(SLOT)
  }

  /** The backoff level: the next trip opens for about timeout × multiplier^level */
  get backoffLevel (): number {
    return this.core.backoffLevel(SLOT, this.clock.now())
  }

  /** Forces the circuit OPEN now, as a trip (the open duration backs off as usual) */
  trip (reason: string = TransitionReason.TRIP): void {
    this.core.trip(SLOT, this.clock.now(), reason)
  }

  /**
   * Holds the circuit OPEN until the returned handle is disposed. Isolations nest: the circuit
   * resumes only when every handle is disposed.
   */
  isolate (): Disposable {
    this.core.isolate(SLOT, this.clock.now())
    let released = false
    return {
      dispose: () => {
        if (!released) {
          released = true
          this.core.release(SLOT, this.clock.now())
        }
      }
    }
  }

  /** Back to a fresh CLOSED circuit: counts, backoff and isolations cleared; running calls are ignored */
  reset (): void {
    this.core.clear(SLOT, this.clock.now())
  }
}
