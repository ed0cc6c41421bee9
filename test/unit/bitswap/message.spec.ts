import assert from 'node:assert/strict'
import fc from 'fast-check'
import { InvalidMessageError } from '../../../src/bitswap/errors.ts'
import { PresenceType, readMessage, WantType } from '../../../src/bitswap/message.ts'
// The real codec @helia/bitswap 4.0.19 uses on the wire (its package exports block this subpath)
import { BitswapMessage, BlockPresenceType, WantType as HeliaWantType } from '../../../node_modules/@helia/bitswap/dist/src/pb/message.js'
import type { MessageVisitor } from '../../../src/bitswap/message.ts'

type Visit =
  | ['entry', number[], number, boolean, boolean, number]
  | ['full', boolean]
  | ['block', number[], number]
  | ['legacy', number]
  | ['presence', number[], number]
  | ['pending', number]

/** A visitor that records everything, copying the views */
function recorder (): { visitor: MessageVisitor, visits: Visit[] } {
  const visits: Visit[] = []
  return {
    visits,
    visitor: {
      wantlistEntry: (cid, wantType, cancel, sendDontHave, priority) => { visits.push(['entry', [...cid], wantType, cancel, sendDontHave, priority]) },
      wantlistFull: (full) => { visits.push(['full', full]) },
      block: (prefix, dataLength) => { visits.push(['block', [...prefix], dataLength]) },
      legacyBlock: (dataLength) => { visits.push(['legacy', dataLength]) },
      presence: (cid, type) => { visits.push(['presence', [...cid], type]) },
      pendingBytes: (n) => { visits.push(['pending', n]) }
    }
  }
}

function read (bytes: Uint8Array): Visit[] {
  const { visitor, visits } = recorder()
  readMessage(bytes, visitor)
  return visits
}

// -- a tiny protobuf writer for hand-made (and malformed) messages --
function varint (value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value))
  const out: number[] = []
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  out.push(Number(v))
  return out
}
const tag = (field: number, wireType: number): number[] => varint(field * 8 + wireType)
/** A small value as an `n`-byte varint, padded with continuation bytes (valid protobuf, not minimal) */
const padded = (value: number, n: number): number[] => [
  ...Array.from({ length: n - 1 }, (_, i) => (i === 0 ? value : 0) | 0x80),
  n === 1 ? value : 0
]
const vfield = (field: number, value: number | bigint): number[] => [...tag(field, 0), ...varint(value)]
const bfield = (field: number, bytes: number[]): number[] => [...tag(field, 2), ...varint(bytes.length), ...bytes]
const u8 = (...parts: number[][]): Uint8Array => Uint8Array.from(parts.flat())

function expectInvalid (bytes: Uint8Array, reason: string): void {
  assert.throws(() => { readMessage(bytes, {}) }, (err: unknown) => {
    assert.ok(err instanceof InvalidMessageError, String(err))
    assert.equal(err.name, 'InvalidMessageError')
    assert.equal(err.reason, reason, err.message)
    return true
  })
}

const CID_A = [1, 0x55, 0x12, 0x20, ...new Array<number>(32).fill(0xaa)]
const CID_B = [0x12, 0x20, ...new Array<number>(32).fill(0xbb)]

