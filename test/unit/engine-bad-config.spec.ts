/**
 * The engine classes on their own: every config field and every field of their second argument
 * (`clock`, `random`, `registry`, `maxPeers`, `idleTimeout`) refuses NaN, null, a wrong type and an
 * out-of-range value with an `InvalidConfigError` naming it, and nothing is left running (no timer).
 */

import assert from 'node:assert/strict'
import sinon from 'sinon'
import { BitswapCircuitBreaker, BitswapProtectionManager, CircuitBreaker, HealthMonitor, RecoveryManager } from '../../src/index.ts'

type Build = (config: object, options: object) => void

const CLASSES: Array<[name: string, build: Build, configFields: string[], optionFields: string[]]> = [
  ['CircuitBreaker', (c, o) => { void new CircuitBreaker('x', c, o) },
    ['maxRequests', 'interval', 'timeout', 'backoffMultiplier', 'maxTimeout', 'jitter', 'backoffDecay', 'maxHalfOpenDwell', 'readyToTrip', 'isSuccessful', 'onStateChange'],
    ['clock', 'random']],
  ['BitswapCircuitBreaker', (c, o) => { void new BitswapCircuitBreaker(c, o) },
    ['timeout', 'jitter', 'isSuccessful'],
    ['clock', 'random', 'registry', 'maxPeers', 'idleTimeout']],
  ['HealthMonitor', (c, o) => { new HealthMonitor(c, o).close() },
    ['healthyThreshold', 'degradedThreshold', 'maxResponseTime', 'maxConsecutiveErrors', 'minSamples', 'maxAge', 'window'],
    ['clock', 'registry', 'maxPeers']],
  ['RecoveryManager', (c, o) => { new RecoveryManager(c, o).close() },
    ['strategy', 'initialRecoveryRate', 'maxRecoveryRate', 'recoveryInterval', 'recoveryIncrement', 'successThreshold', 'failureThreshold', 'maxRecoveryTime', 'cooldownPeriod'],
    ['clock', 'registry', 'maxPeers']],
  ['BitswapProtectionManager', (c, o) => { new BitswapProtectionManager(c, o).close() },
    ['enableAutoRecovery', 'enableHealthBasedTripping', 'enableAutoTuning', 'maxPeers', 'idleTimeout', 'circuitBreaker', 'healthMonitor', 'recovery', 'populationGuard', 'autoTune'],
    ['clock', 'random']]
]

const FUNCTIONS = new Set(['readyToTrip', 'isSuccessful', 'onStateChange', 'random'])
const SECTIONS = new Set(['circuitBreaker', 'healthMonitor', 'recovery', 'populationGuard', 'autoTune', 'clock', 'registry'])
const BOOLEANS = new Set(['enableAutoRecovery', 'enableHealthBasedTripping', 'enableAutoTuning'])
/** `null` documented to mean something */
const NULL_OK = new Set(['readyToTrip', 'onStateChange'])

function bad (field: string): Array<[string, unknown]> {
  const values: Array<[string, unknown]> = NULL_OK.has(field) ? [] : [['null', null]]
  if (FUNCTIONS.has(field)) {
    values.push(['a string', 'yes'])
  } else if (SECTIONS.has(field)) {
    values.push(['a number', 5], ['an array', []])
  } else if (BOOLEANS.has(field)) {
    values.push(['"false"', 'false'], ['0', 0])
  } else if (field === 'strategy') {
    values.push(['"FAST"', 'FAST'])
  } else {
    values.push(['NaN', Number.NaN], ['a numeric string', '5'], ['-1', -1], ['-Infinity', -Infinity])
  }
  return values
}

describe('engine classes refuse bad config at construction', () => {
  let clock: sinon.SinonFakeTimers

  beforeEach(() => { clock = sinon.useFakeTimers() })
  afterEach(() => { clock.restore() })

  let count = 0
  for (const [name, build, configFields, optionFields] of CLASSES) {
    for (const [where, fields] of [['config', configFields], ['options', optionFields]] as const) {
      for (const field of fields) {
        for (const [label, value] of bad(field)) {
          count++
          const path = where === 'options' ? `options.${field}` : field
          it(`${name}: ${path} = ${label}`, () => {
            const config = where === 'config' ? { [field]: value } : {}
            const options = where === 'options' ? { [field]: value } : {}
            assert.throws(() => { build(config, options) }, (err: Error) => {
              assert.equal(err.name, 'InvalidConfigError')
              assert.ok(err.message.startsWith(`${path} must be `), err.message)
              return true
            })
            assert.equal(clock.countTimers(), 0, 'nothing was left running')
          })
        }
      }
    }
  }

  it('has a case for every field above', () => {
    assert.ok(count >= 100, `${count}`)
  })

  it('accepts the same fields when they are valid (so the checks can fail)', () => {
    new BitswapProtectionManager({ maxPeers: 10, idleTimeout: 1 }, { clock: { now: () => 0 }, random: Math.random }).close()
    void new CircuitBreaker('x', { timeout: 1, onStateChange: null, readyToTrip: null }, { clock: { now: () => 0 } })
  })
})
