import assert from 'node:assert/strict'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { InvalidMessageError } from '../../../src/bitswap/errors.ts'
import { PresenceType, WantType } from '../../../src/bitswap/message.ts'
import { WantLedger } from '../../../src/bitswap/want-ledger.ts'
import { InvalidConfigError } from '../../../src/errors.ts'
// The real codec and prefix encoding of @helia/bitswap 4.0.19 (not exported by the package)
import { BitswapMessage, BlockPresenceType, WantType as HeliaWantType } from '../../../node_modules/@helia/bitswap/dist/src/pb/message.js'
import { cidToPrefix } from '../../../node_modules/@helia/bitswap/dist/src/utils/cid-prefix.js'
import type { AnswerKind, WantOutcomeSink } from '../../../src/bitswap/verdicts.ts'
import type { WantLedgerInit } from '../../../src/bitswap/want-ledger-init.ts'

const DAG_PB = 0x70

type Verdict =
  | ['answered', string, AnswerKind, number]
  | ['missed', string, number, number]
  | ['unrequested', string, 'block' | 'presence']
  | ['late', string, AnswerKind, number]

class RecordingSink implements WantOutcomeSink {
  readonly verdicts: Verdict[] = []
  answered (peerKey: string, kind: AnswerKind, latencyMs: number): void { this.verdicts.push(['answered', peerKey, kind, latencyMs]) }
  missed (peerKey: string, ageMs: number, deadlineMs: number): void { this.verdicts.push(['missed', peerKey, ageMs, deadlineMs]) }
  unrequested (peerKey: string, what: 'block' | 'presence'): void { this.verdicts.push(['unrequested', peerKey, what]) }
  late (peerKey: string, kind: AnswerKind, latencyMs: number): void { this.verdicts.push(['late', peerKey, kind, latencyMs]) }

  take (): Verdict[] {
    return this.verdicts.splice(0)
  }

  count (type: Verdict[0]): number {
    return this.verdicts.filter(v => v[0] === type).length
  }
}

/** A CIDv1 with a made-up sha2-256 digest: the ledger never hashes, so no real data is needed */
function cid (n: number, codec: number = raw.code): CID {
  const digest = new Uint8Array(32)
  new DataView(digest.buffer).setUint32(0, n)
  return CID.createV1(codec, Digest.create(0x12, digest))
}
const RAW = cidToPrefix(cid(0))
const PB = cidToPrefix(cid(0, DAG_PB))

function setup (init: WantLedgerInit = {}): { ledger: WantLedger, sink: RecordingSink } {
  const sink = new RecordingSink()
  // boxo's 50 ms floor and flat 5 s cold deadline keep the arithmetic of these specs readable;
  // the defaults are 1 s and 2 s + 3 x RTT (want-release.spec.ts)
  return { ledger: new WantLedger({ minDeadline: 50, coldDeadline: 5000, coldRttMultiplier: 0, ...init }, sink), sink }
}

/** A broadcast want as helia sends it: want-block, sendDontHave true */
function want (ledger: WantLedger, peer: string, c: CID, now: number, wantType: WantType = WantType.Block, sendDontHave = true): void {
  ledger.sent(peer, c.bytes, wantType, sendDontHave, false, now)
}

/** Runs expire() exactly when the ledger asks, as a punctual single timer would, up to `until` */
function advance (ledger: WantLedger, until: number): void {
  let rounds = 0
  for (let next = ledger.nextDeadline; next <= until; next = ledger.nextDeadline) {
    const returned = ledger.expire(next)
    assert.ok(returned > next, 'the next deadline is always in the future')
    assert.ok(++rounds < 100_000, 'expire() keeps asking for the same moment')
  }
}

