/**
 * Scenario 5: a consumer fetches 500 × 4 KiB blocks from a healthy provider plus a faulty one (which
 * holds none of them), with the service off and on, and from the healthy provider alone (service off:
 * the reference every ratio divides by).
 *
 * - faults: `reset` (every inbound Bitswap stream aborted), `stall` (streams accepted, never read,
 *   answered or closed), `blackhole` (the TCP proxy in front of the provider drops every byte and keeps
 *   both sockets open; switched on after the consumer has identified the provider)
 * - paths: `get` (`helia.blockstore.get`, both providers connected, Bitswap broadcasts the wantlist)
 *   and `session` (`helia.blockstore.createSession` with providers [healthy, faulty]: Helia tries
 *   the last one, the faulty one, first)
 *
 * Every run uses fresh nodes (TCP, noise, yamux), fresh blocks and the service's defaults. Rounds go
 * over every cell once, in a rotated order, so slow periods of a shared machine hit all cells.
 */

import { bitswapCircuitBreaker } from '../src/index.ts'
import { TestNet, addBlocks, connect, fetchAll, makeBlocks } from '../fixtures/index.ts'
import { log, rotated, summarize } from './stats.ts'
import type { Summary } from './stats.ts'

export const FAULTS = ['reset', 'stall', 'blackhole'] as const
export const APIS = ['get', 'session'] as const
export type Fault = typeof FAULTS[number]
export type Api = typeof APIS[number]

export type PathTimes = Record<Api, Summary>

export interface FaultyResult {
  healthyAlone: PathTimes
  reset: { off: PathTimes, on: PathTimes }
  stall: { off: PathTimes, on: PathTimes }
  blackhole: { off: PathTimes, on: PathTimes }
}

export interface FaultyExtra {
  /** run time / healthy-alone median of the same path, per run */
  ratio: Record<Fault, { off: PathTimes, on: PathTimes }>
  /** Blocks not received (summed over rounds) per cell, when any were lost */
  lost: Record<string, number>
  blocks: number
  /** A fetch gives up after this long; blocks not received by then count as lost */
  fetchTimeoutMs: number
  concurrency: number
  rounds: number
}

/** Above the ~15 s a blackholed provider costs without the service, under what the budget allows */
const FETCH_TIMEOUT = 20_000

interface Cell {
  fault: Fault | 'none'
  service: boolean
  api: Api
}

const CELLS: Cell[] = [
  ...APIS.map(api => ({ fault: 'none' as const, service: false, api })),
  ...FAULTS.flatMap(fault => [false, true].flatMap(service => APIS.map(api => ({ fault, service, api }))))
]

function cellKey (cell: Cell): string {
  return `${cell.fault}/${cell.service ? 'on' : 'off'}/${cell.api}`
}

async function runCell (cell: Cell, blockCount: number, seed: number, concurrency: number): Promise<{ ms: number, lost: number }> {
  const net = new TestNet()
  try {
    const blocks = await makeBlocks(blockCount, 4096, { seed })
    const healthy = await net.helia({ transport: 'tcp' })
    await addBlocks(healthy, blocks)
    const consumer = await net.helia<Record<string, unknown>>({
      transport: 'tcp',
      services: cell.service ? { breaker: bitswapCircuitBreaker() } : {}
    })
    await connect(consumer, healthy)
    const providers = [healthy.libp2p.peerId]

    if (cell.fault !== 'none') {
      const faulty = await net.provider({ transport: 'tcp', mode: cell.fault === 'blackhole' ? 'none' : cell.fault })
      await connect(consumer, faulty)
      if (cell.fault === 'blackhole') {
        faulty.set('blackhole')
      }
      providers.push(faulty.peerId)
    }

    const result = await fetchAll(consumer, blocks, {
      api: cell.api,
      concurrency,
      providers: cell.api === 'session' ? providers : undefined,
      timeout: FETCH_TIMEOUT
    })
    return { ms: result.ms, lost: result.lost + result.corrupt }
  } finally {
    await net.stop()
  }
}

export async function runFaulty (options: { rounds: number, blocks: number, concurrency: number, onRun?(what: string): void }): Promise<{ result: FaultyResult, extra: FaultyExtra }> {
  const ms = new Map<string, number[]>()
  const lost: Record<string, number> = {}
  let seed = 20_000

  // warm-up, not recorded: the first Helia nodes of a process are slow (module load, JIT)
  for (const cell of CELLS.filter(c => c.fault === 'none' || (c.fault === 'reset' && c.service))) {
    await runCell(cell, options.blocks, seed++, options.concurrency)
  }

  for (let round = 0; round < options.rounds; round++) {
    for (const cell of rotated(CELLS, round * 5)) {
      const key = cellKey(cell)
      const run = await runCell(cell, options.blocks, seed++, options.concurrency)
      ms.set(key, [...(ms.get(key) ?? []), run.ms])
      if (run.lost > 0) {
        lost[key] = (lost[key] ?? 0) + run.lost
      }
      options.onRun?.(`${key} ${Math.round(run.ms)} ms${run.lost > 0 ? ` (${run.lost} lost)` : ''}`)
    }
  }

  const times = (key: string): number[] => ms.get(key) ?? []
  const alone = (api: Api): number => summarize(times(`none/off/${api}`)).median
  const paths = (fault: Fault | 'none', state: 'off' | 'on'): PathTimes => ({
    get: summarize(times(`${fault}/${state}/get`), 0),
    session: summarize(times(`${fault}/${state}/session`), 0)
  })
  const ratios = (fault: Fault, state: 'off' | 'on'): PathTimes => ({
    get: summarize(times(`${fault}/${state}/get`).map(v => v / alone('get')), 2),
    session: summarize(times(`${fault}/${state}/session`).map(v => v / alone('session')), 2)
  })
  log(`faulty: ${options.rounds} rounds of ${CELLS.length} cells`)
  return {
    result: {
      healthyAlone: paths('none', 'off'),
      reset: { off: paths('reset', 'off'), on: paths('reset', 'on') },
      stall: { off: paths('stall', 'off'), on: paths('stall', 'on') },
      blackhole: { off: paths('blackhole', 'off'), on: paths('blackhole', 'on') }
    },
    extra: {
      ratio: {
        reset: { off: ratios('reset', 'off'), on: ratios('reset', 'on') },
        stall: { off: ratios('stall', 'off'), on: ratios('stall', 'on') },
        blackhole: { off: ratios('blackhole', 'off'), on: ratios('blackhole', 'on') }
      },
      lost,
      blocks: options.blocks,
      fetchTimeoutMs: FETCH_TIMEOUT,
      concurrency: options.concurrency,
      rounds: options.rounds
    }
  }
}
