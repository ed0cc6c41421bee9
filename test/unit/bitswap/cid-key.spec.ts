import assert from 'node:assert/strict'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { identity } from 'multiformats/hashes/identity'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { CIDV0_PREFIX_KEY, cidKey, multihashKey, prefixKey, prefixOfCid } from '../../../src/bitswap/cid-key.ts'
// The prefix encoding @helia/bitswap 4.0.19 puts on blocks it sends (not exported by the package)
import { cidToPrefix } from '../../../node_modules/@helia/bitswap/dist/src/utils/cid-prefix.js'

const DAG_PB = 0x70
const DAG_CBOR = 0x71
const DAG_JSON = 0x0129 // a two-byte varint
const BLAKE2B_256 = 0xb220 // a three-byte varint

describe('bitswap/cid-key', () => {
  describe('cidKey', () => {
    it('is injective: equal keys exactly when bytes are equal, short and long inputs alike', () => {
      fc.assert(fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 140 }), fc.uint8Array({ minLength: 4000, maxLength: 9000 })),
        fc.oneof(fc.uint8Array({ maxLength: 140 }), fc.uint8Array({ minLength: 4000, maxLength: 9000 })),
        (a, b) => {
          const same = a.length === b.length && a.every((x, i) => x === b[i])
          assert.equal(cidKey(a) === cidKey(b), same)
          assert.equal(cidKey(a).length, a.length)
        }
      ), { numRuns: 150 })
    })

    it('differs for inputs differing only past the first chunk', () => {
      const a = new Uint8Array(5000)
      const b = new Uint8Array(5000)
      b[4999] = 1
      assert.notEqual(cidKey(a), cidKey(b))
      assert.equal(cidKey(a), cidKey(new Uint8Array(5000)))
    })

    it('maps every byte value to one char (latin1)', () => {
      const all = Uint8Array.from({ length: 256 }, (_, i) => i)
      const key = cidKey(all)
      assert.equal(key.length, 256)
      for (let i = 0; i < 256; i++) {
        assert.equal(key.charCodeAt(i), i)
      }
    })
  })

  describe('multihashKey', () => {
    it('is the same for the CIDv0 and CIDv1 (any codec) of one multihash, as helia keys its wantlist', async () => {
      const digest = await sha256.digest(Uint8Array.from([1, 2, 3]))
      const v0 = CID.createV0(digest)
      const key = multihashKey(v0.bytes)
      assert.equal(key, cidKey(digest.bytes))
      assert.equal(multihashKey(CID.createV1(DAG_PB, digest).bytes), key)
      assert.equal(multihashKey(CID.createV1(raw.code, digest).bytes), key)
      const other = await sha256.digest(Uint8Array.from([1, 2, 4]))
      assert.notEqual(multihashKey(CID.createV1(raw.code, other).bytes), key)
    })

    it('is undefined for bytes that are not a CID', () => {
      for (const bad of [[], [1], [2, 0x55, 0x12, 1, 0], [1, 0x55, 0x12, 2, 0], [1, 0x55, 0x12, 1, 0, 0], [0x12, 0x20, 1, 2], [1, 0x80]]) {
        assert.equal(multihashKey(Uint8Array.from(bad)), undefined, String(bad))
        assert.equal(prefixOfCid(Uint8Array.from(bad)), undefined, String(bad))
      }
    })

    it('reads `<0><codec><multihash>` as CID.decode does: the CIDv0 of that multihash, codec ignored', async () => {
      const digest = await sha256.digest(Uint8Array.from([9]))
      const bytes = Uint8Array.from([0, DAG_CBOR, ...digest.bytes])
      const decoded = CID.decode(bytes)
      assert.equal(decoded.version, 0)
      assert.equal(multihashKey(bytes), cidKey(digest.bytes))
      assert.equal(multihashKey(bytes), multihashKey(CID.createV0(digest).bytes))
      assert.equal(prefixOfCid(bytes), CIDV0_PREFIX_KEY)
      // any multihash, as multiformats does not check it
      const other = Digest.create(0x13, new Uint8Array(64))
      assert.equal(prefixOfCid(Uint8Array.from([0, DAG_JSON & 0x7f | 0x80, DAG_JSON >> 7, ...other.bytes])), '0/112/19/64')
    })

    it('is undefined for varints that are not minimal, as CID.decode throws for them', async () => {
      const digest = await sha256.digest(Uint8Array.from([9]))
      for (const bad of [
        [0x81, 0x00, DAG_CBOR, ...digest.bytes], // version
        [1, DAG_CBOR | 0x80, 0x00, ...digest.bytes], // codec
        [1, DAG_CBOR, 0x92, 0x00, 0x20, ...digest.digest], // hash code
        [1, DAG_CBOR, 0x12, 0xa0, 0x00, ...digest.digest], // digest length
        [0x92, 0x00, 0x20, ...digest.digest] // the CIDv0 hash code
      ]) {
        assert.throws(() => CID.decode(Uint8Array.from(bad)), /minimal/)
        assert.equal(multihashKey(Uint8Array.from(bad)), undefined, String(bad))
        assert.equal(prefixOfCid(Uint8Array.from(bad)), undefined, String(bad))
      }
    })

    it('refuses varints over 32 bits, which CID.decode takes (no multicodec or digest length needs them)', () => {
      const bytes = Uint8Array.from([1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x12, 0x01, 0])
      assert.equal(CID.decode(bytes).code, 2 ** 35)
      assert.equal(multihashKey(bytes), undefined)
      assert.equal(prefixOfCid(bytes), undefined)
    })

    /** Asserts that both keys agree with CID.decode on `bytes`: undefined exactly when it throws */
    function agreesWithDecode (bytes: Uint8Array): void {
      let decoded: CID | undefined
      try {
        decoded = CID.decode(bytes)
      } catch {
        decoded = undefined
      }
      const keys = [multihashKey(bytes), prefixOfCid(bytes)]
      const expected = decoded === undefined ? [undefined, undefined] : [cidKey(decoded.multihash.bytes), prefixKey(cidToPrefix(decoded))]
      if (keys[0] !== expected[0] || keys[1] !== expected[1]) {
        assert.deepEqual(keys, expected, `for [${String(bytes)}]`)
      }
    }

    it('accepts exactly what CID.decode accepts, on every one-byte change and every cut of real CIDs', async () => {
      const digest = await sha256.digest(Uint8Array.from([9]))
      const bases = [
        CID.createV1(DAG_CBOR, digest).bytes,
        CID.createV0(digest).bytes,
        Uint8Array.from([0, DAG_CBOR, ...digest.bytes]),
        CID.createV1(DAG_JSON, Digest.create(BLAKE2B_256, new Uint8Array(32).fill(0x80))).bytes,
        CID.createV1(raw.code, identity.digest(Uint8Array.from([0, 0x80, 0]))).bytes
      ]
      // exhaustive rather than sampled: a few thousand inputs, and no seed can miss one
      let accepted = 0
      for (const base of bases) {
        for (let at = 0; at < base.length; at++) {
          agreesWithDecode(base.subarray(0, at))
          const bytes = base.slice()
          for (let value = 0; value < 256; value++) {
            bytes[at] = value
            agreesWithDecode(bytes)
            accepted += multihashKey(bytes) === undefined ? 0 : 1
          }
        }
      }
      assert.ok(accepted > 1000, 'most changes in a digest keep a CID a CID')
    })

    it('property: accepts exactly what CID.decode accepts, on CID-shaped bytes with any version, padding and length', () => {
      // a varint below 2^32, minimal or padded with continuation bytes (but within 5 bytes)
      const varintArb = fc.tuple(fc.oneof(fc.nat(0x7f), fc.nat({ max: 0xffffffff })), fc.nat(4)).map(([value, pad]) => {
        const out: number[] = []
        let v = value
        while (v >= 0x80) {
          out.push(v % 0x80 | 0x80)
          v = Math.floor(v / 0x80)
        }
        out.push(v)
        for (let i = 0; i < pad && out.length < 5; i++) {
          out[out.length - 1] |= 0x80
          out.push(0)
        }
        return out
      })
      fc.assert(fc.property(
        fc.oneof(fc.constantFrom([0], [1], [0x12]), varintArb),
        varintArb,
        fc.oneof(fc.constant([0x12]), varintArb),
        fc.nat(70),
        fc.constantFrom(0, 0, 0, -1, 1),
        (version, codec, hashCode, length, off) => {
          const isV0 = version.length === 1 && version[0] === 0x12
          const head = isV0 ? [0x12] : [...version, ...codec, ...hashCode]
          agreesWithDecode(Uint8Array.from([...head, length, ...new Array<number>(Math.max(0, length + off)).fill(7)]))
        }
      ), { numRuns: 1000 })
    })
  })

  describe('prefix keys: a want and the block that answers it agree', () => {
    it('for real blocks hashed with sha2-256, sha2-512 and identity, CIDv0 and CIDv1', async () => {
      const data = new TextEncoder().encode('hello bitswap')
      const cids = [
        CID.createV0(await sha256.digest(data)),
        CID.createV1(DAG_PB, await sha256.digest(data)),
        CID.createV1(raw.code, await sha256.digest(data)),
        CID.createV1(DAG_CBOR, await sha512.digest(data)),
        CID.createV1(DAG_JSON, identity.digest(data)),
        CID.createV1(raw.code, Digest.create(BLAKE2B_256, new Uint8Array(32).fill(3)))
      ]
      const keys = new Set<string>()
      for (const cid of cids) {
        const fromWant = prefixOfCid(cid.bytes)
        const fromBlock = prefixKey(cidToPrefix(cid))
        assert.ok(fromWant !== undefined)
        assert.equal(fromWant, fromBlock, cid.toString())
        assert.equal(fromWant, `${cid.version}/${cid.code}/${cid.multihash.code}/${cid.multihash.digest.length}`)
        keys.add(fromWant)
      }
      assert.equal(keys.size, cids.length, 'distinct prefixes give distinct keys')
      assert.equal(prefixOfCid(cids[0].bytes), CIDV0_PREFIX_KEY)
      assert.equal(CIDV0_PREFIX_KEY, '0/112/18/32')
    })

    it('property: any codec, hash code and digest length', () => {
      fc.assert(fc.property(
        fc.constantFrom(0, 1),
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.uint8Array({ maxLength: 70 }),
        (version, codec, hashCode, digestBytes) => {
          const cid = version === 0
            ? CID.createV0(Digest.create(0x12, digestBytes) as Digest.Digest<0x12, number>)
            : CID.createV1(codec, Digest.create(hashCode, digestBytes))
          assert.equal(prefixOfCid(cid.bytes), prefixKey(cidToPrefix(cid)))
          assert.equal(multihashKey(cid.bytes), cidKey(cid.multihash.bytes))
        }
      ), { numRuns: 500 })
    })

    it('stays correct past the intern cache size and for codes too large to intern', () => {
      for (let codec = 0; codec < 600; codec++) {
        const cid = CID.createV1(codec, Digest.create(0x12, new Uint8Array(32)))
        assert.equal(prefixOfCid(cid.bytes), `1/${codec}/18/32`)
        assert.equal(prefixKey(cidToPrefix(cid)), `1/${codec}/18/32`)
      }
      const big = CID.createV1(2 ** 30, Digest.create(2 ** 25, new Uint8Array(300)))
      assert.equal(prefixOfCid(big.bytes), `1/${2 ** 30}/${2 ** 25}/300`)
      assert.equal(prefixKey(cidToPrefix(big)), prefixOfCid(big.bytes))
    })

    it('reads a block prefix as helia does: any non-zero version is 1, trailing bytes ignored', () => {
      assert.equal(prefixKey(Uint8Array.from([1, 0x55, 0x12, 0x20])), '1/85/18/32')
      assert.equal(prefixKey(Uint8Array.from([7, 0x55, 0x12, 0x20])), '1/85/18/32')
      assert.equal(prefixKey(Uint8Array.from([1, 0x55, 0x12, 0x20, 9, 9])), '1/85/18/32')
      assert.equal(prefixKey(Uint8Array.from([0, 0x70, 0x12, 0x20])), CIDV0_PREFIX_KEY)
    })

    it('is undefined for a prefix of fewer than four varints or with a truncated or oversized one', () => {
      for (const bad of [[], [1], [1, 0x55, 0x12], [1, 0x55, 0x12, 0x80], [1, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x12, 0x20], [1, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x12, 0x20]]) {
        assert.equal(prefixKey(Uint8Array.from(bad)), undefined, String(bad))
      }
    })
  })
})
