import assert from 'node:assert/strict'
import fc from 'fast-check'
import { MinHeap } from '../../../src/util/min-heap.ts'

class Item {
  heapSeq = 0
  heapIndex = -1
  constructor (public heapKey: number, readonly id: number) {}
}

function heapOf (): MinHeap<Item> {
  return new MinHeap<Item>()
}

function drain (heap: MinHeap<Item>): number[] {
  const out: number[] = []
  for (let item = heap.pop(); item !== undefined; item = heap.pop()) {
    out.push(item.id)
  }
  return out
}

describe('util/min-heap', () => {
  it('pops in key order, equal keys first-pushed first', () => {
    const heap = heapOf()
    const items = [5, 1, 3, 1, 4].map((key, id) => new Item(key, id))
    items.forEach(item => { heap.push(item) })
    assert.equal(heap.size, 5)
    assert.equal(heap.peek(), items[1])
    assert.deepEqual(drain(heap), [1, 3, 2, 4, 0])
    assert.equal(heap.size, 0)
    assert.equal(heap.peek(), undefined)
    assert.equal(heap.pop(), undefined)
    assert.ok(items.every(item => item.heapIndex === -1), 'a popped item is marked outside')
  })

  it('removes any item, once; an item outside the heap is refused', () => {
    const heap = heapOf()
    const items = [4, 2, 6, 1, 3].map((key, id) => new Item(key, id))
    items.forEach(item => { heap.push(item) })
    assert.equal(heap.remove(items[2]), true)
    assert.equal(heap.remove(items[2]), false)
    assert.equal(heap.has(items[2]), false)
    assert.equal(heap.remove(new Item(0, 9)), false)
    // an index that points into the heap but at another item is not membership
    const stranger = new Item(0, 8)
    stranger.heapIndex = 0
    assert.equal(heap.has(stranger), false)
    assert.equal(heap.remove(stranger), false)
    assert.deepEqual(drain(heap), [3, 1, 4, 0])
  })

  it('update restores the order after a key moves either way', () => {
    const heap = heapOf()
    const items = [10, 20, 30, 40].map((key, id) => new Item(key, id))
    items.forEach(item => { heap.push(item) })
    items[3].heapKey = 5
    heap.update(items[3])
    assert.equal(heap.peek(), items[3])
    items[3].heapKey = 35
    heap.update(items[3])
    assert.deepEqual(drain(heap), [0, 1, 2, 3])
  })

  it('clear empties it and marks every item outside', () => {
    const heap = heapOf()
    const items = [3, 1, 2].map((key, id) => new Item(key, id))
    items.forEach(item => { heap.push(item) })
    assert.equal([...heap].length, 3)
    heap.clear()
    assert.equal(heap.size, 0)
    assert.ok(items.every(item => item.heapIndex === -1 && !heap.has(item)))
  })

  it('property: any mix of push, pop, remove and update pops what a sorted list would', () => {
    const op = fc.oneof(
      fc.record({ t: fc.constant('push' as const), key: fc.integer({ min: 0, max: 20 }) }),
      fc.record({ t: fc.constant('pop' as const) }),
      fc.record({ t: fc.constant('remove' as const), pick: fc.nat() }),
      fc.record({ t: fc.constant('update' as const), pick: fc.nat(), key: fc.integer({ min: 0, max: 20 }) })
    )
    fc.assert(fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const heap = heapOf()
      let model: Item[] = []
      // ids are given in push order, so they are the tie-break the heap promises
      const ordered = (): Item[] => [...model].sort((a, b) => a.heapKey - b.heapKey || a.id - b.id)
      let id = 0
      for (const o of ops) {
        if (o.t === 'push') {
          const item = new Item(o.key, id++)
          heap.push(item)
          model.push(item)
        } else if (o.t === 'pop') {
          const expected = ordered()[0]
          assert.equal(heap.pop(), expected)
          model = model.filter(item => item !== expected)
        } else if (model.length > 0) {
          const item = model[o.pick % model.length]
          if (o.t === 'remove') {
            assert.equal(heap.remove(item), true)
            model = model.filter(other => other !== item)
          } else {
            item.heapKey = o.key
            heap.update(item)
          }
        }
        assert.equal(heap.size, model.length)
        assert.equal(heap.peek(), ordered()[0])
        assert.ok(model.every(item => heap.has(item)))
      }
      assert.deepEqual(drain(heap), ordered().map(item => item.id))
    }), { numRuns: 300 })
  })
})
