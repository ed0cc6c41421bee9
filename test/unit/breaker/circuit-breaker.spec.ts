import assert from 'node:assert/strict'
import sinon from 'sinon'
import { CircuitBreaker } from '../../../src/breaker/circuit-breaker.ts'
import { CircuitOpenError, InvalidConfigError, TooManyRequestsError } from '../../../src/errors.ts'
import { rejection } from '../helpers.ts'
import type { StateChangeEvent } from '../../../src/breaker/circuit-breaker.ts'

const fail = async (): Promise<never> => { throw new Error('boom') }
const ok = async (): Promise<string> => 'ok'

function deferred<T = void> (): { promise: Promise<T>, resolve(value: T): void, reject(err: unknown): void } {
  let resolve!: (value: T) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

describe('CircuitBreaker', () => {
  let clock: sinon.SinonFakeTimers

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000 })
  })

  afterEach(() => {
    clock.restore()
  })

  describe('seed behaviour (circuit_breaker_test.go)', () => {
    it('BasicFunctionality: one success is counted', async () => {
      const cb = new CircuitBreaker('test', {})
      assert.equal(await cb.execute(ok), 'ok')
      assert.equal(cb.state, 'CLOSED')
      assert.equal(cb.counts().requests, 1)
      assert.equal(cb.counts().totalSuccesses, 1)
      assert.equal(cb.name, 'test')
    })

    it('TripsOnFailures: 3 consecutive failures open it, then "circuit breaker is open"', async () => {
      const cb = new CircuitBreaker('test', { readyToTrip: c => c.consecutiveFailures >= 3 })
      for (let i = 0; i < 3; i++) {
        assert.equal((await rejection(cb.execute(fail))).message, 'boom')
      }
      assert.equal(cb.state, 'OPEN')
      let called = false
      const err = await rejection(cb.execute(async () => { called = true }))
      assert.ok(err instanceof CircuitOpenError)
      assert.equal(err.name, 'CircuitOpenError')
      assert.equal(err.message, 'circuit breaker is open')
      assert.equal(called, false)
    })

    it('HalfOpenRecovery: HALF_OPEN after the timeout, two successes with maxRequests 2 close it', async () => {
      const cb = new CircuitBreaker('test', { maxRequests: 2, timeout: 50, readyToTrip: c => c.consecutiveFailures >= 1 })
      await rejection(cb.execute(fail))
      assert.equal(cb.state, 'OPEN')
      await clock.tickAsync(50)
      assert.equal(cb.state, 'OPEN', 'strictly after the timeout')
      await clock.tickAsync(10)
      assert.equal(cb.state, 'HALF_OPEN')
      await cb.execute(ok)
      assert.equal(cb.state, 'HALF_OPEN')
      await cb.execute(ok)
      assert.equal(cb.state, 'CLOSED')
    })

    it('Counts: 3 successes then 2 failures', async () => {
      const cb = new CircuitBreaker('test', { readyToTrip: () => false })
      for (let i = 0; i < 3; i++) await cb.execute(ok)
      for (let i = 0; i < 2; i++) await rejection(cb.execute(fail))
      assert.deepEqual(cb.counts(), {
        requests: 5, totalSuccesses: 3, totalFailures: 2, consecutiveSuccesses: 0, consecutiveFailures: 2
      })
    })

    it('Panic: a synchronous throw is rethrown, counted as a failure, and the breaker still works', async () => {
      const cb = new CircuitBreaker('test', { readyToTrip: () => false })
      const thrown = new TypeError('panic')
      const err = await rejection(cb.execute(() => { throw thrown }))
      assert.equal(err, thrown)
      assert.equal(cb.counts().totalFailures, 1)
      assert.equal(await cb.execute(() => 42), 42, 'a synchronous value works too')
      assert.equal(cb.counts().totalSuccesses, 1)
    })

    it('a thrown non-error (even undefined) is a failure', async () => {
      const cb = new CircuitBreaker('test', { readyToTrip: () => false })
      await rejection(cb.execute(() => { throw 'text' }))
      await cb.execute(() => { throw undefined }).catch(() => {})
      assert.equal(cb.counts().totalFailures, 2)
    })

    it('MaxRequests 0 means 1: one HALF_OPEN success closes it', async () => {
      const cb = new CircuitBreaker('test', { maxRequests: 0, timeout: 10, readyToTrip: c => c.consecutiveFailures >= 1 })
      await rejection(cb.execute(fail))
      await clock.tickAsync(11)
      assert.equal(cb.state, 'HALF_OPEN')
      await cb.execute(ok)
      assert.equal(cb.state, 'CLOSED')
    })

    it('StateTransitions: onStateChange sees CLOSED -> OPEN -> HALF_OPEN -> CLOSED with the name', async () => {
      const seen: string[] = []
      const cb = new CircuitBreaker('svc', {
        maxRequests: 1,
        timeout: 10,
        readyToTrip: c => c.consecutiveFailures >= 2,
        onStateChange: (name, from, to) => seen.push(`${name}:${from}->${to}`)
      })
      await rejection(cb.execute(fail))
      await rejection(cb.execute(fail))
      await clock.tickAsync(11)
      await cb.execute(ok)
      assert.deepEqual(seen, ['svc:CLOSED->OPEN', 'svc:OPEN->HALF_OPEN', 'svc:HALF_OPEN->CLOSED'])
    })

    it('Example: trips after 3 errors, then reports OPEN and the open error', async () => {
      const cb = new CircuitBreaker('example', { readyToTrip: c => c.consecutiveFailures >= 3 })
      for (let i = 0; i < 3; i++) await rejection(cb.execute(async () => { throw new Error('service unavailable') }))
      assert.equal(`Circuit breaker state: ${cb.state}`, 'Circuit breaker state: OPEN')
      assert.equal(`Rejected request: ${(await rejection(cb.execute(ok))).message}`, 'Rejected request: circuit breaker is open')
    })

    it('the default rule trips at >= 3 requests and >= 60 % failures', async () => {
      const cb = new CircuitBreaker('test', {})
      await cb.execute(ok)
      await cb.execute(ok)
      await rejection(cb.execute(fail))
      await rejection(cb.execute(fail))
      assert.equal(cb.state, 'CLOSED', '2/4 = 0.5')
      await rejection(cb.execute(fail))
      assert.equal(cb.state, 'OPEN', '3/5 = 0.6')
    })

    it('interval: counts reset after the window, and counts() advances time (seed bug 18)', async () => {
      const cb = new CircuitBreaker('test', { interval: 100, readyToTrip: () => false })
      await rejection(cb.execute(fail))
      assert.equal(cb.counts().totalFailures, 1)
      await clock.tickAsync(101)
      assert.equal(cb.counts().totalFailures, 0)
    })
  })

  describe('rejections', () => {
    it('HALF_OPEN admits maxRequests concurrent probes and rejects the rest with "too many requests"', async () => {
      const cb = new CircuitBreaker('test', { maxRequests: 3, timeout: 10, readyToTrip: () => true })
      cb.trip()
      await clock.tickAsync(11)
      const gate = deferred()
      let started = 0
      const calls = Array.from({ length: 10 }, async () => cb.execute(async () => { started++; await gate.promise; return 'probe' }))
      const settled = Promise.allSettled(calls)
      await clock.tickAsync(0)
      assert.equal(started, 3)
      gate.resolve()
      const results = await settled
      const fulfilled = results.filter(r => r.status === 'fulfilled')
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      assert.equal(fulfilled.length, 3)
      assert.equal(rejected.length, 7)
      for (const r of rejected) {
        assert.ok(r.reason instanceof TooManyRequestsError)
        assert.equal(r.reason.message, 'too many requests')
      }
      assert.equal(cb.state, 'CLOSED')
    })
  })

  describe('outcome classification', () => {
    it('an already-aborted signal rejects with an AbortError before admission; nothing is counted', async () => {
      const cb = new CircuitBreaker('test', {})
      let called = false
      const err = await rejection(cb.execute(async () => { called = true }, { signal: AbortSignal.abort() }))
      assert.equal(err.name, 'AbortError')
      assert.equal(called, false)
      assert.equal(cb.counts().requests, 0)
    })

    it('an already-aborted signal with a non-abort reason still rejects with an AbortError', async () => {
      const cb = new CircuitBreaker('test', {})
      const err = await rejection(cb.execute(ok, { signal: AbortSignal.abort(new Error('why')) }))
      assert.equal(err.name, 'AbortError')
    })

    it('aborting while fn runs is neutral, and fn\'s own error is passed through', async () => {
      const cb = new CircuitBreaker('test', { readyToTrip: () => true })
      const controller = new AbortController()
      const own = new Error('stream reset by us')
      const running = cb.execute(async (signal) => {
        assert.equal(signal, controller.signal, 'fn receives the signal')
        await new Promise(resolve => setTimeout(resolve, 10))
        throw own
      }, { signal: controller.signal })
      controller.abort()
      await clock.tickAsync(10)
      assert.equal(await rejection(running), own)
      assert.equal(cb.state, 'CLOSED', 'not a failure')
      assert.deepEqual(cb.counts(), { requests: 0, totalSuccesses: 0, totalFailures: 0, consecutiveSuccesses: 0, consecutiveFailures: 0 })
    })

    it('an AbortError thrown by fn is neutral', async () => {
      const cb = new CircuitBreaker('test', { readyToTrip: () => true })
      const abort = Object.assign(new Error('aborted'), { name: 'AbortError' })
      assert.equal(await rejection(cb.execute(async () => { throw abort })), abort)
      assert.equal(cb.state, 'CLOSED')
      assert.equal(cb.counts().totalFailures, 0)
    })

    it('an aborted HALF_OPEN probe gives its permit back', async () => {
      const cb = new CircuitBreaker('test', { maxRequests: 1, timeout: 10, readyToTrip: () => true })
      cb.trip()
      await clock.tickAsync(11)
      const controller = new AbortController()
      const gate = deferred()
      const probe = cb.execute(async () => { await gate.promise }, { signal: controller.signal })
      assert.ok((await rejection(cb.execute(ok))) instanceof TooManyRequestsError)
      controller.abort()
      gate.resolve()
      await probe
      assert.equal(cb.state, 'HALF_OPEN')
      assert.equal(await cb.execute(ok), 'ok', 'the permit came back')
      assert.equal(cb.state, 'CLOSED')
    })

    it('isSuccessful decides the rest; a throwing isSuccessful counts a failure', async () => {
      const notFound = Object.assign(new Error('not found'), { name: 'NotFoundError' })
      const cb = new CircuitBreaker('test', { readyToTrip: () => false, isSuccessful: err => err == null || (err as Error).name === 'NotFoundError' })
      assert.equal(await rejection(cb.execute(async () => { throw notFound })), notFound, 'the error is still returned')
      assert.equal(cb.counts().totalSuccesses, 1)
      assert.equal(cb.counts().totalFailures, 0)

      const broken = new CircuitBreaker('test', { readyToTrip: () => false, isSuccessful: () => { throw new Error('bug') } })
      assert.equal(await broken.execute(ok), 'ok')
      assert.equal(broken.counts().totalFailures, 1)
    })

    it('a late result after the state moved on is dropped (generation)', async () => {
      const cb = new CircuitBreaker('test', { maxRequests: 1, timeout: 10, readyToTrip: () => true })
      const gate = deferred()
      const slow = cb.execute(async () => { await gate.promise; throw new Error('late') })
      cb.trip()
      await clock.tickAsync(11)
      assert.equal(cb.state, 'HALF_OPEN')
      gate.resolve()
      await rejection(slow)
      assert.equal(cb.state, 'HALF_OPEN', 'the late failure did not reopen the new generation')
    })
  })

  describe('control and events', () => {
    it('trip() opens with the reason; reset() closes and clears backoff', async () => {
      const cb = new CircuitBreaker('test', { timeout: 1000, jitter: 0 })
      const events: StateChangeEvent[] = []
      cb.onStateChange(e => events.push(e))
      cb.trip('health: unhealthy')
      assert.equal(cb.state, 'OPEN')
      assert.equal(cb.openUntil, Date.now() + 1000)
      assert.equal(cb.backoffLevel, 1)
      cb.reset()
      assert.equal(cb.state, 'CLOSED')
      assert.equal(cb.backoffLevel, 0)
      assert.equal(cb.openUntil, 0)
      assert.deepEqual(events.map(e => [e.name, e.from, e.to, e.reason]), [
        ['test', 'CLOSED', 'OPEN', 'health: unhealthy'],
        ['test', 'OPEN', 'CLOSED', 'reset']
      ])
    })

    it('isolate() holds it OPEN past the timeout until every handle is disposed (dispose is idempotent)', async () => {
      const cb = new CircuitBreaker('test', { timeout: 10 })
      const a = cb.isolate()
      const b = cb.isolate()
      assert.equal(cb.state, 'OPEN')
      assert.equal(cb.openUntil, Infinity)
      await clock.tickAsync(1000)
      a.dispose()
      a.dispose()
      assert.equal(cb.state, 'OPEN', 'b still holds it')
      assert.ok((await rejection(cb.execute(ok))) instanceof CircuitOpenError)
      b.dispose()
      assert.equal(cb.state, 'HALF_OPEN')
      assert.equal(cb.backoffLevel, 0, 'isolation is not a trip')
    })

    it('trip events carry the failure that caused them; disposed listeners stop', async () => {
      const cb = new CircuitBreaker('test', { readyToTrip: () => true, timeout: 10 })
      const events: StateChangeEvent[] = []
      const sub = cb.onStateChange(e => events.push(e))
      const err = new Error('dial failed')
      await rejection(cb.execute(async () => { throw err }))
      assert.equal(events.length, 1)
      assert.equal(events[0].reason, 'failures')
      assert.equal(events[0].cause, err)
      sub.dispose()
      await clock.tickAsync(11)
      assert.equal(cb.state, 'HALF_OPEN')
      assert.equal(events.length, 1)
    })

    it('a throwing listener does not break execute or the state', async () => {
      const cb = new CircuitBreaker('test', { readyToTrip: () => true, onStateChange: () => { throw new Error('user') } })
      cb.onStateChange(() => { throw new Error('listener') })
      const err = await rejection(cb.execute(fail))
      assert.equal(err.message, 'boom')
      assert.equal(cb.state, 'OPEN')
    })

    it('the open duration backs off on repeated trips (fake clock)', async () => {
      const cb = new CircuitBreaker('test', { timeout: 1000, jitter: 0.2, maxRequests: 1, readyToTrip: () => true }, { random: () => 0.25 })
      await rejection(cb.execute(fail))
      assert.equal(cb.openUntil - Date.now(), 1000)
      await clock.tickAsync(1001)
      await rejection(cb.execute(fail))
      assert.equal(cb.openUntil - Date.now(), 2000 * 1.05)
    })

    it('validates its name and config', () => {
      assert.throws(() => new CircuitBreaker(5 as unknown as string), InvalidConfigError)
      assert.throws(() => new CircuitBreaker('x', { timeout: Number.NaN }), /^InvalidConfigError: timeout must be/)
    })

    it('never throws synchronously; a synchronous fn is settled before execute returns', async () => {
      let broken = false
      const cb = new CircuitBreaker('test', { readyToTrip: () => true }, { clock: { now: () => { if (broken) throw new Error('clock'); return 0 } } })
      const pending = cb.execute(() => { throw new Error('sync') })
      assert.equal(cb.state, 'OPEN', 'settled synchronously')
      await rejection(pending)
      broken = true
      const err = await rejection(cb.execute(ok))
      assert.equal(err.message, 'clock')
    })

    it('uses an injected clock instead of Date.now', () => {
      let now = 0
      const cb = new CircuitBreaker('test', { timeout: 100 }, { clock: { now: () => now } })
      cb.trip()
      assert.equal(cb.openUntil, 100)
      now = 101
      assert.equal(cb.state, 'HALF_OPEN')
    })
  })
})
