/**
 * Scenario 6 (issue 10): the eight-provider swarm (fixtures/swarm.ts: 3 healthy, reset, silent,
 * blackholed, 400 ms slow, flapping) against its three healthy providers alone, 400 × 4 KiB blocks,
 * `get` and a session, service off and on; plus the healthy three with only the blackholed one
 * (what a blackholed peer adds, in ms) and the session whose first five providers are silent.
 *
 * Every run uses fresh nodes (TCP) and fresh blocks; rounds go over every cell once, in a rotated
 * order, so slow periods of a shared machine hit all cells. Lost blocks are counted, not fatal.
 */

import { bitswapCircuitBreaker } from '../src/index.ts'
import { TestNet, connect, createSwarm, fetchAll, makeBlocks } from '../fixtures/index.ts'
import { log, rotated, summarize } from './stats.ts'
import type { FaultyProvider, HeliaNode } from '../fixtures/index.ts'
import type { Summary } from './stats.ts'

type Api = 'get' | 'session'
type Setup = 'healthy' | 'healthy1' | 'swarm-off' | 'swarm-on' | 'blackhole-on' | 'silent5-on'

interface Cell { setup: Setup, api: Api }

const CELLS: Cell[] = [
  ...(['healthy', 'swarm-off', 'swarm-on', 'blackhole-on'] as const).flatMap(setup => (['get', 'session'] as const).map(api => ({ setup, api }))),
  { setup: 'silent5-on', api: 'session' },
  // the session reference: with the healthy three, helia 7.1.15 evicts the two that lose each
  // block's race (it aborts their queries itself) and the session soon has nobody left
  // (docs/upstream-caveats.md); one provider alone has no race to lose
  { setup: 'healthy1', api: 'session' }
]

/** A broken cell gives up here; its missing blocks count as lost */
const FETCH_TIMEOUT = 15_000

export interface SwarmResult {
  blocks: number
  rounds: number
  /** ms per cell (`setup/api`) */
  ms: Record<string, Summary>
  /** run time / healthy-alone median of the same path, per run */
  ratio: Record<string, Summary>
  /** Blocks not received, summed over rounds, per cell */
  lost: Record<string, number>
  /** median(blackhole-on) − median(healthy reference), ms, per path */
  blackholeAddsMs: Record<Api, number>
}

async function runCell (cell: Cell, blockCount: number, seed: number): Promise<{ ms: number, lost: number }> {
  const net = new TestNet()
  try {
    const service = cell.setup.endsWith('-on')
    const blocks = await makeBlocks(cell.setup === 'silent5-on' ? 20 : blockCount, 4096, { seed })
    const consumer: HeliaNode = await net.helia<Record<string, unknown>>({ transport: 'tcp', services: service ? { breaker: bitswapCircuitBreaker() } : {} })
    let providers: FaultyProvider[]
    if (cell.setup === 'silent5-on') {
      const healthy = await net.provider({ transport: 'tcp', proxy: false, blocks })
      providers = [healthy]
      for (let i = 0; i < 5; i++) {
        providers.push(await net.provider({ transport: 'tcp', proxy: false, blocks, mode: 'stall' }))
      }
      for (const provider of providers) {
        await connect(consumer, provider)
      }
    } else if (cell.setup === 'healthy1') {
      providers = [await net.provider({ transport: 'tcp', proxy: false, blocks })]
      await connect(consumer, providers[0])
    } else {
      const swarm = await createSwarm(net, blocks, { healthyOnly: cell.setup === 'healthy' || cell.setup === 'blackhole-on' })
      providers = swarm.providers
      if (cell.setup === 'blackhole-on') {
        const blackhole = await net.provider({ transport: 'tcp', blocks })
        providers.push(blackhole)
        await swarm.join(consumer)
        await connect(consumer, blackhole)
        blackhole.set('blackhole')
      } else {
        await swarm.join(consumer)
      }
    }
    const result = await fetchAll(consumer, blocks, { api: cell.api, providers: cell.api === 'session' ? providers : undefined, timeout: FETCH_TIMEOUT })
    return { ms: result.ms, lost: result.lost + result.corrupt }
  } finally {
    await net.stop()
  }
}

export async function runSwarm (options: { rounds: number, blocks: number }): Promise<SwarmResult> {
  const times = new Map<string, number[]>()
  const lost: Record<string, number> = {}
  let seed = 40_000
  // warm-up, not recorded
  await runCell({ setup: 'healthy', api: 'get' }, options.blocks, seed++)
  for (let round = 0; round < options.rounds; round++) {
    for (const cell of rotated(CELLS, round * 2)) {
      const key = `${cell.setup}/${cell.api}`
      const run = await runCell(cell, options.blocks, seed++)
      times.set(key, [...(times.get(key) ?? []), run.ms])
      if (run.lost > 0) {
        lost[key] = (lost[key] ?? 0) + run.lost
      }
      log(`swarm ${key} ${Math.round(run.ms)} ms${run.lost > 0 ? ` (${run.lost} lost)` : ''}`)
    }
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
  const adds = (api: Api): number => Math.round((ms[`blackhole-on/${api}`]?.median ?? Number.NaN) - (ms[api === 'session' ? 'healthy1/session' : 'healthy/get']?.median ?? Number.NaN))
  log(`swarm: ${options.rounds} rounds of ${CELLS.length} cells`)
  return { blocks: options.blocks, rounds: options.rounds, ms, ratio, lost, blackholeAddsMs: { get: adds('get'), session: adds('session') } }
}
