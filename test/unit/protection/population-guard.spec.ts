/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { seededRandom } from '../../../src/clock.ts'
import { resolveCircuitBreakerConfig } from '../../../src/breaker/config.ts'
import { BreakerCore } from '../../../src/breaker/core.ts'
import { PeerTable } from '../../../src/peers/peer-table.ts'
import {
  PopulationGuard,
  defaultPopulationGuardConfig,
  localSuspicionThreshold,
  maxOpenPeers,
  resolvePopulationGuardConfig
} from '../../../src/protection/population-guard.ts'
import { CircuitState, Outcome } from '../../../src/states.ts'
import type { PeerRecord } from '../../../src/peers/peer-record.ts'

const STATE_CLOSED = CircuitState.CLOSED
const STATE_OPEN = CircuitState.OPEN
const STATE_HALF_OPEN = CircuitState.HALF_OPEN
import type { CircuitBreakerConfig } from '../../../src/breaker/config.ts'
import type { LocalSuspicionChange, PopulationGuardConfig } from '../../../src/protection/population-guard.ts'

const START = 1_000_000
const TIMEOUT = 5_000
const WINDOW = 2_000

/** A peer table, a breaker core and a guard wired as the protection manager wires them */
class Engine {
  now = START
  readonly registry: PeerTable
  readonly core: BreakerCore
  readonly guard: PopulationGuard
  readonly changes: LocalSuspicionChange[] = []

  constructor (guardConfig: PopulationGuardConfig = {}, breakerConfig: CircuitBreakerConfig = {}) {
    const clock = { now: () => this.now }
    this.registry = new PeerTable({ clock, maxPeers: 1000 })
    this.core = new BreakerCore({
      config: resolveCircuitBreakerConfig({ maxRequests: 1, timeout: TIMEOUT, jitter: 0, ...breakerConfig }),
      clock,
      random: seededRandom(1),
      canTrip: (record) => this.guard.canTrip(record, this.now)
    })
    this.registry.attach(this.core)
    this.guard = new PopulationGuard(guardConfig, { registry: this.registry, clock })
    this.core.onTransition(this.guard.recordTransition)
    this.guard.onChange((change) => this.changes.push(change))
  }

  /**
   * Tracks peers 0..n-1 and returns their records. `useful` (default): each did useful work for us
   * a minute ago, so it is counted; a never-useful peer is counted nowhere.
   */
  peers (n: number, useful = true): PeerRecord[] {
    const records: PeerRecord[] = []
    for (let i = 0; i < n; i++) {
      const record = this.registry.get(`peer-${i}`, this.now)!
      if (useful) {
        this.guard.markUseful(record, this.now - 60_000)
      }
      records.push(record)
    }
    return records
  }

  /** One request: admitted, then settled, the guard told first (as the manager must) */
  request (slot: PeerRecord, outcome: Outcome): boolean {
    const admission = this.core.admit(slot, this.now)
    if (!admission.admitted) {
      return false
    }
    this.guard.onOutcome(slot, outcome, this.now)
    admission.settle(outcome, 0, undefined, this.now)
    return true
  }

  state (slot: PeerRecord): CircuitState {
    return this.core.stateOf(slot, this.now)
  }

  /** Circuits OPEN or HALF_OPEN, counted from the core itself */
  openInCore (): number {
    let open = 0
    this.registry.forEach((slot) => {
      if (this.core.stateOf(slot, this.now) !== STATE_CLOSED) {
        open++
      }
    })
    return open
  }
}

