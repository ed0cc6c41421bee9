import assert from 'node:assert/strict'
import { patchMiddlewarePileup } from '../../../src/libp2p/upstream.ts'
import { TestNet, componentsOf, waitFor } from '../../../fixtures/index.ts'
import type { MiddlewareRegistrar } from '../../../src/libp2p/upstream.ts'
import type { TestNode } from '../../../fixtures/index.ts'
import type { StreamMiddleware } from '@libp2p/interface'

const PROTOCOL = '/test/pileup/1.0.0'
const passThrough: StreamMiddleware = (stream, connection, next) => { next(stream, connection) }

/** A registrar that stores middleware lists and hands out copies, as a fixed libp2p might */
class CopyingRegistrar implements MiddlewareRegistrar {
  readonly lists = new Map<string, StreamMiddleware[]>()
  use (protocol: string, middleware: StreamMiddleware[]): void { this.lists.set(protocol, middleware) }
  unuse (protocol: string): void { this.lists.delete(protocol) }
  getMiddleware (protocol: string): StreamMiddleware[] { return [...(this.lists.get(protocol) ?? [])] }
}

/** A registrar with libp2p 3.3.11's behaviour, its method an own property (not on the prototype) */
function storingRegistrar (): MiddlewareRegistrar & { lists: Map<string, StreamMiddleware[]> } {
  const lists = new Map<string, StreamMiddleware[]>()
  return {
    lists,
    use: (protocol, middleware) => { lists.set(protocol, middleware) },
    unuse: (protocol) => { lists.delete(protocol) },
    getMiddleware: (protocol) => lists.get(protocol) ?? []
  }
}

describe('libp2p/upstream: patchMiddlewarePileup', () => {
  const net = new TestNet()

  afterEach(async () => {
    await net.stop()
  })

  /**
   * B handles PROTOCOL behind a pass-through middleware; A opens `streams` streams to B one at a time,
   * then B opens one stream to A. Returns B's handler runs after each inbound stream, and how many more
   * B's own outbound stream caused.
   */
  async function handlerRuns (patch: boolean, streams = 4): Promise<{ applied?: boolean, perStream: number[], onOutbound: number }> {
    const a = await net.node()
    const b = await net.node()
    const applied = patch ? patchMiddlewarePileup(componentsOf(b).registrar).applied : undefined
    let runs = 0

    await b.handle(PROTOCOL, (stream) => { runs++; stream.close().catch(() => {}) })
    b.use(PROTOCOL, passThrough)
    await a.handle(PROTOCOL, (stream) => { stream.close().catch(() => {}) })

    const perStream: number[] = []
    let expected = 0

    for (let i = 1; i <= streams; i++) {
      const stream = await a.dialProtocol(b.getMultiaddrs(), PROTOCOL)
      await stream.close()
      // each step must settle before the next: a pileup grows with every inbound stream
      expected += patch ? 1 : i
      await waitFor(() => runs === expected, { message: () => `B's handler ran ${runs} times, expected ${expected}` })
      perStream.push(runs)
    }

    const beforeOutbound = runs
    await dialAndClose(b, a)
    await settle(b)

    return { applied, perStream, onOutbound: runs - beforeOutbound }
  }

  it('libp2p 3.3.11 piles handlers up without it (when this fails, libp2p is fixed: delete upstream.ts)', async () => {
    const { perStream, onOutbound } = await handlerRuns(false)

    assert.deepEqual(perStream, [1, 3, 6, 10])
    assert.equal(onOutbound, 4, "B's outbound stream ran the 4 handler copies its inbound streams left behind")
  })

  it('on the real registrar: applied, and N inbound streams run the handler N times, outbound never', async () => {
    const { applied, perStream, onOutbound } = await handlerRuns(true)

    assert.equal(applied, true)
    assert.deepEqual(perStream, [1, 2, 3, 4])
    assert.equal(onOutbound, 0)
  })

  it('on a registrar that already copies: not applied, nothing changed, no probe left behind', () => {
    const registrar = new CopyingRegistrar()
    const before = registrar.getMiddleware

    const patch = patchMiddlewarePileup(registrar)

    assert.equal(patch.applied, false)
    assert.equal(registrar.getMiddleware, before)
    assert.equal(Object.hasOwn(registrar, 'getMiddleware'), false)
    assert.equal(registrar.lists.size, 0)
    patch.restore()
    assert.equal(registrar.getMiddleware, before)
  })

  it('hands out copies with the same middleware, and leaves the stored list alone', () => {
    const registrar = storingRegistrar()
    const list = [passThrough]
    registrar.use(PROTOCOL, list)

    const patch = patchMiddlewarePileup(registrar)
    const copy = registrar.getMiddleware(PROTOCOL)
    copy.push(passThrough)

    assert.equal(patch.applied, true)
    assert.notEqual(copy, list)
    assert.deepEqual(registrar.getMiddleware(PROTOCOL), [passThrough])
    assert.deepEqual(list, [passThrough])
    assert.deepEqual([...registrar.lists.keys()], [PROTOCOL])
  })

  it('restore puts the original back: the prototype method on a real registrar', async () => {
    const registrar = componentsOf(await net.node()).registrar
    const original = registrar.getMiddleware

    const patch = patchMiddlewarePileup(registrar)
    assert.equal(Object.hasOwn(registrar, 'getMiddleware'), true)
    patch.restore()

    assert.equal(Object.hasOwn(registrar, 'getMiddleware'), false)
    assert.equal(registrar.getMiddleware, original)
    const list = [passThrough]
    registrar.use(PROTOCOL, list)
    assert.equal(registrar.getMiddleware(PROTOCOL), list, 'the stored array is handed out again')
  })

  it('restore puts the original back: an own-property method', () => {
    const registrar = storingRegistrar()
    const original = registrar.getMiddleware

    patchMiddlewarePileup(registrar).restore()

    assert.equal(Object.hasOwn(registrar, 'getMiddleware'), true)
    assert.equal(registrar.getMiddleware, original)
  })

  it('is shared by callers: idempotent, and only the last restore removes it', () => {
    const registrar = storingRegistrar()
    const original = registrar.getMiddleware

    const first = patchMiddlewarePileup(registrar)
    const patched = registrar.getMiddleware
    const second = patchMiddlewarePileup(registrar)

    assert.deepEqual([first.applied, second.applied], [true, true])
    assert.equal(registrar.getMiddleware, patched, 'the second caller reuses the first patch')

    first.restore()
    first.restore()
    assert.equal(registrar.getMiddleware, patched, 'a double restore must not release the other holder')

    const { restore } = second // callers keep restore as a bare function in their disposer lists
    restore()
    assert.equal(registrar.getMiddleware, original)
  })

  it('does not unwrap a wrapper someone added on top of it', () => {
    const registrar = storingRegistrar()
    const patch = patchMiddlewarePileup(registrar)
    const patched = registrar.getMiddleware
    const wrapper = (protocol: string): StreamMiddleware[] => patched(protocol)
    registrar.getMiddleware = wrapper

    patch.restore()

    assert.equal(registrar.getMiddleware, wrapper)
  })
})

async function dialAndClose (from: TestNode, to: TestNode): Promise<void> {
  const stream = await from.dialProtocol(to.getMultiaddrs(), PROTOCOL)
  await stream.close()
}

/** Let the streams' handlers finish: wait until the node has no open PROTOCOL streams */
async function settle (node: TestNode): Promise<void> {
  await waitFor(() => node.getConnections().flatMap(c => c.streams).every(s => s.protocol !== PROTOCOL))
}
