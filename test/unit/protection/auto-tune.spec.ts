/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { seededRandom } from '../../../src/clock.ts'
import { resolveCircuitBreakerConfig } from '../../../src/breaker/config.ts'
import { BreakerCore } from '../../../src/breaker/core.ts'
import { PeerTable } from '../../../src/peers/peer-table.ts'
import {
  AutoTune,
  defaultAutoTuneConfig,
  openDurationFor,
  recoveryRampSpeedFor,
  resolveAutoTuneConfig,
  tripFailureRatioFor,
  tripMinRequestsFor
} from '../../../src/protection/auto-tune.ts'
import { PopulationGuard } from '../../../src/protection/population-guard.ts'
import { CircuitState, Outcome } from '../../../src/states.ts'
import type { PeerRecord } from '../../../src/peers/peer-record.ts'

const STATE_CLOSED = CircuitState.CLOSED
const STATE_OPEN = CircuitState.OPEN
import type { Counts } from '../../../src/breaker/config.ts'
import type { AutoTuneConfig } from '../../../src/protection/auto-tune.ts'

const START = 1_000_000
const RATE_WINDOW = 1_000
const TIMEOUT = 5_000
const LOCAL_WINDOW = 2_000

function counts (requests: number, failures: number): Counts {
  return { requests, totalFailures: failures, totalSuccesses: requests - failures, consecutiveFailures: 0, consecutiveSuccesses: 0 }
}

/** The engine wired as the manager wires it: the core's trip policy is the tuner's */
class Engine {
  now = START
  readonly registry: PeerTable
  readonly core: BreakerCore
  readonly guard: PopulationGuard
  readonly tune: AutoTune

  constructor (config: AutoTuneConfig = {}, interval = 60_000) {
    const clock = { now: () => this.now }
    this.registry = new PeerTable({ clock, maxPeers: 1000 })
    this.core = new BreakerCore({
      config: resolveCircuitBreakerConfig({ timeout: TIMEOUT, interval, jitter: 0 }),
      clock,
      random: seededRandom(1),
      canTrip: (record) => this.guard.canTrip(record, this.now),
      policy: { shouldTrip: (c, record, now) => this.tune.shouldTrip(record, c, now) }
    })
    this.registry.attach(this.core)
    this.guard = new PopulationGuard({ maxOpenShare: 1 }, { registry: this.registry, clock })
    this.core.onTransition(this.guard.recordTransition)
    this.tune = new AutoTune(config, { guard: this.guard, core: this.core })
  }

  /** Peers that did useful work for us a minute ago: only such peers count in the guard */
  peers (n: number): PeerRecord[] {
    const records: PeerRecord[] = []
    for (let i = 0; i < n; i++) {
      const record = this.registry.get(`peer-${i}`, this.now)!
      this.guard.markUseful(record, this.now - 60_000)
      records.push(record)
    }
    return records
  }

  /** One request through the whole path, as the manager's settle runs it */
  request (record: PeerRecord, outcome: Outcome): void {
    const admission = this.core.admit(record, this.now)
    assert.ok(admission.admitted, 'admitted')
    this.guard.onOutcome(record, outcome, this.now)
    this.tune.record(record, this.now)
    admission.settle(outcome, 0, undefined, this.now)
  }

  /** `n` successful requests spread over the current rate window */
  traffic (record: PeerRecord, n: number): void {
    for (let i = 0; i < n; i++) {
      this.request(record, Outcome.SUCCESS)
    }
  }
}

