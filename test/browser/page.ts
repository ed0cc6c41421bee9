/**
 * What runs inside Chromium (bundled by browser.spec.ts with esbuild, no Node polyfills): Helia nodes
 * on the memory transport, and a Helia consumer dialing a Node provider over WebSockets. Each case
 * returns plain JSON for the spec to assert on.
 */

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createHelia } from 'helia'
import { concat } from 'uint8arrays/concat'
import { equals } from 'uint8arrays/equals'
import { addBitswapCircuitBreaker, CircuitState } from '../../src/index.ts'
import { makeBlocks, addBlocks } from '../../fixtures/blocks.ts'
import { FaultController, faultInjector } from '../../fixtures/faults.ts'
import { WEBSOCKETS_BLOCKS } from './shared.ts'
import type { BitswapCircuitBreakerInit, BitswapCircuitBreakerService } from '../../src/index.ts'
import type { TestBlock } from '../../fixtures/blocks.ts'
import type { PeerId, ServiceMap } from '@libp2p/interface'
import type { Helia } from 'helia'
import type { Libp2pOptions } from 'libp2p'

/** Short open duration and a quick ramp (as fixtures/breaker.ts FAST_RECOVERY), so a healed peer recovers in seconds */
const FAST_RECOVERY: BitswapCircuitBreakerInit = {
  circuitBreaker: { timeout: 300, maxRequests: 2 },
  recovery: { strategy: 'LINEAR', initialRecoveryRate: 0.5, recoveryInterval: 200, successThreshold: 3 }
}

let memoryAddresses = 0

