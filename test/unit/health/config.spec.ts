/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import { defaultHealthMonitorConfig, resolveHealthMonitorConfig } from '../../../src/health/config.ts'
import { HealthMonitor } from '../../../src/health/health-monitor.ts'
import { rejectsConfig } from '../helpers.ts'
import type { HealthMonitorConfig } from '../../../src/health/config.ts'

const rejects = rejectsConfig<HealthMonitorConfig>(resolveHealthMonitorConfig)

describe('health monitor config', () => {
  it('fills in the seed defaults and a 60 s window', () => {
    assert.deepEqual(resolveHealthMonitorConfig(), {
      healthyThreshold: 0.95,
      degradedThreshold: 0.80,
      maxResponseTime: 5000,
      maxConsecutiveErrors: 5,
      minSamples: 3,
      maxAge: 600_000,
      window: 60_000
    })
    assert.deepEqual(resolveHealthMonitorConfig({}), defaultHealthMonitorConfig())
  })

  it('keeps valid values, including degraded == healthy and an infinite maxResponseTime', () => {
    const config = resolveHealthMonitorConfig({ healthyThreshold: 0.5, degradedThreshold: 0.5, maxResponseTime: Infinity, minSamples: 1 })
    assert.equal(config.degradedThreshold, 0.5)
    assert.equal(config.maxResponseTime, Infinity)
    assert.equal(config.minSamples, 1)
  })

  it('rejects each bad field, naming it', () => {
    rejects({ healthyThreshold: 1.5 }, /^healthyThreshold must be a number >= 0 and <= 1, got 1.5$/)
    rejects({ healthyThreshold: -0.1 }, /^healthyThreshold /)
    rejects({ healthyThreshold: Number.NaN }, /^healthyThreshold /)
    rejects({ healthyThreshold: '0.9' as unknown as number }, /^healthyThreshold /)
    rejects({ degradedThreshold: 0.96 }, /^degradedThreshold must be a number >= 0 and <= 0.95, got 0.96$/)
    rejects({ healthyThreshold: 0.7, degradedThreshold: 0.8 }, /^degradedThreshold .* <= 0.7/)
    rejects({ degradedThreshold: -1 }, /^degradedThreshold /)
    rejects({ maxResponseTime: 0 }, /^maxResponseTime must be a number > 0, or Infinity, got 0$/)
    rejects({ maxResponseTime: -5 }, /^maxResponseTime /)
    rejects({ maxConsecutiveErrors: 0 }, /^maxConsecutiveErrors must be an integer >= 1 and <= 65535, got 0$/)
    rejects({ maxConsecutiveErrors: 2.5 }, /^maxConsecutiveErrors /)
    rejects({ maxConsecutiveErrors: 70_000 }, /^maxConsecutiveErrors /)
    rejects({ minSamples: 0 }, /^minSamples must be an integer >= 1/)
    rejects({ minSamples: 1.5 }, /^minSamples /)
    rejects({ maxAge: 0 }, /^maxAge must be a number > 0, got 0$/)
    rejects({ window: 0 }, /^window must be a number >= 1/)
    rejects({ window: Infinity }, /^window /)
  })

  it('prefixes the field with the path', () => {
    assert.throws(() => resolveHealthMonitorConfig({ window: -1 }, 'healthMonitor'), /^InvalidConfigError: healthMonitor\.window /)
    assert.throws(() => resolveHealthMonitorConfig(null as unknown as HealthMonitorConfig, 'healthMonitor'), /healthMonitor must be an object/)
  })

  it('is validated by the constructor', () => {
    assert.throws(() => new HealthMonitor({ minSamples: -1 }), { name: 'InvalidConfigError' })
  })
})
