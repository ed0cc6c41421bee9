/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import sinon from 'sinon'
import { defaultReadyToTrip } from '../../../src/breaker/config.ts'
import { BitswapProtectionManager, defaultProtectionConfig } from '../../../src/index.ts'
import type { ProtectionConfigInit } from '../../../src/index.ts'

/** Each bad value, and what its error must say: the field's full path, the allowed range, the value */
const BAD: Array<[string, unknown, RegExp]> = [
  ['circuitBreaker.timeout', { circuitBreaker: { timeout: NaN } }, /^circuitBreaker\.timeout must be a number > 0, got NaN$/],
  ['circuitBreaker.maxRequests', { circuitBreaker: { maxRequests: 1.5 } }, /^circuitBreaker\.maxRequests must be an integer >= 0 and <= 4294967295, got 1\.5$/],
  ['circuitBreaker.interval', { circuitBreaker: { interval: 'soon' } }, /^circuitBreaker\.interval must be a number >= 0, or Infinity, got "soon"$/],
  ['circuitBreaker.readyToTrip', { circuitBreaker: { readyToTrip: 'often' } }, /^circuitBreaker\.readyToTrip must be a function, got "often"$/],
  ['circuitBreaker.jitter', { circuitBreaker: { jitter: 2 } }, /^circuitBreaker\.jitter must be a number >= 0 and <= 1, got 2$/],
  ['circuitBreaker.maxTimeout', { circuitBreaker: { timeout: 5_000, maxTimeout: 1_000 } }, /^circuitBreaker\.maxTimeout must be a number >= 5000, or Infinity, got 1000$/],
  ['circuitBreaker', { circuitBreaker: 5 }, /^circuitBreaker must be an object, got 5$/],
  ['healthMonitor.degradedThreshold', { healthMonitor: { degradedThreshold: 0.99 } }, /^healthMonitor\.degradedThreshold must be a number >= 0 and <= 0\.95, got 0\.99$/],
  ['healthMonitor.healthyThreshold', { healthMonitor: { healthyThreshold: 1.5 } }, /^healthMonitor\.healthyThreshold must be a number >= 0 and <= 1, got 1\.5$/],
  ['healthMonitor.window', { healthMonitor: { window: 0 } }, /^healthMonitor\.window must be a number >= 1 and <= 2147483648, got 0$/],
  ['healthMonitor.maxConsecutiveErrors', { healthMonitor: { maxConsecutiveErrors: 0 } }, /^healthMonitor\.maxConsecutiveErrors must be an integer >= 1 and <= 65535, got 0$/],
  ['recovery.strategy', { recovery: { strategy: 'FAST' } }, /^recovery\.strategy must be one of LINEAR, EXPONENTIAL, STEP, got "FAST"$/],
  ['recovery.initialRecoveryRate', { recovery: { maxRecoveryRate: 0.5, initialRecoveryRate: 0.6 } }, /^recovery\.initialRecoveryRate must be a number >= 0 and <= 0\.5, got 0\.6$/],
  ['recovery.recoveryIncrement', { recovery: { recoveryIncrement: 0 } }, /^recovery\.recoveryIncrement must be a number > 0 and <= 1000, got 0$/],
  ['recovery.failureThreshold', { recovery: { failureThreshold: -1 } }, /^recovery\.failureThreshold must be an integer >= 1 and <= 65535, got -1$/],
  ['populationGuard.maxOpenShare', { populationGuard: { maxOpenShare: 1.5 } }, /^populationGuard\.maxOpenShare must be a number >= 0 and <= 1, got 1\.5$/],
  ['populationGuard.localFailureWindow', { populationGuard: { localFailureWindow: 0 } }, /^populationGuard\.localFailureWindow must be a number > 0 and <= 2147483648, got 0$/],
  ['populationGuard.minPeersForLocalSuspicion', { populationGuard: { minPeersForLocalSuspicion: 2.5 } }, /^populationGuard\.minPeersForLocalSuspicion must be an integer >= 1, or Infinity, got 2\.5$/],
  ['populationGuard.outlierDetection', { populationGuard: { outlierDetection: 'on' } }, /^populationGuard\.outlierDetection must be true or false, got "on"$/],
  ['populationGuard', { populationGuard: 'strict' }, /^populationGuard must be an object, got "strict"$/],
  ['autoTune.minRampSpeed', { autoTune: { minRampSpeed: 0 } }, /^autoTune\.minRampSpeed must be a number > 0 and <= 1, got 0$/],
  ['autoTune.maxTripRequests', { autoTune: { maxTripRequests: 2 } }, /^autoTune\.maxTripRequests must be an integer >= 3 and <= 4294967295, got 2$/],
  ['autoTune.rateSmoothing', { autoTune: { rateSmoothing: 0 } }, /^autoTune\.rateSmoothing must be a number > 0 and <= 1, got 0$/],
  ['autoTune', { autoTune: 7 }, /^autoTune must be an object, got 7$/],
  ['enableAutoRecovery', { enableAutoRecovery: 'yes' }, /^enableAutoRecovery must be true or false, got "yes"$/],
  ['enableHealthBasedTripping', { enableHealthBasedTripping: 1 }, /^enableHealthBasedTripping must be true or false, got 1$/],
  ['enableAutoTuning', { enableAutoTuning: 'no' }, /^enableAutoTuning must be true or false, got "no"$/],
  ['maxPeers', { maxPeers: 0 }, /^maxPeers must be an integer >= 1 and <= 16777216, got 0$/],
  ['idleTimeout', { idleTimeout: -1 }, /^idleTimeout must be a number >= 0, or Infinity, got -1$/],
  ['the config itself', null, /^config must be an object, got null$/]
]