/** Every top-level key Helia's libp2pDefaults() has that would dial out, replaced */
function config<S extends ServiceMap> (transport: 'memory' | 'websockets', services: Libp2pOptions<S>['services']): Libp2pOptions<S> {
  return {
    addresses: { listen: transport === 'memory' ? [`/memory/browser-${++memoryAddresses}`] : [] },
    transports: [transport === 'memory' ? memory() : webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    // a browser's default gater refuses insecure WebSockets and private addresses: the provider is ws://127.0.0.1
    connectionGater: { denyDialMultiaddr: () => false },
    services
  }
}

async function heliaNode<S extends ServiceMap> (transport: 'memory' | 'websockets', services: Libp2pOptions<S>['services']) {
  const helia = createHelia({
    libp2p: config(transport, services),
    http: { delegatedRouters: [], recursiveGateways: [] }
  })
  await helia.start()
  return helia
}

async function consumer (transport: 'memory' | 'websockets', init: BitswapCircuitBreakerInit = {}) {
  return heliaNode(transport, addBitswapCircuitBreaker({ services: { identify: identify() } }, init).services)
}

async function provider (blocks: TestBlock[], fault: FaultController) {
  const helia = await heliaNode('memory', { identify: identify(), faults: faultInjector(fault) })
  await addBlocks(helia, blocks)
  return helia
}

interface Fetched { received: number, corrupt: number, failed: string[] }

/**
 * Each block through `helia.blockstore.get` (Bitswap's broadcast wantlist), `concurrency` at a time,
 * checked byte for byte. Worker i starts `stagger × i` ms late: @helia/bitswap batches wants that
 * arrive together into one message, so staggered wants make one Bitswap stream each.
 */
async function fetchAll (helia: Pick<Helia, 'blockstore'>, blocks: TestBlock[], timeout: number, concurrency = 16, stagger = 0): Promise<Fetched> {
  const signal = AbortSignal.timeout(timeout)
  const result: Fetched = { received: 0, corrupt: 0, failed: [] }
  const queue = [...blocks]
  await Promise.all(Array.from({ length: concurrency }, async (_, i) => {
    await new Promise(resolve => setTimeout(resolve, stagger * i))
    for (let block = queue.shift(); block != null; block = queue.shift()) {
      try {
        const chunks: Uint8Array[] = []
        for await (const chunk of helia.blockstore.get(block.cid, { signal })) chunks.push(chunk)
        if (equals(concat(chunks), block.bytes)) result.received++
        else result.corrupt++
      } catch (err) {
        result.failed.push((err as Error).name)
      }
    }
  }))
  return result
}

function states (service: BitswapCircuitBreakerService, peer: PeerId): CircuitState[] {
  const seen: CircuitState[] = []
  for (const type of ['circuit:open', 'circuit:half-open', 'circuit:close'] as const) {
    service.addEventListener(type, (evt) => {
      if (evt.detail.peer.equals(peer)) seen.push(evt.detail.to)
    })
  }
  return seen
}

async function until (condition: () => boolean, timeout: number, what: string, status?: () => unknown): Promise<void> {
  const end = Date.now() + timeout
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}${status == null ? '' : `: ${JSON.stringify(status(), (_k, v: unknown) => typeof v === 'bigint' ? String(v) : v)}`}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** Case 1: consumer, healthy and resetting providers, all in the page on the memory transport */
async function memoryCase () {
  const blocks = await makeBlocks(100, 1024)
  const good = await provider(blocks, new FaultController())
  const bad = await provider([], new FaultController({ mode: 'reset' }))
  const node = await consumer('memory')
  try {
    const service = node.libp2p.services.bitswapCircuitBreaker
    const badStates = states(service, bad.libp2p.peerId)
    const goodStates = states(service, good.libp2p.peerId)
    await node.libp2p.dial(good.libp2p.getMultiaddrs())
    await node.libp2p.dial(bad.libp2p.getMultiaddrs())

    const fetched = await fetchAll(node, blocks, 20_000)
    await until(() => badStates.includes(CircuitState.OPEN), 5_000, 'the resetting provider\'s circuit to open', () => ({ fetched, peer: service.getPeerStatus(bad.libp2p.peerId), streams: service.getOverallStatus().streams }))

    return {
      total: blocks.length,
      ...fetched,
      badStates,
      goodStates,
      badState: service.getPeerStatus(bad.libp2p.peerId).circuitState,
      userAgent: navigator.userAgent
    }
  } finally {
    await Promise.all([node.stop(), good.stop(), bad.stop()])
  }
}

/** Case 2: a page consumer and a Node provider over WebSockets; the spec heals the provider between the two steps */
let ws: { node: Awaited<ReturnType<typeof consumer>>, provider: PeerId, seen: CircuitState[], fetching: Promise<Fetched>, total: number } | undefined

async function webSocketsStart (address: string) {
  const blocks = await makeBlocks(WEBSOCKETS_BLOCKS.n, WEBSOCKETS_BLOCKS.size, { seed: WEBSOCKETS_BLOCKS.seed })
  const node = await consumer('websockets', FAST_RECOVERY)
  const service = node.libp2p.services.bitswapCircuitBreaker
  const ma = multiaddr(address)
  const connection = await node.libp2p.dial(ma)
  const seen = states(service, connection.remotePeer)
  ws = { node, provider: connection.remotePeer, seen, fetching: fetchAll(node, blocks, 30_000, blocks.length, 100), total: blocks.length }
  await until(() => seen.includes(CircuitState.OPEN), 15_000, 'the faulty provider\'s circuit to open', () => ({ peer: service.getPeerStatus(connection.remotePeer), streams: service.getOverallStatus().streams }))
  await until(() => node.libp2p.getConnections(connection.remotePeer).length === 0, 5_000, 'the hang-up')
  return { states: [...seen], connections: node.libp2p.getConnections(connection.remotePeer).length, lastError: service.getPeerStatus(connection.remotePeer).health?.lastError }
}

async function webSocketsFinish () {
  if (ws == null) throw new Error('webSocketsStart first')
  const { node, provider: peer, seen, fetching, total } = ws
  try {
    const fetched = await fetching
    await until(() => seen.includes(CircuitState.CLOSED), 10_000, 'the healed provider\'s circuit to close')
    const service = node.libp2p.services.bitswapCircuitBreaker
    return { total, ...fetched, states: [...seen], state: service.getPeerStatus(peer).circuitState, recoveryStats: service.getOverallStatus().recoveryStats }
  } finally {
    ws = undefined
    await node.stop()
  }
}

Object.assign(globalThis, { bcb: { memoryCase, webSocketsStart, webSocketsFinish } })
document.title = 'ready'
