/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import { HealthMonitor } from '../../../src/health/health-monitor.ts'
import { PeerTable } from '../../../src/peers/peer-table.ts'
import { HealthStatus, Outcome } from '../../../src/states.ts'
import type { HealthMonitorConfig } from '../../../src/health/config.ts'
import { FakeClock } from '../helpers.ts'
import type { HealthMonitorOptions, HealthStatusChange } from '../../../src/health/health-monitor.ts'

const PEER = '12D3KooWPeerA'
const OTHER = '12D3KooWPeerB'
const THIRD = '12D3KooWPeerC'

function abortError (): Error {
  const err = new Error('aborted')
  err.name = 'AbortError'
  return err
}

describe('HealthMonitor', () => {
  let clock: FakeClock
  let monitor: HealthMonitor

  function create (config: HealthMonitorConfig = {}, options: HealthMonitorOptions = {}): HealthMonitor {
    monitor = new HealthMonitor(config, { clock, ...options })
    return monitor
  }

  function record (peer: string, successes: number, failures: number, responseTime = 10): void {
    for (let i = 0; i < successes; i++) {
      monitor.recordRequest(peer, responseTime)
    }
    for (let i = 0; i < failures; i++) {
      monitor.recordRequest(peer, responseTime, new Error('boom'))
    }
  }

  beforeEach(() => {
    // a window bucket starts exactly here (a multiple of the 60 s default window)
    clock = new FakeClock(60_000 * 1000)
  })

  afterEach(() => {
    monitor?.close()
  })

  describe('seed cases', () => {
    it('records successful requests', () => {
      create()
      record(PEER, 5, 0, 50)
      const health = monitor.getHealth(PEER)
      assert.ok(health != null)
      assert.equal(health.peer, PEER)
      assert.equal(health.totalRequests, 5)
      assert.equal(health.errorCount, 0)
      assert.equal(health.successRate, 1)
      assert.equal(health.lastResponseTime, 50)
      assert.equal(health.lastSeen, clock.time)
      assert.equal(health.status, HealthStatus.HEALTHY)
      assert.equal(monitor.isHealthy(PEER), true)
    })

    it('records failed requests with counters and the last error', () => {
      create()
      const err = new Error('network timeout')
      record(PEER, 1, 0)
      monitor.recordRequest(PEER, 100, err)
      const health = monitor.getHealth(PEER)!
      assert.equal(health.totalRequests, 2)
      assert.equal(health.errorCount, 1)
      assert.equal(health.consecutiveErrors, 1)
      assert.equal(health.lastError, err)
      assert.equal(health.successRate, 0.5)
      monitor.recordRequest(PEER, 100)
      assert.equal(monitor.getHealth(PEER)!.lastError, undefined)
    })

    it('moves HEALTHY -> DEGRADED -> UNHEALTHY with thresholds 0.9 / 0.7', () => {
      create({ healthyThreshold: 0.9, degradedThreshold: 0.7, maxConsecutiveErrors: 3 })
      record(PEER, 10, 0)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.HEALTHY)
      record(PEER, 0, 2)
      assert.equal(monitor.getHealth(PEER)!.successRate, 10 / 12)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.DEGRADED)
      record(PEER, 0, 8)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.UNHEALTHY)
    })

    it('is UNHEALTHY after maxConsecutiveErrors errors, and one success resets the run', () => {
      create({ maxConsecutiveErrors: 3, degradedThreshold: 0, healthyThreshold: 0 })
      record(PEER, 20, 2)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.HEALTHY)
      record(PEER, 0, 1)
      assert.equal(monitor.getHealth(PEER)!.consecutiveErrors, 3)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.UNHEALTHY)
      record(PEER, 1, 0)
      assert.equal(monitor.getHealth(PEER)!.consecutiveErrors, 0)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.HEALTHY)
    })

    it('is DEGRADED when responses are slower than maxResponseTime', () => {
      create({ maxResponseTime: 100 })
      record(PEER, 5, 0, 200)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.DEGRADED)
    })

    it('returns every peer from getAllHealth', () => {
      create()
      record(PEER, 3, 0)
      record(OTHER, 2, 1)
      record(THIRD, 1, 0)
      const all = monitor.getAllHealth()
      assert.deepEqual([...all.keys()].sort(), [PEER, OTHER, THIRD].sort())
      assert.equal(all.get(OTHER)!.errorCount, 1)
      assert.equal(all.get(THIRD)!.status, HealthStatus.UNKNOWN)
    })

    it('counts peers by status in getHealthStats', () => {
      create()
      record(PEER, 10, 0)
      record(OTHER, 8, 2)
      record(THIRD, 3, 7)
      const stats = monitor.getHealthStats()
      assert.equal(stats.totalPeers, 3)
      assert.equal(stats.healthyPeers, 1)
      assert.equal(stats.degradedPeers, 1)
      assert.equal(stats.unhealthyPeers, 1)
      assert.equal(stats.unknownPeers, 0)
      assert.ok(Math.abs(stats.averageSuccessRate - (1.0 + 0.8 + 0.3) / 3) < 1e-12)
      assert.equal(stats.averageResponseTime, 10)
    })

    it('reports status changes to listeners: UNKNOWN -> HEALTHY -> DEGRADED -> UNHEALTHY', () => {
      create({ healthyThreshold: 0.9, degradedThreshold: 0.7, maxConsecutiveErrors: 3 })
      const changes: HealthStatusChange[] = []
      monitor.onStatusChange(change => changes.push(change))
      record(PEER, 2, 0)
      assert.equal(changes.length, 0)
      record(PEER, 1, 0)
      assert.deepEqual(changes, [{ peer: PEER, from: 'UNKNOWN', to: 'HEALTHY' }])
      record(PEER, 7, 1) // 10/11 is still HEALTHY
      assert.equal(changes.length, 1)
      record(PEER, 0, 1) // 10/12
      record(PEER, 0, 1) // 3rd error in a row
      assert.deepEqual(changes.slice(1), [
        { peer: PEER, from: 'HEALTHY', to: 'DEGRADED' },
        { peer: PEER, from: 'DEGRADED', to: 'UNHEALTHY' }
      ])
    })

    it('drops peers not seen for longer than maxAge', () => {
      create({ maxAge: 50 })
      record(PEER, 3, 0)
      clock.tick(50)
      assert.ok(monitor.getHealth(PEER) != null)
      clock.tick(1)
      assert.equal(monitor.getHealth(PEER), undefined)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.UNKNOWN)
      assert.equal(monitor.getAllHealth().size, 0)
      assert.equal(monitor.getHealthStats().totalPeers, 0)
      assert.equal(monitor.registry.size, 1)
      assert.equal(monitor.prune(), 1)
      assert.equal(monitor.registry.size, 0)
    })
  })

  describe('status order and thresholds', () => {
    it('is UNKNOWN below minSamples (configurable)', () => {
      create({ minSamples: 5 })
      record(PEER, 4, 0)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.UNKNOWN)
      record(PEER, 1, 0)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.HEALTHY)
      assert.equal(monitor.getHealthStatus('never-seen'), HealthStatus.UNKNOWN)
      assert.equal(monitor.getHealth('never-seen'), undefined)
    })

    it('checks the success rate before latency: failing and slow is UNHEALTHY (seed bug 19)', () => {
      create({ maxResponseTime: 100, maxConsecutiveErrors: 100 })
      record(PEER, 1, 9, 500)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.UNHEALTHY)
    })

    it('treats both thresholds as inclusive', () => {
      create()
      record(PEER, 8, 2) // exactly 0.80
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.DEGRADED)
      record(OTHER, 19, 1) // exactly 0.95
      assert.equal(monitor.getHealthStatus(OTHER), HealthStatus.HEALTHY)
      record(THIRD, 7, 2)
      record(THIRD, 1, 0) // 8 / 10 again, after errors
      assert.equal(monitor.getHealthStatus(THIRD), HealthStatus.DEGRADED)
      monitor.recordRequest(THIRD, 10, new Error('x')) // 8 / 11 < 0.8
      assert.equal(monitor.getHealthStatus(THIRD), HealthStatus.UNHEALTHY)
    })

    it('uses the p95 over the window, not the last sample: 5 % slow is fine, more is DEGRADED', () => {
      create({ maxResponseTime: 100 })
      record(PEER, 19, 0, 10)
      record(PEER, 1, 0, 5000) // 1 of 20 slow: p95 is still fast
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.HEALTHY)
      record(PEER, 1, 0, 5000) // 2 of 21 slow
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.DEGRADED)
      record(PEER, 1, 0, 10) // the last sample is fast, the p95 is not
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.DEGRADED)
      assert.ok(monitor.getHealth(PEER)!.p95ResponseTime > 100)
      record(PEER, 20, 0, 10) // 2 of 42 slow
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.HEALTHY)
    })

    it('exactly maxResponseTime is not slow (strict, as in the seed)', () => {
      create({ maxResponseTime: 100 })
      record(PEER, 5, 0, 100)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.HEALTHY)
    })

    it('reports a real p95 and mean, not a running max or the last sample', () => {
      create()
      for (let i = 1; i <= 100; i++) {
        monitor.recordRequest(PEER, i === 5 ? 30_000 : 100)
      }
      const health = monitor.getHealth(PEER)!
      assert.ok(health.p95ResponseTime >= 90 && health.p95ResponseTime <= 142, `p95 ${health.p95ResponseTime}`)
      assert.equal(health.lastResponseTime, 100)
      // the outlier was averaged in exactly, then decayed by 0.9 per later response
      assert.ok(health.meanResponseTime > 100 && health.meanResponseTime < 101, `mean ${health.meanResponseTime}`)
    })

    it('takes the exact mean of the first samples', () => {
      create()
      monitor.recordRequest(PEER, 10)
      monitor.recordRequest(PEER, 20)
      monitor.recordRequest(PEER, 60)
      assert.equal(monitor.getHealth(PEER)!.meanResponseTime, 30)
    })

    it('keeps a run of errors UNHEALTHY even when the window is thin', () => {
      create({ maxConsecutiveErrors: 3 })
      record(PEER, 3, 0)
      for (let i = 0; i < 3; i++) {
        clock.tick(200_000)
        monitor.recordRequest(PEER, 10, new Error('sparse'))
      }
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.UNHEALTHY)
    })

    it('clamps bad response times', () => {
      create()
      monitor.recordRequest(PEER, -5)
      monitor.recordRequest(PEER, Number.NaN)
      monitor.recordRequest(PEER, Infinity)
      const health = monitor.getHealth(PEER)!
      assert.equal(health.totalRequests, 3)
      assert.ok(Number.isFinite(health.meanResponseTime))
      assert.ok(Number.isFinite(health.p95ResponseTime))
    })
  })

  describe('sliding window', () => {
    it('forgets old failures once they leave the window', () => {
      create({ window: 60_000, maxConsecutiveErrors: 100 })
      record(PEER, 0, 10)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.UNHEALTHY)
      clock.tick(120_000)
      record(PEER, 3, 0)
      const health = monitor.getHealth(PEER)!
      assert.equal(health.successRate, 1)
      assert.equal(health.errorCount, 10) // lifetime counters are kept
      assert.equal(health.status, HealthStatus.HEALTHY)
    })

    it('weights the previous bucket by its overlap with the window', () => {
      create({ window: 1000, maxConsecutiveErrors: 100 })
      record(PEER, 0, 4) // bucket [0, 1000) of the window grid
      clock.tick(1500) // half of the previous bucket is still in the window
      record(PEER, 4, 0)
      assert.ok(Math.abs(monitor.getHealth(PEER)!.successRate - 4 / (4 * 0.5 + 4)) < 1e-12)
      clock.tick(250) // a quarter left
      assert.ok(Math.abs(monitor.getHealth(PEER)!.successRate - 4 / (4 * 0.25 + 4)) < 1e-12)
      clock.tick(250) // the old failures are out
      assert.equal(monitor.getHealth(PEER)!.successRate, 1)
    })

    it('evicts every elapsed bucket after an idle gap, also on read', () => {
      create({ window: 1000, maxConsecutiveErrors: 100 })
      record(PEER, 2, 8)
      clock.tick(5000)
      // nothing recent: UNKNOWN, and the rate falls back to the lifetime ratio
      const idle = monitor.getHealth(PEER)!
      assert.equal(idle.status, HealthStatus.UNKNOWN)
      assert.equal(idle.successRate, 0.2)
      record(PEER, 3, 0)
      assert.equal(monitor.getHealth(PEER)!.successRate, 1)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.HEALTHY)
    })

    it('is not fooled by a clock that steps back', () => {
      create({ window: 1000 })
      record(PEER, 3, 0)
      clock.tick(-5000)
      record(PEER, 3, 0)
      assert.equal(monitor.getHealth(PEER)!.totalRequests, 6)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.HEALTHY)
    })

    it('keeps the ratio when a bucket counter would overflow', () => {
      create({ maxConsecutiveErrors: 100 })
      const record = monitor.registry.get(PEER, clock.time)!
      for (let i = 0; i < 70_000; i++) {
        monitor.record(record, clock.time, 10, i % 10 === 0 ? Outcome.FAILURE : Outcome.SUCCESS)
      }
      const health = monitor.getHealth(PEER)!
      assert.equal(health.totalRequests, 70_000)
      assert.ok(Math.abs(health.successRate - 0.9) < 0.001, `rate ${health.successRate}`)
      assert.equal(health.status, HealthStatus.DEGRADED)
    })
  })

  describe('events', () => {
    it('fires after the state is updated, and listeners may call back in', () => {
      create()
      const seen: string[] = []
      monitor.onStatusChange(({ peer, to }) => {
        seen.push(`${to}:${monitor.getHealthStatus(peer)}:${monitor.getHealth(peer)!.totalRequests}`)
        if (to === HealthStatus.HEALTHY) {
          monitor.recordRequest(OTHER, 10) // re-entrant write
        }
      })
      record(PEER, 3, 0)
      assert.deepEqual(seen, ['HEALTHY:HEALTHY:3'])
      assert.equal(monitor.getHealth(OTHER)!.totalRequests, 1)
    })

    it('keeps going when a listener throws, and stops calling a disposed listener', () => {
      create()
      const changes: HealthStatusChange[] = []
      monitor.onStatusChange(() => { throw new Error('listener bug') })
      const subscription = monitor.onStatusChange(change => changes.push(change))
      record(PEER, 3, 0)
      assert.equal(changes.length, 1)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.HEALTHY)
      subscription.dispose()
      record(PEER, 0, 5)
      assert.equal(changes.length, 1)
      assert.equal(monitor.getHealthStatus(PEER), HealthStatus.UNHEALTHY)
    })

    it('reports a change that happened while idle with the next request', () => {
      create({ window: 1000 })
      const changes: HealthStatusChange[] = []
      monitor.onStatusChange(change => changes.push(change))
      record(PEER, 3, 0)
      clock.tick(10_000)
      record(PEER, 1, 0)
      assert.deepEqual(changes.map(c => `${c.from}>${c.to}`), ['UNKNOWN>HEALTHY', 'HEALTHY>UNKNOWN'])
    })

    it('chains events across a stale reset', () => {
      create({ maxAge: 1000, maxConsecutiveErrors: 100 })
      const changes: HealthStatusChange[] = []
      monitor.onStatusChange(change => changes.push(change))
      record(PEER, 3, 0)
      clock.tick(2000)
      record(PEER, 1, 0)
      assert.equal(monitor.getHealth(PEER)!.totalRequests, 1)
      assert.deepEqual(changes.map(c => `${c.from}>${c.to}`), ['UNKNOWN>HEALTHY', 'HEALTHY>UNKNOWN'])
    })
  })

  describe('lifecycle', () => {
    it('ignores aborted requests', () => {
      create()
      monitor.recordRequest(PEER, 10, abortError())
      assert.equal(monitor.getHealth(PEER), undefined)
      assert.equal(monitor.registry.size, 0)
      record(PEER, 3, 0)
      monitor.recordRequest(PEER, 10, abortError())
      assert.equal(monitor.getHealth(PEER)!.totalRequests, 3)
    })

    it('has no NaN in stats with no peers', () => {
      create()
      assert.deepEqual(monitor.getHealthStats(), {
        totalPeers: 0,
        healthyPeers: 0,
        degradedPeers: 0,
        unhealthyPeers: 0,
        unknownPeers: 0,
        averageSuccessRate: 0,
        averageResponseTime: 0
      })
    })

    it('lets its own registry forget stale peers lazily when new peers arrive', () => {
      create({ maxAge: 1000 })
      for (let i = 0; i < 10; i++) {
        record(`old-${i}`, 1, 0)
      }
      clock.tick(1001)
      for (let i = 0; i < 10; i++) {
        record(`new-${i}`, 1, 0)
      }
      assert.equal(monitor.registry.size, 10)
    })

    it('removes a peer', () => {
      create()
      record(PEER, 3, 0)
      assert.equal(monitor.removePeer(PEER), true)
      assert.equal(monitor.getHealth(PEER), undefined)
      assert.equal(monitor.registry.size, 0)
      assert.equal(monitor.removePeer(PEER), false)
    })

    it('stops recording and forgets everything on close', () => {
      create()
      const changes: HealthStatusChange[] = []
      monitor.onStatusChange(change => changes.push(change))
      record(PEER, 2, 0)
      monitor.close()
      record(PEER, 5, 0)
      assert.equal(monitor.getHealth(PEER), undefined)
      assert.equal(changes.length, 0)
      monitor.close()
    })

    it('accepts a PeerId-like object and reports it back as given', () => {
      create()
      const peerId = { toString: () => PEER }
      record(PEER, 1, 0)
      monitor.recordRequest(peerId as unknown as string, 10)
      assert.equal(monitor.getHealth(peerId as unknown as string)!.totalRequests, 2)
    })
  })

  describe('shared table and record-level API', () => {
    it('records and reads by record, using the table clock', () => {
      const registry = new PeerTable({ clock })
      create({}, { registry })
      const record = registry.get(PEER, clock.time)!
      for (let i = 0; i < 3; i++) {
        monitor.record(record, clock.time, 20, Outcome.SUCCESS)
      }
      monitor.record(record, clock.time, 20, Outcome.NEUTRAL)
      assert.equal(monitor.status(record, clock.time), HealthStatus.HEALTHY)
      assert.equal(monitor.status(undefined, clock.time), HealthStatus.UNKNOWN)
      assert.equal(monitor.getHealth(PEER)!.totalRequests, 3)
      const err = new Error('bad block')
      monitor.record(record, clock.time, 20, Outcome.FAILURE, err)
      assert.equal(monitor.getHealth(PEER)!.lastError, err)
    })

    it('clears only its own part of the record on removePeer and close', () => {
      const registry = new PeerTable({ clock, maxPeers: 1 })
      create({}, { registry })
      const record = registry.get(PEER, clock.time)!
      monitor.record(record, clock.time, 20, Outcome.SUCCESS)
      assert.equal(monitor.removePeer(PEER), true)
      assert.equal(registry.find(PEER), record)
      assert.equal(monitor.getHealth(PEER), undefined)
      monitor.record(record, clock.time, 20, Outcome.SUCCESS)
      monitor.close()
      assert.equal(registry.find(PEER), record)
      assert.equal(monitor.getHealth(PEER), undefined)
    })

    it('prunes stale records from a shared table without forgetting the peer', () => {
      const registry = new PeerTable({ clock })
      create({ maxAge: 100 }, { registry })
      const record = registry.get(PEER, clock.time)!
      monitor.record(record, clock.time, 20, Outcome.SUCCESS)
      clock.tick(101)
      assert.equal(monitor.prune(), 1)
      assert.equal(registry.find(PEER), record)
      assert.equal(monitor.prune(), 0)
    })

    it('starts empty for a new peer that took a forgotten one\'s place', () => {
      const registry = new PeerTable({ clock, maxPeers: 1, idleTimeout: 10 })
      create({}, { registry })
      const record = registry.get(PEER, clock.time)!
      monitor.record(record, clock.time, 20, Outcome.FAILURE, new Error('x'))
      clock.tick(11)
      const other = registry.get(OTHER, clock.time)!
      assert.notEqual(other, record)
      assert.equal(registry.find(PEER), undefined)
      assert.equal(monitor.getHealth(OTHER), undefined)
      monitor.record(other, clock.time, 20, Outcome.SUCCESS)
      const health = monitor.getHealth(OTHER)!
      assert.equal(health.totalRequests, 1)
      assert.equal(health.errorCount, 0)
      assert.equal(health.lastError, undefined)
    })
  })
})