describe('AutoTune', () => {
  describe('config', () => {
    it('fills in the documented defaults', () => {
      assert.deepEqual(resolveAutoTuneConfig(), {
        rateWindow: 1_000,
        rateSmoothing: 0.5,
        minTripRequests: 3,
        maxTripRequests: 20,
        minTripFailureRatio: 0.6,
        maxTripFailureRatio: 0.9,
        minRampSpeed: 0.5,
        maxRampSpeed: 2
      })
      assert.deepEqual(resolveAutoTuneConfig(), resolveAutoTuneConfig(defaultAutoTuneConfig()))
      assert.equal('maxTripRequests' in defaultAutoTuneConfig(), false, 'derived from minTripRequests, so not carried')
    })

    it('rejects bad values, naming the field', () => {
      const bad: Array<[AutoTuneConfig, RegExp]> = [
        [{ rateWindow: 0 }, /tune\.rateWindow/],
        [{ rateSmoothing: 0 }, /tune\.rateSmoothing/],
        [{ rateSmoothing: 1.5 }, /tune\.rateSmoothing/],
        [{ minTripRequests: 0 }, /tune\.minTripRequests/],
        [{ minTripRequests: 5, maxTripRequests: 4 }, /tune\.maxTripRequests/],
        [{ minTripFailureRatio: 1.1 }, /tune\.minTripFailureRatio/],
        [{ maxTripFailureRatio: 0.5 }, /tune\.maxTripFailureRatio/],
        [{ minRampSpeed: 0 }, /tune\.minRampSpeed/],
        [{ minRampSpeed: 1.5 }, /tune\.minRampSpeed/],
        [{ maxRampSpeed: 0.9 }, /tune\.maxRampSpeed/]
      ]
      for (const [config, message] of bad) {
        assert.throws(() => resolveAutoTuneConfig(config, 'tune'), { name: 'InvalidConfigError', message })
      }
    })

    it('raises an omitted upper bound to a raised lower bound', () => {
      const config = resolveAutoTuneConfig({ minTripRequests: 30, minTripFailureRatio: 0.95 })
      assert.equal(config.maxTripRequests, 30)
      assert.equal(config.maxTripFailureRatio, 0.95)
    })
  })

  describe('rule 1: trip volume from the peer\'s request rate', () => {
    it('is ceil(requests per window) within [3, 20]', () => {
      const table: Array<[number, number]> = [[0, 3], [1, 3], [2.5, 3], [3, 3], [3.2, 4], [10, 10], [10 + 1e-12, 10], [19.5, 20], [20, 20], [500, 20]]
      for (const [rate, min] of table) {
        assert.equal(tripMinRequestsFor(rate, 3, 20), min, `rate ${rate}`)
      }
    })

    it('tracks the rate as a moving average over whole windows, a burst counting at once', () => {
      const engine = new Engine()
      const [peer] = engine.peers(1)
      assert.equal(engine.tune.requestRate(peer, engine.now), 0)
      assert.equal(engine.tune.tripMinRequests(peer, engine.now), 3)
      // 10 requests in each of six windows
      for (let w = 0; w < 6; w++) {
        engine.now = START + w * RATE_WINDOW
        engine.traffic(peer, 10)
        // the current window counts at once: a burst is not averaged away
        assert.equal(engine.tune.requestRate(peer, engine.now), 10)
      }
      engine.now = START + 6 * RATE_WINDOW
      // 10 × (1 − 0.5^6) after six windows of 10
      assert.equal(engine.tune.requestRate(peer, engine.now), 10 * (1 - 0.5 ** 6))
      assert.equal(engine.tune.tripMinRequests(peer, engine.now), 10)
      engine.traffic(peer, 12)
      assert.equal(engine.tune.tripMinRequests(peer, engine.now), 12)
      engine.traffic(peer, 50)
      assert.equal(engine.tune.tripMinRequests(peer, engine.now), 20)
    })

    it('forgets a quiet spell window by window, back to the lower bound', () => {
      const engine = new Engine()
      const [peer] = engine.peers(1)
      engine.traffic(peer, 16)
      const closed = engine.tune.requestRate(peer, START + RATE_WINDOW)
      assert.equal(closed, 8)
      // each empty window halves it, read lazily with nothing recorded
      assert.equal(engine.tune.requestRate(peer, START + 2 * RATE_WINDOW), 4)
      assert.equal(engine.tune.requestRate(peer, START + 3 * RATE_WINDOW + 999), 2)
      assert.equal(engine.tune.tripMinRequests(peer, START + 2 * RATE_WINDOW), 4)
      assert.equal(engine.tune.tripMinRequests(peer, START + 3 * RATE_WINDOW), 3)
      // recording after the gap folds the same way
      engine.now = START + 3 * RATE_WINDOW
      engine.tune.record(peer, engine.now)
      assert.equal(engine.tune.requestRate(peer, engine.now), 2)
      assert.equal(engine.tune.requestRate(peer, START + 4 * RATE_WINDOW), 1.5)
    })

    it('starts a new peer from nothing', () => {
      const engine = new Engine()
      const [peer] = engine.peers(1)
      engine.traffic(peer, 40)
      engine.registry.delete('peer-0')
      const other = engine.registry.get('someone-else', engine.now)!
      assert.equal(engine.tune.requestRate(other, engine.now), 0)
    })

    it('a quiet peer still trips on 3 requests; a busy one needs about a window of evidence', () => {
      const engine = new Engine()
      const [quiet, busy] = engine.peers(2)
      assert.equal(engine.tune.shouldTrip(quiet, counts(3, 2), engine.now), true)
      assert.equal(engine.tune.shouldTrip(quiet, counts(2, 2), engine.now), false)
      engine.now = START + 5 * RATE_WINDOW
      for (let w = 0; w < 5; w++) {
        engine.now += RATE_WINDOW
        engine.traffic(busy, 30)
      }
      assert.equal(engine.tune.shouldTrip(busy, counts(3, 2), engine.now), false)
      assert.equal(engine.tune.shouldTrip(busy, counts(19, 19), engine.now), false)
      assert.equal(engine.tune.shouldTrip(busy, counts(20, 12), engine.now), true)
      assert.equal(engine.tune.shouldTrip(busy, counts(20, 11), engine.now), false)
      // an untracked peer gets the seed's rule
      assert.equal(engine.tune.shouldTrip(undefined, counts(3, 2), engine.now), true)
      assert.equal(engine.tune.shouldTrip(busy, counts(0, 0), engine.now), false)
    })

    it('drives the core through readyToTrip: 2 failures of 3 trip a quiet peer, not a busy one', () => {
      // separate nodes, so that one peer's failures do not raise the other's ratio (rule 2)
      const quiet = new Engine()
      const [q] = quiet.peers(1)
      quiet.request(q, Outcome.SUCCESS)
      quiet.request(q, Outcome.FAILURE)
      quiet.request(q, Outcome.FAILURE)
      assert.equal(quiet.core.stateOf(q, quiet.now), STATE_OPEN)

      // a 500 ms breaker interval, so the counts start over while the rate window remembers
      const busy = new Engine({}, 500)
      const [b] = busy.peers(1)
      busy.traffic(b, 30)
      busy.now += 600
      busy.request(b, Outcome.SUCCESS)
      busy.request(b, Outcome.FAILURE)
      busy.request(b, Outcome.FAILURE)
      assert.equal(busy.core.stateOf(b, busy.now), STATE_CLOSED)
      assert.equal(busy.core.countsOf(b, busy.now).totalFailures, 2)
      // 19 requests, 12 of them failed: still short of the 20 it needs
      for (let i = 0; i < 16; i++) {
        busy.request(b, i < 6 ? Outcome.SUCCESS : Outcome.FAILURE)
      }
      assert.equal(busy.core.stateOf(b, busy.now), STATE_CLOSED)
      busy.request(b, Outcome.FAILURE)
      assert.equal(busy.core.stateOf(b, busy.now), STATE_OPEN)
    })
  })

  describe('rule 2: trip ratio from the population', () => {
    it('rises from 0.6 to 0.9 as the others\' failing share reaches local suspicion\'s', () => {
      assert.equal(tripFailureRatioFor(0, 0.5, 0.6, 0.9), 0.6)
      assert.ok(Math.abs(tripFailureRatioFor(0.25, 0.5, 0.6, 0.9) - 0.75) < 1e-12)
      assert.equal(tripFailureRatioFor(0.5, 0.5, 0.6, 0.9), 0.9)
      assert.equal(tripFailureRatioFor(1, 0.5, 0.6, 0.9), 0.9)
      assert.equal(tripFailureRatioFor(-1, 0.5, 0.6, 0.9), 0.6)
      assert.equal(tripFailureRatioFor(0, 0, 0.6, 0.9), 0.6)
      assert.equal(tripFailureRatioFor(0.1, 0, 0.6, 0.9), 0.9)
      fc.assert(fc.property(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (a, b) => {
        const [lo, hi] = a < b ? [a, b] : [b, a]
        const rlo = tripFailureRatioFor(lo, 0.5, 0.6, 0.9)
        const rhi = tripFailureRatioFor(hi, 0.5, 0.6, 0.9)
        assert.ok(rlo >= 0.6 && rhi <= 0.9 + 1e-12 && rlo <= rhi)
      }))
    })

    it('reads the other peers\' failures from the guard, leaving the peer itself out', () => {
      const engine = new Engine()
      const [a, b, c] = engine.peers(5)
      engine.request(a, Outcome.FAILURE)
      assert.equal(engine.tune.tripFailureRatio(a, engine.now), 0.6)
      // one of a's four others is failing: a quarter, half of local suspicion's share
      engine.request(b, Outcome.FAILURE)
      assert.ok(Math.abs(engine.tune.tripFailureRatio(a, engine.now) - 0.75) < 1e-12)
      engine.request(c, Outcome.FAILURE)
      assert.equal(engine.tune.tripFailureRatio(a, engine.now), 0.9)
      engine.now += LOCAL_WINDOW
      assert.equal(engine.tune.tripFailureRatio(a, engine.now), 0.6)
      assert.equal(engine.tune.tripFailureRatio(undefined, engine.now), 0.6)
    })

    it('so a peer failing as much as its degraded neighbours is not ejected', () => {
      const engine = new Engine()
      const [a, b, c, d, e, f] = engine.peers(6)
      for (const slot of [b, c]) {
        engine.request(slot, Outcome.SUCCESS)
        engine.request(slot, Outcome.FAILURE)
      }
      // two of a's five others failing: 0.4 / 0.5 → ratio 0.84; a at 2 of 3 (0.67) does not trip
      engine.request(a, Outcome.SUCCESS)
      engine.request(a, Outcome.FAILURE)
      engine.request(a, Outcome.FAILURE)
      assert.equal(engine.core.stateOf(a, engine.now), STATE_CLOSED)
      // with a healthy neighbourhood the same pattern trips
      engine.now += 70_000
      for (const slot of [b, c, d, e, f]) {
        engine.request(slot, Outcome.SUCCESS)
      }
      engine.request(a, Outcome.SUCCESS)
      engine.request(a, Outcome.FAILURE)
      engine.request(a, Outcome.FAILURE)
      assert.equal(engine.core.stateOf(a, engine.now), STATE_OPEN)
    })

    it('uses the lower bound for the only peer', () => {
      const engine = new Engine()
      const [a] = engine.peers(1)
      engine.request(a, Outcome.FAILURE)
      assert.equal(engine.tune.tripFailureRatio(a, engine.now), 0.6)
    })
  })

  describe('rule 3: recovery ramp speed from the population', () => {
    it('goes geometrically from 2× (nobody else available) to 0.5× (everybody)', () => {
      assert.equal(recoveryRampSpeedFor(0, 0.5, 2), 2)
      assert.equal(recoveryRampSpeedFor(1, 0.5, 2), 0.5)
      assert.equal(recoveryRampSpeedFor(0.5, 0.5, 2), 1)
      assert.ok(Math.abs(recoveryRampSpeedFor(0.25, 0.5, 2) - Math.SQRT2) < 1e-12)
      assert.equal(recoveryRampSpeedFor(-3, 0.5, 2), 2)
      assert.equal(recoveryRampSpeedFor(7, 0.5, 2), 0.5)
      fc.assert(fc.property(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (a, b) => {
        const [lo, hi] = a < b ? [a, b] : [b, a]
        const slow = recoveryRampSpeedFor(hi, 0.5, 2)
        const fast = recoveryRampSpeedFor(lo, 0.5, 2)
        assert.ok(slow >= 0.5 - 1e-12 && fast <= 2 + 1e-12 && slow <= fast + 1e-12)
      }))
    })

    it('counts the other peers that are open or failing, each once, never the peer itself', () => {
      const engine = new Engine()
      const [a, b, c, d, e] = engine.peers(5)
      assert.equal(engine.tune.recoveryRampSpeed(a, engine.now), 0.5)
      engine.core.trip(a, engine.now) // itself: no effect
      assert.equal(engine.tune.recoveryRampSpeed(a, engine.now), 0.5)
      // b both open and failing, c failing: 2 of 4 others unavailable
      engine.request(b, Outcome.FAILURE)
      engine.core.trip(b, engine.now)
      engine.request(c, Outcome.FAILURE)
      assert.equal(engine.tune.recoveryRampSpeed(a, engine.now), 1)
      engine.core.trip(d, engine.now)
      engine.core.trip(e, engine.now)
      assert.equal(engine.tune.recoveryRampSpeed(a, engine.now), 2)
      // the failures expire, the circuits stay open
      engine.now += LOCAL_WINDOW
      assert.equal(engine.tune.recoveryRampSpeed(a, engine.now), recoveryRampSpeedFor(1 / 4, 0.5, 2))
    })

    it('is the fastest for the only peer', () => {
      const engine = new Engine()
      const [a] = engine.peers(1)
      assert.equal(engine.tune.recoveryRampSpeed(a, engine.now), 2)
    })
  })

  describe('tuned()', () => {
    it('surfaces the core\'s backoff and open time next to the three rules', () => {
      const engine = new Engine()
      const [a, b] = engine.peers(2)
      engine.traffic(b, 8)
      assert.deepEqual(engine.tune.tuned(a, engine.now), {
        backoffLevel: 0,
        openDuration: TIMEOUT,
        openUntil: 0,
        requestRate: 0,
        tripMinRequests: 3,
        tripFailureRatio: 0.6,
        recoveryRampSpeed: 0.5
      })
      assert.equal(engine.tune.tuned(b, engine.now).tripMinRequests, 8)
      engine.core.trip(a, engine.now)
      let tuned = engine.tune.tuned(a, engine.now)
      assert.equal(tuned.backoffLevel, 1)
      assert.equal(tuned.openUntil, START + TIMEOUT)
      assert.equal(tuned.openDuration, 2 * TIMEOUT)
      // the open duration elapses: HALF_OPEN, a probe fails, it opens for twice as long
      engine.now += TIMEOUT + 1
      engine.request(a, Outcome.FAILURE)
      tuned = engine.tune.tuned(a, engine.now)
      assert.equal(tuned.backoffLevel, 2)
      assert.equal(tuned.openUntil, engine.now + 2 * TIMEOUT)
      assert.equal(tuned.openDuration, 4 * TIMEOUT)
    })

    it('reads the open time as the core computes it', () => {
      const config = resolveCircuitBreakerConfig({ timeout: 1_000, backoffMultiplier: 3, maxTimeout: 20_000 })
      assert.deepEqual([0, 1, 2, 3, 4].map(level => openDurationFor(config, level)), [1_000, 3_000, 9_000, 20_000, 20_000])
    })
  })
})
