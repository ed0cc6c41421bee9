/**
 * Scenario 4: Bitswap throughput between two in-process nodes (TCP, noise, yamux), 2 000 × 4 KiB
 * blocks fetched with `helia.blockstore.get` at concurrency 32, with and without the service on the
 * consumer, plus (diagnostic) the service without message observation. A plain provider serves each
 * round; each configuration gets a fresh consumer and fresh blocks (a provider will not resend a
 * block to the same peer within 5 s). Rounds rotate the order of the configurations; ratios are
 * taken within each round.
 */

import { bitswapCircuitBreaker } from '../src/index.ts'
import { TestNet, addBlocks, connect, fetchAll, makeBlocks } from '../fixtures/index.ts'
import { log, rotated, summarize } from './stats.ts'
import type { Summary } from './stats.ts'

export interface BitswapResult {
  without: { blocksPerSec: Summary }
  with: { blocksPerSec: Summary }
}

export interface BitswapExtra {
  /** with / without blocks per second, per round */
  ratio: Summary
  /** Diagnostic: the service with `observeMessages: false` */
  unobserved: { blocksPerSec: Summary, ratio: Summary }
  /** Blocks that did not arrive within the fetch timeout, summed over the measured rounds */
  lost: Record<Mode, number>
  /** ms per 2 000-block fetch */
  ms: Record<Mode, Summary>
  blocks: number
  blockSize: number
  /** A fetch gives up after this long; blocks not received by then count as lost */
  fetchTimeoutMs: number
  concurrency: number
  rounds: number
}

/** `unobserved`: the service with `observeMessages: false`, a diagnostic that isolates message observation */
type Mode = 'without' | 'with' | 'unobserved'
const MODES: Mode[] = ['without', 'with', 'unobserved']

/** A healthy fetch takes a few seconds; a consumer that loses blocks must not eat the time budget */
const FETCH_TIMEOUT = 15_000

export async function runBitswap (options: { rounds: number, warmup: number, blocks: number, concurrency: number }): Promise<{ result: BitswapResult, extra: BitswapExtra }> {
  const net = new TestNet()
  const ms: Record<Mode, number[]> = { without: [], with: [], unobserved: [] }
  const perSec: Record<Mode, number[]> = { without: [], with: [], unobserved: [] }
  const lost: Record<Mode, number> = { without: 0, with: 0, unobserved: 0 }
  let seed = 10_000

  try {
    for (let round = 0; round < options.warmup + options.rounds; round++) {
      // one provider per round keeps its blockstore small (helia's delete needs routing)
      const provider = await net.helia({ transport: 'tcp' })
      for (const mode of rotated(MODES, round)) {
        const blocks = await makeBlocks(options.blocks, 4096, { seed: seed++ })
        await addBlocks(provider, blocks)
        const consumer = await net.helia<Record<string, unknown>>({
          transport: 'tcp',
          services: mode === 'without' ? {} : { breaker: bitswapCircuitBreaker(mode === 'with' ? {} : { observeMessages: false }) }
        })
        try {
          await connect(consumer, provider)
          const result = await fetchAll(consumer, blocks, { concurrency: options.concurrency, timeout: FETCH_TIMEOUT })
          if (round >= options.warmup) {
            // blocks that never arrived count against the run: blocks/s is what arrived per second
            ms[mode].push(result.ms)
            perSec[mode].push(result.received / (result.ms / 1000))
            lost[mode] += blocks.length - result.received
          }
        } finally {
          await consumer.stop()
        }
      }
      await provider.stop()
    }
  } finally {
    await net.stop()
  }

  log(`bitswap: ${options.rounds} rounds per configuration after ${options.warmup} warm-up`)
  return {
    result: {
      without: { blocksPerSec: summarize(perSec.without, 0) },
      with: { blocksPerSec: summarize(perSec.with, 0) }
    },
    extra: {
      ratio: summarize(perSec.with.map((v, i) => v / perSec.without[i]), 3),
      unobserved: {
        blocksPerSec: summarize(perSec.unobserved, 0),
        ratio: summarize(perSec.unobserved.map((v, i) => v / perSec.without[i]), 3)
      },
      lost,
      ms: { without: summarize(ms.without, 0), with: summarize(ms.with, 0), unobserved: summarize(ms.unobserved, 0) },
      blocks: options.blocks,
      blockSize: 4096,
      fetchTimeoutMs: FETCH_TIMEOUT,
      concurrency: options.concurrency,
      rounds: options.rounds
    }
  }
}
