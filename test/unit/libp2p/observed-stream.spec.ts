/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import sinon from 'sinon'
import { Uint8ArrayList } from 'uint8arraylist'
import { DeadlineScheduler } from '../../../src/libp2p/deadline-scheduler.ts'
import { BitswapObserver } from '../../../src/libp2p/observer.ts'
import { Outcome } from '../../../src/states.ts'
import { blocksMessage, encodeFrame, wantlistMessage } from '../../../fixtures/bitswap-wire.ts'
import { makeBlocks } from '../../../fixtures/blocks.ts'
import { asStream, concat, FakeStream, RecordingSink, split } from './observer-harness.ts'
import type { TestBlock } from '../../../fixtures/blocks.ts'
import type { Chunk } from './observer-harness.ts'
import type { ObserverSink } from '../../../src/libp2p/observer.ts'
import type { PeerId, Stream } from '@libp2p/interface'

/** The proxies Bitswap is handed (observed-stream.ts), driven through the observer that makes them */
describe('libp2p/observed-stream', () => {
  let alice: PeerId
  let blocks: TestBlock[]
  let clock: sinon.SinonFakeTimers
  let scheduler: DeadlineScheduler
  let sink: RecordingSink
  let observer: BitswapObserver

  before(async () => {
    alice = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    blocks = await makeBlocks(8, 64)
  })

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000 })
    scheduler = new DeadlineScheduler()
    sink = new RecordingSink()
    observer = new BitswapObserver({ coldDeadline: 1000, minDeadline: 50, clock: { now: () => Date.now() }, scheduler }, sink)
  })

  afterEach(() => {
    observer.stop()
    scheduler.stop()
    clock.restore()
  })

  /** Helia's broadcast: want-block with sendDontHave, through a wrapped outbound stream */
  function sendWants (peer: PeerId, wanted: TestBlock[]): FakeStream {
    const fake = new FakeStream('outbound')
    const stream = observer.wrapOutbound(asStream(fake), peer)
    stream.send(encodeFrame(wantlistMessage(wanted.map(b => b.cid))))
    return fake
  }

  /** An inbound stream with one consumer listener; returns the fake and what the consumer got */
  function inbound (peer: PeerId): { fake: FakeStream, stream: Stream, received: Chunk[] } {
    const fake = new FakeStream('inbound')
    const stream = observer.wrapInbound(asStream(fake), peer)
    const received: Chunk[] = []
    stream.addEventListener('message', (evt) => { received.push(evt.data) })
    return { fake, stream, received }
  }

  describe('outbound wrapper', () => {
    it('reads wants from Uint8ArrayList sends and frames split across sends, and sends every byte unchanged', () => {
      const fake = new FakeStream('outbound')
      const stream = observer.wrapOutbound(asStream(fake), alice)
      const frame = encodeFrame(wantlistMessage([blocks[0].cid, blocks[1].cid]))
      const parts = split(frame, 1, 7)
      // helia sends lp.encode.single(buf): a Uint8ArrayList of prefix and body
      stream.send(new Uint8ArrayList(parts[0], parts[1]))
      stream.send(parts[2])
      assert.deepEqual(concat(fake.sent), frame)

      inbound(alice).fake.deliver(encodeFrame(blocksMessage([blocks[0], blocks[1]])))
      assert.deepEqual(sink.outcomes(), [Outcome.SUCCESS, Outcome.SUCCESS])
    })

    it('a send that throws (stream closed) releases its wants at once and judges none (Bitswap would wait for them)', () => {
      const fake = new FakeStream('outbound')
      const stream = observer.wrapOutbound(asStream(fake), alice)
      const released: Array<[string, string]> = []
      ;(sink as unknown as ObserverSink).releaseWant = (peer, _cid, reason) => { released.push([peer.toString(), reason]) }
      fake.abort(new Error('gone'))
      assert.throws(() => stream.send(encodeFrame(wantlistMessage([blocks[0].cid]))), /closed/)
      assert.deepEqual(released, [[alice.toString(), 'send_failed']])
      clock.tick(10_000)
      assert.equal(sink.verdicts.length, 0)
      assert.equal(released.length, 1)
    })

    it('is a faithful proxy: private-field methods work, log is the same callable, sets reach the stream', () => {
      const fake = new FakeStream('outbound')
      const stream = observer.wrapOutbound(asStream(fake), alice)
      assert.equal(stream.log, fake.log)
      assert.equal(typeof stream.log.trace, 'function')
      assert.equal(stream.direction, 'outbound');
      (stream as unknown as FakeStream).custom = 'b'
      assert.equal(fake.custom, 'b')
      assert.equal((stream as unknown as FakeStream).private, true)
      stream.abort(new Error('done'))
      assert.equal(fake.status, 'aborted')
      // the same forwarder every time, not a fresh bound function per access
      assert.equal(stream.abort, stream.abort)
    })
  })

  describe('inbound wrapper', () => {
    it('delivers every chunk unchanged, frames split across chunks, observed before the handler sees them', () => {
      sendWants(alice, blocks.slice(0, 3))
      const fake = new FakeStream('inbound')
      const stream = observer.wrapInbound(asStream(fake), alice)
      const frame = encodeFrame(blocksMessage(blocks.slice(0, 3)))
      const received: Chunk[] = []
      const seenByLedger: number[] = []
      stream.addEventListener('message', (evt) => {
        received.push(evt.data)
        seenByLedger.push(sink.verdicts.length)
      })
      for (const chunk of split(frame, 1, 2, 50, 120)) {
        fake.deliver(chunk)
      }
      assert.deepEqual(concat(received), frame)
      assert.deepEqual(sink.outcomes(), [Outcome.SUCCESS, Outcome.SUCCESS, Outcome.SUCCESS])
      // the last chunk completed the frame: its verdicts were in before the handler got it
      assert.equal(seenByLedger.at(-1), 3)
    })

    it('hands the handler, and keeps, copies of small views that would pin a larger buffer (a socket read)', () => {
      const fake = new FakeStream('inbound')
      const stream = observer.wrapInbound(asStream(fake), alice)
      const received: Chunk[] = []
      stream.addEventListener('message', (evt) => { received.push(evt.data) })
      // a partial frame: its prefix and a first byte of body, the tail of a 64 KiB read
      const read = new Uint8Array(65536)
      read.set([0x80, 0x01, 0x2a], 65533)
      fake.deliver(new Uint8ArrayList(read.subarray(65533)))
      assert.equal(observer.stats.bufferedBytes, 3)
      const views = [...(received[0] as Uint8ArrayList)]
      assert.equal(views.length, 1)
      assert.equal(views[0].buffer.byteLength, 3)
      assert.deepEqual([...views[0]], [0x80, 0x01, 0x2a])
    })

    it('several listeners all get each chunk, observed once; a removed listener gets no more', () => {
      sendWants(alice, blocks.slice(0, 2))
      const fake = new FakeStream('inbound')
      const stream = observer.wrapInbound(asStream(fake), alice)
      const a: Chunk[] = []
      const b: Chunk[] = []
      const onA = (evt: { data: Chunk }): void => { a.push(evt.data) }
      const onB = { handleEvent: (evt: Event) => { b.push((evt as unknown as { data: Chunk }).data) } }
      stream.addEventListener('message', onA)
      stream.addEventListener('message', onB as unknown as (evt: Event) => void)
      fake.deliver(encodeFrame(blocksMessage([blocks[0]])))
      // observed once: fed twice, the copy would answer the second want (blocks match by prefix)
      assert.deepEqual(sink.outcomes(), [Outcome.SUCCESS])
      stream.removeEventListener('message', onA)
      fake.deliver(encodeFrame(blocksMessage([blocks[1]])))

      assert.equal(a.length, 1)
      assert.equal(b.length, 2)
      // observed once per chunk: two blocks, two successes, and no duplicate counted as unrequested
      assert.deepEqual(sink.outcomes(), [Outcome.SUCCESS, Outcome.SUCCESS])
      assert.equal(sink.abuses.length, 0)
    })

    it('other events pass straight to the real stream', () => {
      const fake = new FakeStream('inbound')
      const stream = observer.wrapInbound(asStream(fake), alice)
      let closes = 0
      const onClose = (): void => { closes++ }
      stream.addEventListener('close', onClose)
      fake.end()
      assert.equal(closes, 1)
      stream.removeEventListener('close', onClose)
      assert.equal(observer.inboundStreams(alice), 0)
    })
  })
})
