import assert from 'node:assert/strict'
import fc from 'fast-check'
import { LinkedList, ListNode } from '../../../src/util/linked-list.ts'

function values<T> (list: LinkedList<T>): T[] {
  return [...list]
}

/** Walks the links both ways, so a broken back link shows */
function backwards<T> (list: LinkedList<T>): T[] {
  const out: T[] = []
  for (let node = list.tail; node !== null; node = node.prev) {
    out.push(node.value)
  }
  return out
}

describe('util/linked-list', () => {
  it('keeps insertion order; removing from the head, middle and tail relinks both ways', () => {
    const list = new LinkedList<string>()
    const nodes = ['a', 'b', 'c', 'd', 'e'].map(v => new ListNode(v))
    nodes.forEach(node => { list.push(node) })
    assert.deepEqual(values(list), ['a', 'b', 'c', 'd', 'e'])
    assert.equal(list.first, 'a')
    assert.equal(list.remove(nodes[2]), true)
    assert.equal(list.remove(nodes[0]), true)
    nodes[4].unlink()
    assert.deepEqual(values(list), ['b', 'd'])
    assert.deepEqual(backwards(list), ['d', 'b'])
    assert.equal(list.size, 2)
    assert.equal(nodes[2].list, null)
    assert.equal(nodes[2].prev, null)
    assert.equal(nodes[2].next, null)
  })

  it('a node is in one list at a time: pushing it elsewhere moves it', () => {
    const one = new LinkedList<number>()
    const two = new LinkedList<number>()
    const node = new ListNode(1)
    one.push(node)
    one.push(new ListNode(2))
    two.push(node)
    assert.deepEqual(values(one), [2])
    assert.deepEqual(values(two), [1])
    assert.equal(node.list, two)
    assert.equal(one.remove(node), false, 'a list refuses a node it does not hold')
    assert.deepEqual(values(two), [1])
  })

  it('moveToEnd makes a node the most recent, appending it when it was out', () => {
    const list = new LinkedList<string>()
    const [a, b, c] = ['a', 'b', 'c'].map(v => new ListNode(v))
    list.push(a)
    list.push(b)
    list.moveToEnd(a)
    list.moveToEnd(a)
    list.moveToEnd(c)
    assert.deepEqual(values(list), ['b', 'a', 'c'])
    assert.deepEqual(backwards(list), ['c', 'a', 'b'])
  })

  it('clear unlinks every node; iteration survives removing the current value', () => {
    const list = new LinkedList<number>()
    const nodes = [1, 2, 3, 4].map(v => new ListNode(v))
    nodes.forEach(node => { list.push(node) })
    const seen: number[] = []
    for (const value of list) {
      seen.push(value)
      if (value % 2 === 0) {
        nodes[value - 1].unlink()
      }
    }
    assert.deepEqual(seen, [1, 2, 3, 4])
    assert.deepEqual(values(list), [1, 3])
    list.clear()
    assert.equal(list.size, 0)
    assert.equal(list.first, undefined)
    assert.ok(nodes.every(node => node.list === null && node.prev === null && node.next === null))
  })

  it('property: push, remove and moveToEnd agree with an array model', () => {
    const op = fc.oneof(
      fc.record({ t: fc.constantFrom('push' as const, 'remove' as const, 'move' as const), pick: fc.nat({ max: 7 }), into: fc.nat({ max: 1 }) })
    )
    fc.assert(fc.property(fc.array(op, { maxLength: 150 }), (ops) => {
      const lists = [new LinkedList<number>(), new LinkedList<number>()]
      const models: number[][] = [[], []]
      const nodes = Array.from({ length: 8 }, (_, i) => new ListNode(i))
      for (const o of ops) {
        const node = nodes[o.pick]
        const list = lists[o.into]
        for (const model of models) {
          const at = model.indexOf(o.pick)
          if (at !== -1 && (o.t !== 'remove' || models[o.into] === model)) {
            model.splice(at, 1)
          }
        }
        if (o.t === 'push') {
          list.push(node)
          models[o.into].push(o.pick)
        } else if (o.t === 'move') {
          list.moveToEnd(node)
          models[o.into].push(o.pick)
        } else {
          list.remove(node)
        }
        lists.forEach((l, i) => {
          assert.deepEqual(values(l), models[i])
          assert.deepEqual(backwards(l), [...models[i]].reverse())
          assert.equal(l.size, models[i].length)
        })
      }
    }), { numRuns: 300 })
  })
})
