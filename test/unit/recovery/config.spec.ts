/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import { defaultRecoveryConfig, resolveRecoveryConfig } from '../../../src/recovery/config.ts'
import { RecoveryManager } from '../../../src/recovery/recovery-manager.ts'
import { rejectsConfig } from '../helpers.ts'
import type { RecoveryConfig } from '../../../src/recovery/config.ts'

const rejects = rejectsConfig<RecoveryConfig>(resolveRecoveryConfig)

describe('recovery config', () => {
  it('fills in the seed defaults', () => {
    assert.deepEqual(resolveRecoveryConfig(), {
      strategy: 'EXPONENTIAL',
      initialRecoveryRate: 0.1,
      maxRecoveryRate: 1.0,
      recoveryInterval: 10_000,
      recoveryIncrement: 0.1,
      successThreshold: 10,
      failureThreshold: 3,
      maxRecoveryTime: 300_000,
      cooldownPeriod: 30_000
    })
    assert.deepEqual(resolveRecoveryConfig({}), defaultRecoveryConfig())
  })

  it('keeps valid values: initial == max, zero cooldown, no time limit', () => {
    const config = resolveRecoveryConfig({ strategy: 'STEP', initialRecoveryRate: 0.5, maxRecoveryRate: 0.5, cooldownPeriod: 0, maxRecoveryTime: Infinity })
    assert.equal(config.strategy, 'STEP')
    assert.equal(config.initialRecoveryRate, 0.5)
    assert.equal(config.cooldownPeriod, 0)
    assert.equal(config.maxRecoveryTime, Infinity)
  })

  it('rejects each bad field, naming it', () => {
    rejects({ strategy: 'RANDOM' as 'LINEAR' }, /^strategy must be one of LINEAR, EXPONENTIAL, STEP, got "RANDOM"$/)
    rejects({ strategy: 1 as unknown as 'LINEAR' }, /^strategy /)
    rejects({ maxRecoveryRate: 0 }, /^maxRecoveryRate must be a number > 0 and <= 1, got 0$/)
    rejects({ maxRecoveryRate: 1.5 }, /^maxRecoveryRate /)
    rejects({ initialRecoveryRate: -0.1 }, /^initialRecoveryRate must be a number >= 0 and <= 1, got -0.1$/)
    rejects({ initialRecoveryRate: 0.6, maxRecoveryRate: 0.5 }, /^initialRecoveryRate must be a number >= 0 and <= 0.5, got 0.6$/)
    rejects({ initialRecoveryRate: Number.NaN }, /^initialRecoveryRate /)
    rejects({ recoveryInterval: 0 }, /^recoveryInterval must be a number > 0/)
    rejects({ recoveryInterval: -10 }, /^recoveryInterval /)
    rejects({ recoveryIncrement: 0 }, /^recoveryIncrement must be a number > 0/)
    rejects({ recoveryIncrement: '0.1' as unknown as number }, /^recoveryIncrement /)
    rejects({ successThreshold: 0 }, /^successThreshold must be an integer >= 1/)
    rejects({ successThreshold: 2.5 }, /^successThreshold /)
    rejects({ failureThreshold: 0 }, /^failureThreshold must be an integer >= 1/)
    rejects({ failureThreshold: 1e6 }, /^failureThreshold /)
    rejects({ maxRecoveryTime: 0 }, /^maxRecoveryTime must be a number > 0, or Infinity, got 0$/)
    rejects({ cooldownPeriod: -1 }, /^cooldownPeriod must be a number >= 0/)
  })

  it('prefixes the field with the path', () => {
    assert.throws(() => resolveRecoveryConfig({ failureThreshold: 0 }, 'recovery'), /^InvalidConfigError: recovery\.failureThreshold /)
    assert.throws(() => resolveRecoveryConfig('fast' as unknown as RecoveryConfig, 'recovery'), /recovery must be an object/)
  })

  it('is validated by the constructor', () => {
    assert.throws(() => new RecoveryManager({ recoveryInterval: 0 }), { name: 'InvalidConfigError' })
  })
})
