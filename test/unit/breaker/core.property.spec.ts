import assert from 'node:assert/strict'
import fc from 'fast-check'
import { seededRandom } from '../../../src/clock.ts'
import { CircuitBreaker } from '../../../src/breaker/circuit-breaker.ts'
import { defaultReadyToTrip, resolveCircuitBreakerConfig } from '../../../src/breaker/config.ts'
import { BreakerCore } from '../../../src/breaker/core.ts'
import { PeerRecord } from '../../../src/peers/peer-record.ts'
import { CircuitState, Outcome } from '../../../src/states.ts'
import type { Counts } from '../../../src/breaker/config.ts'
import type { Admission, Permit } from '../../../src/breaker/permit.ts'

// the reference model's own codes: states as the core names them, rejections below zero
const STATE_CLOSED: CircuitState = CircuitState.CLOSED
const STATE_OPEN: CircuitState = CircuitState.OPEN
const STATE_HALF_OPEN: CircuitState = CircuitState.HALF_OPEN
const REJECT_OPEN = -1
const REJECT_HALF_OPEN_FULL = -2

/** The model's code for an admission: its rejection code, or 1 */
function code (admission: Admission): number {
  if (admission.admitted) return 1
  return admission.reason === 'open' ? REJECT_OPEN : REJECT_HALF_OPEN_FULL
}

const START = 1_000_000

type Command =
  | { kind: 'acquire' }
  | { kind: 'settle', index: number, outcome: Outcome }
  | { kind: 'tick', ms: number }
  | { kind: 'look' }
  | { kind: 'trip' }

const outcomeArb = fc.constantFrom<Outcome>(Outcome.SUCCESS, Outcome.FAILURE, Outcome.NEUTRAL)

function commandArb (timeout: number): fc.Arbitrary<Command> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.constant<Command>({ kind: 'acquire' }) },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('settle' as const), index: fc.nat(), outcome: outcomeArb }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: timeout * 3 })) }) },
    { weight: 1, arbitrary: fc.constant<Command>({ kind: 'look' }) },
    { weight: 1, arbitrary: fc.constant<Command>({ kind: 'trip' }) }
  )
}

interface ModelConfig { maxRequests: number, interval: number, timeout: number, readyToTrip(counts: Counts): boolean }

/**
 * A direct transcription of gobreaker v1 (the seed's port), plus the neutral outcome and a forced
 * trip, written for clarity rather than speed: the reference the core must agree with.
 */
class ReferenceBreaker {
  state: CircuitState = STATE_CLOSED
  generation = 0
  counts: Counts = zero()
  expiry = 0

  constructor (private readonly config: ModelConfig, now: number) {
    this.toNewGeneration(now)
  }

  currentState (now: number): CircuitState {
    if (this.state === STATE_CLOSED) {
      if (this.expiry !== 0 && this.expiry < now) this.toNewGeneration(now)
    } else if (this.state === STATE_OPEN) {
      if (this.expiry < now) this.setState(STATE_HALF_OPEN, now)
    }
    return this.state
  }

  beforeRequest (now: number): number {
    const state = this.currentState(now)
    if (state === STATE_OPEN) return REJECT_OPEN
    if (state === STATE_HALF_OPEN && this.counts.requests >= this.config.maxRequests) return REJECT_HALF_OPEN_FULL
    this.counts.requests++
    return this.generation
  }

  afterRequest (generation: number, outcome: Outcome, now: number): void {
    const state = this.currentState(now)
    if (generation !== this.generation) return
    if (outcome === Outcome.NEUTRAL) {
      this.counts.requests--
    } else if (outcome === Outcome.SUCCESS) {
      this.counts.totalSuccesses++
      this.counts.consecutiveSuccesses++
      this.counts.consecutiveFailures = 0
      if (state === STATE_HALF_OPEN && this.counts.consecutiveSuccesses >= this.config.maxRequests) this.setState(STATE_CLOSED, now)
    } else {
      this.counts.totalFailures++
      this.counts.consecutiveFailures++
      this.counts.consecutiveSuccesses = 0
      if (state === STATE_CLOSED && this.config.readyToTrip({ ...this.counts })) this.setState(STATE_OPEN, now)
      else if (state === STATE_HALF_OPEN) this.setState(STATE_OPEN, now)
    }
  }