describe('bitswap/want-ledger', () => {
  describe('config', () => {
    it('defaults to boxo\'s numbers, but a 1 s floor (JS shares one event loop)', () => {
      const ledger = new WantLedger({}, new RecordingSink())
      assert.equal(ledger.config.minDeadline, 1000)
      assert.equal(ledger.config.maxDeadline, 7000)
      assert.equal(ledger.config.coldDeadline, 2000)
      assert.equal(ledger.config.deadlineMultiplier, 2)
      assert.equal(ledger.config.ewmaAlpha, 0.5)
      assert.equal(ledger.config.maxWantsPerPeer, 1024)
      assert.equal(ledger.peerDeadline('nobody'), 2000)
      assert.equal(ledger.peerLatency('nobody'), undefined)
      assert.equal(ledger.nextDeadline, Infinity)
      assert.equal(ledger.expire(1e12), Infinity)
    })

    it('rejects values out of range, naming the field', () => {
      for (const init of [{ minDeadline: 0 }, { minDeadline: 20, maxDeadline: 10 }, { coldDeadline: -1 }, { deadlineMultiplier: 0 },
        { ewmaAlpha: 0 }, { ewmaAlpha: 1.5 }, { maxWantsPerPeer: 0 }, { maxWantsPerPeer: 1.5 }, { maxPeers: 0 }, { settledRetention: -1 }]) {
        const field = Object.keys(init).at(-1) ?? ''
        assert.throws(() => setup(init), (err: Error) => err instanceof InvalidConfigError && err.message.includes(field), JSON.stringify(init))
      }
    })
  })

  describe('answers', () => {
    it('a block answers a want-block: success with its latency', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 1000)
      ledger.blockReceived('A', RAW, 1120)
      assert.deepEqual(sink.take(), [['answered', 'A', 'block', 120]])
      assert.equal(ledger.peerLatency('A'), 120)
      assert.equal(ledger.peerDeadline('A'), 240)
      advance(ledger, 1e9)
      assert.deepEqual(sink.take(), [])
    })

    it('a DONT_HAVE answers a want-block or want-have: neutral, and never a miss afterwards', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0)
      want(ledger, 'A', cid(2), 0, WantType.Have)
      ledger.presenceReceived('A', cid(1).bytes, PresenceType.DontHave, 30)
      ledger.presenceReceived('A', cid(2).bytes, PresenceType.DontHave, 40)
      assert.deepEqual(sink.take(), [['answered', 'A', 'dont-have', 30], ['answered', 'A', 'dont-have', 40]])
      assert.equal(ledger.nextDeadline, Infinity)
      advance(ledger, 1e9)
      assert.deepEqual(sink.take(), [])
    })

    it('a want-have is answered by HAVE, or by a (small) block sent instead', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0, WantType.Have)
      want(ledger, 'A', cid(2), 0, WantType.Have)
      ledger.presenceReceived('A', cid(1).bytes, PresenceType.Have, 15)
      ledger.blockReceived('A', RAW, 25)
      assert.deepEqual(sink.take(), [['answered', 'A', 'have', 15], ['answered', 'A', 'block', 25]])
      advance(ledger, 1e9)
      assert.deepEqual(sink.take(), [])
    })

    it('a HAVE to a want-block is no answer: the want stays open and the block still has to come', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0)
      ledger.presenceReceived('A', cid(1).bytes, PresenceType.Have, 100)
      assert.deepEqual(sink.take(), [])
      assert.equal(ledger.peerLatency('A', 'presence'), 100)
      ledger.blockReceived('A', RAW, 400)
      assert.deepEqual(sink.take(), [['answered', 'A', 'block', 400]])
    })

    it('a peer that says HAVE and never sends the block misses (sendDontHave true)', () => {
      const { ledger, sink } = setup()
      // warm it up first so the deadline is adaptive, not cold
      want(ledger, 'A', cid(1), 0)
      ledger.blockReceived('A', RAW, 100)
      sink.take()
      want(ledger, 'A', cid(2), 1000)
      ledger.presenceReceived('A', cid(2).bytes, PresenceType.Have, 1050)
      assert.deepEqual(sink.take(), [])
      advance(ledger, 1199)
      assert.deepEqual(sink.take(), [])
      advance(ledger, 1200)
      assert.deepEqual(sink.take(), [['missed', 'A', 200, 200]])
    })

    it('matches a block to the OLDEST open want with its prefix, and by prefix only', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0)
      want(ledger, 'A', cid(2, DAG_PB), 10)
      want(ledger, 'A', cid(3), 20)
      ledger.blockReceived('A', PB, 60) // answers cid 2 though cid 1 is older
      ledger.blockReceived('A', RAW, 70) // cid 1, the oldest raw want
      ledger.blockReceived('A', RAW, 90) // cid 3
      assert.deepEqual(sink.take(), [['answered', 'A', 'block', 50], ['answered', 'A', 'block', 70], ['answered', 'A', 'block', 70]])
    })

    it('prefers an open want-block over an older open want-have for a block', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0, WantType.Have)
      want(ledger, 'A', cid(2), 10, WantType.Block)
      ledger.blockReceived('A', RAW, 50)
      assert.deepEqual(sink.take(), [['answered', 'A', 'block', 40]])
      ledger.presenceReceived('A', cid(1).bytes, PresenceType.Have, 60)
      assert.deepEqual(sink.take(), [['answered', 'A', 'have', 60]])
    })

    it('a CIDv0 want is answered by a block with the CIDv0 prefix helia sends', () => {
      const { ledger, sink } = setup()
      const v0 = CID.createV0(Digest.create(0x12, new Uint8Array(32).fill(5)))
      ledger.sent('A', v0.bytes, WantType.Block, true, false, 0)
      ledger.blockReceived('A', cidToPrefix(v0), 10)
      assert.deepEqual(sink.take(), [['answered', 'A', 'block', 10]])
      // and a presence about the CIDv1 of the same multihash is about the same want (helia matches by digest)
      const v0b = CID.createV0(Digest.create(0x12, new Uint8Array(32).fill(6)))
      ledger.sent('A', v0b.bytes, WantType.Block, true, false, 20)
      ledger.presenceReceived('A', CID.createV1(DAG_PB, v0b.multihash).bytes, PresenceType.DontHave, 30)
      assert.deepEqual(sink.take(), [['answered', 'A', 'dont-have', 10]])
    })
  })

  describe('unrequested', () => {
    it('a block or presence matching nothing asked of that peer counts against it', () => {
      const { ledger, sink } = setup()
      ledger.blockReceived('A', RAW, 0) // unknown peer
      ledger.presenceReceived('A', cid(1).bytes, PresenceType.Have, 0)
      want(ledger, 'A', cid(1), 0)
      ledger.blockReceived('A', PB, 5) // another prefix
      ledger.presenceReceived('A', cid(2).bytes, PresenceType.DontHave, 5) // another CID
      ledger.blockReceived('A', Uint8Array.from([1, 0x55]), 5) // a broken prefix
      ledger.presenceReceived('A', Uint8Array.from([9, 9, 9]), PresenceType.Have, 5) // not a CID
      ledger.blockReceived('B', RAW, 5) // asked of A, not of B
      assert.deepEqual(sink.take(), [
        ['unrequested', 'A', 'block'], ['unrequested', 'A', 'presence'], ['unrequested', 'A', 'block'],
        ['unrequested', 'A', 'presence'], ['unrequested', 'A', 'block'], ['unrequested', 'A', 'presence'], ['unrequested', 'B', 'block']
      ])
    })

    it('a second block for one want uses up the ended want, then is unrequested', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0)
      ledger.blockReceived('A', RAW, 10)
      ledger.blockReceived('A', RAW, 20) // a duplicate: neutral
      ledger.blockReceived('A', RAW, 30) // nothing left to pass it off as
      assert.deepEqual(sink.take(), [['answered', 'A', 'block', 10], ['unrequested', 'A', 'block']])
    })

    it('remembers ended wants for settledRetention only', () => {
      const { ledger, sink } = setup({ settledRetention: 1000 })
      want(ledger, 'A', cid(1), 0)
      want(ledger, 'A', cid(2), 0)
      ledger.presenceReceived('A', cid(1).bytes, PresenceType.DontHave, 10)
      ledger.presenceReceived('A', cid(2).bytes, PresenceType.DontHave, 10)
      ledger.presenceReceived('A', cid(1).bytes, PresenceType.Have, 1009) // it found the block later: fine
      assert.equal(ledger.size, 2)
      ledger.presenceReceived('A', cid(2).bytes, PresenceType.Have, 1010) // both forgotten by now
      assert.deepEqual(sink.take(), [['answered', 'A', 'dont-have', 10], ['answered', 'A', 'dont-have', 10], ['unrequested', 'A', 'presence']])
      assert.equal(ledger.size, 0)
    })
  })

  describe('misses and adaptive deadlines', () => {
    it('cold: a want misses at exactly coldDeadline after it was sent, not a millisecond before', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 1000)
      assert.equal(ledger.nextDeadline, 6000)
      assert.equal(ledger.expire(5999), 6000)
      assert.deepEqual(sink.take(), [])
      assert.equal(ledger.expire(6000), Infinity)
      assert.deepEqual(sink.take(), [['missed', 'A', 5000, 5000]])
    })

    it('an answer at the deadline is a miss even when the timer has not fired yet', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0)
      want(ledger, 'A', cid(2), 0)
      ledger.blockReceived('A', RAW, 4999)
      ledger.blockReceived('A', RAW, 5000 + 4999) // cid 2: the deadline is now 2 x 4999, clamped to 7000
      assert.deepEqual(sink.take(), [['answered', 'A', 'block', 4999], ['missed', 'A', 9999, 7000], ['late', 'A', 'block', 9999]])
    })

    it('only wants sent with sendDontHave can miss; the others still count when answered', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0, WantType.Block, false)
      want(ledger, 'A', cid(2), 0, WantType.Have, false)
      assert.equal(ledger.nextDeadline, Infinity)
      advance(ledger, 1e9)
      ledger.blockReceived('A', RAW, 60_000)
      ledger.presenceReceived('A', cid(2).bytes, PresenceType.Have, 60_000)
      assert.deepEqual(sink.take(), [['answered', 'A', 'block', 60_000], ['answered', 'A', 'have', 60_000]])
      assert.equal(ledger.peerLatency('A', 'block'), 60_000)
      assert.equal(ledger.peerLatency('A', 'presence'), 60_000)
    })

    it('a presence after a miss is late: no second verdict, but a latency sample', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0, WantType.Have)
      advance(ledger, 5000)
      ledger.presenceReceived('A', cid(1).bytes, PresenceType.DontHave, 6000)
      ledger.presenceReceived('A', cid(1).bytes, PresenceType.DontHave, 6001) // a duplicate: nothing
      assert.deepEqual(sink.take(), [['missed', 'A', 5000, 5000], ['late', 'A', 'dont-have', 6000]])
      assert.equal(ledger.peerLatency('A', 'presence'), 6000)
    })

    it('a 300 ms peer never misses: not while cold, not once warmed, with wants overlapping', () => {
      const { ledger, sink } = setup()
      const events: Array<[number, () => void]> = []
      for (let i = 0; i < 200; i++) {
        const sentAt = i * 100 // three wants in flight at any time
        events.push([sentAt, () => { want(ledger, 'A', cid(i), sentAt) }])
        events.push([sentAt + 300, () => { ledger.blockReceived('A', RAW, sentAt + 300) }])
      }
      events.sort((a, b) => a[0] - b[0])
      for (const [at, run] of events) {
        advance(ledger, at)
        run()
      }
      advance(ledger, 1e9)
      assert.equal(sink.count('missed'), 0)
      assert.equal(sink.count('answered'), 200)
      assert.equal(ledger.peerDeadline('A'), 600)
    })

    it('a peer with ±30 % jitter around 300 ms never misses either', () => {
      const { ledger, sink } = setup()
      let seed = 42
      const random = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
      let now = 0
      for (let i = 0; i < 300; i++) {
        want(ledger, 'A', cid(i), now)
        now += 210 + Math.floor(random() * 180)
        advance(ledger, now)
        ledger.blockReceived('A', RAW, now)
      }
      assert.equal(sink.count('missed'), 0)
      assert.equal(sink.count('answered'), 300)
    })

    it('a 3 s peer is not tripped while warming up (cold 5 s), then adapts', () => {
      const { ledger, sink } = setup()
      for (let i = 0; i < 5; i++) {
        const sentAt = i * 10_000
        want(ledger, 'A', cid(i), sentAt)
        advance(ledger, sentAt + 3000)
        ledger.blockReceived('A', RAW, sentAt + 3000)
      }
      assert.equal(sink.count('missed'), 0)
      assert.equal(ledger.peerDeadline('A'), 6000)
    })

    it('a peer 10x slower than its own history misses, and its late answer stretches its deadline', () => {
      const { ledger, sink } = setup()
      for (let i = 0; i < 5; i++) {
        want(ledger, 'A', cid(i), i * 1000)
        ledger.blockReceived('A', RAW, i * 1000 + 100)
      }
      sink.take()
      assert.equal(ledger.peerDeadline('A'), 200)
      want(ledger, 'A', cid(99), 10_000)
      advance(ledger, 11_000)
      ledger.blockReceived('A', RAW, 11_000)
      assert.deepEqual(sink.take(), [['missed', 'A', 200, 200], ['late', 'A', 'block', 1000]])
      assert.equal(ledger.peerLatency('A'), 550)
      assert.equal(ledger.peerDeadline('A'), 1100)
    })

    it('a peer that only ever says DONT_HAVE never misses', () => {
      const { ledger, sink } = setup()
      for (let i = 0; i < 500; i++) {
        const sentAt = i * 7
        advance(ledger, sentAt)
        want(ledger, 'A', cid(i), sentAt)
        want(ledger, 'A', cid(10_000 + i), sentAt, WantType.Have)
        ledger.presenceReceived('A', cid(i).bytes, PresenceType.DontHave, sentAt + 20)
        ledger.presenceReceived('A', cid(10_000 + i).bytes, PresenceType.DontHave, sentAt + 20)
      }
      advance(ledger, 1e9)
      assert.equal(sink.count('missed'), 0)
      assert.equal(sink.count('answered'), 1000)
    })

    it('keeps block and presence latencies apart: fast DONT_HAVEs do not squeeze a slower honest block', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0)
      ledger.blockReceived('A', RAW, 300)
      for (let i = 2; i < 50; i++) {
        want(ledger, 'A', cid(i), i * 1000)
        ledger.presenceReceived('A', cid(i).bytes, PresenceType.DontHave, i * 1000 + 5)
      }
      assert.equal(ledger.peerLatency('A', 'presence'), 5)
      assert.equal(ledger.peerDeadline('A', WantType.Have), 50)
      assert.equal(ledger.peerDeadline('A', WantType.Block), 600)
      want(ledger, 'A', cid(100), 100_000)
      advance(ledger, 100_300)
      ledger.blockReceived('A', RAW, 100_300)
      assert.equal(sink.count('missed'), 0)
    })

    it('a want-have deadline before any presence sample follows the block latency, else cold', () => {
      const { ledger } = setup()
      want(ledger, 'A', cid(1), 0, WantType.Have)
      assert.equal(ledger.peerDeadline('A', WantType.Have), 5000)
      assert.equal(ledger.nextDeadline, 5000)
      want(ledger, 'A', cid(2), 0)
      ledger.blockReceived('A', RAW, 400)
      assert.equal(ledger.peerDeadline('A', WantType.Have), 800)
      assert.equal(ledger.nextDeadline, 800, 'the open want-have follows the new deadline')
    })

    it('EWMA with alpha 0.5; deadline = 2 x EWMA clamped to [50, 7000]', () => {
      const { ledger } = setup()
      const latencies = [100, 300, 1]
      for (let i = 0; i < latencies.length; i++) {
        want(ledger, 'A', cid(i), i * 10_000)
        ledger.blockReceived('A', RAW, i * 10_000 + latencies[i])
      }
      assert.equal(ledger.peerLatency('A'), 100.5) // 100 -> 200 -> 100.5
      assert.equal(ledger.peerDeadline('A'), 201)
      for (let i = 0; i < 20; i++) {
        want(ledger, 'B', cid(i), 0)
        ledger.blockReceived('B', RAW, 1)
        want(ledger, 'C', cid(i), i * 100_000)
        ledger.blockReceived('C', RAW, i * 100_000 + 6000)
      }
      assert.equal(ledger.peerDeadline('B'), 50)
      assert.equal(ledger.peerDeadline('C'), 7000)
    })

    it('honours custom multiplier, alpha and bounds', () => {
      const { ledger } = setup({ deadlineMultiplier: 3, ewmaAlpha: 1, minDeadline: 10, maxDeadline: 100_000, coldDeadline: 1000 })
      assert.equal(ledger.peerDeadline('A'), 1000)
      want(ledger, 'A', cid(1), 0)
      ledger.blockReceived('A', RAW, 400)
      want(ledger, 'A', cid(2), 1000)
      ledger.blockReceived('A', RAW, 1002)
      assert.equal(ledger.peerLatency('A'), 2)
      assert.equal(ledger.peerDeadline('A'), 10)
    })

    it('a shrinking deadline re-checks wants already in flight; one heap serves every peer', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0)
      want(ledger, 'A', cid(2), 0)
      want(ledger, 'B', cid(3), 100)
      assert.equal(ledger.nextDeadline, 5000)
      ledger.blockReceived('A', RAW, 100) // A now has a 200 ms deadline: cid 2 is due at 200
      assert.equal(ledger.nextDeadline, 200)
      assert.equal(ledger.expire(250), 5100)
      assert.deepEqual(sink.take(), [['answered', 'A', 'block', 100], ['missed', 'A', 250, 200]])
      assert.equal(ledger.expire(5100), Infinity)
      assert.deepEqual(sink.take(), [['missed', 'B', 5000, 5000]])
    })
  })

  describe('neutral endings', () => {
    it('a block from another peer ends every other peer\'s want for it: no miss, and their later answers are neutral', () => {
      const { ledger, sink } = setup()
      for (const peer of ['A', 'B', 'C']) {
        want(ledger, peer, cid(1), 0)
      }
      want(ledger, 'C', cid(2), 0)
      ledger.blockReceived('B', RAW, 50)
      assert.deepEqual(sink.take(), [['answered', 'B', 'block', 50]])
      assert.equal(ledger.nextDeadline, 5000, 'only C\'s cid 2 can still miss')
      ledger.blockReceived('A', RAW, 60) // A had it too and sent it anyway: not unrequested
      ledger.presenceReceived('C', cid(1).bytes, PresenceType.DontHave, 70)
      assert.deepEqual(sink.take(), [])
      advance(ledger, 1e9)
      assert.deepEqual(sink.take(), [['missed', 'C', 5000, 5000]])
    })

    it('settle(cid) ends every peer\'s want for it neutral', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0)
      want(ledger, 'B', cid(1), 0)
      ledger.settle(cid(1).bytes, 10)
      advance(ledger, 1e9)
      assert.deepEqual(sink.take(), [])
    })

    it('a cancel we send ends the want neutral, and an answer crossing it is not unrequested', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0)
      ledger.sent('A', cid(1).bytes, WantType.Block, false, true, 10)
      ledger.sent('A', cid(9).bytes, WantType.Block, false, true, 10) // cancel of something never wanted: ignored
      ledger.sent('Z', cid(9).bytes, WantType.Block, false, true, 10)
      assert.equal(ledger.peerCount, 1)
      advance(ledger, 1e9)
      ledger.blockReceived('A', RAW, 20)
      assert.deepEqual(sink.take(), [])
    })

    it('a cancel after the deadline does not undo the miss', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0)
      ledger.sent('A', cid(1).bytes, WantType.Block, false, true, 6000)
      assert.deepEqual(sink.take(), [['missed', 'A', 6000, 5000]])
    })

    it('re-sending a want refreshes it: one record, deadline from the latest send, type only upgrades', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0, WantType.Have)
      want(ledger, 'A', cid(1), 3000, WantType.Block)
      want(ledger, 'A', cid(1), 4000, WantType.Have) // does not downgrade
      assert.equal(ledger.size, 1)
      assert.equal(ledger.peerWants('A'), 1)
      advance(ledger, 8999)
      assert.deepEqual(sink.take(), [])
      ledger.presenceReceived('A', cid(1).bytes, PresenceType.Have, 8999)
      assert.deepEqual(sink.take(), [], 'still a want-block: HAVE does not answer it')
      advance(ledger, 9000)
      assert.deepEqual(sink.take(), [['missed', 'A', 5000, 5000]])
      want(ledger, 'A', cid(1), 10_000, WantType.Block, false) // re-sent without sendDontHave: cannot miss again
      advance(ledger, 1e9)
      assert.deepEqual(sink.take(), [])
    })

    it('removePeer forgets its wants and latency: no misses, cold again', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0)
      ledger.blockReceived('A', RAW, 100)
      want(ledger, 'A', cid(2), 200)
      want(ledger, 'B', cid(2), 200)
      ledger.removePeer('A')
      ledger.removePeer('nobody')
      assert.equal(ledger.peerDeadline('A'), 5000)
      assert.equal(ledger.peerWants('A'), 0)
      assert.equal(ledger.size, 1)
      advance(ledger, 5300)
      assert.deepEqual(sink.take(), [['answered', 'A', 'block', 100], ['missed', 'B', 5000, 5000]])
      ledger.blockReceived('B', RAW, 5300)
      assert.deepEqual(sink.take(), [['late', 'B', 'block', 5100]])
    })

    it('clear() forgets everything', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0)
      want(ledger, 'B', cid(1), 0)
      ledger.clear()
      assert.equal(ledger.size, 0)
      assert.equal(ledger.peerCount, 0)
      assert.equal(ledger.nextDeadline, Infinity)
      ledger.blockReceived('A', RAW, 10)
      assert.deepEqual(sink.take(), [['unrequested', 'A', 'block']])
      want(ledger, 'A', cid(1), 20)
      assert.equal(ledger.nextDeadline, 5020)
    })
  })

  describe('whole messages', () => {
    it('sentMessage records helia\'s encoded wantlist entries', () => {
      const { ledger, sink } = setup()
      ledger.sentMessage('A', BitswapMessage.encode({
        wantlist: {
          entries: [
            { cid: cid(1).bytes, priority: 1, wantType: HeliaWantType.WantBlock, cancel: false, sendDontHave: true },
            { cid: cid(2).bytes, priority: 1, wantType: HeliaWantType.WantHave, cancel: false, sendDontHave: true }
          ]
        },
        blocks: [],
        blockPresences: [],
        pendingBytes: 0
      }), 0)
      assert.equal(ledger.peerWants('A'), 2)
      ledger.sentMessage('A', BitswapMessage.encode({
        wantlist: { entries: [{ cid: cid(2).bytes, priority: 1, wantType: HeliaWantType.WantHave, cancel: true, sendDontHave: false }] },
        blocks: [],
        blockPresences: [],
        pendingBytes: 0
      }), 10)
      advance(ledger, 1e9)
      assert.deepEqual(sink.take(), [['missed', 'A', 5000, 5000]])
    })

    it('a full wantlist (helia on connect, sendDontHave false) never misses and ends the wants it leaves out', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0)
      ledger.sentMessage('A', BitswapMessage.encode({
        wantlist: {
          entries: [2, 3].map(n => ({ cid: cid(n).bytes, priority: 1, wantType: HeliaWantType.WantBlock, cancel: false, sendDontHave: false })),
          full: true
        },
        blocks: [],
        blockPresences: [],
        pendingBytes: 0
      }), 100)
      advance(ledger, 1e9)
      assert.deepEqual(sink.take(), [], 'cid 1 was dropped by the peer, 2 and 3 may rightly go unanswered')
      ledger.blockReceived('A', RAW, 1e9 + 10)
      assert.deepEqual(sink.take()[0], ['answered', 'A', 'block', 1e9 + 10 - 100])
    })

    it('receivedMessage applies presences before blocks, so a mixed reply matches the right wants', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0)
      want(ledger, 'A', cid(2), 10)
      want(ledger, 'B', cid(1), 0)
      want(ledger, 'B', cid(2), 10)
      // A has cid 2 only: one message with the block (first on the wire) and DONT_HAVE for cid 1
      ledger.receivedMessage('A', BitswapMessage.encode({
        blocks: [{ prefix: cidToPrefix(cid(2)), data: new Uint8Array(10) }],
        blockPresences: [{ cid: cid(1).bytes, type: BlockPresenceType.DoNotHaveBlock }],
        pendingBytes: 0
      }), 40)
      assert.deepEqual(sink.take(), [['answered', 'A', 'dont-have', 40], ['answered', 'A', 'block', 30]])
      // so B's cid 2 ended neutral, while B's cid 1 is still open and misses
      advance(ledger, 1e9)
      assert.deepEqual(sink.take(), [['missed', 'B', 5000, 5000]])
    })

    it('receivedMessage counts a malformed message not at all, and bitswap 1.0.0 blocks as unrequested', () => {
      const { ledger, sink } = setup()
      want(ledger, 'A', cid(1), 0)
      const good = BitswapMessage.encode({ blocks: [], blockPresences: [{ cid: cid(1).bytes, type: BlockPresenceType.DoNotHaveBlock }], pendingBytes: 0 })
      const broken = Uint8Array.from([...good, 0x22, 0x05, 0x0a])
      assert.throws(() => { ledger.receivedMessage('A', broken, 10) }, InvalidMessageError)
      assert.deepEqual(sink.take(), [])
      ledger.receivedMessage('A', Uint8Array.from([0x12, 0x01, 0x00]), 20) // field 2: a 1.0.0 block
      assert.deepEqual(sink.take(), [['unrequested', 'A', 'block']])
      ledger.receivedMessage('A', good, 30)
      assert.deepEqual(sink.take(), [['answered', 'A', 'dont-have', 30]])
    })
  })

  describe('bounds and robustness', () => {
    it('caps wants per peer, evicting ended, then silent, then the oldest missable, with no verdict', () => {
      const { ledger, sink } = setup({ maxWantsPerPeer: 3 })
      want(ledger, 'A', cid(1), 0)
      want(ledger, 'A', cid(2), 1, WantType.Block, false)
      want(ledger, 'A', cid(3), 2)
      ledger.presenceReceived('A', cid(3).bytes, PresenceType.DontHave, 3)
      sink.take()
      want(ledger, 'A', cid(4), 4) // evicts ended cid 3
      ledger.presenceReceived('A', cid(3).bytes, PresenceType.Have, 4) // so this is forgotten, not neutral
      assert.deepEqual(sink.take(), [['unrequested', 'A', 'presence']])
      want(ledger, 'A', cid(5), 5) // evicts silent cid 2
      want(ledger, 'A', cid(6), 6) // evicts cid 1, the oldest missable
      assert.equal(ledger.peerWants('A'), 3)
      assert.equal(ledger.size, 3)
      ledger.presenceReceived('A', cid(2).bytes, PresenceType.Have, 7) // evicted: forgotten
      advance(ledger, 1e9)
      // three misses (cids 4, 5, 6): the evicted missable cid 1 never misses
      assert.deepEqual(sink.take(), [
        ['unrequested', 'A', 'presence'],
        ['missed', 'A', 5000, 5000], ['missed', 'A', 5000, 5000], ['missed', 'A', 5000, 5000]
      ])
    })

    it('caps peers, forgetting the least recently active', () => {
      const { ledger, sink } = setup({ maxPeers: 2 })
      want(ledger, 'A', cid(1), 0)
      want(ledger, 'B', cid(1), 1)
      ledger.presenceReceived('A', cid(1).bytes, PresenceType.Have, 2) // A active again... (a HAVE to a want-block)
      want(ledger, 'C', cid(1), 3) // evicts B
      assert.equal(ledger.peerCount, 2)
      assert.equal(ledger.peerWants('B'), 0)
      assert.equal(ledger.peerWants('A'), 1)
      advance(ledger, 1e9)
      assert.deepEqual(sink.take().map(v => v[1]), ['A', 'C'])
    })

    it('a sink may call back into the ledger, and a throwing sink breaks nothing', () => {
      const verdicts: string[] = []
      const ledger: WantLedger = new WantLedger({}, {
        answered: () => { verdicts.push('answered'); throw new Error('boom') },
        missed: (peer) => { verdicts.push(`missed ${peer}`); ledger.removePeer(peer) },
        unrequested: () => { verdicts.push('unrequested') }
      })
      want(ledger, 'A', cid(1), 0)
      want(ledger, 'A', cid(2), 0)
      want(ledger, 'B', cid(3), 0)
      assert.equal(ledger.expire(5000), Infinity)
      // verdicts are delivered after the pass, so removing A in the sink cut nothing short
      assert.deepEqual(verdicts.sort(), ['missed A', 'missed A', 'missed B'])
      assert.equal(ledger.size, 0)
      want(ledger, 'A', cid(1), 6000)
      ledger.blockReceived('A', RAW, 6010)
      ledger.blockReceived('A', RAW, 6020)
      assert.deepEqual(verdicts.slice(3), ['answered'])
      assert.equal(ledger.nextDeadline, Infinity)
    })

    it('property: at most one verdict per want sent, the heap is always right, and memory stays bounded', () => {
      const op = fc.oneof(
        fc.record({ t: fc.constant('want' as const), peer: fc.nat({ max: 3 }), n: fc.nat({ max: 12 }), type: fc.constantFrom(WantType.Block, WantType.Have), sdh: fc.boolean(), cancel: fc.boolean(), pb: fc.boolean() }),
        fc.record({ t: fc.constant('block' as const), peer: fc.nat({ max: 3 }), pb: fc.boolean() }),
        fc.record({ t: fc.constant('presence' as const), peer: fc.nat({ max: 3 }), n: fc.nat({ max: 12 }), type: fc.constantFrom(PresenceType.Have, PresenceType.DontHave), pb: fc.boolean() }),
        fc.record({ t: fc.constant('remove' as const), peer: fc.nat({ max: 3 }) }),
        fc.record({ t: fc.constant('settle' as const), n: fc.nat({ max: 12 }), pb: fc.boolean() })
      )
      fc.assert(fc.property(fc.array(fc.tuple(op, fc.nat({ max: 3000 })), { maxLength: 120 }), (ops) => {
        const { ledger, sink } = setup({ maxWantsPerPeer: 5, maxPeers: 3 })
        let now = 0
        let sends = 0
        for (const [o, dt] of ops) {
          // a punctual timer: at the deadline it announced, at least one want misses
          for (let next = ledger.nextDeadline; next <= now + dt; next = ledger.nextDeadline) {
            const at = Math.max(next, now)
            const before = sink.count('missed')
            assert.ok(ledger.expire(at) > at)
            assert.ok(sink.count('missed') > before, 'nextDeadline pointed at a want that did not miss')
          }
          now += dt
          const peer = `P${'peer' in o ? o.peer : 0}`
          if (o.t === 'want') {
            const c = cid(o.n, o.pb ? DAG_PB : raw.code)
            ledger.sent(peer, c.bytes, o.type, o.sdh, o.cancel, now)
            if (!o.cancel) sends++
          } else if (o.t === 'block') {
            ledger.blockReceived(peer, o.pb ? PB : RAW, now)
          } else if (o.t === 'presence') {
            ledger.presenceReceived(peer, cid(o.n, o.pb ? DAG_PB : raw.code).bytes, o.type, now)
          } else if (o.t === 'remove') {
            ledger.removePeer(peer)
          } else {
            ledger.settle(cid(o.n, o.pb ? DAG_PB : raw.code).bytes, now)
          }
          assert.ok(ledger.size <= 5 * ledger.peerCount)
          assert.ok(ledger.peerCount <= 3)
        }
        ledger.expire(now + 1e9)
        assert.ok(sink.count('answered') + sink.count('missed') <= sends)
        assert.equal(ledger.nextDeadline, Infinity)
      }), { numRuns: 300 })
    })
  })
})
