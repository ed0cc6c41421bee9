import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { DeadlineScheduler } from '../../../src/libp2p/deadline-scheduler.ts'
import { DeferredStream } from '../../../src/libp2p/deferred-stream.ts'
import { WantReleaser } from '../../../src/libp2p/release.ts'
import { ReplayStream } from '../../../src/libp2p/replay-stream.ts'
// The real codec of @helia/bitswap 4.0.19 (not exported by the package)
import { BitswapMessage } from '../../../node_modules/@helia/bitswap/dist/src/pb/message.js'
import type { Connection, PeerId, Stream, StreamCloseEvent } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'

const log = defaultLogger().forComponent('test')
const CID_A = CID.parse('bafkreiexqvahkuhtb44j5uiztdnlywky7vuvclp4meitld5ysg6z47ffyu')
const CID_B = CID.parse('bafkreid5gs5nnwazzm433nz4iag42ybwiaiocghrlmk3oz5ymgmng4u6da')

async function tick (): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, 0))
}

/** Reads a handed stream the way @helia/bitswap's handler does: close() first, then listeners */
async function readLikeBitswap (stream: Stream): Promise<{ chunks: Uint8Array[], ended: boolean }> {
  await stream.close()
  const out = { chunks: [] as Uint8Array[], ended: false }
  stream.addEventListener('message', (evt) => { out.chunks.push(evt.data.subarray()) })
  stream.addEventListener('remoteCloseWrite', () => { out.ended = true })
  await tick()
  return out
}

describe('libp2p/replay-stream', () => {
  it('delivers its bytes only once a reader listens, then remoteCloseWrite, then closes', async () => {
    const stream = new ReplayStream('r1', '/ipfs/bitswap/1.2.0', Uint8Array.of(1, 2, 3), log)
    await tick()
    assert.equal(stream.consumed, false, 'nothing is dispatched to nobody')
    const closed = new Promise<void>(resolve => { stream.addEventListener('close', () => { resolve() }) })
    const read = await readLikeBitswap(stream)
    await closed
    assert.deepEqual(read.chunks, [Uint8Array.of(1, 2, 3)])
    assert.equal(read.ended, true)
    assert.equal(stream.status, 'closed')
    assert.equal(stream.consumed, true)
    assert.throws(() => stream.send(Uint8Array.of(1)), { name: 'StreamStateError' })
  })

  it('async iteration reads it too', async () => {
    const stream = new ReplayStream('r2', '/p', Uint8Array.of(9), log)
    const chunks: unknown[] = []
    for await (const chunk of stream) {
      chunks.push(chunk)
    }
    assert.deepEqual(chunks, [Uint8Array.of(9)])
    assert.equal(stream.consumed, true)
  })
})

describe('libp2p/deferred-stream', () => {
  function real (): Stream & { ops: string[] } {
    const ops: string[] = []
    return Object.assign(new EventTarget(), {
      ops,
      status: 'open',
      closeRead: async () => { ops.push('closeRead') },
      send: (d: Uint8Array) => { ops.push(`send ${d[0]}`); return true },
      close: async () => { ops.push('close') },
      abort: (err: Error) => { ops.push(`abort ${err.message}`) }
    }) as unknown as Stream & { ops: string[] }
  }

  it('buffers what Bitswap does, never making it wait, and replays it in order on attach', async () => {
    const aborted: Error[] = []
    const stream = new DeferredStream('d1', '/p', log, 0, (err) => { aborted.push(err) })
    await stream.closeRead()
    assert.equal(stream.send(Uint8Array.of(1)), true)
    stream.send(Uint8Array.of(2))
    assert.equal(stream.writeBufferLength, 2)
    await stream.close()
    const r = real()
    stream.attach(r)
    assert.deepEqual(r.ops, ['closeRead', 'send 1', 'send 2', 'close'])
    assert.equal(stream.send(Uint8Array.of(3)), true)
    assert.deepEqual(r.ops.at(-1), 'send 3', 'forwards once attached')
    const closes: Array<Error | undefined> = []
    stream.addEventListener('close', (evt) => { closes.push((evt as StreamCloseEvent).error) })
    r.dispatchEvent(Object.assign(new Event('close'), { error: new Error('reset') }))
    assert.equal(closes[0]?.message, 'reset', 'the real stream\'s close is re-dispatched')
    assert.deepEqual(aborted, [])
  })

  it('fail() ends it with the error; an abort before the real stream asks the guard to cancel the open', () => {
    const aborted: Error[] = []
    const failed = new DeferredStream('d2', '/p', log, 0, (err) => { aborted.push(err) })
    const errors: Array<Error | undefined> = []
    failed.addEventListener('close', (evt) => { errors.push((evt as StreamCloseEvent).error) })
    failed.fail(new Error('deadline'))
    assert.equal(errors[0]?.message, 'deadline')
    assert.equal(failed.status, 'reset')
    assert.throws(() => failed.send(Uint8Array.of(1)), { name: 'StreamStateError' })
    failed.attach(real())
    assert.equal(failed.status, 'reset', 'too late to attach')

    const byCaller = new DeferredStream('d3', '/p', log, 0, (err) => { aborted.push(err) })
    byCaller.abort(new Error('gave up'))
    assert.deepEqual(aborted.map(e => e.message), ['gave up'])
    assert.equal(byCaller.status, 'aborted')
  })
})

