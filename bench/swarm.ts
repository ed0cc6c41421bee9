/**
 * Scenario 6 (issue 10): the eight-provider swarm (fixtures/swarm.ts: 3 healthy, reset, silent,
 * blackholed, 400 ms slow, flapping) against its three healthy providers alone, 400 × 4 KiB blocks,
 * `get` and a session, service off and on; plus what a blackholed peer adds, in ms (the healthy
 * three and a blackholed one for `get`; one healthy and a blackholed one for a session, asked
 * first) and the session whose first five providers are silent.
 *
 * The providers run in a process of their own (bench/swarm-providers.ts says why), the consumer here.
 * Every run uses fresh nodes (TCP) and fresh blocks, and the heap is collected after each; rounds go
 * over every cell once, in a shuffled order (seeded by the round), so slow periods of a shared
 * machine hit all cells and no cell always follows the same one (a rotation kept each cell behind
 * the same neighbour, such as a 15 s stalled run). Lost blocks are counted, not fatal.
 */

import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { bitswapCircuitBreaker } from '../src/index.ts'
import { SWARM_ROLES, TestNet, connect, fetchAll, makeBlocks } from '../fixtures/index.ts'
import { providerHost } from './swarm-providers.ts'
import { log, settleHeap, summarize } from './stats.ts'
import type { HeliaNode, SwarmRole } from '../fixtures/index.ts'
import type { ProviderHost, ProviderPlacement } from './swarm-providers.ts'
import type { Summary } from './stats.ts'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

type Api = 'get' | 'session'
type Setup = 'healthy' | 'healthy1' | 'swarm-off' | 'swarm-on' | 'survivors-off' | 'survivors-on' | 'blackhole-on' | 'blackhole1-on' | 'silent5-on'

interface Cell { setup: Setup, api: Api }

const CELLS: Cell[] = [
  ...(['healthy', 'swarm-off', 'swarm-on'] as const).flatMap(setup => (['get', 'session'] as const).map(api => ({ setup, api }))),
  { setup: 'blackhole-on', api: 'get' },
  // the floor for the service: the swarm without its reset, silent and blackholed members (the slow
  // and flapping ones stay, as the service must leave them), no service
  { setup: 'survivors-off', api: 'get' },
  // the same with the service: what the service itself costs where it has nothing to refuse
  { setup: 'survivors-on', api: 'get' },
  // a session with the healthy three and a blackholed one would measure helia's own evictions
  // (below), not the blackholed peer; its reference is the one healthy provider alone
  { setup: 'blackhole1-on', api: 'session' },
  { setup: 'silent5-on', api: 'session' },
  // the session reference: with the healthy three, helia 7.1.15 evicts the two that lose each
  // block's race (it aborts their queries itself) and the session soon has nobody left
  // (docs/upstream-caveats.md); one provider alone has no race to lose
  { setup: 'healthy1', api: 'session' }
]

/** A broken cell gives up here; its missing blocks count as lost */
const FETCH_TIMEOUT = 15_000

export interface SwarmResult {
  /** Where the providers ran: their own process (default), or the consumer's */
  providers: ProviderPlacement
  blocks: number
  rounds: number
  /** ms per cell (`setup/api`) */
  ms: Record<string, Summary>
  /** run time / healthy-alone median of the same path, per run */
  ratio: Record<string, Summary>
  /** Blocks not received, summed over rounds, per cell */
  lost: Record<string, number>
  /**
   * What a blackholed peer adds, ms, per path: the median over rounds of (with it − without it in
   * the same round); `get`: blackhole-on − healthy, session: blackhole1-on − healthy1
   */
  blackholeAddsMs: Record<Api, number>
  /**
   * `get` with the service over its floor (the swarm without its reset, silent and blackholed
   * members, service off), per round: what the service and the faulty members cost beyond what the
   * providers it must keep cost by themselves
   */
  overFloor: Summary
  /** The floor with the service over the floor without it, per round: what the service costs where it has nothing to refuse */
  serviceOnFloor: Summary
}

/** The providers of each cell, in the order a session gets them (helia asks the last first) */
function rolesOf (setup: Setup): SwarmRole[] {
  switch (setup) {
    case 'healthy': return ['healthy', 'healthy', 'healthy']
    case 'healthy1': return ['healthy']
    case 'blackhole-on': return ['healthy', 'healthy', 'healthy', 'blackhole']
    case 'blackhole1-on': return ['healthy', 'blackhole']
    case 'silent5-on': return ['healthy', 'silent', 'silent', 'silent', 'silent', 'silent']
    case 'survivors-off':
    case 'survivors-on': return SWARM_ROLES.filter(r => r !== 'reset' && r !== 'silent' && r !== 'blackhole')
    default: return [...SWARM_ROLES]
  }
}

