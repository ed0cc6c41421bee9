/**
 * Adding the circuit breaker to Helia without losing Helia's default libp2p services.
 *
 * Helia's `libp2p` option replaces whole top-level keys of `libp2pDefaults()`, so passing
 * `{ services: { bitswapCircuitBreaker: … } }` would drop every default service (identify, the
 * DHT, …). `addBitswapCircuitBreaker(libp2pDefaults())` adds ours to the full defaults instead.
 *
 * To run offline, this script then listens on 127.0.0.1 only, turns off peer discovery (bootstrap,
 * mDNS), Helia's HTTP routers and gateways, and the three default services that reach the network
 * by themselves (UPnP, delegated peer and content routing). In your app, leave all that as it is.
 * Two such nodes then exchange blocks over loopback TCP.
 *
 * Run: npx tsx examples/helia.ts
 */
import { libp2pDefaults } from '@helia/libp2p'
import { createHelia } from 'helia'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { concat } from 'uint8arrays/concat'
// in your app: from 'bitswap-circuit-breaker'
import { addBitswapCircuitBreaker } from '../src/index.ts'
import type { BitswapCircuitBreakerService } from '../src/index.ts'

/** Default services that reach beyond this machine by themselves: UPnP multicasts gateway searches, delegated routing calls delegated-ipfs.dev */
const ONLINE_ONLY = ['upnp', 'delegatedPeerRouting', 'delegatedContentRouting']

/** The documented call, then the offline trims (not needed in a real app) */
function config () {
  const libp2p = addBitswapCircuitBreaker(libp2pDefaults())
  libp2p.addresses = { listen: ['/ip4/127.0.0.1/tcp/0'] }
  libp2p.peerDiscovery = []
  for (const name of ONLINE_ONLY) {
    delete (libp2p.services as Record<string, unknown>)[name]
  }
  return libp2p
}

async function node (): Promise<ReturnType<typeof createHelia>> {
  const helia = createHelia({ libp2p: config(), http: { delegatedRouters: [], recursiveGateways: [] } })
  await helia.start()
  return helia
}

// what your app would pass: every Helia default plus ours
const defaults = Object.keys(libp2pDefaults().services ?? {})
console.log(`addBitswapCircuitBreaker(libp2pDefaults()) services: ${Object.keys(addBitswapCircuitBreaker(libp2pDefaults()).services).join(', ')}`)

const [alice, bob] = await Promise.all([node(), node()])

try {
  // the running node: every default (but the offline trims) is still there, next to ours
  const services = Object.keys(alice.libp2p.services)
  console.log(`running Helia's libp2p services: ${services.join(', ')}`)
  const missing = defaults.filter(name => !services.includes(name) && !ONLINE_ONLY.includes(name))
  if (!services.includes('bitswapCircuitBreaker')) {
    missing.push('bitswapCircuitBreaker')
  }
  if (missing.length > 0) {
    throw new Error(`services lost: ${missing.join(', ')}`)
  }
  console.log(`all ${defaults.length - ONLINE_ONLY.length} kept Helia defaults are running (trimmed for offline: ${ONLINE_ONLY.join(', ')}), plus bitswapCircuitBreaker`)

  // bob holds a few blocks, alice fetches them over Bitswap through her breaker
  const texts = ['hello', 'from', 'bob', 'over', 'bitswap']
  const cids: CID[] = []
  for (const text of texts) {
    const bytes = new TextEncoder().encode(text)
    const cid = CID.createV1(raw.code, await sha256.digest(bytes))
    await bob.blockstore.put(cid, bytes)
    cids.push(cid)
  }
  await alice.libp2p.dial(bob.libp2p.getMultiaddrs())
  const words = await Promise.all(cids.map(async (cid) => {
    // Helia 7 streams a block as chunks
    const chunks: Uint8Array[] = []
    for await (const chunk of alice.blockstore.get(cid, { signal: AbortSignal.timeout(10_000) })) {
      chunks.push(chunk)
    }
    return new TextDecoder().decode(concat(chunks))
  }))
  console.log(`alice got "${words.join(' ')}" from bob`)

  const breaker = alice.libp2p.services.bitswapCircuitBreaker as BitswapCircuitBreakerService
  const status = breaker.getPeerStatus(bob.libp2p.peerId)
  console.log(`bob's circuit: ${status.circuitState}, health: ${status.healthStatus}, successes: ${status.counts.totalSuccesses}`)
  console.log(breaker.getOverallStatus().getSummary())
} finally {
  await Promise.all([alice.stop(), bob.stop()])
}