describe('libp2p/release: WantReleaser', () => {
  let peer: PeerId
  let other: PeerId
  before(async () => {
    peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  })

  function setup (handler?: (stream: Stream, connection: Connection) => void, maxPeers?: number): { releaser: WantReleaser, calls: Array<{ stream: Stream, connection: Connection }>, scheduler: DeadlineScheduler } {
    const calls: Array<{ stream: Stream, connection: Connection }> = []
    const registrar = {
      getHandler: (protocol: string) => {
        if (protocol !== '/ipfs/bitswap/1.2.0') {
          throw new Error('UnhandledProtocolError')
        }
        return { handler: handler ?? ((stream: Stream, connection: Connection) => { calls.push({ stream, connection }); void readLikeBitswap(stream) }), options: {} }
      }
    } as unknown as Registrar
    const connectionManager = { getConnections: () => [] } as unknown as ConnectionManager
    const scheduler = new DeadlineScheduler()
    const releaser = new WantReleaser({ registrar, connectionManager, logger: defaultLogger() }, { protocols: ['/ipfs/bitswap/1.1.0', '/ipfs/bitswap/1.2.0'], enabled: true, scheduler, maxPeers })
    releaser.start()
    return { releaser, calls, scheduler }
  }

  it('one message per peer per tick, on the first handled protocol, from a connection naming the peer', async () => {
    const { releaser, calls, scheduler } = setup()
    releaser.release(peer, CID_A.bytes, 'deadline')
    releaser.release(peer, CID_B.bytes, 'deadline')
    releaser.release(other, CID_A.bytes, 'disconnect')
    await tick()
    assert.equal(calls.length, 2)
    assert.equal(calls[0].stream.protocol, '/ipfs/bitswap/1.2.0')
    assert.ok(calls[0].connection.remotePeer.equals(peer))
    const data = (calls[0].stream as unknown as { data: Uint8Array[] }).data
    assert.equal(data.length, 0, 'read by the handler')
    assert.equal(releaser.releasedFor(peer), 2)
    assert.equal(releaser.releasedFor(other), 1)
    assert.equal(releaser.released, 3)
    scheduler.stop()
  })

  it('the message is a DONT_HAVE for each CID, in helia\'s own codec', async () => {
    let bytes: Uint8Array | undefined
    const { releaser, scheduler } = setup((stream) => { void readLikeBitswap(stream).then(r => { bytes = r.chunks[0] }) })
    releaser.release(peer, CID_A.bytes, 'circuit_open')
    releaser.release(peer, CID_B.bytes, 'circuit_open')
    await tick()
    await tick()
    assert.ok(bytes != null)
    const message = BitswapMessage.decode(bytes.subarray(1))
    assert.deepEqual(message.blockPresences.map(p => CID.decode(p.cid).toString()), [CID_A.toString(), CID_B.toString()])
    scheduler.stop()
  })

  it('a handler that throws makes it unreachable; per-peer counts stay bounded; stop() drops what is queued', async () => {
    const { releaser, scheduler } = setup(() => { throw new Error('not bitswap') }, 1)
    releaser.release(peer, CID_A.bytes, 'deadline')
    await tick()
    assert.equal(releaser.status, 'unreachable')
    releaser.release(other, CID_A.bytes, 'deadline')
    assert.equal(releaser.releasedFor(peer), 0, 'forgotten to keep one peer')
    assert.equal(releaser.releasedFor(other), 1)
    releaser.stop()
    assert.equal(releaser.status, 'not-started')
    scheduler.stop()
  })
})
