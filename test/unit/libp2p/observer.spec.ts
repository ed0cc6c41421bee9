/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import { wantlistFloodFrame } from '../../../fixtures/abusers.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { streamPair } from '@libp2p/utils'
import sinon from 'sinon'
import { InvalidConfigError } from '../../../src/errors.ts'
import { DeadlineScheduler } from '../../../src/libp2p/deadline-scheduler.ts'
import { WantDeadlineError } from '../../../src/bitswap/errors.ts'
import { BitswapObserver } from '../../../src/libp2p/observer.ts'
import { Outcome } from '../../../src/states.ts'
import { BlockPresenceType, WantType, blocksMessage, encodeFrame, lpFrame, presenceMessage, wantlistMessage } from '../../../fixtures/bitswap-wire.ts'
import { makeBlocks } from '../../../fixtures/blocks.ts'
import type { TestBlock } from '../../../fixtures/blocks.ts'
import { asStream, concat, FakeStream, RecordingSink } from './observer-harness.ts'
import type { BitswapObserverInit } from '../../../src/libp2p/observer.ts'
import type { Chunk } from './observer-harness.ts'
import type { PeerId, Stream } from '@libp2p/interface'

describe('libp2p/observer', () => {
  let alice: PeerId
  let bob: PeerId
  let blocks: TestBlock[]

  before(async () => {
    alice = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    bob = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    blocks = await makeBlocks(8, 64)
  })

  describe('on a fake clock', () => {
    let clock: sinon.SinonFakeTimers
    let scheduler: DeadlineScheduler
    let sink: RecordingSink
    let observer: BitswapObserver

    function setup (init: Partial<BitswapObserverInit> = {}): void {
      scheduler = new DeadlineScheduler()
      sink = new RecordingSink()
      observer = new BitswapObserver({ coldDeadline: 1000, minDeadline: 50, ...init, clock: { now: () => Date.now() }, scheduler }, sink)
    }

    beforeEach(() => {
      clock = sinon.useFakeTimers({ now: 1_000_000 })
      setup()
    })

    afterEach(() => {
      observer.stop()
      scheduler.stop()
      clock.restore()
    })

    /** Helia's broadcast: want-block with sendDontHave, through a wrapped outbound stream */
    function sendWants (peer: PeerId, wanted: TestBlock[], options: { sendDontHave?: boolean, wantType?: WantType, full?: boolean } = {}): FakeStream {
      const fake = new FakeStream('outbound')
      const stream = observer.wrapOutbound(asStream(fake), peer)
      stream.send(encodeFrame(wantlistMessage(wanted.map(b => b.cid), options)))
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

    describe('verdicts', () => {
      it('a block answering a want is a success with its latency; a DONT_HAVE is neutral', () => {
        sendWants(alice, blocks.slice(0, 2))
        clock.tick(40)
        const { fake, received } = inbound(alice)
        fake.deliver(encodeFrame({ ...blocksMessage([blocks[0]]), ...presenceMessage([blocks[1].cid], BlockPresenceType.DoNotHaveBlock) }))

        assert.deepEqual(sink.verdicts.map(v => [v.peer, v.outcome, v.latency]), [
          [alice.toString(), Outcome.NEUTRAL, 40],
          [alice.toString(), Outcome.SUCCESS, 40]
        ])
        assert.equal(received.length, 1)
        assert.equal(sink.abuses.length, 0)
        // answered wants never miss afterwards
        clock.tick(60_000)
        assert.equal(sink.verdicts.length, 2)
      })

      it('a HAVE answers a want-have (success); to a want-block it is no answer, and that want misses', () => {
        sendWants(alice, [blocks[0]], { wantType: WantType.WantHave })
        sendWants(alice, [blocks[1]])
        clock.tick(30)
        inbound(alice).fake.deliver(encodeFrame(presenceMessage([blocks[0].cid, blocks[1].cid], BlockPresenceType.HaveBlock)))
        assert.deepEqual(sink.outcomes(), [Outcome.SUCCESS])

        clock.tick(2000)
        assert.deepEqual(sink.outcomes(), [Outcome.SUCCESS, Outcome.FAILURE])
        const miss = sink.verdicts[1]
        assert.ok(miss.err instanceof WantDeadlineError)
        assert.equal(miss.err.name, 'WantDeadlineError')
      })

      it('a want with sendDontHave misses at the cold deadline; one without never does', () => {
        sendWants(alice, [blocks[0]])
        sendWants(bob, [blocks[1]], { sendDontHave: false })
        clock.tick(999)
        assert.equal(sink.verdicts.length, 0)
        clock.tick(1)
        assert.equal(sink.verdicts.length, 1)
        const miss = sink.verdicts[0]
        assert.equal(miss.peer, alice.toString())
        assert.equal(miss.outcome, Outcome.FAILURE)
        assert.equal(miss.latency, 1000)
        assert.equal((miss.err as WantDeadlineError).deadlineMs, 1000)
        clock.tick(120_000)
        assert.equal(sink.verdicts.length, 1)
      })

      it('arms one scheduler entry however many peers and wants are pending, re-armed as the deadline moves', () => {
        const peers = [alice, bob]
        for (let i = 0; i < 8; i++) {
          sendWants(peers[i % 2], [blocks[i]])
          clock.tick(10)
        }
        assert.equal(scheduler.size, 1)
        // a fast answer shortens alice's deadline: her remaining wants are now overdue sooner
        inbound(alice).fake.deliver(encodeFrame(blocksMessage([blocks[0]])))
        assert.equal(scheduler.size, 1)
        assert.equal(observer.deadlineFor(alice), 160)
        clock.tick(200)
        assert.equal(sink.verdicts.filter(v => v.peer === alice.toString() && v.outcome === Outcome.FAILURE).length, 3)
        assert.equal(sink.verdicts.filter(v => v.peer === bob.toString()).length, 0)
        clock.tick(1000)
        assert.equal(sink.verdicts.filter(v => v.peer === bob.toString() && v.outcome === Outcome.FAILURE).length, 4)
        assert.equal(scheduler.size, 0)
      })

      it('deadlineFor: cautious before the first answer, then twice the latency, within bounds', () => {
        setup({ coldDeadline: 5000, minDeadline: 50, maxDeadline: 2000 })
        assert.equal(observer.deadlineFor(alice), 5000)
        sendWants(alice, [blocks[0]])
        clock.tick(300)
        inbound(alice).fake.deliver(encodeFrame(blocksMessage([blocks[0]])))
        assert.equal(observer.deadlineFor(alice), 600)
        assert.equal(observer.latencyFor(alice), 300)
        sendWants(alice, [blocks[1]])
        clock.tick(5)
        inbound(alice).fake.deliver(encodeFrame(blocksMessage([blocks[1]])))
        // EWMA 0.5: (300 + 5) / 2 = 152.5 -> 305
        assert.equal(observer.deadlineFor(alice), 305)
      })

      it('stop() cancels the deadline entry and forgets every want', () => {
        sendWants(alice, [blocks[0]])
        assert.equal(scheduler.size, 1)
        observer.stop()
        assert.equal(scheduler.size, 0)
        assert.equal(observer.stats.wants, 0)
        clock.tick(10_000)
        assert.equal(sink.verdicts.length, 0)
      })

      it('streams wrapped before stop() pass data through unobserved; new ones are observed again', () => {
        const old = inbound(alice)
        observer.stop()
        old.fake.deliver(lpFrame(Uint8Array.from([0x07, 0x01])))
        assert.equal(old.received.length, 1)
        assert.equal(sink.abuses.length, 0)
        assert.equal(old.fake.status, 'open')

        sendWants(alice, [blocks[0]])
        clock.tick(1000)
        assert.deepEqual(sink.outcomes(), [Outcome.FAILURE])
      })
    })

    describe('inbound wrapper', () => {
      for (const [name, payload, errName] of [
        ['a frame that is not protobuf', lpFrame(Uint8Array.from([0x07, 0x01, 0x02])), 'InvalidMessageError'],
        ['a length prefix over the message size limit', Uint8Array.from([0x80, 0x80, 0x80, 0x04, 0, 0]), 'FrameTooLargeError'],
        ['a non-minimal length prefix', Uint8Array.from([0x80, 0x00]), 'InvalidFrameError']
      ] as const) {
        it(`${name}: protocol_error against the sender, stream aborted, the handler never sees it`, () => {
          const { fake, received } = inbound(alice)
          const other = inbound(bob)
          fake.deliver(payload)

          assert.deepEqual(sink.abuses.map(a => [a.peer, a.reason, a.err?.name]), [[alice.toString(), 'protocol_error', errName]])
          assert.equal(fake.status, 'aborted')
          assert.equal(received.length, 0)
          assert.equal(observer.stats.protocolErrors, 1)
          // later chunks on the aborted stream are not delivered or reported again
          fake.deliver(encodeFrame(blocksMessage([blocks[0]])))
          assert.equal(received.length, 0)
          assert.equal(sink.abuses.length, 1)
          // the other peer's stream is untouched
          other.fake.deliver(encodeFrame(presenceMessage([], BlockPresenceType.HaveBlock)))
          assert.equal(other.received.length, 1)
          assert.equal(other.fake.status, 'open')
        })
      }

      it('unrequested blocks and presences: one abuse per message, the stream lives on and the handler gets it', () => {
        // (blocks are matched to wants by CID prefix, so unrequested means: no want of that kind open at all)
        const { fake, received } = inbound(alice)
        fake.deliver(encodeFrame({ ...blocksMessage(blocks.slice(1, 4)), ...presenceMessage([blocks[5].cid], BlockPresenceType.HaveBlock) }))
        sendWants(alice, [blocks[0]])
        fake.deliver(encodeFrame(blocksMessage([blocks[0]])))

        assert.deepEqual(sink.abuses.map(a => a.reason), ['unrequested'])
        assert.deepEqual(sink.outcomes(), [Outcome.SUCCESS])
        assert.equal(received.length, 2)
        assert.equal(fake.status, 'open')
        assert.equal(observer.stats.unrequested, 1)
      })

      it('a block for a want that another peer already answered is not unrequested', () => {
        sendWants(alice, [blocks[0]])
        sendWants(bob, [blocks[0]])
        inbound(bob).fake.deliver(encodeFrame(blocksMessage([blocks[0]])))
        inbound(alice).fake.deliver(encodeFrame(blocksMessage([blocks[0]])))
        assert.equal(sink.abuses.length, 0)
        assert.deepEqual(sink.outcomes(), [Outcome.SUCCESS])
        clock.tick(10_000)
        assert.deepEqual(sink.outcomes(), [Outcome.SUCCESS])
      })
    })

    describe('inbound abuse guard', () => {
      it('caps concurrent inbound streams per peer; a closed stream frees its slot; other peers unaffected', () => {
        setup({ maxInboundStreamsPerPeer: 3 })
        const streams = [inbound(alice), inbound(alice), inbound(alice)]
        assert.equal(observer.inboundStreams(alice), 3)
        assert.equal(observer.admitInbound(alice), false)
        assert.equal(observer.admitInbound(bob), true)
        assert.equal(observer.stats.inboundStreamsRefused, 1)

        streams[0].fake.end()
        assert.equal(observer.admitInbound(alice), true)
        streams[1].fake.abort(new Error('reset'))
        assert.equal(observer.inboundStreams(alice), 1)
        assert.equal(observer.stats.inboundStreams, 1)
      })

      it('a stream already over is handed back as it is and not counted', () => {
        const fake = new FakeStream('inbound')
        fake.abort(new Error('reset before middleware'))
        assert.equal(observer.wrapInbound(asStream(fake), alice), asStream(fake))
        assert.equal(observer.inboundStreams(alice), 0)
      })

      it('refuses a message with more wantlist entries than the budget before anything reads it, and entries faster than the rate', () => {
        setup({ maxWantlistEntries: 8, maxWantlistEntriesPerSecond: 8 })
        const big = inbound(alice)
        big.fake.deliver(wantlistFloodFrame(9))
        assert.equal(big.received.length, 0)
        assert.equal(big.fake.status, 'aborted')
        assert.deepEqual(sink.abuses.map(a => [a.peer, a.reason]), [[alice.toString(), 'wantlist_budget']])
        // within the message budget, but the peer's entry budget is spent
        const first = inbound(bob)
        first.fake.deliver(wantlistFloodFrame(8))
        assert.equal(first.received.length, 1)
        first.fake.deliver(wantlistFloodFrame(1))
        assert.equal(first.fake.status, 'aborted')
        assert.equal(observer.stats.wantlistRefused, 2)
        clock.tick(1000)
        const later = inbound(bob)
        later.fake.deliver(wantlistFloodFrame(8))
        assert.equal(later.fake.status, 'open')
      })

      it('a peer whose partial frames announce more than its share loses them before their bodies arrive', () => {
        setup({ maxInboundBufferedBytes: 4000 })
        const prefix = Uint8Array.from([0xc2, 0x03]) // a 450-byte frame begins: 452 bytes once whole
        const a1 = inbound(alice)
        const a2 = inbound(alice)
        const b1 = inbound(bob)
        a1.fake.deliver(prefix)
        a2.fake.deliver(prefix)
        b1.fake.deliver(prefix)
        assert.equal(observer.stats.bufferedBytes, 6)
        assert.equal(sink.abuses.length, 0)
        // a third frame announces 1356 bytes of alice's 1000-byte share: her partial streams go, bob's stays
        const a3 = inbound(alice)
        a3.fake.deliver(prefix)
        assert.deepEqual([a1.fake.status, a2.fake.status, a3.fake.status, b1.fake.status], ['aborted', 'aborted', 'aborted', 'open'])
        assert.equal(a3.received.length, 0)
        assert.equal(observer.stats.bufferedBytes, 2)
        assert.equal(observer.stats.memoryRefused, 3)
        assert.deepEqual(sink.abuses.map(a => [a.peer, a.reason]), [[alice.toString(), 'inbound_memory']])
        assert.equal(sink.abuses[0].err?.message, 'partial Bitswap frames announcing over 1000 bytes')
        // a stream ending gives its bytes back
        b1.fake.end()
        assert.equal(observer.stats.bufferedBytes, 0)
      })

      it('counts real bytes in the shared budget: prefixes alone push no one out; past it, the largest holder goes', async () => {
        setup({ maxInboundBufferedBytes: 1000 })
        const peers = await Promise.all(Array.from({ length: 7 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
        // peers we asked for blocks: their frames may be answers, so none is a stranger to drop first
        for (const peer of peers) {
          sendWants(peer, blocks.slice(0, 1))
        }
        const prefix = Uint8Array.from([0xf0, 0x01]) // a 240-byte frame begins: 242 of a 250-byte share
        const streams = peers.map(peer => inbound(peer))
        streams[0].fake.deliver(prefix)
        streams[0].fake.deliver(new Uint8Array(230))
        for (const s of streams.slice(1, 6)) {
          s.fake.deliver(prefix)
          s.fake.deliver(new Uint8Array(150))
        }
        // 7 × 242 bytes announced, 994 held: within the budget
        streams[6].fake.deliver(prefix)
        assert.equal(observer.stats.bufferedBytes, 994)
        assert.equal(sink.abuses.length, 0)
        // 1014 held: the largest holder loses its frame, not the peer that sent last
        streams[1].fake.deliver(new Uint8Array(20))
        assert.deepEqual(streams.map(s => s.fake.status), ['aborted', 'open', 'open', 'open', 'open', 'open', 'open'])
        assert.equal(observer.stats.bufferedBytes, 782)
        assert.deepEqual(sink.abuses.map(a => [a.peer, a.reason]), [[peers[0].toString(), 'inbound_memory']])
        assert.equal(sink.abuses[0].err?.message, 'holding the most of 1000 bytes of partial Bitswap frames')
      })

      it('past the shared budget, strangers (never asked, never answered) lose all their partial frames first', async () => {
        setup({ maxInboundBufferedBytes: 1000 })
        const strangers = await Promise.all(Array.from({ length: 5 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
        sendWants(alice, blocks.slice(0, 1))
        const prefix = Uint8Array.from([0xf0, 0x01]) // a 240-byte frame begins
        const answer = inbound(alice)
        answer.fake.deliver(prefix)
        answer.fake.deliver(new Uint8Array(230))
        const pushed = strangers.map(peer => inbound(peer))
        for (const s of pushed) {
          s.fake.deliver(prefix)
          s.fake.deliver(new Uint8Array(150))
        }
        assert.equal(observer.stats.bufferedBytes, 992)
        // 1012 held: alice holds the most, but every stranger goes and her answer stays
        pushed[0].fake.deliver(new Uint8Array(20))
        assert.equal(answer.fake.status, 'open')
        assert.deepEqual(pushed.map(s => s.fake.status), ['aborted', 'aborted', 'aborted', 'aborted', 'aborted'])
        assert.equal(observer.stats.bufferedBytes, 232)
        assert.deepEqual(sink.abuses.map(a => a.peer).sort(), strangers.map(p => p.toString()).sort())
        assert.deepEqual([...new Set(sink.abuses.map(a => a.err?.message))], ['unrequested partial Bitswap frames while over 1000 bytes for all peers'])
      })

      it('aborts an admitted stream on its next chunk once its peer is OPEN (blocked)', () => {
        setup()
        let open = false
        sink.blocked = () => open
        const s = inbound(alice)
        s.fake.deliver(encodeFrame(wantlistMessage([blocks[0].cid])))
        assert.equal(s.received.length, 1)
        open = true
        s.fake.deliver(encodeFrame(wantlistMessage([blocks[1].cid])))
        assert.equal(s.received.length, 1)
        assert.equal(s.fake.status, 'aborted')
        assert.equal(observer.stats.openRefused, 1)
      })

      it('limits inbound bytes per second per peer: bytes past the bucket abort the stream and never reach the handler; the budget refills', () => {
        setup({ maxInboundBytesPerSecond: 1000, maxInboundBurstBytes: 1000 })
        const chunk = encodeFrame(presenceMessage([], BlockPresenceType.HaveBlock))
        const big = new Uint8Array(600)
        const first = inbound(alice)
        const other = inbound(bob)
        // a valid empty message is 1 byte of prefix; pad the budget use with an unfinished frame body
        first.fake.deliver(chunk)
        first.fake.deliver(Uint8Array.from([0x80, 0x08])) // a 1024-byte frame begins
        first.fake.deliver(big)
        assert.equal(first.received.length, 3)
        first.fake.deliver(big.subarray(0, 400)) // 1000 - 3 - 600 = 397 left: does not fit
        first.fake.deliver(big.subarray(0, 10))

        assert.deepEqual(sink.abuses.map(a => [a.peer, a.reason, a.err?.name]), [[alice.toString(), 'inbound_bytes', 'InboundLimitError']])
        assert.equal(first.fake.status, 'aborted')
        assert.equal(first.received.length, 3)
        assert.equal(observer.stats.inboundBytesRefused, 1)

        // bob has his own budget
        other.fake.deliver(big)
        assert.equal(other.received.length, 1)

        // what is left still does not fit a moment later, and does once the bucket has refilled
        const second = inbound(alice)
        second.fake.deliver(new Uint8Array(398))
        assert.equal(second.fake.status, 'aborted')
        clock.tick(100)
        const third = inbound(alice)
        third.fake.deliver(new Uint8Array(398))
        assert.equal(third.fake.status, 'open')
        assert.equal(third.received.length, 1)
      })

      it('keeps per-peer state bounded: idle inbound-only peers are dropped, removePeer forgets, maxPeers evicts', () => {
        const { fake } = inbound(alice)
        assert.equal(observer.stats.peers, 1)
        fake.end()
        assert.equal(observer.stats.peers, 0, 'a peer that only opened an inbound stream leaves nothing behind')

        sendWants(alice, [blocks[0]])
        assert.equal(observer.stats.peers, 1)
        observer.removePeer(alice)
        assert.equal(observer.stats.peers, 0)
        assert.equal(observer.stats.wants, 0)
        clock.tick(10_000)
        assert.equal(sink.verdicts.length, 0, 'a forgotten peer\'s wants end without verdict')

        setup({ maxPeers: 1 })
        sendWants(alice, [blocks[0]])
        sendWants(bob, [blocks[1]])
        assert.equal(observer.stats.peers, 1)
        assert.equal(observer.stats.wants, 1)
        clock.tick(1000)
        assert.deepEqual(sink.verdicts.map(v => v.peer), [bob.toString()])
      })

      it('streams of a removed peer pass through unobserved', () => {
        const { fake, received } = inbound(alice)
        observer.removePeer(alice)
        fake.deliver(encodeFrame(blocksMessage([blocks[0]])))
        assert.equal(received.length, 1)
        assert.equal(sink.abuses.length, 0)
      })
    })

    it('rejects bad configuration, naming the field', () => {
      for (const init of [{ maxInboundStreamsPerPeer: 0 }, { maxInboundStreamsPerPeer: 1.5 }, { maxInboundBytesPerSecond: 0 },
        { maxInboundBurstBytes: 0 }, { maxMessageSize: 0 }, { maxPeers: 0 }, { coldDeadline: -1 }]) {
        const field = Object.keys(init)[0]
        assert.throws(() => { setup(init) }, (err: Error) => err instanceof InvalidConfigError && err.message.includes(field), field)
      }
    })
  })

  describe('on real libp2p streams', () => {
    let scheduler: DeadlineScheduler
    let sink: RecordingSink
    let observer: BitswapObserver

    beforeEach(() => {
      scheduler = new DeadlineScheduler()
      sink = new RecordingSink()
      observer = new BitswapObserver({ clock: { now: () => Date.now() }, scheduler }, sink)
    })

    afterEach(() => {
      observer.stop()
      scheduler.stop()
    })

    /** Polls until `condition` holds (bounded) */
    async function until (condition: () => boolean, what: string): Promise<void> {
      const deadline = Date.now() + 2000
      while (!condition()) {
        if (Date.now() > deadline) {
          throw new Error(`timed out waiting for ${what}`)
        }
        await new Promise(resolve => setTimeout(resolve, 5))
      }
    }

    /** Waits for a stream's close event (bounded) */
    async function closed (stream: Stream): Promise<void> {
      if (stream.status !== 'open') {
        return
      }
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { reject(new Error('stream did not close')) }, 2000)
        stream.addEventListener('close', () => { clearTimeout(timer); resolve() }, { once: true })
      })
    }

    it('wants out, answers in: both wrappers feed the ledger and every byte arrives unchanged', async () => {
      const [ourOut, theirIn] = await streamPair()
      const [theirOut, ourIn] = await streamPair()
      const out = observer.wrapOutbound(ourOut, alice)
      const input = observer.wrapInbound(ourIn, alice)

      // what the remote reads from us
      const remoteGot: Chunk[] = []
      theirIn.addEventListener('message', (evt) => { remoteGot.push(evt.data) })
      const wants = encodeFrame(wantlistMessage(blocks.slice(0, 4).map(b => b.cid)))
      out.send(wants.subarray(0, 5))
      out.send(wants.subarray(5))
      await out.close()
      await until(() => concat(remoteGot).byteLength === wants.byteLength, 'the remote to read our wants')

      // the handler attaches late, as Bitswap does after `await stream.close()`: nothing may be lost
      const answer = encodeFrame({ ...blocksMessage(blocks.slice(0, 3)), ...presenceMessage([blocks[3].cid], BlockPresenceType.DoNotHaveBlock) })
      theirOut.send(answer.subarray(0, 100))
      theirOut.send(answer.subarray(100))
      await theirOut.close()
      await input.close()
      const handlerGot: Chunk[] = []
      input.addEventListener('message', (evt) => { handlerGot.push(evt.data) })
      await until(() => concat(handlerGot).byteLength === answer.byteLength, 'the handler to read the answer')
      await closed(input)

      assert.deepEqual(concat(remoteGot), wants)
      assert.deepEqual(concat(handlerGot), answer)
      // a message's presences count before its blocks
      assert.deepEqual(sink.outcomes(), [Outcome.NEUTRAL, Outcome.SUCCESS, Outcome.SUCCESS, Outcome.SUCCESS])
      assert.equal(sink.abuses.length, 0)
      assert.equal(observer.inboundStreams(alice), 0)
    })

    it('async iteration of a wrapped inbound stream is observed too', async () => {
      const [ourOut] = await streamPair()
      observer.wrapOutbound(ourOut, alice).send(encodeFrame(wantlistMessage([blocks[0].cid])))
      const [theirOut, ourIn] = await streamPair()
      const input = observer.wrapInbound(ourIn, alice)
      const answer = encodeFrame(blocksMessage([blocks[0]]))
      theirOut.send(answer)
      await theirOut.close()

      const got: Chunk[] = []
      for await (const chunk of input) {
        got.push(chunk)
      }
      assert.deepEqual(concat(got), answer)
      assert.deepEqual(sink.outcomes(), [Outcome.SUCCESS])
      ourOut.abort(new Error('done'))
    })

    it('garbage aborts the real stream and the handler sees a close with the error', async () => {
      const [theirOut, ourIn] = await streamPair()
      const input = observer.wrapInbound(ourIn, bob)
      const got: Chunk[] = []
      input.addEventListener('message', (evt) => { got.push(evt.data) })
      const closing = new Promise<Error | undefined>((resolve) => {
        input.addEventListener('close', (evt) => { resolve(evt.error) }, { once: true })
      })
      theirOut.send(lpFrame(Uint8Array.from([0x07, 0x01, 0x02])))

      const err = await closing
      assert.equal(err?.name, 'InvalidMessageError')
      assert.equal(ourIn.status, 'aborted')
      assert.equal(got.length, 0)
      assert.deepEqual(sink.abuses.map(a => a.reason), ['protocol_error'])
    })
  })
})
