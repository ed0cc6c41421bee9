/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import sinon from 'sinon'
import {
  BitswapProtectionManager,
  CircuitState,
  HealthStatus,
  defaultProtectionConfig
} from '../../../src/index.ts'
import { Outcome } from '../../../src/states.ts'
import type { LocalSuspicionChange, ProtectionConfigInit, TransitionEvent } from '../../../src/index.ts'
import type { RecoveryFailedEvent } from '../../../src/recovery/recovery-manager.ts'

const START = 1_000_000
const TIMEOUT = 10_000
const PEER = '12D3KooWPeerA'
const OTHER = '12D3KooWPeerB'

/** A short breaker (one probe closes it, no jitter) so circuits move in few steps */
const BREAKER = { maxRequests: 1, timeout: TIMEOUT, jitter: 0 }

class Harness {
  time = START
  readonly manager: BitswapProtectionManager
  readonly transitions: TransitionEvent[] = []

  constructor (config: ProtectionConfigInit = {}) {
    this.manager = new BitswapProtectionManager(config, { clock: { now: () => this.time }, random: () => 0 })
    this.manager.onTransition((evt) => this.transitions.push(evt))
  }

  tick (ms: number): void {
    this.time += ms
  }

  /** Runs one request; returns 'ok', 'failed' (fn threw) or the rejection's name (fn not called) */
  async call (peer: string, outcome: 'ok' | 'fail' = 'ok'): Promise<string> {
    let called = false
    try {
      await this.manager.executeRequest(peer, () => {
        called = true
        if (outcome === 'fail') {
          throw new Error('boom')
        }
        return 'value'
      })
      return 'ok'
    } catch (err) {
      return called ? 'failed' : (err as Error).name
    }
  }

  async calls (peer: string, outcome: 'ok' | 'fail', n: number): Promise<string[]> {
    const results: string[] = []
    for (let i = 0; i < n; i++) {
      results.push(await this.call(peer, outcome))
    }
    return results
  }

  state (peer: string): CircuitState {
    return this.manager.getPeerStatus(peer).circuitState
  }

  /** OPEN → (timeout) → HALF_OPEN → probes succeed → CLOSED */
  async reclose (peer: string, probes: number = 1): Promise<void> {
    this.tick(this.manager.openUntil(peer) - this.time + 1)
    assert.equal(this.state(peer), CircuitState.HALF_OPEN)
    for (let i = 0; i < probes; i++) {
      assert.equal(await this.call(peer), 'ok')
    }
    assert.equal(this.state(peer), CircuitState.CLOSED)
  }

  reasons (peer: string): string[] {
    return this.transitions.filter(t => t.peer === peer).map(t => `${t.from}>${t.to}:${t.reason}`)
  }
}