describe('PopulationGuard', () => {
  describe('config', () => {
    it('fills in the documented defaults', () => {
      assert.deepEqual(resolvePopulationGuardConfig({}), {
        maxOpenShare: 0.5,
        localFailureShare: 0.5,
        minPeersForLocalSuspicion: 3,
        localFailureWindow: 2_000,
        outlierDetection: false,
        outlierStdevFactor: 1.9,
        outlierMinVolume: 100,
        outlierMinPeers: 5,
        outlierInterval: 10_000
      })
      assert.deepEqual(resolvePopulationGuardConfig({}), defaultPopulationGuardConfig())
    })

    it('rejects bad values, naming the field', () => {
      const bad: Array<[PopulationGuardConfig, RegExp]> = [
        [{ maxOpenShare: 1.5 }, /guard\.maxOpenShare/],
        [{ localFailureShare: -0.1 }, /guard\.localFailureShare/],
        [{ minPeersForLocalSuspicion: 0 }, /guard\.minPeersForLocalSuspicion/],
        [{ minPeersForLocalSuspicion: 2.5 }, /guard\.minPeersForLocalSuspicion/],
        [{ localFailureWindow: 0 }, /guard\.localFailureWindow/],
        [{ outlierDetection: 'yes' as unknown as boolean }, /guard\.outlierDetection/],
        [{ outlierMinPeers: 1 }, /guard\.outlierMinPeers/],
        [{ outlierMinVolume: 0 }, /guard\.outlierMinVolume/],
        [{ outlierInterval: 0 }, /guard\.outlierInterval/]
      ]
      for (const [config, message] of bad) {
        assert.throws(() => resolvePopulationGuardConfig(config, 'guard'), { name: 'InvalidConfigError', message })
      }
      assert.throws(() => resolvePopulationGuardConfig(null as unknown as PopulationGuardConfig, 'guard'), { name: 'InvalidConfigError' })
    })

    it('accepts Infinity to turn local suspicion off', () => {
      const engine = new Engine({ minPeersForLocalSuspicion: Infinity })
      const slots = engine.peers(3)
      for (const slot of slots) {
        engine.guard.onOutcome(slot, Outcome.FAILURE, engine.now)
      }
      assert.equal(engine.guard.failingPeers(engine.now), 3)
      assert.equal(engine.guard.suspected, false)
    })
  })

  describe('max open share', () => {
    it('rounds down to whole peers with a floor of one (the small-cluster table)', () => {
      const table: Array<[number, number]> = [[1, 1], [2, 1], [3, 1], [4, 2], [10, 5]]
      for (const [peers, max] of table) {
        assert.equal(maxOpenPeers(peers, 0.5), max, `${peers} peers`)
      }
      // Envoy's 10 %: one host may always go (always_eject_one_host), and never more than 10 %
      assert.deepEqual([1, 2, 3, 4, 10, 19, 20].map(n => maxOpenPeers(n, 0.1)), [1, 1, 1, 1, 1, 1, 2])
      // binary error must not cost a peer: 0.57 × 100 is 56.99999999999999
      assert.equal(maxOpenPeers(100, 0.57), 57)
      assert.equal(maxOpenPeers(10, 0.3), 3)
      assert.equal(maxOpenPeers(5, 0), 1)
      assert.equal(maxOpenPeers(7, 1), 7)
      assert.equal(maxOpenPeers(0, 0.5), 1)
    })

    for (const [peers, max] of [[1, 1], [2, 1], [3, 1], [4, 2], [10, 5]]) {
      it(`lets ${max} of ${peers} peers trip, and no more`, () => {
        const engine = new Engine()
        const slots = engine.peers(peers)
        const tripped = slots.map(slot => engine.core.trip(slot, engine.now))
        assert.deepEqual(tripped, slots.map((_, i) => i < max))
        assert.equal(engine.openInCore(), max)
        assert.equal(engine.guard.openPeers, max)
        assert.equal(engine.guard.maxOpen, max)
      })
    }

    it('vetoes the ratio rule too: the second of two peers stays CLOSED however it fails', () => {
      const engine = new Engine({}, { readyToTrip: (counts) => counts.totalFailures >= 1 })
      const [a, b] = engine.peers(2)
      engine.request(a, Outcome.FAILURE)
      assert.equal(engine.state(a), STATE_OPEN)
      for (let i = 0; i < 10; i++) {
        engine.now += 1_000
        assert.equal(engine.request(b, Outcome.FAILURE), true)
      }
      assert.equal(engine.state(b), STATE_CLOSED)
    })

    it('counts HALF_OPEN circuits until they close', () => {
      const engine = new Engine()
      const [a, b] = engine.peers(2)
      assert.equal(engine.core.trip(a, engine.now), true)
      engine.now += TIMEOUT + 1
      assert.equal(engine.state(a), STATE_HALF_OPEN)
      assert.equal(engine.core.trip(b, engine.now), false)
      engine.request(a, Outcome.SUCCESS) // maxRequests 1: one probe closes it
      assert.equal(engine.state(a), STATE_CLOSED)
      assert.equal(engine.guard.openPeers, 0)
      assert.equal(engine.core.trip(b, engine.now), true)
    })

    it('counts isolated circuits, and forgets a peer that is deleted', () => {
      const engine = new Engine()
      const [a, b, c, d] = engine.peers(4)
      engine.core.isolate(a, engine.now)
      assert.equal(engine.core.trip(b, engine.now), true)
      assert.equal(engine.core.trip(c, engine.now), false)
      assert.equal(engine.registry.delete('peer-1'), true)
      assert.equal(engine.guard.openPeers, 1)
      // 3 peers now: the cap is 1, and the isolated one holds it
      assert.equal(engine.core.trip(c, engine.now), false)
      engine.core.release(a, engine.now)
      engine.request(a, Outcome.SUCCESS)
      assert.equal(engine.guard.openPeers, 0)
      assert.equal(engine.core.trip(d, engine.now), true)
    })

    it('several trips inside one delivery of transitions cannot overshoot the cap', () => {
      const engine = new Engine()
      const [a, b, c, d] = engine.peers(4)
      const tripped: boolean[] = []
      engine.core.onTransition((slot, _from, to) => {
        if (slot === a && to === STATE_OPEN) {
          // the core is still delivering a's trip: b's is queued behind it when c and d ask
          tripped.push(engine.core.trip(b, engine.now), engine.core.trip(c, engine.now), engine.core.trip(d, engine.now))
        }
      })
      assert.equal(engine.core.trip(a, engine.now), true)
      assert.deepEqual(tripped, [true, false, false])
      assert.equal(engine.openInCore(), 2)
      assert.equal(engine.guard.openPeers, 2)
    })

    it('tripAllowed asks without counting', () => {
      const engine = new Engine()
      const [a, b] = engine.peers(2)
      assert.equal(engine.guard.tripAllowed(a, engine.now), true)
      assert.equal(engine.guard.tripAllowed(b, engine.now), true)
      assert.equal(engine.guard.openPeers, 0)
    })

    it('never holds more than the cap open, and counts exactly what the core holds (property)', () => {
      type Op = { kind: 'add' } | { kind: 'sybil' } | { kind: 'trip' | 'ok' | 'fail', peer: number } | { kind: 'tick', ms: number }
      const opArb: fc.Arbitrary<Op> = fc.oneof(
        { weight: 2, arbitrary: fc.constant<Op>({ kind: 'add' }) },
        { weight: 1, arbitrary: fc.constant<Op>({ kind: 'sybil' }) },
        { weight: 3, arbitrary: fc.record({ kind: fc.constant('trip' as const), peer: fc.nat(30) }) },
        { weight: 3, arbitrary: fc.record({ kind: fc.constant('ok' as const), peer: fc.nat(30) }) },
        { weight: 3, arbitrary: fc.record({ kind: fc.constant('fail' as const), peer: fc.nat(30) }) },
        { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 3 * TIMEOUT }) }) }
      )
      fc.assert(fc.property(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(opArb, { maxLength: 80 }),
        (share, ops) => {
          const engine = new Engine({ maxOpenShare: share }, { readyToTrip: (counts) => counts.consecutiveFailures >= 2 })
          const slots = engine.peers(1)
          for (const op of ops) {
            if (op.kind === 'add' || op.kind === 'sybil') {
              const record = engine.registry.get(`peer-${slots.length}`, engine.now)!
              if (op.kind === 'add') {
                engine.guard.markUseful(record, engine.now - 60_000)
              }
              slots.push(record)
            } else if (op.kind === 'tick') {
              engine.now += op.ms
            } else {
              const slot = slots[op.peer % slots.length]
              if (op.kind === 'trip') {
                engine.core.trip(slot, engine.now)
              } else {
                engine.request(slot, op.kind === 'ok' ? Outcome.SUCCESS : Outcome.FAILURE)
              }
            }
            // never-useful peers open freely and count nowhere; useful ones stay within the cap
            const useful = slots.filter(s => engine.guard.isUseful(s))
            const open = useful.filter(s => engine.state(s) !== STATE_CLOSED).length
            assert.equal(engine.guard.openPeers, open)
            assert.ok(open <= maxOpenPeers(useful.length, share), `${open} open of ${useful.length} useful at share ${share}`)
          }
        }
      ), { numRuns: 200 })
    })
  })

  describe('peers that never did useful work for us (Sybils)', () => {
    it('are not counted for local suspicion, however many fail at once', () => {
      const engine = new Engine()
      const real = engine.peers(3)
      const sybils: PeerRecord[] = []
      for (let i = 0; i < 20; i++) {
        sybils.push(engine.registry.get(`sybil-${i}`, engine.now)!)
      }
      for (const sybil of sybils) {
        engine.guard.onOutcome(sybil, Outcome.FAILURE, engine.now)
      }
      assert.equal(engine.guard.suspected, false)
      assert.equal(engine.guard.failingPeers(engine.now), 0)
      assert.equal(engine.guard.population, 3)
      // a resetting real provider still trips
      for (let i = 0; i < 5; i++) {
        engine.request(real[0], Outcome.FAILURE)
      }
      assert.equal(engine.state(real[0]), STATE_OPEN)
    })

    it('can always be opened and hold no slot of the cap', () => {
      const engine = new Engine({ maxOpenShare: 0.5 })
      const [a, b] = engine.peers(3)
      const sybil = engine.registry.get('sybil', engine.now)!
      assert.equal(engine.core.trip(a, engine.now), true)
      // the cap (1 of 3 useful peers) is full, yet the never-useful peer opens, and takes no slot
      assert.equal(engine.core.trip(sybil, engine.now), true)
      assert.equal(engine.guard.openPeers, 1)
      assert.equal(engine.core.trip(b, engine.now), false)
      // one success makes a peer count
      const late = engine.registry.get('late', engine.now)!
      assert.equal(engine.guard.isUseful(late), false)
      engine.guard.onOutcome(late, Outcome.SUCCESS, engine.now)
      assert.equal(engine.guard.population, 4)
      assert.equal(engine.guard.isUseful(late), true)
    })

    it('suspicion needs failures among established peers, and none of them answering since', () => {
      const engine = new Engine()
      const [a, b, c, d] = engine.peers(4)
      engine.now += 5_000
      engine.guard.onOutcome(a, Outcome.FAILURE, engine.now)
      engine.guard.onOutcome(b, Outcome.FAILURE, engine.now)
      // d answers well after the failures began: our network works
      engine.now += 10
      engine.guard.onOutcome(d, Outcome.SUCCESS, engine.now)
      engine.guard.onOutcome(c, Outcome.FAILURE, engine.now)
      assert.equal(engine.guard.failingPeers(engine.now), 3)
      assert.equal(engine.guard.suspected, false)
      // the failures go on with nobody answering: suspected
      engine.now += 10
      for (const record of [a, b, c]) {
        engine.guard.onOutcome(record, Outcome.FAILURE, engine.now)
      }
      assert.equal(engine.guard.suspected, true)
      // one established peer answering clears it at once
      engine.now += 10
      engine.guard.onOutcome(d, Outcome.SUCCESS, engine.now)
      assert.equal(engine.guard.suspected, false)
    })
  })

  describe('local-network suspicion', () => {
    it('has the documented thresholds', () => {
      const table: Array<[number, number]> = [[1, 3], [3, 3], [4, 3], [5, 3], [6, 4], [10, 6]]
      for (const [peers, need] of table) {
        assert.equal(localSuspicionThreshold(peers, 0.5, 3), need, `${peers} peers`)
      }
    })

    it('is detected on the failure that crosses the line, which therefore cannot trip', () => {
      const engine = new Engine({ maxOpenShare: 1 }, { readyToTrip: () => true })
      const [a, b, c, d] = engine.peers(4)
      engine.request(a, Outcome.FAILURE)
      engine.now += 100
      engine.request(b, Outcome.FAILURE)
      assert.equal(engine.state(a), STATE_OPEN)
      assert.equal(engine.state(b), STATE_OPEN)
      assert.equal(engine.guard.suspected, false)
      assert.deepEqual(engine.changes, [])

      engine.now += 100
      engine.request(c, Outcome.FAILURE) // 3 of 4 failing: more than half, and at least 3
      assert.equal(engine.state(c), STATE_CLOSED)
      assert.deepEqual(engine.changes, [{ suspected: true, failing: 3, population: 4, at: START + 200 }])
      assert.equal(engine.guard.suspected, true)
      assert.equal(engine.guard.canTrip(d, engine.now), false)
      engine.request(d, Outcome.FAILURE)
      assert.equal(engine.state(d), STATE_CLOSED)
      assert.equal(engine.changes.length, 1)
    })

    it('needs at least minPeersForLocalSuspicion failing peers', () => {
      const engine = new Engine()
      const [a, b] = engine.peers(2)
      engine.guard.onOutcome(a, Outcome.FAILURE, engine.now)
      engine.guard.onOutcome(b, Outcome.FAILURE, engine.now)
      assert.equal(engine.guard.failingPeers(engine.now), 2)
      assert.equal(engine.guard.suspected, false)
      const [,, c] = engine.peers(3)
      engine.guard.onOutcome(c, Outcome.FAILURE, engine.now)
      assert.equal(engine.guard.suspected, true)
    })

    it('counts a failure for localFailureWindow only', () => {
      const engine = new Engine()
      const [a, b, c] = engine.peers(4)
      engine.guard.onOutcome(a, Outcome.FAILURE, engine.now)
      engine.guard.onOutcome(b, Outcome.FAILURE, engine.now + 1_000)
      // a's failure is exactly one window old: it no longer counts
      engine.guard.onOutcome(c, Outcome.FAILURE, engine.now + WINDOW)
      assert.equal(engine.guard.failingPeers(engine.now + WINDOW), 2)
      assert.equal(engine.guard.check(engine.now + WINDOW), false)

      const other = new Engine()
      const [x, y, z] = other.peers(4)
      other.guard.onOutcome(x, Outcome.FAILURE, other.now)
      other.guard.onOutcome(y, Outcome.FAILURE, other.now + 1_000)
      other.guard.onOutcome(z, Outcome.FAILURE, other.now + WINDOW - 1)
      assert.equal(other.guard.check(other.now + WINDOW - 1), true)
    })

    it('a repeated failure renews the peer\'s place, a NEUTRAL outcome changes nothing', () => {
      const engine = new Engine()
      const [a, b] = engine.peers(2)
      engine.guard.onOutcome(a, Outcome.FAILURE, START)
      engine.guard.onOutcome(b, Outcome.FAILURE, START + 500)
      engine.guard.onOutcome(a, Outcome.FAILURE, START + 1_000)
      engine.guard.onOutcome(a, Outcome.NEUTRAL, START + 1_100)
      assert.equal(engine.guard.failingPeers(START + 2_499), 2)
      assert.equal(engine.guard.failingPeers(START + 2_500), 1)
      assert.equal(engine.guard.isFailing(a, START + 2_500), true)
      assert.equal(engine.guard.isFailing(b, START + 2_500), false)
      assert.equal(engine.guard.failingPeers(START + 3_000), 0)
    })

    it('clears on the success that takes the share back below the line', () => {
      const engine = new Engine()
      const [a, b, c] = engine.peers(4)
      for (const slot of [a, b, c]) {
        engine.guard.onOutcome(slot, Outcome.FAILURE, engine.now)
      }
      assert.equal(engine.guard.suspected, true)
      engine.now += 300
      engine.guard.onOutcome(b, Outcome.SUCCESS, engine.now)
      assert.equal(engine.guard.suspected, false)
      assert.deepEqual(engine.changes.map(c => [c.suspected, c.failing, c.at]), [[true, 3, START], [false, 2, START + 300]])
    })

    it('clears when the window passes: nextCheckAt is the exact moment, reported at its true time', () => {
      const engine = new Engine()
      const slots = engine.peers(5) // needs 3 failing
      slots.forEach((slot, i) => engine.guard.onOutcome(slot, Outcome.FAILURE, START + i * 100))
      assert.equal(engine.guard.suspected, true)
      // 5 failing, 3 needed: the third expiry (the failure at +200) clears it
      assert.equal(engine.guard.nextCheckAt(), START + 200 + WINDOW)
      assert.equal(engine.guard.check(START + 200 + WINDOW - 1), true)
      assert.equal(engine.guard.nextCheckAt(), START + 200 + WINDOW)
      assert.equal(engine.guard.check(START + 200 + WINDOW), false)
      assert.equal(engine.guard.nextCheckAt(), Infinity)
      assert.deepEqual(engine.changes.map(c => [c.suspected, c.failing, c.at]), [[true, 3, START + 200], [false, 2, START + 200 + WINDOW]])
    })

    it('a late read still reports the clearing at the moment the window passed', () => {
      const engine = new Engine()
      const slots = engine.peers(3)
      slots.forEach((slot, i) => engine.guard.onOutcome(slot, Outcome.FAILURE, START + i * 10))
      engine.guard.onOutcome(slots[0], Outcome.FAILURE, START + 1_000)
      engine.now = START + 60_000
      assert.equal(engine.guard.suspected, false)
      assert.equal(engine.changes[1].at, START + 10 + WINDOW)
      assert.equal(engine.changes[1].failing, 2)
      assert.equal(engine.guard.failingPeers(engine.now), 0)
    })

    it('clears when the population grows past the failing share', () => {
      const engine = new Engine()
      const [a, b, c] = engine.peers(4)
      for (const slot of [a, b, c]) {
        engine.guard.onOutcome(slot, Outcome.FAILURE, engine.now)
      }
      assert.equal(engine.guard.suspected, true)
      engine.now += 10
      engine.peers(6) // 6 peers: 3 failing is not more than half
      assert.equal(engine.guard.suspected, false)
      assert.deepEqual(engine.changes.at(-1), { suspected: false, failing: 3, population: 6, at: START + 10 })
    })

    it('delivers to every listener despite a throwing one, and dispose stops delivery', () => {
      const engine = new Engine()
      const seen: boolean[] = []
      engine.guard.onChange(() => { throw new Error('listener bug') })
      const sub = engine.guard.onChange((c) => seen.push(c.suspected))
      const slots = engine.peers(3)
      for (const slot of slots) {
        engine.guard.onOutcome(slot, Outcome.FAILURE, engine.now)
      }
      sub.dispose()
      engine.guard.onOutcome(slots[0], Outcome.SUCCESS, engine.now)
      assert.deepEqual(seen, [true])
      assert.equal(engine.changes.length, 2)
      engine.guard.close()
      engine.guard.onOutcome(slots[0], Outcome.FAILURE, engine.now)
      assert.equal(engine.guard.suspected, true)
      assert.equal(engine.changes.length, 2)
    })

    it('keeps a failing peer tracked until its failure expires', () => {
      const engine = new Engine()
      const [a, b] = engine.peers(2)
      engine.guard.onOutcome(a, Outcome.FAILURE, engine.now)
      assert.equal(engine.guard.evictable(a, engine.now + WINDOW - 1), false)
      assert.equal(engine.guard.evictable(a, engine.now + WINDOW), true)
      assert.equal(engine.guard.evictable(b, engine.now), true)
      // a forgotten peer leaves the count
      engine.registry.delete('peer-0')
      assert.equal(engine.guard.failingPeers(engine.now), 0)
    })

    it('counts peers that are open or failing once each', () => {
      const engine = new Engine()
      const [a, b] = engine.peers(4)
      engine.guard.onOutcome(a, Outcome.FAILURE, engine.now)
      engine.guard.onOutcome(b, Outcome.FAILURE, engine.now)
      engine.core.trip(a, engine.now)
      assert.equal(engine.guard.unavailablePeers(engine.now), 2)
      engine.now += WINDOW
      assert.equal(engine.guard.unavailablePeers(engine.now), 1)
    })
  })

  describe('outlier detection', () => {
    const INTERVAL = 10_000
    /** Feeds each peer's (successes, failures) into the interval starting at START, successes last */
    function feed (engine: Engine, counts: Array<[number, number]>): PeerRecord[] {
      const slots = engine.peers(counts.length)
      counts.forEach(([ok, fail], i) => {
        for (let j = 0; j < fail; j++) {
          engine.guard.onOutcome(slots[i], Outcome.FAILURE, START + 1)
        }
        for (let j = 0; j < ok; j++) {
          engine.guard.onOutcome(slots[i], Outcome.SUCCESS, START + 2)
        }
      })
      return slots
    }
    /** Nine peers at 99, 98 and 97 %: none of them is below mean − 1.9σ of the nine */
    const healthy: Array<[number, number]> = [[99, 1], [98, 2], [97, 3], [99, 1], [98, 2], [97, 3], [99, 1], [98, 2], [97, 3]]

    it('is off by default', () => {
      const engine = new Engine()
      feed(engine, [...healthy, [50, 50]])
      assert.deepEqual(engine.guard.evaluateOutliers(START + INTERVAL), [])
    })

    it('finds a peer below mean − 1.9σ, once per interval, over the last whole interval', () => {
      const engine = new Engine({ outlierDetection: true })
      const slots = feed(engine, [...healthy, [50, 50]])
      // the interval being counted is not over yet: the one before it held nothing
      assert.deepEqual(engine.guard.evaluateOutliers(START + 5), [])
      assert.deepEqual(engine.guard.evaluateOutliers(START + INTERVAL), [slots[9]])
      assert.deepEqual(engine.guard.evaluateOutliers(START + INTERVAL + 5_000), [])
      // the next interval is evaluated on its own counts, which are empty
      assert.deepEqual(engine.guard.evaluateOutliers(START + 2 * INTERVAL), [])
      // the returned slot trips through the core, which asks the guard again
      assert.equal(engine.core.trip(slots[9], START + 2 * INTERVAL, 'outlier'), true)
    })

    it('ignores peers under the request volume, and needs outlierMinPeers that qualify', () => {
      const engine = new Engine({ outlierDetection: true })
      feed(engine, [...healthy, [49, 50]])
      assert.deepEqual(engine.guard.evaluateOutliers(START + INTERVAL), [])

      const few = new Engine({ outlierDetection: true })
      feed(few, [[99, 1], [98, 2], [99, 1], [50, 50], [90, 9]])
      assert.deepEqual(few.guard.evaluateOutliers(START + INTERVAL), [])
      const five = new Engine({ outlierDetection: true })
      const slots = feed(five, [[99, 1], [98, 2], [99, 1], [50, 50], [99, 1], [97, 3]])
      assert.deepEqual(five.guard.evaluateOutliers(START + INTERVAL), [slots[3]])
    })

    it('ejects nobody while our network is suspected', () => {
      const engine = new Engine({ outlierDetection: true })
      const slots = feed(engine, [...healthy, [50, 50]])
      for (let i = 0; i < 6; i++) {
        engine.guard.onOutcome(slots[i], Outcome.FAILURE, START + INTERVAL - 1)
      }
      assert.equal(engine.guard.check(START + INTERVAL), true)
      assert.deepEqual(engine.guard.evaluateOutliers(START + INTERVAL), [])
    })

    it('returns the worst first, no more than the cap leaves room for', () => {
      // 20 peers, three of them bad: all three are below mean − 1.9σ
      const bad: Array<[number, number]> = [[60, 40], [50, 50], [55, 45]]
      const population = [...healthy, ...healthy, ...bad].slice(-20)
      const wide = new Engine({ outlierDetection: true, maxOpenShare: 0.2 })
      const slots = feed(wide, population)
      assert.equal(population.length, 20)
      assert.deepEqual(wide.guard.evaluateOutliers(START + INTERVAL), [slots[18], slots[19], slots[17]])

      const narrow = new Engine({ outlierDetection: true, maxOpenShare: 0.1 })
      const narrowSlots = feed(narrow, population)
      assert.deepEqual(narrow.guard.evaluateOutliers(START + INTERVAL), [narrowSlots[18], narrowSlots[19]])

      const full = new Engine({ outlierDetection: true, maxOpenShare: 0.1 })
      const fullSlots = feed(full, population)
      full.core.trip(fullSlots[0], START + 3)
      full.core.trip(fullSlots[1], START + 3)
      // 20 peers at 10 %: two may be open, and two are
      assert.deepEqual(full.guard.evaluateOutliers(START + INTERVAL), [])
    })

    it('never ejects with too few qualifying peers, nor past the cap, nor an open peer (property)', () => {
      const peerArb = fc.tuple(fc.integer({ min: 0, max: 150 }), fc.integer({ min: 0, max: 150 }), fc.boolean())
      fc.assert(fc.property(
        fc.array(peerArb, { minLength: 1, maxLength: 16 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 2, max: 8 }),
        fc.double({ min: 0, max: 3, noNaN: true }),
        (peers, share, minPeers, k) => {
          const engine = new Engine({
            outlierDetection: true,
            outlierMinPeers: minPeers,
            outlierStdevFactor: k,
            maxOpenShare: share,
            minPeersForLocalSuspicion: Infinity
          })
          const slots = feed(engine, peers.map(([ok, fail]) => [ok, fail]))
          peers.forEach(([, , open], i) => {
            if (open) {
              engine.guard.recordTransition(slots[i], STATE_CLOSED, STATE_OPEN)
            }
          })
          const out = engine.guard.evaluateOutliers(START + INTERVAL)
          const rates = peers.filter(([ok, fail]) => ok + fail >= 100).map(([ok, fail]) => ok / (ok + fail))
          if (rates.length < minPeers) {
            assert.deepEqual(out, [])
            return
          }
          assert.ok(out.length <= Math.max(0, maxOpenPeers(peers.length, share) - engine.guard.openPeers))
          const mean = rates.reduce((a, b) => a + b, 0) / rates.length
          const sigma = Math.sqrt(rates.reduce((a, r) => a + (r - mean) ** 2, 0) / rates.length)
          let previous = -Infinity
          for (const slot of out) {
            const i = slots.indexOf(slot)
            const [ok, fail, open] = peers[i]
            const rate = ok / (ok + fail)
            assert.equal(open, false)
            assert.ok(ok + fail >= 100)
            assert.ok(rate < mean - k * sigma + 1e-12)
            assert.ok(rate >= previous)
            previous = rate
          }
        }
      ), { numRuns: 300 })
    })

    it('keeps no outlier counts in the records when off', () => {
      const off = new Engine()
      const on = new Engine({ outlierDetection: true })
      const [a] = off.peers(1)
      const [b] = on.peers(1)
      off.request(a, Outcome.FAILURE)
      on.request(b, Outcome.FAILURE)
      assert.equal(a.outliers, undefined)
      assert.deepEqual(b.outliers, { epoch: Math.floor(START / 10_000), ok: 0, fail: 1, prevOk: 0, prevFail: 0 })
    })
  })
})
