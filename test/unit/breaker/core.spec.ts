import assert from 'node:assert/strict'
import { seededRandom } from '../../../src/clock.ts'
import { resolveCircuitBreakerConfig } from '../../../src/breaker/config.ts'
import { BreakerCore, TransitionReason } from '../../../src/breaker/core.ts'
import { REJECTED_HALF_OPEN_FULL, REJECTED_OPEN } from '../../../src/breaker/permit.ts'
import { PeerRecord } from '../../../src/peers/peer-record.ts'
import { PeerTable } from '../../../src/peers/peer-table.ts'
import { Outcome } from '../../../src/states.ts'
import type { CircuitBreakerConfig } from '../../../src/breaker/config.ts'
import type { Admission, Permit } from '../../../src/breaker/permit.ts'
import type { CircuitState } from '../../../src/states.ts'

const START = 1_000_000
const MAX_REQUESTS = 2
const INTERVAL = 1_000
const TIMEOUT = 5_000
const DWELL = 10_000

interface Transition { slot: number, from: CircuitState, to: CircuitState, reason: string }

class Harness {
  now = START
  readonly core: BreakerCore
  readonly transitions: Transition[] = []
  readonly records: PeerRecord[] = []
  /** Flipped by tests to make readyToTrip say yes or no */
  tripNext = true
  allowTrip = true

  constructor (overrides: CircuitBreakerConfig = {}, slots = 4, random: () => number = seededRandom(7)) {
    this.core = new BreakerCore({
      config: resolveCircuitBreakerConfig({
        maxRequests: MAX_REQUESTS,
        interval: INTERVAL,
        timeout: TIMEOUT,
        maxHalfOpenDwell: DWELL,
        jitter: 0,
        readyToTrip: () => this.tripNext,
        ...overrides
      }),
      random,
      canTrip: () => this.allowTrip
    })
    for (let i = 0; i < slots; i++) {
      this.records.push(new PeerRecord(`peer-${i}`))
    }
    this.core.onTransition((record, from, to, reason) => {
      this.transitions.push({ slot: this.records.indexOf(record), from, to, reason })
    })
  }

  /** The record of slot `i` of the harness */
  r (i = 0): PeerRecord {
    return this.records[i]
  }

  state (slot = 0): CircuitState {
    return this.core.stateOf(this.r(slot), this.now)
  }

  acquire (slot = 0): Admission {
    return this.core.admit(this.r(slot), this.now)
  }

  call (outcome: Outcome, slot = 0): Permit {
    const permit = this.acquire(slot)
    assert.ok(permit.admitted, `expected admission, got ${permit.admitted ? '' : permit.reason}`)
    settle(permit, outcome, this.now)
    return permit
  }

  tick (ms: number): void {
    this.now += ms
  }

  lastReason (): string | undefined {
    return this.transitions.at(-1)?.reason
  }

  /** Puts slot 0 in a state through the public operations */
  enter (state: CircuitState | 'ISOLATED'): void {
    if (state === 'OPEN') {
      this.core.trip(this.r(0), this.now)
    } else if (state === 'HALF_OPEN') {
      this.core.trip(this.r(0), this.now)
      this.tick(TIMEOUT + 1)
      assert.equal(this.state(), 'HALF_OPEN')
    } else if (state === 'ISOLATED') {
      this.core.isolate(this.r(0), this.now)
    }
    this.transitions.length = 0
  }
}

/** Settles an admission that must have been a permit */
function settle (admission: Admission, outcome: Outcome, now: number, err?: unknown): void {
  assert.ok(admission.admitted, 'expected a permit')
  admission.settle(outcome, 0, err, now)
}

type Event = (h: Harness) => void

