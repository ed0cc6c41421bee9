/**
 * Scenario 4: Bitswap throughput between two in-process nodes (TCP, noise, yamux), 2 000 × 4 KiB
 * blocks fetched with `helia.blockstore.get` at concurrency 32, with and without the service on the
 * consumer. A plain provider serves each pair of rounds; each round gets a fresh consumer and fresh
 * blocks (a provider will not resend a block to the same peer within 5 s). Rounds alternate the two
 * configurations, starting with each in turn; the with/without ratio is taken per pair.
 */

import { bitswapCircuitBreaker } from '../src/index.ts'
import { TestNet, addBlocks, connect, fetchAll, makeBlocks } from '../test/fixtures/index.ts'
import { log, rotated, summarize } from './stats.ts'
import type { Summary } from './stats.ts'

export interface BitswapResult {
  without: { blocksPerSec: Summary }
  with: { blocksPerSec: Summary }
}

export interface BitswapExtra {
  /** with / without blocks per second, per pair of rounds */
  ratio: Summary
  /** Blocks that did not arrive within the fetch timeout, summed over the measured rounds */
  lost: Record<Mode, number>
  /** ms per 2 000-block fetch */
  ms: { without: Summary, with: Summary }
  blocks: number
  blockSize: number
  concurrency: number
  rounds: number
}

type Mode = 'without' | 'with'

/** A healthy fetch takes a few seconds; a consumer that loses blocks must not eat the time budget */
const FETCH_TIMEOUT = 20_000

export async function runBitswap (options: { rounds: number, warmup: number, blocks: number, concurrency: number }): Promise<{ result: BitswapResult, extra: BitswapExtra }> {
  const net = new TestNet()
  const ms: Record<Mode, number[]> = { without: [], with: [] }
  const perSec: Record<Mode, number[]> = { without: [], with: [] }
  const lost: Record<Mode, number> = { without: 0, with: 0 }
  let seed = 10_000

  try {
    for (let round = 0; round < options.warmup + options.rounds; round++) {
      // one provider per pair of rounds keeps its blockstore small (helia's delete needs routing)
      const provider = await net.helia({ transport: 'tcp' })
      for (const mode of rotated<Mode>(['without', 'with'], round)) {
        const blocks = await makeBlocks(options.blocks, 4096, { seed: seed++ })
        await addBlocks(provider, blocks)
        const consumer = await net.helia<Record<string, unknown>>({
          transport: 'tcp',
          services: mode === 'with' ? { breaker: bitswapCircuitBreaker() } : {}
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
      lost,
      ms: { without: summarize(ms.without, 0), with: summarize(ms.with, 0) },
      blocks: options.blocks,
      blockSize: 4096,
      concurrency: options.concurrency,
      rounds: options.rounds
    }
  }
}