async function runCell (host: ProviderHost, cell: Cell, blockCount: number, seed: number): Promise<{ ms: number, lost: number }> {
  const net = new TestNet()
  try {
    const service = cell.setup.endsWith('-on')
    const count = cell.setup === 'silent5-on' ? 20 : blockCount
    const [blocks, members] = await Promise.all([
      makeBlocks(count, 4096, { seed }),
      host.build({ roles: rolesOf(cell.setup), blocks: count, seed })
    ])
    const consumer: HeliaNode = await net.helia<Record<string, unknown>>({ transport: 'tcp', services: service ? { breaker: bitswapCircuitBreaker() } : {} })
    const addrs = members.map(m => multiaddr(m.addr))
    for (const addr of addrs) {
      await connect(consumer, addr)
    }
    // blackholed only now, once identified; the flapping starts with the fetch
    await host.arm()
    const providers = cell.api === 'session' ? addrs.map(peerOf) : undefined
    const result = await fetchAll(consumer, blocks, { api: cell.api, providers, timeout: FETCH_TIMEOUT })
    return { ms: result.ms, lost: result.lost + result.corrupt }
  } finally {
    await net.stop()
    await host.teardown()
    settleHeap()
  }
}

function peerOf (addr: Multiaddr): PeerId {
  const id = addr.getComponents().findLast(c => c.name === 'p2p')?.value
  if (id == null) {
    throw new Error(`no /p2p/ in ${addr.toString()}`)
  }
  return peerIdFromString(id)
}

/** The cells in an order drawn from `seed` (mulberry32, then Fisher–Yates) */
function shuffled (cells: readonly Cell[], seed: number): Cell[] {
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x6D2B79F5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const out = [...cells]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1))
    const swap = out[i]
    out[i] = out[j]
    out[j] = swap
  }
  return out
}

export async function runSwarm (options: { rounds: number, blocks: number, providers?: ProviderPlacement }): Promise<SwarmResult> {
  const placement = options.providers ?? 'process'
  const host = providerHost(placement)
  try {
    return { ...await runRounds(host, options), providers: placement }
  } finally {
    await host.close()
  }
}

async function runRounds (host: ProviderHost, options: { rounds: number, blocks: number }): Promise<Omit<SwarmResult, 'providers'>> {
  const times = new Map<string, number[]>()
  /** Per round: the blackholed cell − its reference, ms */
  const adds: Record<Api, number[]> = { get: [], session: [] }
  const overFloor: number[] = []
  const serviceOnFloor: number[] = []
  const lost: Record<string, number> = {}
  let seed = 40_000
  // warm-up, not recorded
  await runCell(host, { setup: 'healthy', api: 'get' }, options.blocks, seed++)
  for (let round = 0; round < options.rounds; round++) {
    const thisRound = new Map<string, number>()
    for (const cell of shuffled(CELLS, round + 1)) {
      const key = `${cell.setup}/${cell.api}`
      const run = await runCell(host, cell, options.blocks, seed++)
      times.set(key, [...(times.get(key) ?? []), run.ms])
      thisRound.set(key, run.ms)
      if (run.lost > 0) {
        lost[key] = (lost[key] ?? 0) + run.lost
      }
      log(`swarm ${key} ${Math.round(run.ms)} ms${run.lost > 0 ? ` (${run.lost} lost)` : ''}`)
    }
    adds.get.push((thisRound.get('blackhole-on/get') ?? Number.NaN) - (thisRound.get('healthy/get') ?? Number.NaN))
    adds.session.push((thisRound.get('blackhole1-on/session') ?? Number.NaN) - (thisRound.get('healthy1/session') ?? Number.NaN))
    const floor = thisRound.get('survivors-off/get') ?? Number.NaN
    overFloor.push((thisRound.get('swarm-on/get') ?? Number.NaN) / floor)
    serviceOnFloor.push((thisRound.get('survivors-on/get') ?? Number.NaN) / floor)
  }
  const ms: Record<string, Summary> = {}
  const ratio: Record<string, Summary> = {}
  for (const [key, samples] of times) {
    ms[key] = summarize(samples, 0)
    const api = key.split('/')[1]
    const alone = summarize(times.get(api === 'session' ? 'healthy1/session' : 'healthy/get') ?? []).median
    if (!key.startsWith('healthy') && !key.startsWith('silent5')) {
      ratio[key] = summarize(samples.map(v => v / alone), 2)
    }
  }
  log(`swarm: ${options.rounds} rounds of ${CELLS.length} cells`)
  return { blocks: options.blocks, rounds: options.rounds, ms, ratio, lost, blackholeAddsMs: { get: summarize(adds.get, 0).median, session: summarize(adds.session, 0).median }, overFloor: summarize(overFloor, 2), serviceOnFloor: summarize(serviceOnFloor, 2) }
}