const events: Record<string, Event> = {
  success: h => { h.call(Outcome.SUCCESS) },
  'success x maxRequests': h => { for (let i = 0; i < MAX_REQUESTS; i++) h.call(Outcome.SUCCESS) },
  failure: h => { h.call(Outcome.FAILURE) },
  'failure, readyToTrip false': h => { h.tripNext = false; h.call(Outcome.FAILURE) },
  'failure, canTrip veto': h => { h.allowTrip = false; h.call(Outcome.FAILURE) },
  neutral: h => { h.call(Outcome.NEUTRAL) },
  'time past interval': h => { h.tick(INTERVAL + 1) },
  'time to exactly the open duration': h => { h.tick(TIMEOUT) },
  'time past open duration': h => { h.tick(TIMEOUT + 1) },
  'dwell exceeded, probe in flight': h => { h.acquire(); h.tick(DWELL + 1) },
  'dwell exceeded, nothing in flight': h => { h.tick(DWELL + 1) },
  trip: h => { h.core.trip(h.r(0), h.now) },
  'trip, canTrip veto': h => { h.allowTrip = false; h.core.trip(h.r(0), h.now) },
  isolate: h => { h.core.isolate(h.r(0), h.now) },
  'isolate, time past open duration': h => { h.core.isolate(h.r(0), h.now); h.tick(TIMEOUT * 100) },
  release: h => { h.core.release(h.r(0), h.now) },
  'isolate twice, release once': h => { h.core.isolate(h.r(0), h.now); h.core.isolate(h.r(0), h.now); h.core.release(h.r(0), h.now) },
  'time past open duration, release': h => { h.tick(TIMEOUT + 1); h.core.release(h.r(0), h.now) },
  'release before the open duration ends': h => { h.tick(1); h.core.release(h.r(0), h.now) },
  clear: h => { h.core.clear(h.r(0), h.now) }
}

/** [from, event, to, reason of the last transition (undefined = no transition)] */
const table: Array<[CircuitState | 'ISOLATED', string, CircuitState, string | undefined]> = [
  ['CLOSED', 'success', 'CLOSED', undefined],
  ['CLOSED', 'success x maxRequests', 'CLOSED', undefined],
  ['CLOSED', 'failure', 'OPEN', TransitionReason.FAILURES],
  ['CLOSED', 'failure, readyToTrip false', 'CLOSED', undefined],
  ['CLOSED', 'failure, canTrip veto', 'CLOSED', undefined],
  ['CLOSED', 'neutral', 'CLOSED', undefined],
  ['CLOSED', 'time past interval', 'CLOSED', undefined],
  ['CLOSED', 'time past open duration', 'CLOSED', undefined],
  ['CLOSED', 'dwell exceeded, probe in flight', 'CLOSED', undefined],
  ['CLOSED', 'trip', 'OPEN', TransitionReason.TRIP],
  ['CLOSED', 'trip, canTrip veto', 'CLOSED', undefined],
  ['CLOSED', 'isolate', 'OPEN', TransitionReason.ISOLATE],
  ['CLOSED', 'release', 'CLOSED', undefined],
  ['CLOSED', 'clear', 'CLOSED', undefined],

  ['OPEN', 'time past interval', 'OPEN', undefined],
  ['OPEN', 'time to exactly the open duration', 'OPEN', undefined],
  ['OPEN', 'time past open duration', 'HALF_OPEN', TransitionReason.TIMEOUT],
  ['OPEN', 'dwell exceeded, nothing in flight', 'HALF_OPEN', TransitionReason.TIMEOUT],
  ['OPEN', 'trip', 'OPEN', undefined],
  ['OPEN', 'trip, canTrip veto', 'OPEN', undefined],
  ['OPEN', 'isolate', 'OPEN', undefined],
  ['OPEN', 'isolate, time past open duration', 'OPEN', undefined],
  ['OPEN', 'release', 'OPEN', undefined],
  ['OPEN', 'clear', 'CLOSED', TransitionReason.RESET],

  ['HALF_OPEN', 'success', 'HALF_OPEN', undefined],
  ['HALF_OPEN', 'success x maxRequests', 'CLOSED', TransitionReason.PROBES_SUCCEEDED],
  ['HALF_OPEN', 'failure', 'OPEN', TransitionReason.PROBE_FAILURE],
  ['HALF_OPEN', 'failure, readyToTrip false', 'OPEN', TransitionReason.PROBE_FAILURE],
  ['HALF_OPEN', 'failure, canTrip veto', 'OPEN', TransitionReason.PROBE_FAILURE],
  ['HALF_OPEN', 'neutral', 'HALF_OPEN', undefined],
  ['HALF_OPEN', 'time past interval', 'HALF_OPEN', undefined],
  ['HALF_OPEN', 'time past open duration', 'HALF_OPEN', undefined],
  ['HALF_OPEN', 'dwell exceeded, probe in flight', 'OPEN', TransitionReason.HALF_OPEN_DWELL],
  ['HALF_OPEN', 'dwell exceeded, nothing in flight', 'HALF_OPEN', undefined],
  ['HALF_OPEN', 'trip', 'OPEN', TransitionReason.TRIP],
  ['HALF_OPEN', 'trip, canTrip veto', 'OPEN', TransitionReason.TRIP],
  ['HALF_OPEN', 'isolate', 'OPEN', TransitionReason.ISOLATE],
  ['HALF_OPEN', 'release', 'HALF_OPEN', undefined],
  ['HALF_OPEN', 'clear', 'CLOSED', TransitionReason.RESET],

  ['ISOLATED', 'time past open duration', 'OPEN', undefined],
  ['ISOLATED', 'dwell exceeded, nothing in flight', 'OPEN', undefined],
  ['ISOLATED', 'trip', 'OPEN', undefined],
  ['ISOLATED', 'isolate twice, release once', 'OPEN', undefined],
  ['ISOLATED', 'release', 'HALF_OPEN', TransitionReason.RELEASE],
  ['ISOLATED', 'time past open duration, release', 'HALF_OPEN', TransitionReason.RELEASE],
  ['ISOLATED', 'clear', 'CLOSED', TransitionReason.RESET]
]

