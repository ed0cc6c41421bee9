/**
 * Two Helia nodes in one process: a consumer with the circuit breaker, and a provider that resets
 * every Bitswap stream for a while and then heals. Watch the consumer isolate it, let it back in
 * through a half-open redial, ramp it up, and end up with every block.
 *
 * Runs offline over loopback TCP and exits when done.
 *
 * Run: npx tsx examples/two-nodes.ts
 * With the breaker's own log: DEBUG='libp2p:bitswap-circuit-breaker*' npx tsx examples/two-nodes.ts
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createHelia } from 'helia'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
// in your app: from 'bitswap-circuit-breaker'
import { bitswapCircuitBreaker } from '../src/index.ts'
import type { BitswapCircuitBreakerService } from '../src/index.ts'
import type { ServiceMap } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'
import type { Libp2pOptions, ServiceFactoryMap } from 'libp2p'

const BLOCKS = 20
const started = performance.now()

function log (message: string): void {
  console.log(`[${((performance.now() - started) / 1000).toFixed(2).padStart(5)} s] ${message}`)
}

/**
 * The provider's fault switch, as a tiny libp2p service: it wraps the registrar before Helia's
 * Bitswap registers its handler, and while `broken` resets every inbound Bitswap stream.
 */
function flakyBitswap (fault: { broken: boolean }) {
  return (components: { registrar: Registrar }): object => {
    const { registrar } = components
    const handle = registrar.handle.bind(registrar)
    registrar.handle = async (protocol, handler, options) => {
      if (!protocol.startsWith('/ipfs/bitswap')) {
        return handle(protocol, handler, options)
      }
      return handle(protocol, (stream, connection) => {
        if (fault.broken) {
          stream.abort(new Error('simulated fault'))
          return
        }
        return handler(stream, connection)
      }, options)
    }
    return {}
  }
}

/** A Helia node with only what Bitswap needs, on 127.0.0.1 (every top-level libp2p key given, so no default reaches the network) */
async function heliaNode (services: ServiceFactoryMap<ServiceMap>): Promise<ReturnType<typeof createHelia>> {
  const libp2p: Libp2pOptions = {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    services: { identify: identify(), ...services }
  }
  const helia = createHelia({ libp2p, http: { delegatedRouters: [], recursiveGateways: [] } })
  await helia.start()
  return helia
}

const fault = { broken: true }
const provider = await heliaNode({ fault: flakyBitswap(fault) })
const consumer = await heliaNode({
  breaker: bitswapCircuitBreaker({
    // a short open duration and a quick ramp, so the story fits in a few seconds
    circuitBreaker: { timeout: 2_000 },
    recovery: { strategy: 'LINEAR', initialRecoveryRate: 0.25, recoveryIncrement: 0.25, recoveryInterval: 500, successThreshold: 5 }
  })
})
const breaker = consumer.libp2p.services.breaker as BitswapCircuitBreakerService

try {
  const cids: CID[] = []
  for (let i = 0; i < BLOCKS; i++) {
    const bytes = new TextEncoder().encode(`block ${i}`)
    const cid = CID.createV1(raw.code, await sha256.digest(bytes))
    await provider.blockstore.put(cid, bytes)
    cids.push(cid)
  }
  log(`provider holds ${BLOCKS} blocks and resets every Bitswap stream`)

  breaker.addEventListener('circuit:open', ({ detail }) => {
    log(`circuit OPEN (${detail.from} -> ${detail.to}, ${detail.reason}): the consumer hangs up and refuses dials`)
    if (fault.broken) {
      setTimeout(() => {
        fault.broken = false
        log('provider healed')
      }, 1_000)
    }
  })
  breaker.addEventListener('circuit:half-open', ({ detail }) => {
    log(`circuit HALF_OPEN (${detail.reason}): the service redials the provider as the probe`)
  })
  breaker.addEventListener('circuit:close', ({ detail }) => {
    log(`circuit CLOSED (${detail.reason})`)
  })
  breaker.addEventListener('health:change', ({ detail }) => {
    log(`health ${detail.from} -> ${detail.to}`)
  })
  breaker.addEventListener('recovery:start', () => { log('recovery ramp started') })
  breaker.addEventListener('recovery:complete', () => { log('recovery ramp complete: full traffic') })
  breaker.addEventListener('recovery:fail', ({ detail }) => { log(`recovery failed (${detail.reason})`) })

  await consumer.libp2p.dial(provider.libp2p.getMultiaddrs())
  log('consumer connected to the provider')

  // one want at a time, so each goes out on its own Bitswap stream; the wants that cannot be
  // answered yet stay on the wantlist, which Helia re-sends when the half-open redial reconnects
  let received = 0
  const fetches: Array<Promise<void>> = []
  for (const cid of cids) {
    fetches.push((async () => {
      for await (const _chunk of consumer.blockstore.get(cid, { signal: AbortSignal.timeout(30_000) })) {
        // Helia 7 streams a block as chunks; the bytes were verified against the CID
      }
      received++
    })())
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  await Promise.all(fetches)
  log(`all ${received}/${BLOCKS} blocks received`)

  const status = breaker.getPeerStatus(provider.libp2p.peerId)
  log(`provider: circuit ${status.circuitState}, health ${status.healthStatus}, recovering ${status.isRecovering}, ` +
    `successes ${status.counts.totalSuccesses}, failures ${status.counts.totalFailures}`)
  const overall = breaker.getOverallStatus()
  log(`${overall.getSummary()}; streams refused: ${overall.streams.refusedOutbound} outbound, ${overall.streams.refusedInbound} inbound`)
} finally {
  await Promise.all([consumer.stop(), provider.stop()])
}
