import assert from 'node:assert/strict'
import { growColumn, growFloat64, growUint8 } from '../../../src/peers/columns.ts'

describe('growColumn', () => {
  for (const Type of [Float64Array, Float32Array, Int32Array, Uint32Array, Uint16Array, Uint8Array]) {
    it(`keeps a ${Type.name}'s type and contents, and zeroes the new slots`, () => {
      const column = new Type([1, 2, 3])

      const grown = growColumn(column, 5)

      assert.equal(grown.constructor, Type)
      assert.deepEqual(Array.from(grown), [1, 2, 3, 0, 0])
      assert.notEqual(grown.buffer, column.buffer, 'a new buffer: the old column is left as it was')
      assert.deepEqual(Array.from(column), [1, 2, 3])
    })
  }

  it('is what the per-type names call', () => {
    assert.equal(growFloat64, growColumn)
    assert.equal(growUint8, growColumn)
    assert.ok(growFloat64(new Float64Array([0.5]), 2) instanceof Float64Array)
  })
})