describe('BreakerCore', () => {
  describe('state-transition table', () => {
    for (const [from, event, to, reason] of table) {
      it(`${from} + ${event} -> ${to}${reason === undefined ? '' : ` (${reason})`}`, () => {
        const h = new Harness()
        h.enter(from)
        events[event](h)
        assert.equal(h.state(), to)
        assert.equal(h.lastReason(), reason)
        // every transition observed is one of the four gobreaker edges, or an explicit clear
        for (const t of h.transitions) {
          assert.ok(!(t.from === 'CLOSED' && t.to === 'HALF_OPEN'), 'never CLOSED -> HALF_OPEN')
        }
      })
    }

    it('an OPEN circuit rejects with REJECTED_OPEN; a full HALF_OPEN one with REJECTED_HALF_OPEN_FULL', () => {
      const h = new Harness()
      h.enter('OPEN')
      assert.equal(h.acquire(), REJECTED_OPEN)
      h.tick(TIMEOUT + 1)
      assert.ok(h.acquire().admitted)
      assert.ok(h.acquire().admitted)
      assert.equal(h.acquire(), REJECTED_HALF_OPEN_FULL)
      assert.equal(h.core.inFlight(h.r(0)), 2)
    })

    it('release before the open duration ends keeps the trip\'s timeline', () => {
      const h = new Harness()
      h.enter('OPEN')
      const until = h.core.openUntil(h.r(0))
      events['isolate twice, release once'](h)
      h.core.release(h.r(0), h.now)
      assert.equal(h.state(), 'OPEN')
      assert.equal(h.core.openUntil(h.r(0)), until)
      h.now = until + 1
      assert.equal(h.state(), 'HALF_OPEN')
      assert.equal(h.lastReason(), TransitionReason.TIMEOUT)
    })

    it('isolation reads as open until Infinity, and is not a trip (no backoff)', () => {
      const h = new Harness()
      h.core.isolate(h.r(0), h.now)
      assert.equal(h.core.openUntil(h.r(0)), Infinity)
      assert.equal(h.core.isIsolated(h.r(0)), true)
      assert.equal(h.core.backoffLevel(h.r(0), h.now), 0)
      h.core.release(h.r(0), h.now)
      assert.equal(h.core.isIsolated(h.r(0)), false)
      assert.equal(h.core.openUntil(h.r(0)), 0)
    })

    it('the HALF_OPEN quota counts settled probes too (a hard quota, not a concurrency limit)', () => {
      const h = new Harness({ maxRequests: 3 })
      h.enter('HALF_OPEN')
      h.call(Outcome.SUCCESS)
      h.call(Outcome.SUCCESS)
      const third = h.acquire()
      assert.ok(third.admitted)
      assert.equal(h.acquire(), REJECTED_HALF_OPEN_FULL)
      settle(third, Outcome.SUCCESS, h.now)
      assert.equal(h.state(), 'CLOSED')
    })

    it('a success in between resets the HALF_OPEN consecutive run only through a failure', () => {
      const h = new Harness({ maxRequests: 3 })
      h.enter('HALF_OPEN')
      h.call(Outcome.SUCCESS)
      h.call(Outcome.NEUTRAL)
      h.call(Outcome.SUCCESS)
      h.call(Outcome.SUCCESS)
      assert.equal(h.state(), 'CLOSED', 'neutral neither breaks the run nor uses up the quota')
    })
  })

  describe('counts', () => {
    it('follow gobreaker: totals and consecutive runs', () => {
      const h = new Harness({ interval: 0 })
      h.tripNext = false
      h.call(Outcome.SUCCESS)
      h.call(Outcome.SUCCESS)
      h.call(Outcome.SUCCESS)
      h.call(Outcome.FAILURE)
      h.call(Outcome.FAILURE)
      assert.deepEqual(h.core.countsOf(h.r(0), h.now), {
        requests: 5, totalSuccesses: 3, totalFailures: 2, consecutiveSuccesses: 0, consecutiveFailures: 2
      })
    })

    it('include calls in flight; a neutral outcome gives its request back', () => {
      const h = new Harness()
      const a = h.acquire()
      h.acquire()
      assert.equal(h.core.countsOf(h.r(0), h.now).requests, 2)
      settle(a, Outcome.NEUTRAL, h.now)
      assert.deepEqual(h.core.countsOf(h.r(0), h.now), {
        requests: 1, totalSuccesses: 0, totalFailures: 0, consecutiveSuccesses: 0, consecutiveFailures: 0
      })
    })

    it('readyToTrip sees the counts after the failure, and is asked only after failures', () => {
      const seen: number[] = []
      const h = new Harness({ readyToTrip: (c) => { seen.push(c.totalFailures); return true } })
      h.call(Outcome.SUCCESS)
      h.call(Outcome.NEUTRAL)
      assert.deepEqual(seen, [], 'a rule that always says yes does not trip on a success')
      assert.equal(h.state(), 'CLOSED')
      h.call(Outcome.FAILURE)
      assert.deepEqual(seen, [1])
      assert.equal(h.state(), 'OPEN')
    })

    it('reset after a CLOSED window expires, anchored to the first look after expiry', () => {
      const h = new Harness()
      h.tripNext = false
      h.call(Outcome.FAILURE)
      h.tick(INTERVAL)
      assert.equal(h.core.countsOf(h.r(0), h.now).totalFailures, 1, 'the window end itself is inside the window')
      h.tick(1)
      assert.equal(h.core.countsOf(h.r(0), h.now).totalFailures, 0, 'countsOf advances time (seed bug 18)')
      h.call(Outcome.FAILURE)
      h.tick(INTERVAL)
      assert.equal(h.core.countsOf(h.r(0), h.now).totalFailures, 1, 'the new window started at the look, not at the old end')
    })

    it('never reset while CLOSED with interval 0', () => {
      const h = new Harness({ interval: 0 })
      h.tripNext = false
      h.call(Outcome.FAILURE)
      h.tick(1e12)
      assert.equal(h.core.countsOf(h.r(0), h.now).totalFailures, 1)
    })

    it('a throwing readyToTrip does not trip and does not corrupt the counts', () => {
      const h = new Harness({ readyToTrip: () => { throw new Error('bad rule') } })
      h.call(Outcome.FAILURE)
      assert.equal(h.state(), 'CLOSED')
      assert.equal(h.core.countsOf(h.r(0), h.now).totalFailures, 1)
    })
  })

  describe('epochs and permits', () => {
    it('a permit carries its record and the epoch it was given in', () => {
      const h = new Harness()
      const permit = h.acquire(1)
      assert.ok(permit.admitted)
      assert.equal(permit.record, h.r(1))
      assert.equal(permit.epoch, h.r(1).epoch)
    })

    it('drops a late result from before a trip (a CLOSED success cannot close a fresh HALF_OPEN)', () => {
      const h = new Harness({ maxRequests: 1 })
      const late = h.acquire()
      h.core.trip(h.r(0), h.now)
      h.tick(TIMEOUT + 1)
      assert.equal(h.state(), 'HALF_OPEN')
      settle(late, Outcome.SUCCESS, h.now)
      assert.equal(h.state(), 'HALF_OPEN')
      assert.equal(h.core.countsOf(h.r(0), h.now).totalSuccesses, 0)
    })

    it('drops a late failure from before a window reset', () => {
      const h = new Harness()
      const late = h.acquire()
      h.tick(INTERVAL + 1)
      settle(late, Outcome.FAILURE, h.now)
      assert.equal(h.state(), 'CLOSED')
      assert.equal(h.core.countsOf(h.r(0), h.now).totalFailures, 0)
    })

    it('drops a late HALF_OPEN probe result after the circuit reopened', () => {
      const h = new Harness()
      h.enter('HALF_OPEN')
      const a = h.acquire()
      h.call(Outcome.FAILURE)
      h.tick(TIMEOUT * 10)
      assert.equal(h.state(), 'HALF_OPEN')
      settle(a, Outcome.FAILURE, h.now)
      assert.equal(h.state(), 'HALF_OPEN', 'the old probe\'s failure must not reopen the new epoch')
    })

    it('drops results from before a clear, and epochs only move forward', () => {
      const h = new Harness()
      const stale: Admission[] = []
      for (let i = 0; i < 5; i++) stale.push(h.acquire())
      const before = h.r(0).epoch
      h.core.clear(h.r(0), h.now)
      for (const permit of stale) settle(permit, Outcome.FAILURE, h.now)
      assert.deepEqual(h.core.countsOf(h.r(0), h.now), {
        requests: 0, totalSuccesses: 0, totalFailures: 0, consecutiveSuccesses: 0, consecutiveFailures: 0
      })
      assert.equal(h.state(), 'CLOSED')
      assert.ok(h.r(0).epoch > before)
    })

    it('drops results of an evicted peer through a real table', () => {
      let now = START
      const table = new PeerTable({ maxPeers: 1, idleTimeout: 10, clock: { now: () => now } })
      const core = new BreakerCore({ config: resolveCircuitBreakerConfig({ readyToTrip: c => c.consecutiveFailures >= 1 }) })
      table.attach(core)
      const a = table.get('peer-a', now)!
      const permit = core.admit(a, now)
      now += INTERVAL * 100 // the window expired, so A is evictable even with a call in flight
      const b = table.get('peer-b', now)!
      assert.equal(table.find('peer-a'), undefined, 'B took A\'s place')
      assert.equal(a.live, false)
      settle(permit, Outcome.FAILURE, now)
      assert.equal(core.stateOf(a, now), 'CLOSED', 'A\'s late failure is dropped')
      assert.equal(core.stateOf(b, now), 'CLOSED')
    })

    it('a permit settles once', () => {
      const h = new Harness({ readyToTrip: () => false })
      const permit = h.acquire()
      settle(permit, Outcome.FAILURE, h.now)
      settle(permit, Outcome.FAILURE, h.now)
      assert.equal(h.core.countsOf(h.r(0), h.now).totalFailures, 1)
    })
  })

  describe('open-duration backoff', () => {
    function backoffHarness (random: () => number, overrides: CircuitBreakerConfig = {}): Harness {
      return new Harness({ jitter: 0.2, maxTimeout: TIMEOUT * 8, backoffDecay: 60_000, maxHalfOpenDwell: Infinity, ...overrides }, 4, random)
    }

    /** Trips (from CLOSED or HALF_OPEN) and returns the open duration it got */
    function tripAndMeasure (h: Harness): number {
      h.call(Outcome.FAILURE)
      assert.equal(h.state(), 'OPEN')
      return h.core.openUntil(h.r(0)) - h.now
    }

    function toHalfOpen (h: Harness): void {
      h.now = h.core.openUntil(h.r(0)) + 1
      assert.equal(h.state(), 'HALF_OPEN')
    }

    it('first open lasts exactly timeout; then ×2 (+ up to 20 %), ×4, capped at maxTimeout (+ jitter)', () => {
      const h = backoffHarness(seededRandom(42))
      const durations: number[] = []
      durations.push(tripAndMeasure(h))
      for (let i = 0; i < 5; i++) {
        toHalfOpen(h)
        durations.push(tripAndMeasure(h))
      }
      assert.equal(durations[0], TIMEOUT)
      assert.ok(durations[1] >= 2 * TIMEOUT && durations[1] <= 2 * TIMEOUT * 1.2, `second ${durations[1]}`)
      assert.ok(durations[2] >= 4 * TIMEOUT && durations[2] <= 4 * TIMEOUT * 1.2, `third ${durations[2]}`)
      for (const d of durations.slice(3)) {
        assert.ok(d >= 8 * TIMEOUT && d <= 8 * TIMEOUT * 1.2, `capped ${d}`)
      }
    })

    it('jitter is drawn from the injected random source', () => {
      const h = backoffHarness(() => 0.5)
      tripAndMeasure(h)
      toHalfOpen(h)
      assert.equal(tripAndMeasure(h), 2 * TIMEOUT * 1.1)
      const none = backoffHarness(() => 0.999, { jitter: 0 })
      tripAndMeasure(none)
      toHalfOpen(none)
      assert.equal(tripAndMeasure(none), 2 * TIMEOUT)
    })

    it('the level decays by one per backoffDecay spent CLOSED, then the next open is exactly timeout again', () => {
      const h = backoffHarness(() => 0)
      tripAndMeasure(h)
      toHalfOpen(h)
      tripAndMeasure(h)
      toHalfOpen(h)
      assert.equal(h.core.backoffLevel(h.r(0), h.now), 2)
      h.call(Outcome.SUCCESS)
      h.call(Outcome.SUCCESS)
      assert.equal(h.state(), 'CLOSED')
      assert.equal(h.core.backoffLevel(h.r(0), h.now), 2, 'closing does not forgive')
      assert.equal(h.core.evictable(h.r(0), h.now), false, 'a raised level pins the peer')
      h.tick(60_000 - 1)
      assert.equal(h.core.backoffLevel(h.r(0), h.now), 2)
      h.tick(1)
      assert.equal(h.core.backoffLevel(h.r(0), h.now), 1)
      // a trip now (level 1) backs off once
      assert.equal(tripAndMeasure(h), 2 * TIMEOUT)
      toHalfOpen(h)
      h.call(Outcome.SUCCESS)
      h.call(Outcome.SUCCESS)
      h.tick(2 * 60_000)
      assert.equal(h.core.backoffLevel(h.r(0), h.now), 0)
      assert.equal(h.core.evictable(h.r(0), h.now), true)
      assert.equal(tripAndMeasure(h), TIMEOUT)
    })

    it('time spent OPEN or HALF_OPEN does not decay the level', () => {
      const h = backoffHarness(() => 0, { timeout: 100_000, maxTimeout: 1_000_000 })
      tripAndMeasure(h)
      toHalfOpen(h)
      h.tick(10 * 60_000)
      assert.equal(h.core.backoffLevel(h.r(0), h.now), 1)
      assert.equal(tripAndMeasure(h), 200_000)
    })

    it('forced trips back off like any trip; a multiplier of 1 disables growth', () => {
      const h = backoffHarness(() => 0, { backoffMultiplier: 1 })
      h.core.trip(h.r(0), h.now)
      assert.equal(h.core.openUntil(h.r(0)) - h.now, TIMEOUT)
      toHalfOpen(h)
      h.core.trip(h.r(0), h.now)
      assert.equal(h.core.openUntil(h.r(0)) - h.now, TIMEOUT)
    })
  })

  describe('canTrip veto', () => {
    it('is asked with the record before CLOSED -> OPEN only, and may change its mind', () => {
      const asked: PeerRecord[] = []
      let allow = false
      const core = new BreakerCore({
        config: resolveCircuitBreakerConfig({ readyToTrip: () => true, maxRequests: 1, timeout: 10, jitter: 0 }),
        canTrip: (record) => { asked.push(record); return allow }
      })
      const peer = new PeerRecord('peer')
      settle(core.admit(peer, START), Outcome.FAILURE, START)
      assert.equal(core.stateOf(peer, START), 'CLOSED')
      assert.deepEqual(asked, [peer])
      allow = true
      settle(core.admit(peer, START), Outcome.FAILURE, START)
      assert.equal(core.stateOf(peer, START), 'OPEN')
      // HALF_OPEN -> OPEN is not a CLOSED trip: not asked
      allow = false
      assert.equal(core.stateOf(peer, START + 11), 'HALF_OPEN')
      settle(core.admit(peer, START + 11), Outcome.FAILURE, START + 11)
      assert.equal(core.stateOf(peer, START + 11), 'OPEN')
      assert.deepEqual(asked, [peer, peer])
    })

    it('can be installed after construction; a throwing guard does not block the trip', () => {
      const h = new Harness()
      h.core.canTrip = () => { throw new Error('guard broke') }
      assert.equal(h.core.trip(h.r(0), h.now), true)
      assert.equal(h.state(), 'OPEN')
    })

    it('trip() reports whether the circuit is OPEN afterwards', () => {
      const h = new Harness()
      h.allowTrip = false
      assert.equal(h.core.trip(h.r(0), h.now), false)
      h.allowTrip = true
      assert.equal(h.core.trip(h.r(0), h.now, TransitionReason.UNHEALTHY), true)
      assert.equal(h.lastReason(), 'health: unhealthy')
    })
  })

  describe('transition reporting', () => {
    it('listeners see consistent state and run after the update', () => {
      const h = new Harness()
      const seen: Array<[string, string, number]> = []
      h.core.onTransition((record, _from, to) => {
        const counts = h.core.countsOf(record, h.now)
        seen.push([to, h.core.stateOf(record, h.now), counts.requests])
      })
      h.call(Outcome.FAILURE)
      assert.deepEqual(seen, [['OPEN', 'OPEN', 0]])
    })

    it('a listener calling back into the core gets its own transitions delivered after, in order', () => {
      const h = new Harness({ maxRequests: 1 })
      const order: string[] = []
      h.core.onTransition((record, from, to, reason) => {
        order.push(`${from}>${to}:${reason}`)
        if (to === 'HALF_OPEN') {
          // re-entrant: the probe fails from inside the listener
          settle(h.core.admit(record, h.now), Outcome.FAILURE, h.now)
          assert.equal(h.core.stateOf(record, h.now), 'OPEN')
        }
      })
      h.core.trip(h.r(0), h.now)
      h.tick(TIMEOUT + 1)
      assert.equal(h.state(), 'OPEN')
      assert.deepEqual(order, ['CLOSED>OPEN:trip', 'OPEN>HALF_OPEN:timeout', 'HALF_OPEN>OPEN:probe-failure'])
    })

    it('throwing listeners and onStateChange do not corrupt state; onStateChange gets names and strings', () => {
      const calls: Array<[string, string, string]> = []
      const core = new BreakerCore({
        config: resolveCircuitBreakerConfig({
          readyToTrip: () => true,
          onStateChange: (name, from, to) => { calls.push([name, from, to]); throw new Error('user bug') }
        }),
        name: (record) => `breaker-${String(record.peer)}`
      })
      const peer = new PeerRecord('1')
      core.onTransition(() => { throw new Error('listener bug') })
      let other = 0
      const d = core.onTransition(() => { other++ })
      settle(core.admit(peer, START), Outcome.FAILURE, START)
      assert.equal(core.stateOf(peer, START), 'OPEN')
      assert.deepEqual(calls, [['breaker-1', 'CLOSED', 'OPEN']])
      assert.equal(other, 1)
      d.dispose()
      core.clear(peer, START)
      assert.equal(other, 1, 'disposed listener is not called')
      assert.deepEqual(calls.at(-1), ['breaker-1', 'OPEN', 'CLOSED'])
      assert.ok(core.admit(peer, START).admitted, 'still usable')
    })

    it('clear of a CLOSED circuit is silent', () => {
      const h = new Harness()
      h.core.clear(h.r(1), h.now)
      assert.deepEqual(h.transitions, [])
      assert.equal(h.state(1), 'CLOSED')
    })
  })

  describe('evictable', () => {
    it('only a clean CLOSED circuit', () => {
      const h = new Harness()
      assert.equal(h.core.evictable(h.r(0), h.now), true)
      const token = h.acquire()
      assert.equal(h.core.evictable(h.r(0), h.now), false, 'a call in flight')
      settle(token, Outcome.SUCCESS, h.now)
      assert.equal(h.core.evictable(h.r(0), h.now), true)

      h.core.isolate(h.r(0), h.now)
      assert.equal(h.core.evictable(h.r(0), h.now), false, 'isolated')
      h.core.clear(h.r(0), h.now)

      h.core.trip(h.r(0), h.now)
      assert.equal(h.core.evictable(h.r(0), h.now), false, 'OPEN')
      h.tick(TIMEOUT + 1)
      assert.equal(h.core.evictable(h.r(0), h.now), false, 'OPEN due to become HALF_OPEN')
      assert.equal(h.state(), 'HALF_OPEN')
      assert.equal(h.core.evictable(h.r(0), h.now), false, 'HALF_OPEN')
      h.call(Outcome.SUCCESS)
      h.call(Outcome.SUCCESS)
      assert.equal(h.state(), 'CLOSED')
      assert.equal(h.core.evictable(h.r(0), h.now), false, 'backoff level still raised')
    })

    it('a call lost in an expired window does not pin the slot forever', () => {
      const h = new Harness()
      h.acquire()
      assert.equal(h.core.evictable(h.r(0), h.now), false)
      h.tick(INTERVAL + 1)
      assert.equal(h.core.evictable(h.r(0), h.now), true)
    })

    it('does not report transitions (the registry asks mid-update)', () => {
      const h = new Harness()
      h.core.trip(h.r(0), h.now)
      h.transitions.length = 0
      h.tick(TIMEOUT * 10)
      h.core.evictable(h.r(0), h.now)
      assert.deepEqual(h.transitions, [])
    })
  })
})
