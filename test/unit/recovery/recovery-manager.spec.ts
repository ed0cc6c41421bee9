/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import { PeerTable } from '../../../src/peers/peer-table.ts'
import { RecoveryManager } from '../../../src/recovery/recovery-manager.ts'
import { recoveryRate } from '../../../src/recovery/strategies.ts'
import { RecoveryStrategy } from '../../../src/states.ts'
import { FakeClock } from '../helpers.ts'
import type { RecoveryConfig } from '../../../src/recovery/config.ts'
import type { RecoveryFailedEvent, RecoveryManagerOptions } from '../../../src/recovery/recovery-manager.ts'

const PEER = '12D3KooWPeerA'
const OTHER = '12D3KooWPeerB'

describe('RecoveryManager', () => {
  let clock: FakeClock
  let manager: RecoveryManager
  let log: string[]

  function create (config: RecoveryConfig = {}, options: RecoveryManagerOptions = {}): RecoveryManager {
    manager = new RecoveryManager(config, { clock, ...options })
    manager.onRecoveryStart(({ peer }) => log.push(`start ${String(peer)}`))
    manager.onRecoveryComplete(({ peer }) => log.push(`complete ${String(peer)}`))
    manager.onRecoveryFailed(({ peer, reason }) => log.push(`failed ${String(peer)} ${reason}`))
    return manager
  }

  function attempts (peer: string, success: boolean, n: number): void {
    for (let i = 0; i < n; i++) {
      manager.recordRecoveryAttempt(peer, success)
    }
  }

  beforeEach(() => {
    clock = new FakeClock()
    log = []
  })

  afterEach(() => {
    manager?.close()
  })

  it('does not restrict a peer that is not recovering', () => {
    create()
    assert.equal(manager.getRecoveryRate(PEER), 1)
    assert.equal(manager.shouldAllowRequest(PEER), true)
    assert.equal(manager.isRecovering(PEER), false)
    assert.equal(manager.getRecoveryState(PEER), undefined)
    manager.recordRecoveryAttempt(PEER, false)
    assert.equal(manager.registry.size, 0)
  })

  it('starts a recovery at the initial rate and reports it', () => {
    create()
    assert.equal(manager.startRecovery(PEER), true)
    assert.deepEqual(log, [`start ${PEER}`])
    assert.equal(manager.isRecovering(PEER), true)
    assert.equal(manager.getRecoveryRate(PEER), 0.1)
    const state = manager.getRecoveryState(PEER)!
    assert.equal(state.phase, 'RECOVERING')
    assert.equal(state.isRecovering, true)
    assert.equal(state.recoveryStartTime, clock.time)
    assert.equal(state.strategy, 'EXPONENTIAL')
    // a second start is ignored
    assert.equal(manager.startRecovery(PEER), false)
    assert.equal(log.length, 1)
  })

  for (const strategy of [RecoveryStrategy.LINEAR, RecoveryStrategy.STEP, RecoveryStrategy.EXPONENTIAL]) {
    describe(`${strategy}`, () => {
      it('follows the seed rate table as time passes', () => {
        create({ strategy, maxRecoveryTime: Infinity })
        manager.startRecovery(PEER)
        const start = clock.time
        for (const k of [0, 0.5, 1, 2, 5, 9, 10, 20, 24, 25]) {
          clock.time = start + k * 10_000
          assert.equal(manager.getRecoveryRate(PEER), recoveryRate(strategy, 0.1, 0.1, 1, k), `k = ${k}`)
        }
      })

      it('admits the current fraction (±2 %) over 10 000 requests at each step', () => {
        create({ strategy, maxRecoveryTime: Infinity, successThreshold: 65_535 })
        manager.startRecovery(PEER)
        const start = clock.time
        for (const k of [0, 0.5, 1, 2, 3.7, 5, 12, 30]) {
          clock.time = start + k * 10_000
          const rate = manager.getRecoveryRate(PEER)
          let admitted = 0
          for (let i = 0; i < 10_000; i++) {
            if (manager.shouldAllowRequest(PEER)) {
              admitted++
            }
          }
          assert.ok(Math.abs(admitted / 10_000 - rate) <= 0.02, `k = ${k}: admitted ${admitted / 10_000}, rate ${rate}`)
          // the accumulator is tighter than the requirement: off by at most one request
          assert.ok(Math.abs(admitted - rate * 10_000) <= 1, `k = ${k}: admitted ${admitted}, rate ${rate}`)
        }
      })
    })
  }

  it('admits deterministically: every 10th request at rate 0.1, the same pattern every time', () => {
    const patterns: string[] = []
    for (let run = 0; run < 2; run++) {
      create()
      manager.startRecovery(PEER)
      let pattern = ''
      for (let i = 0; i < 30; i++) {
        pattern += manager.shouldAllowRequest(PEER) ? 'x' : '.'
      }
      patterns.push(pattern)
      manager.close()
    }
    assert.equal(patterns[0], '.........x.........x.........x')
    assert.equal(patterns[1], patterns[0])
  })

  it('completes after successThreshold successes in a row', () => {
    create({ successThreshold: 3 })
    manager.startRecovery(PEER)
    attempts(PEER, true, 2)
    manager.recordRecoveryAttempt(PEER, false) // resets the run
    attempts(PEER, true, 2)
    assert.equal(manager.isRecovering(PEER), true)
    assert.equal(manager.getRecoveryState(PEER)!.consecutiveSuccesses, 2)
    manager.recordRecoveryAttempt(PEER, true)
    assert.equal(manager.isRecovering(PEER), false)
    assert.equal(manager.getRecoveryRate(PEER), 1)
    assert.equal(manager.shouldAllowRequest(PEER), true)
    assert.equal(manager.getRecoveryState(PEER)!.phase, 'COMPLETED')
    assert.deepEqual(log, [`start ${PEER}`, `complete ${PEER}`])
    // attempts after the end change nothing
    attempts(PEER, false, 5)
    assert.equal(manager.getRecoveryRate(PEER), 1)
  })

  it('fails after failureThreshold failures in a row and then admits nothing (seed bug 11)', () => {
    create({ failureThreshold: 3 })
    manager.startRecovery(PEER)
    attempts(PEER, false, 2)
    manager.recordRecoveryAttempt(PEER, true) // resets the run
    attempts(PEER, false, 2)
    assert.equal(manager.isRecovering(PEER), true)
    manager.recordRecoveryAttempt(PEER, false)
    assert.deepEqual(log, [`start ${PEER}`, `failed ${PEER} failures`])
    assert.equal(manager.isRecovering(PEER), false)
    assert.equal(manager.getRecoveryRate(PEER), 0)
    for (let i = 0; i < 100; i++) {
      assert.equal(manager.shouldAllowRequest(PEER), false)
    }
    // time alone does not lift the hold
    clock.tick(3_600_000)
    assert.equal(manager.getRecoveryRate(PEER), 0)
    assert.equal(manager.shouldAllowRequest(PEER), false)
    // a new start does
    assert.equal(manager.startRecovery(PEER), true)
    assert.equal(manager.isRecovering(PEER), true)
    assert.equal(manager.getRecoveryRate(PEER), 0.1)
  })

  it('fails a recovery that runs longer than maxRecoveryTime, when it is next read', () => {
    create({ maxRecoveryTime: 60_000 })
    manager.startRecovery(PEER)
    const start = clock.time
    clock.tick(60_000)
    assert.equal(manager.isRecovering(PEER), true)
    clock.tick(1)
    assert.equal(log.length, 1) // nothing runs by itself
    assert.equal(manager.isRecovering(PEER), false)
    assert.deepEqual(log, [`start ${PEER}`, `failed ${PEER} timeout`])
    const state = manager.getRecoveryState(PEER)!
    assert.equal(state.phase, 'FAILED')
    assert.equal(state.recoveryEndTime, start + 60_000)
    assert.equal(manager.getRecoveryRate(PEER), 0)
    assert.equal(manager.getRecoveryStats().failedRecoveries, 1)
  })

  it('fires a timeout found by a stats sweep', () => {
    create({ maxRecoveryTime: 1000 })
    manager.startRecovery(PEER)
    clock.tick(1001)
    const stats = manager.getRecoveryStats()
    assert.equal(stats.failedRecoveries, 1)
    assert.equal(stats.recoveringPeers, 0)
    assert.deepEqual(log, [`start ${PEER}`, `failed ${PEER} timeout`])
  })

  describe('cooldown', () => {
    it('defers a start within the cooldown to its end, instead of dropping it (seed bug 10)', () => {
      create({ successThreshold: 1, cooldownPeriod: 30_000 })
      manager.startRecovery(PEER)
      manager.recordRecoveryAttempt(PEER, true)
      const ended = clock.time
      clock.tick(10_000)
      assert.equal(manager.startRecovery(PEER), true)
      assert.equal(log.length, 2) // start, complete: the new start is not reported yet
      const deferred = manager.getRecoveryState(PEER)!
      assert.equal(deferred.phase, 'DEFERRED')
      assert.equal(deferred.recoveryStartTime, ended + 30_000)
      assert.equal(manager.isRecovering(PEER), false)
      // held at the ramp's starting rate meanwhile
      assert.equal(manager.getRecoveryRate(PEER), 0.1)
      // asking again while deferred changes nothing
      assert.equal(manager.startRecovery(PEER), false)
      // attempts before the start do not count
      manager.recordRecoveryAttempt(PEER, true)
      clock.time = ended + 30_000 - 1
      assert.equal(manager.isRecovering(PEER), false)
      clock.time = ended + 30_000 + 10_000
      assert.equal(manager.isRecovering(PEER), true)
      assert.deepEqual(log.slice(2), [`start ${PEER}`])
      const state = manager.getRecoveryState(PEER)!
      assert.equal(state.recoveryStartTime, ended + 30_000)
      assert.equal(state.consecutiveSuccesses, 0)
      // the ramp counts from the deferred start: one interval in
      assert.equal(manager.getRecoveryRate(PEER), recoveryRate('EXPONENTIAL', 0.1, 0.1, 1, 1))
    })

    it('holds a peer whose recovery failed at 0 until the deferred start', () => {
      create({ failureThreshold: 1, cooldownPeriod: 30_000 })
      manager.startRecovery(PEER)
      manager.recordRecoveryAttempt(PEER, false)
      clock.tick(5000)
      assert.equal(manager.startRecovery(PEER), true)
      assert.equal(manager.getRecoveryState(PEER)!.phase, 'DEFERRED')
      assert.equal(manager.getRecoveryRate(PEER), 0)
      assert.equal(manager.shouldAllowRequest(PEER), false)
      clock.tick(25_000)
      assert.equal(manager.getRecoveryRate(PEER), 0.1)
      assert.deepEqual(log, [`start ${PEER}`, `failed ${PEER} failures`, `start ${PEER}`])
    })

    it('starts at once after the cooldown, and the first recovery never waits', () => {
      create({ successThreshold: 1, cooldownPeriod: 30_000 })
      assert.equal(manager.startRecovery(PEER), true)
      assert.equal(manager.isRecovering(PEER), true)
      manager.recordRecoveryAttempt(PEER, true)
      clock.tick(30_000)
      assert.equal(manager.startRecovery(PEER), true)
      assert.equal(manager.isRecovering(PEER), true)
    })

    it('detects a deferred start that has already timed out: start, then failed', () => {
      create({ successThreshold: 1, cooldownPeriod: 1000, maxRecoveryTime: 1000 })
      manager.startRecovery(PEER)
      manager.recordRecoveryAttempt(PEER, true)
      manager.startRecovery(PEER)
      clock.tick(5000)
      assert.equal(manager.shouldAllowRequest(PEER), false)
      assert.deepEqual(log, [`start ${PEER}`, `complete ${PEER}`, `start ${PEER}`, `failed ${PEER} timeout`])
    })
  })

  describe('cancel', () => {
    it('stops a running recovery without events: no restriction left', () => {
      create()
      manager.startRecovery(PEER)
      assert.equal(manager.cancelRecovery(PEER), true)
      assert.equal(manager.getRecoveryState(PEER)!.phase, 'CANCELLED')
      assert.equal(manager.getRecoveryRate(PEER), 1)
      assert.equal(manager.cancelRecovery(PEER), false)
      assert.deepEqual(log, [`start ${PEER}`])
      const stats = manager.getRecoveryStats()
      assert.equal(stats.completedRecoveries + stats.failedRecoveries, 0)
    })

    it('releases a failed recovery when its circuit is re-tripped (the protection manager flow)', () => {
      create({ failureThreshold: 1 })
      // what the protection manager does: trip the circuit, whose OPEN transition cancels recovery
      manager.onRecoveryFailed(({ peer }) => { manager.cancelRecovery(peer) })
      manager.startRecovery(PEER)
      manager.recordRecoveryAttempt(PEER, false)
      assert.equal(manager.getRecoveryState(PEER)!.phase, 'CANCELLED')
      assert.equal(manager.shouldAllowRequest(PEER), true)
      assert.equal(manager.getRecoveryStats().failedRecoveries, 1)
    })

    it('withdraws a deferred start', () => {
      create({ successThreshold: 1 })
      manager.startRecovery(PEER)
      manager.recordRecoveryAttempt(PEER, true)
      manager.startRecovery(PEER)
      assert.equal(manager.cancelRecovery(PEER), true)
      clock.tick(60_000)
      assert.equal(manager.isRecovering(PEER), false)
      assert.equal(manager.getRecoveryRate(PEER), 1)
      assert.equal(log.length, 2)
    })
  })

  it('counts stats for real (seed bug 7)', () => {
    create({ successThreshold: 1, failureThreshold: 1, strategy: 'LINEAR' })
    assert.deepEqual(manager.getRecoveryStats(), {
      totalPeers: 0,
      recoveringPeers: 0,
      deferredPeers: 0,
      completedRecoveries: 0,
      failedRecoveries: 0,
      averageRecoveryRate: 0
    })
    manager.startRecovery('a')
    manager.startRecovery('b')
    manager.startRecovery('c')
    manager.startRecovery('d')
    manager.recordRecoveryAttempt('a', true)
    manager.recordRecoveryAttempt('b', false)
    clock.tick(10_000) // LINEAR: 0.2 for c and d
    manager.startRecovery('a') // deferred: a's cooldown runs until 30 s after it ended
    const stats = manager.getRecoveryStats()
    assert.equal(stats.totalPeers, 4)
    assert.equal(stats.recoveringPeers, 2)
    assert.equal(stats.deferredPeers, 1)
    assert.equal(stats.completedRecoveries, 1)
    assert.equal(stats.failedRecoveries, 1)
    assert.ok(Math.abs(stats.averageRecoveryRate - 0.2) < 1e-12)
  })

  it('emits after the state has changed, and listeners may call back in', () => {
    create({ successThreshold: 1 })
    const seen: string[] = []
    manager.onRecoveryStart(({ peer }) => seen.push(`start:${String(manager.isRecovering(peer))}`))
    manager.onRecoveryComplete(({ peer }) => {
      seen.push(`complete:${String(manager.isRecovering(peer))}:${manager.getRecoveryRate(peer)}`)
      manager.startRecovery(OTHER)
    })
    manager.onRecoveryFailed(() => { throw new Error('listener bug') })
    manager.startRecovery(PEER)
    manager.recordRecoveryAttempt(PEER, true)
    assert.deepEqual(seen, ['start:true', 'complete:false:1', 'start:true'])
    assert.equal(manager.isRecovering(OTHER), true)
  })

  describe('eviction', () => {
    it('is not evictable while recovering, deferred or cooling down, and says so without side effects', () => {
      create({ successThreshold: 1, cooldownPeriod: 1000, maxRecoveryTime: 5000 })
      const record = manager.registry.get(PEER, clock.time)!
      assert.equal(manager.evictable(record, clock.time), true)
      manager.start(record, clock.time)
      assert.equal(manager.evictable(record, clock.time + 5000), false)
      // timed out (not yet noticed) and cooled down
      assert.equal(manager.evictable(record, clock.time + 5999), false)
      assert.equal(manager.evictable(record, clock.time + 6000), true)
      assert.equal(log.length, 1) // asking noticed nothing
      manager.record(record, clock.time, true)
      assert.equal(manager.evictable(record, clock.time + 999), false)
      assert.equal(manager.evictable(record, clock.time + 1000), true)
      manager.start(record, clock.time + 10) // deferred to +1000
      assert.equal(manager.evictable(record, clock.time + 1000), false)
      assert.equal(manager.evictable(record, clock.time + 1000 + 5000 + 1000), true)
    })

    it('lets its own registry forget finished recoveries idle for 2 x maxRecoveryTime', () => {
      create({ successThreshold: 1, maxRecoveryTime: 1000, cooldownPeriod: 1500 })
      manager.startRecovery(PEER)
      manager.recordRecoveryAttempt(PEER, true)
      manager.startRecovery(OTHER)
      clock.tick(2001)
      // both idle; OTHER timed out at +1000 and cools down until +2500
      assert.equal(manager.prune(), 1)
      assert.equal(manager.registry.find(PEER), undefined)
      clock.tick(30_000)
      assert.equal(manager.prune(), 1)
      assert.equal(manager.registry.size, 0)
    })
  })

  it('removes a peer and closes', () => {
    create()
    manager.startRecovery(PEER)
    assert.equal(manager.removePeer(PEER), true)
    assert.equal(manager.isRecovering(PEER), false)
    assert.equal(manager.removePeer(PEER), false)
    manager.startRecovery(OTHER)
    manager.close()
    assert.equal(manager.shouldAllowRequest(OTHER), true)
    assert.equal(manager.getRecoveryRate(OTHER), 1)
    assert.equal(manager.startRecovery(OTHER), false)
    assert.equal(manager.getRecoveryState(OTHER), undefined)
    assert.equal(log.length, 2)
    manager.close()
  })

  describe('shared table and record-level API', () => {
    it('works by record with the table clock, and treats no record as unrestricted', () => {
      const registry = new PeerTable({ clock })
      create({ strategy: 'STEP', successThreshold: 2 }, { registry })
      const record = registry.get(PEER, clock.time)!
      assert.equal(manager.allow(undefined, clock.time), true)
      assert.equal(manager.rate(undefined, clock.time), 1)
      assert.equal(manager.recovering(undefined, clock.time), false)
      assert.equal(manager.start(undefined, clock.time), false)
      assert.equal(manager.allow(record, clock.time), true)
      assert.equal(manager.start(record, clock.time), true)
      assert.equal(manager.recovering(record, clock.time), true)
      assert.equal(manager.rate(record, clock.time + 15_000), 0.2)
      let admitted = 0
      for (let i = 0; i < 100; i++) {
        admitted += manager.allow(record, clock.time + 15_000) ? 1 : 0
      }
      assert.equal(admitted, 20)
      manager.record(record, clock.time, true)
      manager.record(record, clock.time, true)
      assert.equal(manager.recovering(record, clock.time), false)
      assert.deepEqual(log, [`start ${PEER}`, `complete ${PEER}`])
    })

    it('clears only its own part of the record on removePeer and close', () => {
      const registry = new PeerTable({ clock })
      create({}, { registry })
      const record = registry.get(PEER, clock.time)!
      manager.start(record, clock.time)
      assert.equal(manager.removePeer(PEER), true)
      assert.equal(registry.find(PEER), record)
      assert.equal(manager.recovering(record, clock.time), false)
      manager.start(record, clock.time)
      manager.close()
      assert.equal(registry.find(PEER), record)
      assert.equal(manager.prune(), 0)
    })

    it('blocks the shared table from evicting a recovering peer', () => {
      const registry = new PeerTable({ clock, maxPeers: 1, idleTimeout: 10 })
      create({}, { registry })
      manager.startRecovery(PEER)
      clock.tick(100)
      assert.equal(registry.get(OTHER, clock.time), undefined)
      assert.equal(manager.isRecovering(PEER), true)
    })

    it('fires a failure found lazily by allow at the moment it is found', () => {
      create({ maxRecoveryTime: 1000 })
      const failures: RecoveryFailedEvent[] = []
      manager.onRecoveryFailed(event => failures.push(event))
      const record = manager.registry.get(PEER, clock.time)!
      manager.start(record, clock.time)
      assert.equal(failures.length, 0)
      assert.equal(manager.allow(record, clock.time + 1001), false)
      assert.deepEqual(failures, [{ peer: PEER, reason: 'timeout' }])
    })
  })

})
