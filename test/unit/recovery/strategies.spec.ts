/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { MIN_EXPONENTIAL_RATE, recoveryRate } from '../../../src/recovery/strategies.ts'
import { RecoveryStrategy } from '../../../src/states.ts'

const STRATEGIES = [RecoveryStrategy.LINEAR, RecoveryStrategy.STEP, RecoveryStrategy.EXPONENTIAL]

/** The seed's rate table (seed-origin §5.4): defaults initial 0.1, increment 0.1, max 1.0 */
const SEED_TABLE: Array<[intervals: number, linear: number, step: number, exponential: number]> = [
  [0.5, 0.15, 0.10, 0.10],
  [1, 0.20, 0.20, 0.110],
  [2, 0.30, 0.30, 0.121],
  [5, 0.60, 0.60, 0.161],
  [9, 1.0, 1.0, 0.236],
  [10, 1.0, 1.0, 0.259],
  [20, 1.0, 1.0, 0.673],
  [24, 1.0, 1.0, 0.985],
  [25, 1.0, 1.0, 1.0]
]

describe('recovery strategies', () => {
  it('reproduce the seed rate table', () => {
    for (const [k, linear, step, exponential] of SEED_TABLE) {
      assert.ok(Math.abs(recoveryRate('LINEAR', 0.1, 0.1, 1, k) - linear) < 1e-9, `LINEAR at ${k}`)
      assert.ok(Math.abs(recoveryRate('STEP', 0.1, 0.1, 1, k) - step) < 1e-9, `STEP at ${k}`)
      // the table rounds to 3 places
      assert.ok(Math.abs(recoveryRate('EXPONENTIAL', 0.1, 0.1, 1, k) - exponential) < 0.0005, `EXPONENTIAL at ${k}`)
    }
  })

  it('start at the initial rate (EXPONENTIAL from at least MIN_EXPONENTIAL_RATE)', () => {
    assert.equal(recoveryRate('LINEAR', 0.1, 0.1, 1, 0), 0.1)
    assert.equal(recoveryRate('STEP', 0.1, 0.1, 1, 0), 0.1)
    assert.equal(recoveryRate('EXPONENTIAL', 0.1, 0.1, 1, 0), 0.1)
    assert.equal(recoveryRate('LINEAR', 0, 0.1, 1, 0), 0)
    assert.equal(recoveryRate('EXPONENTIAL', 0, 0.1, 1, 0), MIN_EXPONENTIAL_RATE)
  })

  it('never leave EXPONENTIAL stuck at 0 (seed bug 12)', () => {
    assert.ok(recoveryRate('EXPONENTIAL', 0, 1, 1, 3) > MIN_EXPONENTIAL_RATE)
    assert.equal(recoveryRate('EXPONENTIAL', 0, 1, 1, 10), 1)
  })

  it('cap at max also before the first whole interval (seed bug 12)', () => {
    assert.equal(recoveryRate('EXPONENTIAL', 0.5, 0.1, 0.3, 0), 0.3)
    assert.equal(recoveryRate('EXPONENTIAL', 0.5, 0.1, 0.3, 0.9), 0.3)
  })

  it('treat negative elapsed time (a clock stepping back) as the start', () => {
    for (const strategy of STRATEGIES) {
      assert.equal(recoveryRate(strategy, 0.2, 0.1, 1, -3), 0.2)
    }
  })

  it('are monotone, within [0, max], and reach max eventually (property)', () => {
    fc.assert(fc.property(
      fc.constantFrom(...STRATEGIES),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0.001, max: 5, noNaN: true }),
      fc.double({ min: 0.01, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 1e4, noNaN: true }),
      fc.double({ min: 0, max: 10, noNaN: true }),
      (strategy, initial, increment, max, k, dk) => {
        fc.pre(initial <= max)
        const a = recoveryRate(strategy, initial, increment, max, k)
        const b = recoveryRate(strategy, initial, increment, max, k + dk)
        assert.ok(a >= 0 && a <= max)
        assert.ok(b >= a)
        assert.equal(recoveryRate(strategy, initial, increment, max, 1e7), max)
      }
    ))
  })
})
