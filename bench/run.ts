/**
 * `npm run bench`: every scenario of issue 6 in one process, a printed table, and bench/results.json.
 *
 *   npm run bench                      the full run (about 5 minutes on 2 cores), writes bench/results.json
 *   npm run bench -- --quick           fewer rounds, for trying changes (writes bench/results-quick.json)
 *   npm run bench -- --out bench/results-x.json
 *   npm run bench -- --only hostile    issue 11's attacks at full size (bench/hostile.ts), printed
 *   npm run bench -- --only memory     one micro-benchmark (overhead, memory or scale), printed
 *   npm run bench -- --only swarm --swarm-providers in-process
 *                                      issue 10's swarm with its providers in this process (default: their own)
 *   npm run bench -- --only swarm --swarm-rounds 10
 *                                      more rounds than the default 5 (1 with --quick)
 *
 * Micro-benchmarks run first, on a quiet heap; the network scenarios last.
 */

import { writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { runBitswap } from './bitswap.ts'
import { runFaulty } from './faulty.ts'
import { runHostile } from './hostile.ts'
import { runMemory } from './memory.ts'
import { runOverhead } from './overhead.ts'
import { forgetPeerIds, peerIds } from './peers.ts'
import { renderTable } from './table.ts'
import { runScale } from './scale.ts'
import { runSwarm } from './swarm.ts'
import { log } from './stats.ts'
import { checkTargets } from './targets.ts'
import type { Extras, Results, ResultsFile } from './results.ts'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    // `--only swarm`: just the issue-10 swarm scenario, printed, nothing written
    only: { type: 'string' },
    out: { type: 'string' },
    'swarm-providers': { type: 'string', default: 'process' },
    'swarm-rounds': { type: 'string' }
  }
})
const swarmProviders = args['swarm-providers']
if (swarmProviders !== 'process' && swarmProviders !== 'in-process') {
  throw new Error(`--swarm-providers must be 'process' or 'in-process', got '${String(swarmProviders)}'`)
}

const swarmRounds = args['swarm-rounds'] == null ? undefined : Number(args['swarm-rounds'])
if (swarmRounds !== undefined && !(Number.isInteger(swarmRounds) && swarmRounds >= 1 && swarmRounds <= 50)) {
  throw new Error(`--swarm-rounds must be an integer from 1 to 50, got '${String(args['swarm-rounds'])}'`)
}
const quick = args.quick === true
const out = args.out ?? (quick ? 'bench/results-quick.json' : 'bench/results.json')

const plan = quick
  ? { overhead: { rounds: 3, warmup: 1, ops: 100_000 }, memory: { rounds: 1, peers: 100_000, opossumPeers: 2_000 }, scale: { rounds: 3, warmup: 1, ops: 100_000 }, bitswap: { rounds: 2, warmup: 1, blocks: 2000, concurrency: 32 }, faulty: { rounds: 1, blocks: 500, concurrency: 32 } }
  : { overhead: { rounds: 15, warmup: 3, ops: 100_000 }, memory: { rounds: 3, peers: 100_000, opossumPeers: 10_000 }, scale: { rounds: 9, warmup: 1, ops: 200_000 }, bitswap: { rounds: 7, warmup: 1, blocks: 2000, concurrency: 32 }, faulty: { rounds: 3, blocks: 500, concurrency: 32 } }

const round2 = (n: number): number => Math.round(n * 100) / 100
const started = performance.now()
const startLoad = loadavg().map(round2)
log(`started (${quick ? 'quick' : 'full'} run), load average ${startLoad.join(' / ')}`)

if (args.only === 'hostile') {
  // issue 11's attacks at full size: printed, nothing written
  process.stdout.write(JSON.stringify(await runHostile(), null, 2) + '\n')
  process.exit(0)
}

if (args.only === 'swarm') {
  const swarm = await runSwarm({ rounds: swarmRounds ?? (quick ? 1 : 5), blocks: 400, providers: swarmProviders })
  process.stdout.write(JSON.stringify(swarm, null, 2) + '\n')
  process.exit(0)
}

// made once, before any measurement: real Ed25519 peer ids with their strings cached
peerIds(100_000)
log('100 000 peer ids ready')

if (args.only === 'overhead' || args.only === 'memory' || args.only === 'scale') {
  // one micro-benchmark at the plan's size (with --quick, the quick plan): printed, nothing written
  const micro = args.only === 'overhead' ? await runOverhead(plan.overhead) : args.only === 'memory' ? await runMemory(plan.memory) : await runScale(plan.scale)
  process.stdout.write(JSON.stringify({ ...micro, loadAverage: { start: startLoad, end: loadavg().map(round2) } }, null, 2) + '\n')
  process.exit(0)
}

const overhead = await runOverhead(plan.overhead)
const memory = await runMemory(plan.memory)
const scale = await runScale(plan.scale)
forgetPeerIds()
const bitswap = await runBitswap(plan.bitswap)
const faulty = await runFaulty({ ...plan.faulty, onRun: (what) => { log(`faulty ${what}`) } })
const swarm = await runSwarm({ rounds: swarmRounds ?? (quick ? 1 : 5), blocks: 400, providers: swarmProviders })

const results: Results = {
  machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), node: process.version },
  overhead: overhead.result,
  memory: { bytesPerPeer: memory.bytesPerPeer },
  scale: scale.scale,
  bitswap: bitswap.result,
  faulty: faulty.result
}
const details = { overhead: overhead.extra, memory: memory.extra, scale: scale.extra, bitswap: bitswap.extra, faulty: faulty.extra, swarm }
const extras: Extras = {
  checks: checkTargets(results, details),
  ...details,
  run: {
    startedAt: new Date(Date.now() - (performance.now() - started)).toISOString(),
    seconds: Math.round((performance.now() - started) / 1000),
    loadAverage: { start: startLoad, end: loadavg().map(round2) },
    cpuMHz: cpus()[0]?.speed
  }
}
const file: ResultsFile = { ...results, targets: extras }
await writeFile(out, JSON.stringify(file, null, 2) + '\n')

process.stdout.write(renderTable(results, extras) + '\n\n')
log(`wrote ${out}`)
