import assert from 'node:assert/strict'
import {
  consecutiveFailuresReadyToTrip,
  defaultBitswapCircuitBreakerConfig,
  defaultIsSuccessful,
  defaultReadyToTrip,
  resolveCircuitBreakerConfig
} from '../../../src/breaker/config.ts'
import { InvalidConfigError } from '../../../src/errors.ts'
import type { CircuitBreakerConfig, Counts } from '../../../src/breaker/config.ts'

function counts (requests: number, totalFailures: number, consecutiveFailures = 0): Counts {
  return { requests, totalSuccesses: requests - totalFailures, totalFailures, consecutiveSuccesses: 0, consecutiveFailures }
}

describe('breaker config', () => {
  describe('defaults (seed DefaultBitswapCircuitBreakerConfig)', () => {
    it('has the seed values', () => {
      const config = defaultBitswapCircuitBreakerConfig()
      assert.equal(config.maxRequests, 10)
      assert.equal(config.interval, 30_000)
      assert.equal(config.timeout, 60_000)
      assert.equal(config.backoffMultiplier, 2)
      assert.equal('maxTimeout' in config, false, 'derived from timeout, so not carried')
      assert.equal(resolveCircuitBreakerConfig(config).maxTimeout, 600_000)
      assert.equal(config.jitter, 0.2)
      assert.equal(config.backoffDecay, 300_000)
      assert.equal(config.maxHalfOpenDwell, 120_000)
    })

    it('trips on {5 requests, 3 failures} but not on {2, 1} (seed TestCircuitBreaker_DefaultConfig)', () => {
      const { readyToTrip } = defaultBitswapCircuitBreakerConfig()
      assert.equal(readyToTrip(counts(5, 3)), true)
      assert.equal(readyToTrip(counts(2, 1)), false)
      assert.equal(readyToTrip(counts(2, 2)), false, 'fewer than 3 requests never trips')
      assert.equal(readyToTrip(counts(3, 2)), true)
      assert.equal(readyToTrip(counts(10, 5)), false, '0.5 < 0.6')
      assert.equal(readyToTrip(counts(10, 6)), true, 'the ratio is inclusive')
      assert.equal(defaultReadyToTrip, readyToTrip)
    })

    it('isSuccessful is err == null', () => {
      const { isSuccessful } = defaultBitswapCircuitBreakerConfig()
      assert.equal(isSuccessful(undefined), true)
      assert.equal(isSuccessful(null), true)
      assert.equal(isSuccessful(new Error('boom')), false)
      assert.equal(isSuccessful('string error'), false)
      assert.equal(defaultIsSuccessful, isSuccessful)
    })

    it('gobreaker fallback rule trips strictly above 5 consecutive failures', () => {
      assert.equal(consecutiveFailuresReadyToTrip(counts(5, 5, 5)), false)
      assert.equal(consecutiveFailuresReadyToTrip(counts(6, 6, 6)), true)
    })

    it('returns a fresh object each time', () => {
      const a = defaultBitswapCircuitBreakerConfig()
      a.maxRequests = 99
      assert.equal(defaultBitswapCircuitBreakerConfig().maxRequests, 10)
    })
  })

  describe('resolveCircuitBreakerConfig', () => {
    it('fills omitted fields with the defaults', () => {
      const resolved = resolveCircuitBreakerConfig({ maxRequests: 3 })
      assert.equal(resolved.maxRequests, 3)
      assert.equal(resolved.interval, 30_000)
      assert.equal(resolved.timeout, 60_000)
      assert.equal(resolved.readyToTrip, defaultReadyToTrip)
      assert.equal(resolved.isSuccessful, defaultIsSuccessful)
      assert.equal(resolved.onStateChange, undefined)
      assert.deepEqual(resolveCircuitBreakerConfig(), resolveCircuitBreakerConfig({}))
    })

    it('applies the gobreaker fallbacks', () => {
      assert.equal(resolveCircuitBreakerConfig({ maxRequests: 0 }).maxRequests, 1)
      assert.equal(resolveCircuitBreakerConfig({ timeout: 0 }).timeout, 60_000)
      assert.equal(resolveCircuitBreakerConfig({ interval: 0 }).interval, 0)
      assert.equal(resolveCircuitBreakerConfig({ readyToTrip: null }).readyToTrip, consecutiveFailuresReadyToTrip)
    })

    it('keeps user functions', () => {
      const readyToTrip = (): boolean => true
      const isSuccessful = (): boolean => true
      const onStateChange = (): void => {}
      const resolved = resolveCircuitBreakerConfig({ readyToTrip, isSuccessful, onStateChange })
      assert.equal(resolved.readyToTrip, readyToTrip)
      assert.equal(resolved.isSuccessful, isSuccessful)
      assert.equal(resolved.onStateChange, onStateChange)
    })

    it('is idempotent on a resolved config', () => {
      const resolved = resolveCircuitBreakerConfig({ maxRequests: 4, timeout: 1000, interval: 0 })
      assert.deepEqual(resolveCircuitBreakerConfig(resolved), resolved)
    })

    it('raises the default maxTimeout to a longer timeout, but rejects an explicit shorter one', () => {
      assert.equal(resolveCircuitBreakerConfig({ timeout: 900_000 }).maxTimeout, 900_000)
      assert.throws(() => resolveCircuitBreakerConfig({ timeout: 900_000, maxTimeout: 600_000 }), /^InvalidConfigError: maxTimeout must be a number >= 900000, or Infinity, got 600000$/)
    })

    it('accepts Infinity where "never" makes sense', () => {
      const resolved = resolveCircuitBreakerConfig({ interval: Infinity, backoffDecay: Infinity, maxHalfOpenDwell: Infinity, maxTimeout: Infinity })
      assert.equal(resolved.interval, Infinity)
      assert.equal(resolved.backoffDecay, Infinity)
      assert.equal(resolved.maxHalfOpenDwell, Infinity)
    })

    const bad: Array<[keyof CircuitBreakerConfig, unknown, RegExp]> = [
      ['maxRequests', -1, /^maxRequests must be an integer >= 0 and <= 4294967295, got -1$/],
      ['maxRequests', 1.5, /^maxRequests must be an integer/],
      ['maxRequests', Number.NaN, /^maxRequests must be an integer/],
      ['maxRequests', Infinity, /^maxRequests must be an integer/],
      ['maxRequests', '10', /^maxRequests must be an integer/],
      ['interval', Number.NaN, /^interval must be a number >= 0, or Infinity, got NaN$/],
      ['interval', '30s', /^interval must be a number/],
      ['timeout', Number.NaN, /^timeout must be a number > 0, got NaN$/],
      ['timeout', 'x', /^timeout must be a number/],
      ['readyToTrip', 'yes', /^readyToTrip must be a function, got "yes"$/],
      ['isSuccessful', 5, /^isSuccessful must be a function, got 5$/],
      ['onStateChange', 'log', /^onStateChange must be a function, got "log"$/],
      ['backoffMultiplier', 0.5, /^backoffMultiplier must be a number >= 1 and <= 1000, got 0.5$/],
      ['backoffMultiplier', -2, /^backoffMultiplier must be a number/],
      ['maxTimeout', -1, /^maxTimeout must be a number >= 60000, or Infinity, got -1$/],
      ['maxTimeout', 1000, /^maxTimeout must be a number >= 60000/],
      ['jitter', 1.5, /^jitter must be a number >= 0 and <= 1, got 1.5$/],
      ['jitter', -0.1, /^jitter must be a number >= 0 and <= 1/],
      ['backoffDecay', 0, /^backoffDecay must be a number > 0, or Infinity, got 0$/],
      ['backoffDecay', -1, /^backoffDecay must be a number > 0/],
      ['maxHalfOpenDwell', 0, /^maxHalfOpenDwell must be a number > 0, or Infinity, got 0$/],
      ['maxHalfOpenDwell', -5, /^maxHalfOpenDwell must be a number > 0/]
    ]

    for (const [field, value, message] of bad) {
      it(`rejects ${field} = ${String(value)} naming the field`, () => {
        assert.throws(() => resolveCircuitBreakerConfig({ [field]: value }), (err: Error) => {
          assert.ok(err instanceof InvalidConfigError)
          assert.equal(err.name, 'InvalidConfigError')
          assert.match(err.message, message)
          return true
        })
      })
    }

    it('prefixes field names with the path', () => {
      assert.throws(() => resolveCircuitBreakerConfig({ jitter: 2 }, 'circuitBreaker'), /^InvalidConfigError: circuitBreaker\.jitter must be/)
    })

    it('rejects a config that is not an object', () => {
      assert.throws(() => resolveCircuitBreakerConfig(null as unknown as CircuitBreakerConfig), /^InvalidConfigError: config must be an object, got null$/)
      assert.throws(() => resolveCircuitBreakerConfig(5 as unknown as CircuitBreakerConfig, 'circuitBreaker'), /^InvalidConfigError: circuitBreaker must be an object/)
    })
  })
})
