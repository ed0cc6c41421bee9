import assert from 'node:assert/strict'
import fc from 'fast-check'
import { patchMethod } from '../../../src/libp2p/patch.ts'
import type { MethodPatch } from '../../../src/libp2p/patch.ts'

interface Target { greet?: (this: unknown, name: string) => string }

/** A patch that appends its tag to whatever the method below it says */
function tagging (target: Target, tag: string): MethodPatch<Target['greet']> {
  return patchMethod(target, 'greet', (previous) => function (this: unknown, name: string) {
    return `${previous?.call(this, name) ?? name}+${tag}`
  })
}

describe('libp2p/patch: patchMethod', () => {
  it('installs an own property and restores an own method exactly', () => {
    const own = (name: string): string => `hi ${name}`
    const target: Target = { greet: own }
    const patch = tagging(target, 'a')
    assert.equal(target.greet?.('x'), 'hi x+a')
    assert.equal(patch.installed, target.greet)
    patch.restore()
    assert.equal(target.greet, own)
    patch.restore()
    assert.equal(target.greet, own, 'a second restore changes nothing')
  })

  it('restores an inherited method by removing the own property, and an absent one by leaving none', () => {
    class Base { greet (name: string): string { return `base ${name}` } }
    const inherited = new Base() as Target
    const absent: Target = {}
    const patches = [tagging(inherited, 'a'), tagging(absent, 'b')]
    assert.equal(inherited.greet?.('x'), 'base x+a')
    assert.equal(absent.greet?.('x'), 'x+b')
    patches.forEach(p => { p.restore() })
    assert.equal(Object.hasOwn(inherited, 'greet'), false)
    assert.equal(inherited.greet?.('x'), 'base x')
    assert.deepEqual(Object.keys(absent), [])
  })

  it('calls the replacement with the caller\'s this, or the object when called bare', () => {
    const target: Target = {}
    const seen: unknown[] = []
    patchMethod(target, 'greet', () => function (this: unknown, name: string) { seen.push(this); return name })
    target.greet?.('x')
    const bare = target.greet as (name: string) => string
    bare('y')
    const other = {}
    target.greet?.call(other, 'z')
    assert.deepEqual(seen, [target, target, other])
  })

  it('covered by someone else: restore turns ours into a pass-through, or keeps it with keepWhenCovered', () => {
    const target: Target = { greet: (name) => name }
    const ours = tagging(target, 'ours')
    const below = target.greet as (name: string) => string
    const theirs = (name: string): string => `${below(name)}+theirs`
    target.greet = theirs
    ours.restore()
    assert.equal(target.greet, theirs)
    assert.equal(target.greet('x'), 'x+theirs')

    const kept: Target = { greet: (name) => name }
    const keep = patchMethod(kept, 'greet', (previous) => (name: string) => `${previous?.(name) ?? ''}!`, { keepWhenCovered: true })
    const under = kept.greet as (name: string) => string
    kept.greet = (name) => `${under(name)}+theirs`
    keep.restore()
    assert.equal(kept.greet('x'), 'x!+theirs')
  })

  it('property: patches stacked and restored in any order leave the original, and only live ones act', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 5 }).chain(n => fc.tuple(fc.constant(n), fc.shuffledSubarray([...Array(n).keys()], { minLength: n }))), ([n, order]) => {
      const original = (name: string): string => name
      const target: Target = { greet: original }
      const patches = Array.from({ length: n }, (_, i) => tagging(target, String(i)))
      const live = new Set(patches.keys())
      for (const i of order) {
        patches[i].restore()
        live.delete(i)
        const expected = ['x', ...[...live].sort((a, b) => a - b).map(String)].join('+')
        assert.equal(target.greet?.('x'), expected)
      }
      assert.equal(target.greet, original)
      assert.deepEqual(Object.keys(target), ['greet'])
    }), { numRuns: 200 })
  })
})