  trip (now: number): void {
    if (this.currentState(now) !== STATE_OPEN) this.setState(STATE_OPEN, now)
  }

  private setState (state: CircuitState, now: number): void {
    if (this.state === state) return
    this.state = state
    this.toNewGeneration(now)
  }

  private toNewGeneration (now: number): void {
    this.generation++
    this.counts = zero()
    if (this.state === STATE_CLOSED) this.expiry = this.config.interval > 0 ? now + this.config.interval : 0
    else if (this.state === STATE_OPEN) this.expiry = now + this.config.timeout
    else this.expiry = 0
  }
}

function zero (): Counts {
  return { requests: 0, totalSuccesses: 0, totalFailures: 0, consecutiveSuccesses: 0, consecutiveFailures: 0 }
}

const configArb = fc.record({
  maxRequests: fc.integer({ min: 1, max: 4 }),
  interval: fc.constantFrom(0, 20, 50, 100),
  timeout: fc.integer({ min: 10, max: 200 }),
  rule: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 4 }))
})

function readyToTripFor (rule: number): (counts: Counts) => boolean {
  return rule === 0 ? defaultReadyToTrip : (c) => c.consecutiveFailures >= rule
}

describe('BreakerCore properties', () => {
  it('agrees with a plain gobreaker transcription on every step (backoff off)', () => {
    fc.assert(fc.property(configArb.chain(c => fc.tuple(fc.constant(c), fc.array(commandArb(c.timeout), { maxLength: 120 }))), ([c, commands]) => {
      const config = { maxRequests: c.maxRequests, interval: c.interval, timeout: c.timeout, readyToTrip: readyToTripFor(c.rule) }
      let now = START
      const core = new BreakerCore({
        config: resolveCircuitBreakerConfig({ ...config, backoffMultiplier: 1, jitter: 0, maxHalfOpenDwell: Infinity })
      })
      const record = new PeerRecord('p')
      core.stateOf(record, now)
      const model = new ReferenceBreaker(config, now)
      const inFlight: Array<[Permit, number]> = []

      for (const command of commands) {
        switch (command.kind) {
          case 'acquire': {
            const admission = core.admit(record, now)
            const generation = model.beforeRequest(now)
            assert.equal(admission.admitted, generation > 0, 'same admission')
            if (admission.admitted) inFlight.push([admission, generation])
            else assert.equal(code(admission), generation, 'same rejection')
            break
          }
          case 'settle': {
            if (inFlight.length === 0) break
            const [permit, generation] = inFlight.splice(command.index % inFlight.length, 1)[0]
            permit.settle(command.outcome, 0, undefined, now)
            model.afterRequest(generation, command.outcome, now)
            break
          }
          case 'tick':
            now += command.ms
            break
          case 'look':
            break
          case 'trip':
            core.trip(record, now)
            model.trip(now)
            break
        }
        assert.equal(core.stateOf(record, now), model.currentState(now))
        assert.deepEqual(core.countsOf(record, now), model.counts)
      }
    }), { numRuns: 1500 })
  })

  it('keeps its invariants with backoff, jitter and dwell on, under concurrent calls', () => {
    fc.assert(fc.property(configArb.chain(c => fc.tuple(fc.constant(c), fc.integer(), fc.array(commandArb(c.timeout), { maxLength: 150 }))), ([c, seed, commands]) => {
      let now = START
      const transitions: Array<[string, string, string]> = []
      const maxTimeout = c.timeout * 5
      const core = new BreakerCore({
        config: resolveCircuitBreakerConfig({
          maxRequests: c.maxRequests,
          interval: c.interval,
          timeout: c.timeout,
          readyToTrip: readyToTripFor(c.rule),
          maxTimeout,
          jitter: 0.2,
          backoffDecay: c.timeout * 2,
          maxHalfOpenDwell: c.timeout * 2
        }),
        random: seededRandom(seed)
      })
      const record = new PeerRecord('p')
      core.onTransition((_record, from, to, reason, at) => {
        transitions.push([from, to, reason])
        if (to === STATE_OPEN && reason !== 'isolate') {
          const duration = core.openUntil(record) - at
          assert.ok(duration >= c.timeout && duration <= maxTimeout * 1.2, `open duration ${duration}`)
        }
      })
      let tokens: Permit[] = []

      const check = (): void => {
        const state = core.stateOf(record, now)
        const counts = core.countsOf(record, now)
        assert.ok(counts.requests >= counts.totalSuccesses + counts.totalFailures, 'counts add up')
        assert.ok(counts.consecutiveSuccesses <= counts.totalSuccesses)
        assert.ok(counts.consecutiveFailures <= counts.totalFailures)
        if (state === STATE_HALF_OPEN) {
          assert.ok(counts.requests <= c.maxRequests, 'half-open quota')
          assert.ok(core.inFlight(record) <= c.maxRequests, 'half-open in flight')
          assert.equal(counts.totalFailures, 0, 'any half-open failure reopens')
        }
        if (state === STATE_OPEN) {
          assert.equal(counts.requests, 0, 'nothing is admitted while OPEN')
        }
      }

      for (const command of commands) {
        switch (command.kind) {
          case 'acquire': {
            const admission = core.admit(record, now)
            if (admission.admitted) tokens.push(admission)
            break
          }
          case 'settle':
            if (tokens.length > 0) tokens.splice(command.index % tokens.length, 1)[0].settle(command.outcome, 0, undefined, now)
            break
          case 'tick':
            now += command.ms
            break
          case 'look':
            // drain: settle everything in flight, neutrally; a HALF_OPEN circuit must admit again
            for (const token of tokens) token.settle(Outcome.NEUTRAL, 0, undefined, now)
            tokens = []
            if (core.stateOf(record, now) === STATE_HALF_OPEN) {
              const probe = core.admit(record, now)
              assert.ok(probe.admitted, 'permits never leak')
              tokens.push(probe)
            }
            break
          case 'trip':
            core.trip(record, now)
            break
        }
        check()
      }

      for (const [from, to, reason] of transitions) {
        assert.ok(!(from === STATE_CLOSED && to === STATE_HALF_OPEN), 'never CLOSED -> HALF_OPEN')
        assert.ok(!(from === STATE_OPEN && to === STATE_CLOSED), `never OPEN -> CLOSED (${reason})`)
      }

      // after everything settles with successes or neutrals a HALF_OPEN circuit can still admit
      for (const token of tokens) token.settle(Outcome.SUCCESS, 0, undefined, now)
      if (core.stateOf(record, now) === STATE_HALF_OPEN) {
        assert.ok(core.admit(record, now).admitted, 'permits never leak')
      }
    }), { numRuns: 1500 })
  })

  it('CircuitBreaker.execute never runs more than maxRequests half-open probes at once, in any interleaving', async () => {
    await fc.assert(fc.asyncProperty(
      fc.scheduler(),
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.constantFrom('ok', 'fail', 'abort'), { minLength: 1, maxLength: 12 }),
      async (s, maxRequests, plans) => {
        let now = START
        const breaker = new CircuitBreaker('prop', { maxRequests, timeout: 10, jitter: 0, readyToTrip: () => true }, { clock: { now: () => now } })
        breaker.trip()
        now += 11
        assert.equal(breaker.state, 'HALF_OPEN')
        let running = 0
        let maxRunning = 0
        let admitted = 0
        const calls = plans.map(async (plan) => {
          const controller = new AbortController()
          try {
            await breaker.execute(async () => {
              admitted++
              running++
              maxRunning = Math.max(maxRunning, running)
              try {
                await s.schedule(Promise.resolve(plan))
                if (plan === 'abort') controller.abort()
                if (plan === 'fail') throw new Error('probe failed')
              } finally {
                running--
              }
            }, { signal: controller.signal })
          } catch {
            // rejections and the probes' own errors are expected here
          }
        })
        await s.waitAll()
        await Promise.all(calls)
        assert.ok(maxRunning <= maxRequests)
        assert.ok(admitted <= maxRequests)
        const state = breaker.state
        // all settled: either a failure reopened it, enough successes closed it, or it admits again
        if (state === 'HALF_OPEN') {
          assert.equal(breaker.counts().requests, breaker.counts().totalSuccesses)
          assert.ok(breaker.counts().requests < maxRequests)
        }
      }
    ), { numRuns: 300 })
  })
})
