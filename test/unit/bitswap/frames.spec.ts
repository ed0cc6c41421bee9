import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Uint8ArrayList } from 'uint8arraylist'
import { FrameTooLargeError, InvalidFrameError } from '../../../src/bitswap/errors.ts'
import { DEFAULT_MAX_MESSAGE_SIZE, FrameDecoder, unpinned } from '../../../src/bitswap/frames.ts'

function uvarint (value: number): number[] {
  const out: number[] = []
  while (value >= 0x80) {
    out.push((value % 128) | 0x80)
    value = Math.floor(value / 128)
  }
  out.push(value)
  return out
}

function frame (body: Uint8Array): Uint8Array {
  const prefix = uvarint(body.length)
  const out = new Uint8Array(prefix.length + body.length)
  out.set(prefix)
  out.set(body, prefix.length)
  return out
}

function concat (parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

function drain (decoder: FrameDecoder): Uint8Array[] {
  const frames: Uint8Array[] = []
  for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
    frames.push(f)
  }
  return frames
}

describe('bitswap/frames', () => {
  it('defaults to the 4 MiB limit @helia/bitswap enforces', () => {
    assert.equal(DEFAULT_MAX_MESSAGE_SIZE, 4 * 1024 * 1024)
    assert.equal(new FrameDecoder().maxMessageSize, DEFAULT_MAX_MESSAGE_SIZE)
  })

  it('returns a frame inside one chunk as a view of that chunk, without copying', () => {
    const body = Uint8Array.from([1, 2, 3, 4, 5])
    const chunk = concat([frame(body), frame(Uint8Array.from([9]))])
    const decoder = new FrameDecoder()
    decoder.push(chunk)
    const first = decoder.next()
    assert.ok(first !== undefined)
    assert.deepEqual([...first], [1, 2, 3, 4, 5])
    assert.equal(first.buffer, chunk.buffer)
    assert.equal(first.byteOffset, chunk.byteOffset + 1)
    const second = decoder.next()
    assert.deepEqual([...second!], [9])
    assert.equal(decoder.next(), undefined)
    assert.ok(decoder.idle)
  })

  it('joins a frame that spans chunks and keeps earlier views intact', () => {
    const decoder = new FrameDecoder()
    const whole = concat([frame(Uint8Array.from([7, 7])), frame(Uint8Array.from([1, 2, 3, 4, 5, 6]))])
    decoder.push(whole.subarray(0, 6))
    const first = decoder.next()!
    assert.equal(first.buffer, whole.buffer)
    assert.equal(decoder.next(), undefined)
    assert.ok(!decoder.idle)
    assert.equal(decoder.bufferedBytes, 3)
    decoder.push(whole.subarray(6))
    const second = decoder.next()!
    assert.deepEqual([...second], [1, 2, 3, 4, 5, 6])
    assert.notEqual(second.buffer, whole.buffer)
    assert.deepEqual([...first], [7, 7])
    assert.equal(decoder.bufferedBytes, 0)
  })

  it('splits a prefix across chunks', () => {
    const body = new Uint8Array(300).fill(7)
    const whole = frame(body) // two-byte prefix
    const decoder = new FrameDecoder()
    decoder.push(whole.subarray(0, 1))
    assert.equal(decoder.next(), undefined)
    decoder.push(whole.subarray(1, 2))
    assert.equal(decoder.next(), undefined)
    decoder.push(whole.subarray(2))
    assert.deepEqual(decoder.next(), body)
  })

  it('yields empty frames (it-length-prefixed does, so helia decodes an empty message)', () => {
    const decoder = new FrameDecoder()
    decoder.push(Uint8Array.from([0, 0, 1, 42]))
    const frames = drain(decoder)
    assert.deepEqual(frames.map(f => [...f]), [[], [], [42]])
  })

  it('accepts Uint8ArrayList chunks and ignores empty ones', () => {
    const decoder = new FrameDecoder()
    decoder.push(new Uint8Array(0))
    assert.ok(decoder.idle)
    decoder.push(new Uint8ArrayList(Uint8Array.from([3, 1]), Uint8Array.from([2, 3, 1, 8])))
    assert.deepEqual(drain(decoder).map(f => [...f]), [[1, 2, 3], [8]])
  })

  it('accepts a frame of exactly the maximum size', () => {
    const decoder = new FrameDecoder({ maxMessageSize: 1000 })
    decoder.push(frame(new Uint8Array(1000)))
    assert.equal(decoder.next()?.length, 1000)
  })

  it('rejects an oversized frame from its prefix alone, before buffering the body', () => {
    const decoder = new FrameDecoder({ maxMessageSize: 1000 })
    decoder.push(Uint8Array.from(uvarint(1001)))
    assert.throws(() => decoder.next(), FrameTooLargeError)
  })

  it('rejects a prefix whose first bytes already exceed the limit, without waiting for the rest', () => {
    const decoder = new FrameDecoder({ maxMessageSize: 100 })
    decoder.push(Uint8Array.from([0xff])) // at least 127, continuation pending
    assert.throws(() => decoder.next(), (err: Error) => err.name === 'FrameTooLargeError')
  })

  it('rejects the default limit + 1', () => {
    const decoder = new FrameDecoder()
    decoder.push(Uint8Array.from(uvarint(DEFAULT_MAX_MESSAGE_SIZE + 1)))
    assert.throws(() => decoder.next(), FrameTooLargeError)
  })

  it('rejects a non-minimal varint prefix, which desynchronises helia\'s decoder', () => {
    const decoder = new FrameDecoder()
    decoder.push(Uint8Array.from([0x81, 0x00, 0x01]))
    assert.throws(() => decoder.next(), InvalidFrameError)
  })

  it('rejects a prefix longer than 8 bytes', () => {
    const decoder = new FrameDecoder({ maxMessageSize: Number.MAX_SAFE_INTEGER })
    decoder.push(Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]))
    assert.throws(() => decoder.next(), (err: Error) => err instanceof InvalidFrameError && /longer than 8/.test(err.message))
  })

  it('end() reports a stream that stopped inside a frame, and is quiet at a frame boundary', () => {
    const decoder = new FrameDecoder()
    decoder.push(frame(Uint8Array.from([1])))
    assert.equal(decoder.next()?.length, 1)
    decoder.end()
    decoder.push(Uint8Array.from([5, 1, 2]))
    assert.equal(decoder.next(), undefined)
    assert.throws(() => decoder.end(), InvalidFrameError)
    assert.ok(decoder.idle)
  })

  it('reset() drops a partial frame', () => {
    const decoder = new FrameDecoder()
    decoder.push(Uint8Array.from([5, 1, 2]))
    assert.equal(decoder.next(), undefined)
    decoder.reset()
    decoder.push(frame(Uint8Array.from([4])))
    assert.deepEqual([...decoder.next()!], [4])
  })

  it('property: any chunking of any frames yields the same frames', () => {
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ maxLength: 400 }), { maxLength: 8 }),
      fc.array(fc.nat({ max: 500 }), { maxLength: 10 }),
      (bodies, cuts) => {
        const stream = concat(bodies.map(frame))
        const points = [...new Set(cuts.map(c => c % (stream.length + 1)))].sort((a, b) => a - b)
        const decoder = new FrameDecoder()
        const out: Uint8Array[] = []
        let last = 0
        for (const p of [...points, stream.length]) {
          decoder.push(stream.subarray(last, p))
          last = p
          out.push(...drain(decoder))
        }
        assert.deepEqual(out.map(f => [...f]), bodies.map(b => [...b]))
        assert.ok(decoder.idle)
        decoder.end()
      }
    ), { numRuns: 300 })
  })

  it('property: random bytes only ever produce frames or the typed errors', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const decoder = new FrameDecoder({ maxMessageSize: 50 })
      decoder.push(bytes)
      try {
        let total = 0
        for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
          total += f.length
          assert.ok(f.length <= 50)
        }
        assert.ok(total <= bytes.length)
      } catch (err) {
        assert.ok(err instanceof FrameTooLargeError || err instanceof InvalidFrameError, String(err))
      }
    }), { numRuns: 1000 })
  })

  describe('unpinned', () => {
    const big = new Uint8Array(1000).map((_, i) => i % 251)

    it('copies a view that keeps alive more than twice its length, and keeps one that does not', () => {
      const tail = big.subarray(990)
      const copied = unpinned(tail) as Uint8Array
      assert.notEqual(copied, tail)
      assert.equal(copied.buffer.byteLength, 10)
      assert.deepEqual(copied, tail)
      const most = big.subarray(400)
      assert.equal(unpinned(most), most)
    })

    it('copies a Node Buffer view too (Buffer#slice would be another view of the same memory)', () => {
      const tail = Buffer.from(big.buffer).subarray(995)
      const copied = unpinned(tail) as Uint8Array
      assert.equal(copied.buffer.byteLength, 5)
      assert.deepEqual([...copied], [...tail])
    })

    it('returns a list without pinning views as it is, and otherwise one with only those copied', () => {
      const whole = new Uint8Array(64).fill(7)
      const clean = new Uint8ArrayList(whole, big.subarray(100))
      assert.equal(unpinned(clean), clean)
      const mixed = new Uint8ArrayList(whole, big.subarray(0, 20))
      const out = unpinned(mixed) as Uint8ArrayList
      assert.notEqual(out, mixed)
      const views = [...out]
      assert.equal(views[0], whole)
      assert.equal(views[1].buffer.byteLength, 20)
      assert.deepEqual(out.subarray(), mixed.subarray())
    })
  })
})
