/**
 * The "spread the defaults" pattern: `{ ...defaultX(), field: v }` must be valid for every field
 * and every value in its documented range (with the other fields at their defaults), and must mean
 * exactly what `{ field: v }` means. Derived fields (`maxTimeout`, the auto-tune maxima) are left
 * out of the defaults for this reason: carried along, they would conflict with a raised timeout.
 */

import assert from 'node:assert/strict'
import fc from 'fast-check'
import { defaultBitswapCircuitBreakerConfig, resolveCircuitBreakerConfig } from '../../src/breaker/config.ts'
import { defaultHealthMonitorConfig, resolveHealthMonitorConfig } from '../../src/health/config.ts'
import { defaultRecoveryConfig, resolveRecoveryConfig } from '../../src/recovery/config.ts'
import {
  defaultAutoTuneConfig,
  defaultPopulationGuardConfig,
  defaultProtectionConfig,
  resolveAutoTuneConfig,
  resolvePopulationGuardConfig,
  resolveProtectionConfig
} from '../../src/protection/config.ts'
import { BitswapProtectionManager, CircuitBreaker, HealthMonitor, RecoveryManager } from '../../src/index.ts'
import { RecoveryStrategy } from '../../src/states.ts'

const NUM_RUNS = 60
const MAX_UINT16 = 65_535
const MAX_UINT32 = 0xFFFFFFFF

/** A number in [min, max], optionally excluding min, optionally also Infinity (documented "off") */
function num (min: number, max: number, options: { minExcluded?: boolean, off?: boolean } = {}): fc.Arbitrary<number> {
  const finite = fc.oneof(
    fc.double({ min, max, noNaN: true, minExcluded: options.minExcluded === true }),
    // the edges, which a uniform draw rarely hits
    fc.constantFrom(...[options.minExcluded === true ? undefined : min, max].filter((v): v is number => v !== undefined))
  )
  return options.off === true ? fc.oneof(finite, fc.constant(Infinity)) : finite
}

function int (min: number, max: number, options: { off?: boolean } = {}): fc.Arbitrary<number> {
  const finite = fc.oneof(fc.integer({ min, max }), fc.constantFrom(min, max))
  return options.off === true ? fc.oneof(finite, fc.constant(Infinity)) : finite
}

const fn = fc.constant((): boolean => true)
const bool = fc.boolean()

type Ranges = Record<string, fc.Arbitrary<unknown>>

/** Each field's documented range, given the other fields at their defaults */
const BREAKER: Ranges = {
  maxRequests: int(0, MAX_UINT32),
  interval: num(0, 1e10, { off: true }),
  // 0 is gobreaker's "default"; far above the 10 min default maxTimeout is the case that used to throw
  timeout: fc.oneof(num(0, 1e10), fc.constantFrom(600_001, 3_600_000)),
  readyToTrip: fc.oneof(fn, fc.constant(null)),
  isSuccessful: fn,
  onStateChange: fc.oneof(fc.constant(() => {}), fc.constant(null)),
  backoffMultiplier: num(1, 1000),
  maxTimeout: num(60_000, 1e10, { off: true }),
  jitter: num(0, 1),
  backoffDecay: num(0, 1e10, { minExcluded: true, off: true }),
  maxHalfOpenDwell: num(0, 1e10, { minExcluded: true, off: true })
}

const HEALTH: Ranges = {
  // at least the default degradedThreshold (0.8), which the spread carries
  healthyThreshold: num(0.8, 1),
  // at most the default healthyThreshold (0.95)
  degradedThreshold: num(0, 0.95),
  maxResponseTime: num(0, 1e9, { minExcluded: true, off: true }),
  maxConsecutiveErrors: int(1, MAX_UINT16),
  minSamples: int(1, MAX_UINT16),
  maxAge: num(0, 1e12, { minExcluded: true }),
  window: num(1, 2 ** 31)
}

const RECOVERY: Ranges = {
  strategy: fc.constantFrom(RecoveryStrategy.LINEAR, RecoveryStrategy.EXPONENTIAL, RecoveryStrategy.STEP),
  initialRecoveryRate: num(0, 1),
  // at least the default initialRecoveryRate (0.1)
  maxRecoveryRate: num(0.1, 1),
  recoveryInterval: num(0, 2 ** 31, { minExcluded: true }),
  recoveryIncrement: num(0, 1000, { minExcluded: true }),
  successThreshold: int(1, MAX_UINT16),
  failureThreshold: int(1, MAX_UINT16),
  maxRecoveryTime: num(0, 1e12, { minExcluded: true, off: true }),
  cooldownPeriod: num(0, 2 ** 31)
}

const POPULATION: Ranges = {
  maxOpenShare: num(0, 1),
  localFailureShare: num(0, 1),
  minPeersForLocalSuspicion: int(1, MAX_UINT32, { off: true }),
  localFailureWindow: num(0, 2 ** 31, { minExcluded: true }),
  outlierDetection: bool,
  outlierStdevFactor: num(0, 100),
  outlierMinVolume: int(1, MAX_UINT32),
  outlierMinPeers: int(2, 2 ** 24),
  outlierInterval: num(1, 2 ** 31)
}