describe('BitswapProtectionManager', () => {
  let h: Harness

  afterEach(() => {
    h?.manager.close()
  })

  describe('executeRequest', () => {
    it('returns the function\'s result and records a success in breaker and health', async () => {
      h = new Harness()
      const signal = new AbortController().signal
      let seen: AbortSignal | undefined
      const result = await h.manager.executeRequest(PEER, (s) => { seen = s; return 42 }, { signal })
      assert.equal(result, 42)
      assert.equal(seen, signal)
      const status = h.manager.getPeerStatus(PEER)
      assert.equal(status.counts.totalSuccesses, 1)
      assert.equal(status.health?.totalRequests, 1)
      assert.equal(status.health?.errorCount, 0)
    })

    it('rethrows the function\'s own error unchanged and counts it as one failure', async () => {
      h = new Harness()
      const err = new Error('peer reset the stream')
      await assert.rejects(h.manager.executeRequest(PEER, async () => { throw err }), (e) => e === err)
      // a synchronous throw is the same
      const sync = new TypeError('sync')
      await assert.rejects(h.manager.executeRequest(PEER, () => { throw sync }), (e) => e === sync)
      const status = h.manager.getPeerStatus(PEER)
      assert.equal(status.counts.totalFailures, 2)
      assert.equal(status.health?.errorCount, 2)
      assert.equal(status.health?.consecutiveErrors, 2)
      assert.equal(status.health?.lastError, sync)
    })

    it('measures the call\'s latency with the injected clock', async () => {
      h = new Harness()
      await h.manager.executeRequest(PEER, async () => { h.tick(250) })
      assert.equal(h.manager.getPeerStatus(PEER).health?.lastResponseTime, 250)
    })

    it('rejects with CircuitOpenError while OPEN without calling fn, and the rejection is not a peer failure', async () => {
      h = new Harness({ circuitBreaker: BREAKER })
      assert.deepEqual(await h.calls(PEER, 'fail', 3), ['failed', 'failed', 'failed'])
      assert.equal(h.state(PEER), CircuitState.OPEN)
      const before = h.manager.getPeerStatus(PEER)
      assert.deepEqual(await h.calls(PEER, 'ok', 5), Array(5).fill('CircuitOpenError'))
      const after = h.manager.getPeerStatus(PEER)
      // seed bug 4: rejections were recorded as peer errors with ~0 latency
      assert.equal(after.health?.errorCount, before.health?.errorCount)
      assert.equal(after.health?.totalRequests, 3)
      assert.equal(after.health?.consecutiveErrors, 3)
      assert.deepEqual(after.counts, before.counts)
      const overall = h.manager.getOverallStatus()
      assert.deepEqual(overall.rejected, { open: 5, halfOpen: 0, recovery: 0 })
      assert.equal(overall.trips, 1)
    })

    it('rejects with TooManyRequestsError when the HALF_OPEN quota is in use', async () => {
      h = new Harness({ circuitBreaker: BREAKER })
      h.manager.trip(PEER)
      h.tick(TIMEOUT + 1)
      let finish!: () => void
      const probe = h.manager.executeRequest(PEER, async () => { await new Promise<void>((resolve) => { finish = resolve }) })
      assert.equal(await h.call(PEER), 'TooManyRequestsError')
      assert.equal(h.manager.getOverallStatus().rejected.halfOpen, 1)
      assert.equal(h.manager.getPeerStatus(PEER).health, undefined, 'a rejection records no health sample')
      finish()
      await probe
      assert.equal(h.state(PEER), CircuitState.CLOSED)
    })

    it('rejects at once for an already-aborted signal, calling nothing and counting nothing', async () => {
      h = new Harness()
      const controller = new AbortController()
      controller.abort()
      let called = false
      await assert.rejects(h.manager.executeRequest(PEER, () => { called = true }, { signal: controller.signal }), { name: 'AbortError' })
      assert.equal(called, false)
      const status = h.manager.getPeerStatus(PEER)
      assert.equal(status.counts.requests, 0)
      assert.equal(status.health, undefined)
    })

    it('treats a call aborted by the caller as neutral: fn\'s error passes through, nothing is counted, the probe permit returns', async () => {
      h = new Harness({ circuitBreaker: BREAKER })
      h.manager.trip(PEER)
      h.tick(TIMEOUT + 1)
      const controller = new AbortController()
      const err = new Error('gave up')
      const call = h.manager.executeRequest(PEER, async () => {
        controller.abort()
        throw err
      }, { signal: controller.signal })
      await assert.rejects(call, (e) => e === err)
      const status = h.manager.getPeerStatus(PEER)
      assert.equal(status.circuitState, CircuitState.HALF_OPEN)
      assert.equal(status.counts.requests, 0)
      assert.equal(status.health, undefined)
      // the single HALF_OPEN permit came back: the next probe is admitted and closes the circuit
      assert.equal(await h.call(PEER), 'ok')
      assert.equal(h.state(PEER), CircuitState.CLOSED)
    })

    it('runs a peer untracked (fail open) when the registry is full of peers it must remember', async () => {
      h = new Harness({ circuitBreaker: BREAKER, maxPeers: 1 })
      h.manager.trip(PEER)
      assert.equal(await h.call(PEER), 'CircuitOpenError')
      assert.equal(await h.call(OTHER, 'fail'), 'failed')
      assert.equal(await h.call(OTHER), 'ok')
      assert.equal(h.manager.getOverallStatus().totalPeers, 1)
      assert.equal(h.state(PEER), CircuitState.OPEN, 'the OPEN peer was not evicted')
    })
  })

  describe('recovery ramp', () => {
    /** A ramp that stays at a constant rate until the clock moves, and never completes by itself */
    const RAMP = {
      enableAutoTuning: false,
      circuitBreaker: BREAKER,
      recovery: { strategy: 'LINEAR' as const, initialRecoveryRate: 0.1, recoveryIncrement: 0.1, recoveryInterval: 10_000, successThreshold: 65_535, maxRecoveryTime: Infinity }
    }

    it('starts when the circuit closes again, not when it opens', async () => {
      h = new Harness(RAMP)
      const started: string[] = []
      h.manager.recoveryManager.onRecoveryStart(({ peer }) => started.push(String(peer)))
      await h.calls(PEER, 'fail', 3)
      assert.equal(h.state(PEER), CircuitState.OPEN)
      assert.equal(h.manager.getPeerStatus(PEER).isRecovering, false)
      h.tick(TIMEOUT + 1)
      assert.equal(h.state(PEER), CircuitState.HALF_OPEN)
      assert.equal(h.manager.getPeerStatus(PEER).isRecovering, false)
      assert.equal(await h.call(PEER), 'ok')
      const status = h.manager.getPeerStatus(PEER)
      assert.equal(status.circuitState, CircuitState.CLOSED)
      assert.equal(status.isRecovering, true)
      assert.equal(status.recoveryRate, 0.1)
      assert.deepEqual(started, [PEER])
    })

    it('admits the ramp\'s rate of requests (credit accounting), measured over many calls at each step', async function () {
      this.timeout(10_000)
      h = new Harness(RAMP)
      h.manager.trip(PEER)
      await h.reclose(PEER)
      const closedAt = h.time
      const n = 2_000
      for (const [step, rate] of [[0, 0.1], [2, 0.3], [6, 0.7], [9, 1]]) {
        h.time = closedAt + step * 10_000
        assert.ok(Math.abs(h.manager.getPeerStatus(PEER).recoveryRate - rate) < 1e-9)
        const rejectedBefore = h.manager.getOverallStatus().rejected.recovery
        let called = 0
        let throttled = 0
        for (let i = 0; i < n; i++) {
          const result = await h.call(PEER)
          if (result === 'ok') {
            called++
          } else {
            assert.equal(result, 'RecoveryThrottledError')
            throttled++
          }
        }
        assert.ok(Math.abs(called - n * rate) <= 1, `step ${step}: ${called} of ${n} admitted at rate ${rate}`)
        assert.equal(h.manager.getOverallStatus().rejected.recovery - rejectedBefore, throttled)
      }
      // throttled calls were neither health samples nor recovery failures
      const status = h.manager.getPeerStatus(PEER)
      assert.equal(status.health?.errorCount, 0)
      assert.equal(status.isRecovering, true)
      assert.equal(h.manager.recoveryManager.getRecoveryState(PEER)?.consecutiveFailures, 0)
    })

    it('completes after successThreshold admitted successes; isRecovering comes from the state, not the record', async () => {
      h = new Harness({ ...RAMP, recovery: { ...RAMP.recovery, initialRecoveryRate: 0.5, successThreshold: 4 } })
      h.manager.trip(PEER)
      await h.reclose(PEER)
      const results = await h.calls(PEER, 'ok', 8)
      assert.deepEqual(results, ['RecoveryThrottledError', 'ok', 'RecoveryThrottledError', 'ok', 'RecoveryThrottledError', 'ok', 'RecoveryThrottledError', 'ok'])
      // seed bug 2: a finished recovery still read as recovering because its record existed
      assert.equal(h.manager.recoveryManager.getRecoveryState(PEER)?.phase, 'COMPLETED')
      const status = h.manager.getPeerStatus(PEER)
      assert.equal(status.isRecovering, false)
      assert.equal(status.recoveryRate, 1)
      assert.deepEqual(await h.calls(PEER, 'ok', 5), Array(5).fill('ok'))
      assert.equal(h.manager.getOverallStatus().recoveryStats.completedRecoveries, 1)
    })

    it('a recovery that fails by consecutive failures re-trips the circuit; throttled calls in between do not count', async () => {
      h = new Harness({
        ...RAMP,
        enableHealthBasedTripping: false,
        // only the recovery can trip this circuit
        circuitBreaker: { ...BREAKER, readyToTrip: () => false },
        recovery: { ...RAMP.recovery, initialRecoveryRate: 0.5, failureThreshold: 3, cooldownPeriod: 0 }
      })
      h.manager.trip(PEER)
      await h.reclose(PEER)
      const results = await h.calls(PEER, 'fail', 6)
      assert.deepEqual(results, ['RecoveryThrottledError', 'failed', 'RecoveryThrottledError', 'failed', 'RecoveryThrottledError', 'failed'])
      assert.equal(h.state(PEER), CircuitState.OPEN)
      assert.deepEqual(h.reasons(PEER).at(-1), 'CLOSED>OPEN:recovery failed: failures')
      assert.equal(h.manager.getOverallStatus().trips, 2)
      // handed back to the circuit: not held at rate 0, so its probes get through later
      const status = h.manager.getPeerStatus(PEER)
      assert.equal(status.isRecovering, false)
      assert.equal(status.recoveryRate, 1)
      // the second trip backs off: twice the timeout (random is 0, so no jitter)
      assert.equal(status.openUntil, h.time + 2 * TIMEOUT)
      await h.reclose(PEER)
      assert.equal(h.manager.getPeerStatus(PEER).isRecovering, true, 'a new ramp starts when it closes again')
    })

    it('a recovery that only times out does not re-trip, and the peer gets full traffic back', async () => {
      h = new Harness({ ...RAMP, recovery: { ...RAMP.recovery, maxRecoveryTime: 50_000 } })
      const failed: RecoveryFailedEvent[] = []
      h.manager.recoveryManager.onRecoveryFailed((evt) => failed.push(evt))
      h.manager.trip(PEER)
      await h.reclose(PEER)
      h.tick(50_001)
      // a quiet peer: nothing happened during the ramp, so there is nothing to hold against it
      assert.deepEqual(await h.calls(PEER, 'ok', 5), Array(5).fill('ok'))
      assert.deepEqual(failed.map(f => f.reason), ['timeout'])
      const status = h.manager.getPeerStatus(PEER)
      assert.equal(status.circuitState, CircuitState.CLOSED)
      assert.equal(status.isRecovering, false)
      assert.equal(status.recoveryRate, 1)
      assert.equal(h.manager.getOverallStatus().trips, 1)
      assert.ok(!h.reasons(PEER).some(r => r.startsWith('CLOSED>OPEN:recovery')))
    })

    it('a re-trip vetoed by the population guard cancels the ramp instead of shutting the peer out', async () => {
      h = new Harness({
        ...RAMP,
        enableHealthBasedTripping: false,
        circuitBreaker: { ...BREAKER, readyToTrip: () => false },
        recovery: { ...RAMP.recovery, initialRecoveryRate: 1, failureThreshold: 3 }
      })
      await h.call(OTHER)
      h.manager.trip(PEER)
      await h.reclose(PEER)
      assert.equal(h.manager.getPeerStatus(PEER).isRecovering, true)
      // two peers allow one open circuit: OTHER takes it
      h.manager.isolate(OTHER)
      assert.deepEqual(await h.calls(PEER, 'fail', 3), ['failed', 'failed', 'failed'])
      const status = h.manager.getPeerStatus(PEER)
      assert.equal(status.circuitState, CircuitState.CLOSED)
      assert.equal(status.isRecovering, false)
      assert.equal(status.recoveryRate, 1)
      assert.equal(h.manager.recoveryManager.getRecoveryState(PEER)?.phase, 'CANCELLED')
      assert.deepEqual(await h.calls(PEER, 'ok', 3), ['ok', 'ok', 'ok'])
    })

    it('runs no ramp after a close when enableAutoRecovery is false', async () => {
      h = new Harness({ ...RAMP, enableAutoRecovery: false })
      h.manager.trip(PEER)
      await h.reclose(PEER)
      assert.equal(h.manager.getPeerStatus(PEER).isRecovering, false)
      assert.deepEqual(await h.calls(PEER, 'ok', 10), Array(10).fill('ok'))
      assert.equal(h.manager.getOverallStatus().recoveryStats.totalPeers, 0)
    })

    it('auto-tuning runs a lone peer\'s ramp fast and one among healthy peers slowly', async () => {
      const tuned = { ...RAMP, enableAutoTuning: true }
      h = new Harness(tuned)
      h.manager.trip(PEER)
      await h.reclose(PEER)
      h.tick(10_000)
      // no other peer: the maximum speed (2×), so one interval in is two steps up
      assert.ok(Math.abs(h.manager.getPeerStatus(PEER).recoveryRate - 0.3) < 1e-6)
      h.manager.close()

      h = new Harness(tuned)
      for (const other of ['a', 'b', 'c']) {
        await h.call(other)
      }
      h.manager.trip(PEER)
      await h.reclose(PEER)
      h.tick(10_000)
      // every other peer available: the minimum speed (0.5×)
      assert.ok(Math.abs(h.manager.getPeerStatus(PEER).recoveryRate - 0.15) < 1e-6)
    })
  })

  describe('events (one typed event target, in cause order)', () => {
    const RAMP = { enableAutoTuning: false, circuitBreaker: BREAKER, recovery: { initialRecoveryRate: 1, successThreshold: 2, failureThreshold: 1 } }

    it('sends a recovery that a close started after that close, and a failed recovery after the trip it caused', async () => {
      h = new Harness(RAMP)
      const order: string[] = []
      h.manager.addEventListener('transition', (evt) => order.push(`${evt.detail.from}>${evt.detail.to}:${evt.detail.reason}`))
      h.manager.addEventListener('recovery:start', () => order.push('recovery:start'))
      h.manager.addEventListener('recovery:fail', (evt) => order.push(`recovery:fail:${evt.detail.reason}`))
      h.manager.trip(PEER)
      await h.reclose(PEER)
      await h.call(PEER, 'fail')
      assert.deepEqual(order, [
        'CLOSED>OPEN:trip',
        'OPEN>HALF_OPEN:timeout',
        'HALF_OPEN>CLOSED:probes-succeeded',
        'recovery:start',
        'CLOSED>OPEN:recovery failed: failures',
        'recovery:fail:failures'
      ])
    })

    it('sends health:change after the trip an UNHEALTHY status caused', async () => {
      h = new Harness({ circuitBreaker: { readyToTrip: () => false }, healthMonitor: { maxConsecutiveErrors: 3 } })
      const order: string[] = []
      h.manager.addEventListener('transition', (evt) => order.push(`transition:${evt.detail.reason}`))
      h.manager.addEventListener('health:change', (evt) => order.push(`health:${evt.detail.to}`))
      await h.calls(PEER, 'fail', 3)
      assert.deepEqual(order, ['transition:health: unhealthy', 'health:UNHEALTHY'])
    })

    it('contains a throwing handle listener, and a disposed handle hears nothing more', async () => {
      h = new Harness()
      let heard = 0
      h.manager.onTransition(() => { throw new Error('listener bug') })
      const handle = h.manager.onTransition(() => { heard++ })
      h.manager.trip(PEER)
      handle.dispose()
      h.manager.release(PEER)
      h.manager.trip(OTHER)
      assert.equal(heard, 1)
      assert.equal(h.state(PEER), CircuitState.OPEN)
    })
  })

  describe('health-based tripping', () => {
    async function fiveErrorsAfterThirtySuccesses (enableHealthBasedTripping: boolean): Promise<void> {
      h = new Harness({ enableHealthBasedTripping, circuitBreaker: { readyToTrip: () => false } })
      await h.calls(PEER, 'ok', 30)
      await h.calls(PEER, 'fail', 4)
      // 30 of 34 succeeded: DEGRADED by rate, not yet UNHEALTHY
      assert.equal(h.manager.getPeerStatus(PEER).healthStatus, HealthStatus.DEGRADED)
      assert.equal(h.state(PEER), CircuitState.CLOSED)
      await h.call(PEER, 'fail')
      assert.equal(h.manager.getPeerStatus(PEER).healthStatus, HealthStatus.UNHEALTHY)
    }

    it('trips the circuit when the peer becomes UNHEALTHY (5 consecutive errors)', async () => {
      await fiveErrorsAfterThirtySuccesses(true)
      assert.equal(h.state(PEER), CircuitState.OPEN)
      assert.deepEqual(h.reasons(PEER), ['CLOSED>OPEN:health: unhealthy'])
      assert.equal(await h.call(PEER), 'CircuitOpenError')
    })

    it('leaves the circuit alone when disabled', async () => {
      await fiveErrorsAfterThirtySuccesses(false)
      assert.equal(h.state(PEER), CircuitState.CLOSED)
      assert.equal(await h.call(PEER), 'ok')
    })
  })

  describe('population guard', () => {
    const peers = ['p0', 'p1', 'p2', 'p3']

    it('keeps at most maxOpenShare of the peers open (2 of 4), and frees a place when one closes', async () => {
      h = new Harness({ circuitBreaker: BREAKER, populationGuard: { maxOpenShare: 0.5 } })
      for (const p of peers) {
        await h.call(p)
      }
      for (const p of peers) {
        // apart in time, so that this is not local-network suspicion
        h.tick(3_000)
        await h.calls(p, 'fail', 5)
      }
      assert.deepEqual(peers.map(p => h.state(p)), ['OPEN', 'OPEN', 'CLOSED', 'CLOSED'])
      assert.equal(h.manager.trip('p3'), false)
      assert.equal(h.manager.getOverallStatus().circuitStates.open, 2)
      assert.equal(h.manager.getOverallStatus().localNetworkSuspected, false)
      await h.reclose('p0')
      assert.equal(h.manager.trip('p3'), true)
      assert.deepEqual(h.manager.getOverallStatus().circuitStates, { closed: 2, open: 2, halfOpen: 0 })
    })

    it('suspects our own network when most peers fail at once: no circuit opens until it clears', async () => {
      h = new Harness({ circuitBreaker: BREAKER })
      const changes: LocalSuspicionChange[] = []
      h.manager.onPopulationChange((change) => changes.push(change))
      for (const p of peers) {
        await h.call(p)
      }
      h.tick(5_000)
      const failedAt = h.time
      for (let round = 0; round < 4; round++) {
        for (const p of peers) {
          assert.equal(await h.call(p, 'fail'), 'failed')
        }
      }
      const overall = h.manager.getOverallStatus()
      assert.equal(overall.localNetworkSuspected, true)
      assert.deepEqual(overall.circuitStates, { closed: 4, open: 0, halfOpen: 0 })
      assert.equal(overall.trips, 0)
      // the third failing peer of four crossed the line
      assert.deepEqual(changes, [{ suspected: true, failing: 3, population: 4, at: failedAt }])
      h.tick(2_000)
      assert.equal(h.manager.getOverallStatus().localNetworkSuspected, false)
      assert.equal(changes.length, 2)
      assert.equal(changes[1].suspected, false)
      assert.equal(changes[1].at, failedAt + 2_000)
      // cleared: a failing peer trips again
      await h.call('p0', 'fail')
      assert.equal(h.state('p0'), CircuitState.OPEN)
    })

    it('clears the suspicion when peers succeed again', async () => {
      h = new Harness({ circuitBreaker: BREAKER })
      const changes: boolean[] = []
      h.manager.onPopulationChange(({ suspected }) => changes.push(suspected))
      for (const p of peers) {
        await h.call(p)
      }
      h.tick(5_000)
      for (const p of peers) {
        await h.call(p, 'fail')
      }
      assert.equal(h.manager.getOverallStatus().localNetworkSuspected, true)
      await h.call('p0')
      await h.call('p1')
      assert.equal(h.manager.getOverallStatus().localNetworkSuspected, false)
      assert.deepEqual(changes, [true, false])
    })
  })

  describe('auto-tuning', () => {
    /** Ten seconds of `perSecond` successes, then failures in a fresh counting window until the circuit opens */
    async function failuresToTrip (config: ProtectionConfigInit, perSecond: number): Promise<number> {
      h = new Harness({ enableHealthBasedTripping: false, ...config })
      for (let s = 0; s < 10; s++) {
        h.time = START + s * 1_000
        await h.calls(PEER, 'ok', perSecond)
      }
      h.time = START + 10_500
      for (let failures = 1; failures <= 100; failures++) {
        await h.call(PEER, 'fail')
        if (h.state(PEER) === CircuitState.OPEN) {
          return failures
        }
      }
      return Infinity
    }

    const WINDOWED = { circuitBreaker: { interval: 10_000 } }

    it('reports bounded tuned values for a tracked peer, none for an unknown one', async () => {
      h = new Harness()
      assert.equal(h.manager.getPeerStatus(PEER).tuned, undefined)
      await h.calls(PEER, 'ok', 50)
      const tuned = h.manager.getPeerStatus(PEER).tuned
      assert.ok(tuned !== undefined)
      assert.equal(tuned.tripMinRequests, 20, 'a busy peer asks for the most evidence')
      assert.equal(tuned.tripFailureRatio, 0.6)
      assert.equal(tuned.backoffLevel, 0)
      assert.equal(tuned.openDuration, 60_000)
      assert.equal(tuned.openUntil, 0)
      assert.equal(tuned.recoveryRampSpeed, 2)
      assert.equal(tuned.requestRate, 50)
      await h.call(OTHER)
      const quiet = h.manager.getPeerStatus(OTHER).tuned
      assert.equal(quiet?.tripMinRequests, 3)
      assert.ok(quiet.recoveryRampSpeed >= 0.5 && quiet.recoveryRampSpeed <= 2)
    })

    it('asks a busy peer for more failures than a quiet one (default trip rule)', async () => {
      assert.equal(await failuresToTrip(WINDOWED, 1), 3)
      assert.equal(await failuresToTrip(WINDOWED, 20), 20)
    })

    it('uses the user\'s readyToTrip instead when one is given', async () => {
      const config = { circuitBreaker: { interval: 10_000, readyToTrip: (c: { consecutiveFailures: number }) => c.consecutiveFailures >= 3 } }
      assert.equal(await failuresToTrip(config, 20), 3)
    })

    it('keeps the tuned rule for a config built from defaultProtectionConfig()', async () => {
      const defaults = defaultProtectionConfig()
      const config = { ...defaults, enableHealthBasedTripping: false, circuitBreaker: { ...defaults.circuitBreaker, interval: 10_000 } }
      assert.equal(await failuresToTrip(config, 20), 20)
    })

    it('uses the fixed rule when auto-tuning is off', async () => {
      assert.equal(await failuresToTrip({ ...WINDOWED, enableAutoTuning: false }, 20), 3)
    })
  })

  describe('observe', () => {
    it('counts one request of the current generation; NEUTRAL counts nothing', () => {
      h = new Harness()
      h.manager.observe(PEER, Outcome.SUCCESS, 12)
      h.manager.observe(PEER, Outcome.NEUTRAL, 5)
      const err = new Error('garbage')
      h.manager.observe(PEER, Outcome.FAILURE, 30, err)
      const status = h.manager.getPeerStatus(PEER)
      assert.deepEqual(status.counts, { requests: 2, totalSuccesses: 1, totalFailures: 1, consecutiveSuccesses: 0, consecutiveFailures: 1 })
      assert.equal(status.health?.totalRequests, 2)
      assert.equal(status.health?.lastError, err)
      assert.equal(status.health?.lastResponseTime, 30)
    })

    it('a FAILURE in HALF_OPEN with the probe quota used reopens the circuit; the late probe is dropped', async () => {
      h = new Harness({ circuitBreaker: { ...BREAKER, maxRequests: 2 } })
      h.manager.trip(PEER)
      h.tick(TIMEOUT + 1)
      const finish: Array<() => void> = []
      const probes = [0, 1].map(async () => h.manager.executeRequest(PEER, async () => {
        await new Promise<void>((resolve) => finish.push(resolve))
        return 'late'
      }))
      assert.equal(await h.call(PEER), 'TooManyRequestsError')
      h.manager.observe(PEER, Outcome.FAILURE, 100, new Error('missed want'))
      assert.equal(h.state(PEER), CircuitState.OPEN)
      assert.equal(h.reasons(PEER).at(-1), 'HALF_OPEN>OPEN:probe-failure')
      finish.forEach(f => { f() })
      assert.deepEqual(await Promise.all(probes), ['late', 'late'])
      assert.equal(h.state(PEER), CircuitState.OPEN, 'successes of the old generation do not close it')
    })

    it('while OPEN records the verdict in health only (not a rejection, not a request)', () => {
      h = new Harness({ circuitBreaker: BREAKER })
      h.manager.trip(PEER)
      h.manager.observe(PEER, Outcome.FAILURE, 10)
      const status = h.manager.getPeerStatus(PEER)
      assert.equal(status.circuitState, CircuitState.OPEN)
      assert.equal(status.counts.requests, 0)
      assert.equal(status.health?.errorCount, 1)
      assert.deepEqual(h.manager.getOverallStatus().rejected, { open: 0, halfOpen: 0, recovery: 0 })
    })
  })

  describe('status', () => {
    it('reads an unknown peer without tracking it', () => {
      h = new Harness()
      const status = h.manager.getPeerStatus(PEER)
      assert.equal(status.peer, PEER)
      assert.equal(status.circuitState, CircuitState.CLOSED)
      assert.equal(status.healthStatus, HealthStatus.UNKNOWN)
      assert.equal(status.health, undefined)
      assert.equal(status.isRecovering, false)
      assert.equal(status.recoveryRate, 1)
      assert.equal(status.openUntil, 0)
      assert.equal(h.manager.getOverallStatus().totalPeers, 0)
    })

    it('has no NaN with no peers and counts as healthy', () => {
      h = new Harness()
      const overall = h.manager.getOverallStatus()
      assert.equal(overall.totalPeers, 0)
      assert.equal(overall.isHealthy(), true)
      assert.equal(overall.getSummary(), 'System Status: 0 peers, 0 healthy (0.0%), 0 recovering, 0 circuit breakers open')
    })

    it('counts circuit states, healthy peers, trips and open circuits for real', async () => {
      h = new Harness({ circuitBreaker: BREAKER, enableAutoTuning: false })
      const six = ['a', 'b', 'c', 'd', 'e', 'f']
      for (const p of six) {
        await h.calls(p, 'ok', 5)
      }
      let overall = h.manager.getOverallStatus()
      assert.equal(overall.healthStats.healthyPeers, 6)
      assert.equal(overall.isHealthy(), true)

      h.manager.trip('a')
      overall = h.manager.getOverallStatus()
      assert.deepEqual(overall.circuitStates, { closed: 5, open: 1, halfOpen: 0 })
      // 1 of 6 open is below the 20 % line
      assert.equal(overall.isHealthy(), true)
      // seed bug 3: the "open" number was the total number of breakers
      assert.equal(overall.getSummary(), 'System Status: 6 peers, 6 healthy (100.0%), 0 recovering, 1 circuit breakers open')

      h.manager.trip('b')
      h.tick(TIMEOUT + 1)
      overall = h.manager.getOverallStatus()
      assert.deepEqual(overall.circuitStates, { closed: 4, open: 0, halfOpen: 2 })
      assert.equal(overall.trips, 2)
      await h.call('a')
      overall = h.manager.getOverallStatus()
      assert.deepEqual(overall.circuitStates, { closed: 5, open: 0, halfOpen: 1 })
      assert.equal(overall.recoveryStats.recoveringPeers, 1)
      assert.match(overall.getSummary(), /1 recovering, 0 circuit breakers open$/)

      h.manager.trip('c')
      h.manager.trip('d')
      overall = h.manager.getOverallStatus()
      // 3 of 6 not CLOSED, 2 of them OPEN: 33 % open is not healthy
      assert.equal(overall.circuitStates.open, 2)
      assert.equal(overall.isHealthy(), false)
    })
  })

  describe('snapshot and restore', () => {
    it('keeps an OPEN peer OPEN until its original openUntil in a fresh manager, through JSON', async () => {
      h = new Harness({ circuitBreaker: BREAKER })
      await h.call(OTHER)
      h.manager.trip(PEER)
      const openUntil = h.manager.openUntil(PEER)
      assert.equal(openUntil, h.time + TIMEOUT)
      h.tick(1_000)
      const snapshot = JSON.parse(JSON.stringify(h.manager.snapshot()))
      assert.equal(snapshot.peers.length, 1, 'a clean CLOSED peer is not kept')
      assert.deepEqual(snapshot.peers[0], { peer: PEER, state: 'OPEN', openUntil, backoffLevel: 1, isolated: false })
      h.manager.close()

      // the node restarts 4 s later
      const restartedAt = h.time + 4_000
      h = new Harness({ circuitBreaker: BREAKER })
      h.time = restartedAt
      h.manager.restore(snapshot)
      assert.equal(h.state(PEER), CircuitState.OPEN)
      assert.equal(await h.call(PEER), 'CircuitOpenError')
      h.time = openUntil
      assert.equal(h.state(PEER), CircuitState.OPEN)
      h.time = openUntil + 1
      assert.equal(h.state(PEER), CircuitState.HALF_OPEN)
      assert.equal(await h.call(PEER), 'ok')
      assert.equal(h.state(PEER), CircuitState.CLOSED)
    })

    it('holds a restored isolation for maxTimeout at most: no restored state gates a peer longer', () => {
      h = new Harness({ circuitBreaker: BREAKER })
      h.manager.isolate(PEER)
      const snapshot = JSON.parse(JSON.stringify(h.manager.snapshot()))
      assert.deepEqual(snapshot.peers, [{ peer: PEER, state: 'OPEN', openUntil: 0, backoffLevel: 0, isolated: true }])
      h.manager.close()

      h = new Harness({ circuitBreaker: BREAKER })
      const restoredAt = h.time
      h.manager.restore(snapshot)
      h.tick(10 * TIMEOUT)
      assert.equal(h.state(PEER), CircuitState.OPEN)
      assert.equal(h.manager.openUntil(PEER), restoredAt + 600_000)
      h.time = restoredAt + 600_001
      assert.equal(h.state(PEER), CircuitState.HALF_OPEN)
    })

    it('keeps a restored isolation until release when maxTimeout is Infinity', () => {
      h = new Harness({ circuitBreaker: { ...BREAKER, maxTimeout: Infinity } })
      h.manager.isolate(PEER)
      const snapshot = JSON.parse(JSON.stringify(h.manager.snapshot()))
      h.manager.close()

      h = new Harness({ circuitBreaker: { ...BREAKER, maxTimeout: Infinity } })
      h.manager.restore(snapshot)
      h.tick(100 * TIMEOUT)
      assert.equal(h.manager.openUntil(PEER), Infinity)
      h.manager.release(PEER)
      assert.equal(h.state(PEER), CircuitState.HALF_OPEN)
    })

    it('keeps the backoff level of a CLOSED peer, so its next trip backs off', async () => {
      h = new Harness({ circuitBreaker: BREAKER, enableAutoRecovery: false })
      h.manager.trip(PEER)
      await h.reclose(PEER)
      const snapshot = JSON.parse(JSON.stringify(h.manager.snapshot()))
      assert.deepEqual(snapshot.peers, [{ peer: PEER, state: 'CLOSED', openUntil: 0, backoffLevel: 1, isolated: false }])
      h.manager.close()

      h = new Harness({ circuitBreaker: BREAKER })
      h.manager.restore(snapshot)
      assert.equal(h.state(PEER), CircuitState.CLOSED)
      assert.equal(h.manager.getPeerStatus(PEER).tuned?.backoffLevel, 1)
      h.manager.trip(PEER)
      assert.equal(h.manager.openUntil(PEER), h.time + 2 * TIMEOUT)
    })

    it('drops a HALF_OPEN peer: its open time had ended, so there is nothing to hold', () => {
      h = new Harness({ circuitBreaker: BREAKER })
      h.manager.trip(PEER)
      h.tick(TIMEOUT + 1)
      const snapshot = h.manager.snapshot()
      assert.equal(snapshot.peers[0].state, 'HALF_OPEN')
      h.manager.close()

      h = new Harness({ circuitBreaker: BREAKER })
      const { stats } = h.manager.restore(snapshot)
      assert.equal(stats.expired, 1)
      assert.equal(h.state(PEER), CircuitState.CLOSED)
    })
  })

  describe('isolate and release', () => {
    it('holds the circuit OPEN past its timeout until the last release, then probes may close it', async () => {
      h = new Harness({ circuitBreaker: BREAKER })
      h.manager.isolate(PEER)
      h.manager.isolate(PEER)
      assert.equal(await h.call(PEER), 'CircuitOpenError')
      h.tick(10 * TIMEOUT)
      assert.equal(h.state(PEER), CircuitState.OPEN)
      assert.equal(h.manager.getPeerStatus(PEER).openUntil, Infinity)
      h.manager.release(PEER)
      assert.equal(h.state(PEER), CircuitState.OPEN, 'isolations nest')
      h.manager.release(PEER)
      assert.equal(h.state(PEER), CircuitState.HALF_OPEN)
      assert.equal(await h.call(PEER), 'ok')
      assert.equal(h.state(PEER), CircuitState.CLOSED)
    })

    it('ignores a release of a peer that was never isolated', () => {
      h = new Harness({ circuitBreaker: BREAKER })
      h.manager.release(PEER)
      h.manager.trip(PEER)
      h.manager.release(PEER)
      assert.equal(h.state(PEER), CircuitState.OPEN)
    })
  })

  describe('close', () => {
    let clock: sinon.SinonFakeTimers

    beforeEach(() => {
      clock = sinon.useFakeTimers({ now: START })
    })

    afterEach(() => {
      clock.restore()
    })

    it('leaves nothing running, and refuses requests afterwards with ClosedError', async () => {
      const manager = new BitswapProtectionManager({ circuitBreaker: BREAKER })
      for (let i = 0; i < 3; i++) {
        await manager.executeRequest(PEER, async () => { throw new Error('boom') }).catch(() => {})
        await manager.executeRequest(OTHER, async () => 'ok')
      }
      manager.isolate('12D3KooWPeerC')
      clock.tick(TIMEOUT + 1)
      await manager.executeRequest(PEER, async () => 'probe')
      assert.equal(clock.countTimers(), 0)
      manager.close()
      manager.close()
      assert.equal(clock.countTimers(), 0)
      let called = false
      await assert.rejects(manager.executeRequest(PEER, () => { called = true }), { name: 'ClosedError' })
      assert.equal(called, false)
      assert.equal(manager.getOverallStatus().totalPeers, 0)
    })
  })
})