describe('bitswap/message', () => {
  it('reports wantlist entries, full flag, blocks, presences and pendingBytes in wire order', () => {
    const bytes = BitswapMessage.encode({
      wantlist: {
        entries: [
          { cid: Uint8Array.from(CID_A), priority: 7, wantType: HeliaWantType.WantBlock, sendDontHave: true, cancel: false },
          { cid: Uint8Array.from(CID_B), priority: -3, wantType: HeliaWantType.WantHave, cancel: true }
        ],
        full: true
      },
      blocks: [{ prefix: Uint8Array.from([1, 0x55, 0x12, 0x20]), data: new Uint8Array(1000) }],
      blockPresences: [
        { cid: Uint8Array.from(CID_A), type: BlockPresenceType.DoNotHaveBlock },
        { cid: Uint8Array.from(CID_B), type: BlockPresenceType.HaveBlock }
      ],
      pendingBytes: 12345
    })
    assert.deepEqual(read(bytes), [
      ['entry', CID_A, WantType.Block, false, true, 7],
      ['entry', CID_B, WantType.Have, true, false, -3],
      ['full', true],
      ['block', [1, 0x55, 0x12, 0x20], 1000],
      ['presence', CID_A, PresenceType.DontHave],
      ['presence', CID_B, PresenceType.Have],
      ['pending', 12345]
    ])
  })

  it('hands out views into the message, never copies of block data', () => {
    const data = new Uint8Array(4096).fill(1)
    const bytes = BitswapMessage.encode({ blocks: [{ prefix: Uint8Array.from([1, 0x70, 0x12, 0x20]), data }], blockPresences: [] })
    let seen = 0
    readMessage(bytes, {
      block: (prefix, dataLength) => {
        assert.equal(prefix.buffer, bytes.buffer)
        assert.equal(dataLength, 4096)
        seen++
      }
    })
    assert.equal(seen, 1)
  })

  it('works with a visitor that implements nothing', () => {
    const bytes = BitswapMessage.encode({ wantlist: { entries: [{ cid: Uint8Array.from(CID_A), priority: 1 }] }, blocks: [], blockPresences: [] })
    readMessage(bytes, {})
  })

  it('reports empty messages and absent fields with protobuf defaults', () => {
    assert.deepEqual(read(new Uint8Array(0)), [])
    // an entry with no fields, a block with no fields, a presence with no fields
    assert.deepEqual(read(u8(bfield(1, bfield(1, [])), bfield(3, []), bfield(4, []))), [
      ['entry', [], WantType.Block, false, false, 0],
      ['block', [], 0],
      ['presence', [], PresenceType.Have]
    ])
  })

  it('lets the last value win for a repeated scalar field inside an entry', () => {
    const entry = [...bfield(1, [1]), ...vfield(4, 1), ...vfield(4, 0), ...vfield(5, 1), ...bfield(1, [2, 3])]
    assert.deepEqual(read(u8(bfield(1, bfield(1, entry)))), [['entry', [2, 3], WantType.Block, false, true, 0]])
  })

  it('reads bitswap 1.0.0 blocks (field 2) as legacy blocks', () => {
    assert.deepEqual(read(u8(bfield(2, [1, 2, 3]), bfield(2, []))), [['legacy', 3], ['legacy', 0]])
  })

  it('reads every entry of a repeated wantlist field (protobuf merge semantics)', () => {
    const bytes = u8(bfield(1, bfield(1, bfield(1, [1]))), bfield(1, bfield(1, bfield(1, [2]))))
    assert.deepEqual(read(bytes).map(v => v[1]), [[1], [2]])
  })

  it('reads negative int32 values encoded as 10-byte varints', () => {
    assert.deepEqual(read(u8(vfield(5, -1))), [['pending', -1]])
    assert.deepEqual(read(u8(bfield(1, bfield(1, vfield(2, -2147483648))))), [['entry', [], 0, false, false, -2147483648]])
  })

  it('skips unknown fields of every wire type at every level', () => {
    const unknowns = [
      ...vfield(15, 2n ** 63n), // varint
      ...tag(16, 1), 1, 2, 3, 4, 5, 6, 7, 8, // fixed64
      ...bfield(17, [9, 9, 9]), // bytes
      ...tag(18, 3), ...vfield(1, 5), ...tag(2, 3), ...tag(2, 4), ...tag(18, 4), // nested groups
      ...tag(19, 5), 1, 2, 3, 4 // fixed32
    ]
    const entry = [...unknowns, ...bfield(1, [7]), ...unknowns, ...vfield(4, 1)]
    const wantlist = [...unknowns, ...bfield(1, entry), ...unknowns, ...vfield(2, 1)]
    const block = [...unknowns, ...bfield(1, [1, 0x55, 0x12, 0x20]), ...bfield(2, [0, 0]), ...unknowns]
    const presence = [...unknowns, ...bfield(1, [8]), ...vfield(2, 1), ...unknowns]
    const bytes = u8(unknowns, bfield(1, wantlist), unknowns, bfield(3, block), bfield(4, presence), unknowns)
    assert.deepEqual(read(bytes), [
      ['entry', [7], WantType.Have, false, false, 0],
      ['full', true],
      ['block', [1, 0x55, 0x12, 0x20], 2],
      ['presence', [8], PresenceType.DontHave]
    ])
  })

  describe('rejects malformed input with a typed error', () => {
    it('a truncated tag, varint, length or fixed field', () => {
      expectInvalid(u8([0x80]), 'truncated') // tag cut off
      expectInvalid(u8(tag(5, 0), [0x80]), 'truncated') // value cut off
      expectInvalid(u8(tag(1, 2)), 'truncated') // length missing
      expectInvalid(u8(tag(1, 2), [5, 1, 2]), 'truncated') // body shorter than its length
      expectInvalid(u8(tag(16, 1), [1, 2, 3]), 'truncated')
      expectInvalid(u8(tag(16, 5), [1, 2, 3]), 'truncated')
      expectInvalid(u8(tag(18, 3), vfield(1, 1)), 'truncated') // group never ends
    })

    it('a nested field that overruns its parent', () => {
      // the entry claims 10 bytes but the wantlist holds only 3
      expectInvalid(u8(bfield(1, [...tag(1, 2), 10, 0, 0])), 'truncated')
    })

    it('a varint longer than 10 bytes or over 64 bits', () => {
      expectInvalid(u8(tag(5, 0), new Array<number>(10).fill(0x80), [0]), 'varint')
      expectInvalid(u8(tag(5, 0), new Array<number>(9).fill(0xff), [0x02]), 'varint')
    })

    it('a 6 to 9 byte varint in a tag, length or 32-bit field, which helia would misread', () => {
      // protons reads 5 bytes and skips 5 more unseen: helia takes this entry as priority 1 with no
      // wantType, swallowing the field after the padded varint
      const entry = [...bfield(1, [7]), ...tag(2, 0), ...padded(1, 6), ...vfield(4, 1), ...vfield(5, 1)]
      assert.deepEqual(BitswapMessage.decode(u8(bfield(1, bfield(1, entry)))).wantlist?.entries[0], { cid: Uint8Array.from([7]), priority: 1 })
      expectInvalid(u8(bfield(1, bfield(1, entry))), 'varint')
      for (let n = 6; n <= 9; n++) {
        expectInvalid(u8(tag(5, 0), padded(3, n)), 'varint') // int32 pendingBytes
        expectInvalid(u8(bfield(4, [...tag(2, 0), ...padded(1, n)])), 'varint') // enum
        expectInvalid(u8(bfield(1, [...tag(2, 0), ...padded(1, n)])), 'varint') // bool full
        expectInvalid(u8(padded(5 * 8, n), [3]), 'varint') // tag
        expectInvalid(u8(tag(4, 2), padded(1, n), [0]), 'varint') // length
      }
    })

    it('but not a padded varint helia reads alike: up to 5 bytes, 10 bytes, or an unknown field of any length', () => {
      for (const bytes of [
        u8(tag(5, 0), padded(3, 5)),
        u8(padded(5 * 8, 5), [3]),
        u8(tag(4, 2), padded(2, 5), vfield(2, 1)),
        u8(tag(5, 0), padded(3, 10)),
        u8(tag(15, 0), padded(1, 7), vfield(5, 3))
      ]) {
        const { pendingBytes, blockPresences } = BitswapMessage.decode(bytes)
        assert.deepEqual(read(bytes), pendingBytes !== 0 ? [['pending', pendingBytes]] : blockPresences.map(p => ['presence', [...p.cid], 1]))
      }
    })

    it('a length that does not fit in 32 bits', () => {
      expectInvalid(u8(tag(3, 2), varint(2n ** 32n)), 'length')
    })

    it('wire types 6 and 7, and a known field with the wrong wire type', () => {
      expectInvalid(u8(tag(9, 6)), 'wire-type')
      expectInvalid(u8(tag(9, 7)), 'wire-type')
      expectInvalid(u8(vfield(1, 3)), 'wire-type') // wantlist as a varint
      expectInvalid(u8(bfield(5, [])), 'wire-type') // pendingBytes as bytes
      expectInvalid(u8(bfield(1, bfield(1, vfield(1, 1)))), 'wire-type') // entry cid as a varint
      expectInvalid(u8(bfield(3, vfield(2, 1))), 'wire-type') // block data as a varint
    })

    it('field number 0 or a tag over 32 bits', () => {
      expectInvalid(u8([0x00]), 'field-number')
      expectInvalid(u8(varint(2n ** 32n + 8n)), 'field-number') // 5 bytes
      expectInvalid(u8(varint(2n ** 63n + 8n)), 'field-number') // 10 bytes
    })

    it('a stray or mismatched end group, and groups nested too deep', () => {
      expectInvalid(u8(tag(9, 4)), 'group')
      expectInvalid(u8(tag(9, 3), tag(10, 4)), 'group')
      const deep = [...Array.from({ length: 40 }, () => tag(9, 3)).flat(), ...Array.from({ length: 40 }, () => tag(9, 4)).flat()]
      expectInvalid(u8(deep), 'group')
    })

    it('an enum value protons does not know (helia drops the whole message)', () => {
      expectInvalid(u8(bfield(1, bfield(1, vfield(4, 2)))), 'enum')
      expectInvalid(u8(bfield(4, vfield(2, 7))), 'enum')
      expectInvalid(u8(bfield(4, vfield(2, -1))), 'enum')
      assert.throws(() => BitswapMessage.decode(u8(bfield(4, vfield(2, 7)))), /enum/)
    })
  })

  describe('against @helia/bitswap\'s own protons codec', () => {
    const entryArb = fc.record({
      cid: fc.uint8Array({ maxLength: 40 }),
      priority: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      cancel: fc.option(fc.boolean(), { nil: undefined }),
      wantType: fc.option(fc.constantFrom(HeliaWantType.WantBlock, HeliaWantType.WantHave), { nil: undefined }),
      sendDontHave: fc.option(fc.boolean(), { nil: undefined })
    }, { requiredKeys: ['cid', 'priority'] })
    const messageArb = fc.record({
      wantlist: fc.option(fc.record({
        entries: fc.array(entryArb, { maxLength: 6 }),
        full: fc.option(fc.boolean(), { nil: undefined })
      }, { requiredKeys: ['entries'] }), { nil: undefined }),
      blocks: fc.array(fc.record({ prefix: fc.uint8Array({ maxLength: 8 }), data: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 4 }),
      blockPresences: fc.array(fc.record({
        cid: fc.uint8Array({ maxLength: 40 }),
        type: fc.constantFrom(BlockPresenceType.HaveBlock, BlockPresenceType.DoNotHaveBlock)
      }), { maxLength: 4 }),
      pendingBytes: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })
    }, { requiredKeys: ['blocks', 'blockPresences', 'pendingBytes'] })

    function wantlistVisits (m: ReturnType<typeof BitswapMessage.decode>): Visit[] {
      const out: Visit[] = []
      if (m.wantlist != null) {
        for (const e of m.wantlist.entries) {
          out.push(['entry', [...e.cid], e.wantType === HeliaWantType.WantHave ? 1 : 0, e.cancel ?? false, e.sendDontHave ?? false, e.priority])
        }
        if (m.wantlist.full != null) {
          out.push(['full', m.wantlist.full])
        }
      }
      return out
    }

    /** What the reader must report, built from helia's own decode of the same bytes */
    function expected (bytes: Uint8Array): Visit[] {
      const m = BitswapMessage.decode(bytes)
      const out = wantlistVisits(m)
      for (const b of m.blocks) {
        out.push(['block', [...b.prefix], b.data.length])
      }
      for (const p of m.blockPresences) {
        out.push(['presence', [...p.cid], p.type === BlockPresenceType.DoNotHaveBlock ? 1 : 0])
      }
      if (m.pendingBytes !== 0) {
        out.push(['pending', m.pendingBytes])
      }
      return out
    }

    /**
     * What the reader must report for a message with at most one wantlist field, in wire order:
     * helia's decode gives the values, the top-level field sequence gives their order (protons
     * loses it). `pendingBytes` is reported per occurrence, explicit zeros included; protons keeps
     * the last, so the last one reported must be helia's value. Legacy blocks are unknown to protons.
     */
    function inWireOrder (m: ReturnType<typeof BitswapMessage.decode>, fields: TopLevelField[]): Visit[] {
      const wantlist = wantlistVisits(m)
      const blocks = m.blocks.map((b): Visit => ['block', [...b.prefix], b.data.length])
      const presences = m.blockPresences.map((p): Visit => ['presence', [...p.cid], p.type === BlockPresenceType.DoNotHaveBlock ? 1 : 0])
      const out: Visit[] = []
      let pending = 0
      for (const { field, value } of fields) {
        if (field === 1) out.push(...wantlist)
        else if (field === 2) out.push(['legacy', Number(value)])
        else if (field === 3) out.push(blocks.shift() ?? assert.fail('more block fields than helia decoded'))
        else if (field === 4) out.push(presences.shift() ?? assert.fail('more presence fields than helia decoded'))
        else if (field === 5) {
          pending = Number(BigInt.asIntN(32, value))
          out.push(['pending', pending])
        }
      }
      assert.equal(blocks.length + presences.length, 0, 'helia decoded fields the walk did not see')
      assert.equal(pending, m.pendingBytes, 'the last pendingBytes is the one protons keeps')
      return out
    }

    it('round trip: sees exactly the entries, blocks and presences helia encoded and decodes', () => {
      fc.assert(fc.property(messageArb, (message) => {
        const bytes = BitswapMessage.encode(message)
        const visits = read(bytes)
        assert.deepEqual(visits, expected(bytes))
        // and the same as the input, with protobuf defaults filled in
        assert.equal(visits.filter(v => v[0] === 'entry').length, message.wantlist?.entries.length ?? 0)
        assert.equal(visits.filter(v => v[0] === 'block').length, message.blocks.length)
        assert.deepEqual(visits.filter(v => v[0] === 'presence').map(v => v[1]), message.blockPresences.map(p => [...p.cid]))
      }), { numRuns: 500 })
    })

    it('fuzz: random bytes only ever yield visits or InvalidMessageError', () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          readMessage(bytes, recorder().visitor)
        } catch (err) {
          assert.ok(err instanceof InvalidMessageError, String(err))
        }
      }), { numRuns: 3000 })
    })

    it('fuzz: mutated real messages only ever yield visits or InvalidMessageError, and agree with helia when both accept one wantlist', () => {
      fc.assert(fc.property(messageArb, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 }), fc.constantFrom('set', 'insert', 'delete')), { minLength: 1, maxLength: 4 }), (message, edits) => {
        const bytes = [...BitswapMessage.encode(message)]
        for (const [at, value, op] of edits) {
          const i = bytes.length === 0 ? 0 : at % bytes.length
          if (op === 'set' && bytes.length > 0) bytes[i] = value
          else if (op === 'insert') bytes.splice(i, 0, value)
          else bytes.splice(i, 1)
        }
        const mutated = Uint8Array.from(bytes)
        let visits: Visit[]
        try {
          visits = read(mutated)
        } catch (err) {
          assert.ok(err instanceof InvalidMessageError, String(err))
          return
        }
        let decoded: ReturnType<typeof BitswapMessage.decode>
        try {
          decoded = BitswapMessage.decode(mutated)
        } catch {
          return // protons rejects what we accepted: nothing to compare
        }
        const fields = topLevelFields(mutated)
        // protons keeps only the last wantlist field; we report all of them: compare when there is one
        if (fields.filter(f => f.field === 1).length <= 1) {
          assert.deepEqual(visits, inWireOrder(decoded, fields))
        }
      }), { numRuns: 1000, endOnFailure: true })
    })
  })
})

interface TopLevelField {
  field: number
  /** A varint's value, or the length of a bytes field */
  value: bigint
}

/** The top-level fields of a message our reader accepted, in wire order (an independent walk) */
function topLevelFields (bytes: Uint8Array): TopLevelField[] {
  const fields: TopLevelField[] = []
  let pos = 0
  const next = (): bigint => {
    let v = 0n
    let shift = 0n
    for (;;) {
      const b = bytes[pos++]
      v |= BigInt(b & 0x7f) << shift
      shift += 7n
      if (b < 0x80) return BigInt.asUintN(64, v)
    }
  }
  const skip = (wireType: number): bigint => {
    if (wireType === 0) return next()
    if (wireType === 1) pos += 8
    else if (wireType === 2) {
      const length = next() // read before `pos +=` takes pos
      pos += Number(length)
      return length
    } else if (wireType === 5) pos += 4
    else if (wireType === 3) {
      for (;;) {
        const t = Number(next() & 7n)
        if (t === 4) break
        skip(t)
      }
    }
    return 0n
  }
  while (pos < bytes.length) {
    const t = next()
    fields.push({ field: Number(t >> 3n), value: skip(Number(t & 7n)) })
  }
  return fields
}