const AUTO_TUNE: Ranges = {
  rateWindow: num(1, 2 ** 31),
  rateSmoothing: num(0, 1, { minExcluded: true }),
  // above the default maxTripRequests (20) too: that maximum is derived, so it follows
  minTripRequests: int(1, MAX_UINT32),
  maxTripRequests: int(3, MAX_UINT32),
  minTripFailureRatio: num(0, 1),
  maxTripFailureRatio: num(0.6, 1),
  minRampSpeed: num(0, 1, { minExcluded: true }),
  maxRampSpeed: num(1, 1000)
}

const PROTECTION: Ranges = {
  enableAutoRecovery: bool,
  enableHealthBasedTripping: bool,
  enableAutoTuning: bool,
  maxPeers: int(1, 2 ** 24),
  idleTimeout: num(0, 1e12, { off: true })
}

interface Subject {
  name: string
  defaults: () => object
  resolve: (config: object) => unknown
  ranges: Ranges
  /** Builds the real component, so the resolved value is also accepted where it is used */
  build: (config: object) => void
}

const SUBJECTS: Subject[] = [
  {
    name: 'defaultBitswapCircuitBreakerConfig',
    defaults: defaultBitswapCircuitBreakerConfig,
    resolve: resolveCircuitBreakerConfig,
    ranges: BREAKER,
    build: (config) => { void new CircuitBreaker('x', config) }
  },
  {
    name: 'defaultHealthMonitorConfig',
    defaults: defaultHealthMonitorConfig,
    resolve: resolveHealthMonitorConfig,
    ranges: HEALTH,
    build: (config) => { new HealthMonitor(config).close() }
  },
  {
    name: 'defaultRecoveryConfig',
    defaults: defaultRecoveryConfig,
    resolve: resolveRecoveryConfig,
    ranges: RECOVERY,
    build: (config) => { new RecoveryManager(config).close() }
  },
  {
    name: 'defaultPopulationGuardConfig',
    defaults: defaultPopulationGuardConfig,
    resolve: resolvePopulationGuardConfig,
    ranges: POPULATION,
    build: (config) => { new BitswapProtectionManager({ populationGuard: config }).close() }
  },
  {
    name: 'defaultAutoTuneConfig',
    defaults: defaultAutoTuneConfig,
    resolve: resolveAutoTuneConfig,
    ranges: AUTO_TUNE,
    build: (config) => { new BitswapProtectionManager({ autoTune: config }).close() }
  },
  {
    name: 'defaultProtectionConfig',
    defaults: defaultProtectionConfig,
    resolve: resolveProtectionConfig,
    ranges: PROTECTION,
    build: (config) => { new BitswapProtectionManager(config).close() }
  }
]

/** Functions compare by identity, and resolved configs hold the user's own */
function same (a: unknown, b: unknown): void {
  assert.deepStrictEqual(a, b)
}

describe('spreading an exported default and changing one field', () => {
  for (const subject of SUBJECTS) {
    describe(`{ ...${subject.name}(), field: v }`, () => {
      it('lists a range for every field of the defaults', () => {
        const fields = Object.keys(subject.defaults()).filter(f => typeof (subject.defaults() as Record<string, unknown>)[f] !== 'object')
        for (const field of fields) {
          assert.ok(field in subject.ranges, `no range for ${field}`)
        }
      })

      for (const [field, range] of Object.entries(subject.ranges)) {
        it(`is valid, and means { ${field}: v }, for every v in ${field}'s range`, () => {
          fc.assert(fc.property(range, (value) => {
            const spread = { ...subject.defaults(), [field]: value }
            same(subject.resolve(spread), subject.resolve({ [field]: value }))
            subject.build(spread)
          }), { numRuns: NUM_RUNS })
        })
      }
    })
  }

  it('works nested: { ...defaultProtectionConfig(), circuitBreaker: { ...defaults.circuitBreaker, timeout } }', () => {
    fc.assert(fc.property(num(0, 1e10), (timeout) => {
      const defaults = defaultProtectionConfig()
      const config = { ...defaults, circuitBreaker: { ...defaults.circuitBreaker, timeout } }
      const manager = new BitswapProtectionManager(config)
      assert.equal(manager.circuitBreaker.config.maxTimeout, Math.max(600_000, manager.circuitBreaker.config.timeout))
      manager.close()
    }), { numRuns: NUM_RUNS })
  })

  it('the case from the issue: a one-hour timeout over the spread defaults', () => {
    const breaker = new CircuitBreaker('x', { ...defaultBitswapCircuitBreakerConfig(), timeout: 3_600_000 })
    assert.equal(breaker.config.timeout, 3_600_000)
    assert.equal(breaker.config.maxTimeout, 3_600_000)
  })

  it('an explicit maxTimeout below the timeout still throws, naming it', () => {
    assert.throws(() => resolveCircuitBreakerConfig({ timeout: 3_600_000, maxTimeout: 600_000 }, 'circuitBreaker'), {
      name: 'InvalidConfigError',
      message: 'circuitBreaker.maxTimeout must be a number >= 3600000, or Infinity, got 600000'
    })
  })
})