describe('protection manager config', () => {
  describe('validation at construction', () => {
    let clock: sinon.SinonFakeTimers

    beforeEach(() => {
      clock = sinon.useFakeTimers()
    })

    afterEach(() => {
      clock.restore()
    })

    for (const [field, init, message] of BAD) {
      it(`names ${field} in the error`, () => {
        assert.throws(() => new BitswapProtectionManager(init as ProtectionConfigInit), (err: Error) => {
          assert.equal(err.name, 'InvalidConfigError')
          assert.match(err.message, message)
          return true
        })
        assert.equal(clock.countTimers(), 0, 'nothing was started')
      })
    }

    it('accepts an empty config, undefined parts and gobreaker\'s zero fallbacks', () => {
      const manager = new BitswapProtectionManager({ circuitBreaker: { timeout: 0, maxRequests: 0, interval: 0 }, healthMonitor: undefined })
      assert.equal(manager.circuitBreaker.config.timeout, 60_000)
      assert.equal(manager.circuitBreaker.config.maxRequests, 1)
      assert.equal(manager.circuitBreaker.config.interval, 0)
      manager.close()
      new BitswapProtectionManager().close()
    })
  })

  describe('partial configs', () => {
    it('fills every omitted field with its default', () => {
      const manager = new BitswapProtectionManager({
        circuitBreaker: { timeout: 5_000 },
        healthMonitor: { maxResponseTime: 2_000 },
        recovery: { strategy: 'STEP' },
        populationGuard: { maxOpenShare: 0.25 },
        autoTune: { maxRampSpeed: 4 }
      })
      const breaker = manager.circuitBreaker.config
      assert.equal(breaker.timeout, 5_000)
      assert.equal(breaker.maxRequests, 10)
      assert.equal(breaker.interval, 30_000)
      assert.equal(breaker.maxTimeout, 600_000)
      assert.equal(manager.healthMonitor.config.maxResponseTime, 2_000)
      assert.equal(manager.healthMonitor.config.healthyThreshold, 0.95)
      assert.equal(manager.healthMonitor.config.degradedThreshold, 0.8)
      assert.equal(manager.recoveryManager.config.strategy, 'STEP')
      assert.equal(manager.recoveryManager.config.initialRecoveryRate, 0.1)
      assert.equal(manager.recoveryManager.config.successThreshold, 10)
      assert.equal(manager.populationGuard.config.maxOpenShare, 0.25)
      assert.equal(manager.populationGuard.config.localFailureShare, 0.5)
      assert.equal(manager.autoTune.config.maxRampSpeed, 4)
      assert.equal(manager.autoTune.config.minRampSpeed, 0.5)
      assert.equal(manager.registry.maxPeers, 10_000)
      assert.equal(manager.registry.idleTimeout, 600_000)
      manager.close()
    })

    it('accepts defaultProtectionConfig() as it is', () => {
      const manager = new BitswapProtectionManager(defaultProtectionConfig())
      assert.equal(manager.circuitBreaker.config.maxRequests, 10)
      manager.close()
    })
  })

  describe('defaultProtectionConfig()', () => {
    it('has the seed\'s values', () => {
      const config = defaultProtectionConfig()
      const breaker = config.circuitBreaker
      assert.equal(breaker.maxRequests, 10)
      assert.equal(breaker.interval, 30_000)
      assert.equal(breaker.timeout, 60_000)
      assert.equal(breaker.readyToTrip, defaultReadyToTrip)
      const counts = (requests: number, totalFailures: number): Parameters<typeof defaultReadyToTrip>[0] =>
        ({ requests, totalFailures, totalSuccesses: requests - totalFailures, consecutiveFailures: 0, consecutiveSuccesses: 0 })
      assert.equal(breaker.readyToTrip?.(counts(3, 2)), true, '>= 3 requests and a failure ratio >= 0.6')
      assert.equal(breaker.readyToTrip?.(counts(2, 2)), false)
      assert.equal(breaker.readyToTrip?.(counts(10, 5)), false)
      assert.equal(breaker.isSuccessful?.(undefined), true)
      assert.equal(breaker.isSuccessful?.(new Error('x')), false)

      assert.deepEqual(config.healthMonitor, {
        healthyThreshold: 0.95,
        degradedThreshold: 0.8,
        maxResponseTime: 5_000,
        maxConsecutiveErrors: 5,
        minSamples: 3,
        maxAge: 600_000,
        window: 60_000
      })
      assert.deepEqual(config.recovery, {
        strategy: 'EXPONENTIAL',
        initialRecoveryRate: 0.1,
        maxRecoveryRate: 1,
        recoveryInterval: 10_000,
        recoveryIncrement: 0.1,
        successThreshold: 10,
        failureThreshold: 3,
        maxRecoveryTime: 300_000,
        cooldownPeriod: 30_000
      })
      assert.equal(config.enableAutoRecovery, true)
      assert.equal(config.enableHealthBasedTripping, true)
      assert.equal(config.enableAutoTuning, true)
      assert.equal(config.maxPeers, 10_000)
      assert.equal(config.idleTimeout, 600_000)
    })

    it('returns a fresh object each time', () => {
      const a = defaultProtectionConfig()
      a.recovery.successThreshold = 1
      a.circuitBreaker.timeout = 1
      const b = defaultProtectionConfig()
      assert.equal(b.recovery.successThreshold, 10)
      assert.equal(b.circuitBreaker.timeout, 60_000)
    })
  })
})
