/**
 * Setup the unit specs share: a hand-driven clock, the rejection of a promise, config validation
 * checks, and the per-peer memory of a component's columns.
 */

import assert from 'node:assert/strict'

/** A clock that moves only when told: set `time` or `tick` */
export class FakeClock {
  constructor (public time = 1_000_000) {}
  now = (): number => this.time
  tick (ms: number): void { this.time += ms }
}

/** Resolves to the rejection (or throws if it resolved) */
export async function rejection (promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a rejection')
}

/** A check that `resolve(config)` throws an InvalidConfigError whose message matches `pattern` */
export function rejectsConfig<C> (resolve: (config: C) => unknown): (config: C, pattern: RegExp) => void {
  return (config, pattern) => {
    assert.throws(() => resolve(config), (err: Error) => {
      assert.equal(err.name, 'InvalidConfigError')
      assert.match(err.message, pattern)
      return true
    })
  }
}

/** Bytes per tracked peer held in the component's typed-array columns */
export function bytesPerSlot (component: object, capacity: number): number {
  let bytes = 0
  for (const value of Object.values(component)) {
    if (ArrayBuffer.isView(value)) {
      bytes += value.byteLength
    }
  }
  return bytes / capacity
}
