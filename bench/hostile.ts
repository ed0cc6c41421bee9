/**
 * `npm run bench -- --only hostile`: the heavy variants of issue 11's attacks, with the attackers in
 * a child process (bench/hostile-attacker.ts) so that RSS growth is the consumer's own. Each run:
 * fresh nodes on 127.0.0.1 TCP, a healthy provider and a consumer with the breaker, a fetch of
 * 300 × 16 KiB blocks running beside the attack. Reports, per run: the healthy fetch's time (and
 * against the same fetch with no attack), blocks received, whether the healthy provider ever went
 * OPEN, how many attackers were opened, the consumer's RSS growth over its own baseline and the
 * event loop's worst lag. `wantlists-plain` is the same flood against Helia without the breaker.
 * `HOSTILE_GC_MS=50` forces a full GC that often in the consumer: live array buffers against the
 * bytes held then tell retained memory (pinning) from garbage not yet collected.
 */

import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { LagProbe, RssProbe, TestNet, connect, createScene, fetchAll } from '../fixtures/index.ts'
import { log } from './stats.ts'
import type { Scene } from '../fixtures/index.ts'

const MiB = 1024 * 1024

export interface HostileRun {
  attack: string
  fetchMs: number
  /** fetchMs / the same fetch with no attack */
  slowdown: number
  received: number
  blocks: number
  healthyEverOpen: boolean
  attackersOpened: number
  identities: number
  rssGrowthMiB: number
  /**
   * Heap and array buffers still live once the attack is over and a full GC ran, over the same at
   * the baseline, MiB (RSS itself rarely shrinks: V8 keeps the pages)
   */
  liveRetainedMiB: number
  /** Peak growth of V8's heap and of array buffers (where frames live) over the baseline, MiB */
  peakHeapMiB: number
  peakArrayBuffersMiB: number
  /**
   * With HOSTILE_GC_MS set, a full GC runs that often: the most array buffers still live right
   * after one, and the bytes held at that moment, MiB (live ≈ held means nothing pins extra memory)
   */
  liveArrayBuffersMiB?: number
  heldAtLiveMiB?: number
  /** Bytes this process read from its sockets during the run (Linux /proc/self/io rchar), MiB */
  readMiB?: number
  maxLagMs: number
  /** What the service measured: stalls of our event loop, the longest */
  stalls?: number
  maxStallMs?: number
  /** Largest partial-frame total the service held, MiB */
  heldMiB?: number
  budgetMiB?: number
  attacker: unknown
}

interface Attack {
  name: string
  order: Record<string, unknown>
  plain?: boolean
}

const ATTACKS: Attack[] = [
  { name: 'none', order: { identities: 0 } },
  { name: 'wantlists', order: { attack: 'wantlists', identities: 4, entries: 100_000, messages: 15 } },
  { name: 'wantlists-plain', order: { attack: 'wantlists', identities: 4, entries: 100_000, messages: 15 }, plain: true },
  { name: 'partial-frames-2', order: { attack: 'partial-frames', identities: 2, streams: 32, frameSize: 4 * MiB - 64, bytesPerSecond: 32 * MiB } },
  { name: 'partial-frames-8', order: { attack: 'partial-frames', identities: 8, streams: 32, frameSize: 4 * MiB - 64, bytesPerSecond: 32 * MiB } },
  // within each identity's share (4 frames announce 16 MiB − 240 B): only the shared budget stops them
  { name: 'partial-frames-8-in-share', order: { attack: 'partial-frames', identities: 8, streams: 4, frameSize: 4 * MiB - 64, bytesPerSecond: 32 * MiB } }
]

const BLOCKS = 300
const BUDGET = 64 * MiB

/** Starts the attacker process; `ready` resolves once its identities are connected, `done` with its report */
function attackFrom (target: string, order: Record<string, unknown>): { ready: Promise<void>, done: Promise<unknown> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/hostile-attacker.ts', JSON.stringify({ ...order, target })], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  let onReady: () => void = () => {}
  const ready = new Promise<void>(resolve => { onReady = resolve })
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString()
    if (out.includes('"ready":true')) {
      onReady()
    }
  })
  const killer = setTimeout(() => { child.kill('SIGKILL') }, 90_000)
  const done = new Promise(resolve => child.on('exit', resolve)).then(() => {
    clearTimeout(killer)
    onReady()
    try {
      return JSON.parse(out.trim().split('\n').pop() ?? 'null')
    } catch {
      return { output: out.slice(0, 200) }
    }
  })
  return { ready, done }
}

async function plainScene (net: TestNet): Promise<Pick<Scene, 'consumer' | 'healthy' | 'blocks'> & { fetch: () => ReturnType<Scene['fetch']> }> {
  const scene = await createScene(net, { attackers: 0, blocks: BLOCKS })
  // the same nodes, but a consumer without the breaker
  const consumer = await net.helia({ transport: 'tcp', libp2p: { connectionManager: { inboundConnectionThreshold: 1000 } } })
  await connect(consumer, scene.healthy.helia)
  return {
    consumer: consumer as unknown as Scene['consumer'],
    healthy: scene.healthy,
    blocks: scene.blocks,
    fetch: async () => fetchAll(consumer, scene.blocks, { concurrency: 8, timeout: 60_000, providers: [scene.healthy.helia] })
  }
}

async function runOne (attack: Attack, baselineMs: number): Promise<HostileRun> {
  const net = new TestNet()
  try {
    const scene = attack.plain === true
      ? await plainScene(net)
      : await createScene(net, { attackers: 0, blocks: BLOCKS, init: { observe: { maxInboundBufferedBytes: BUDGET } } })
    const service = attack.plain === true ? undefined : (scene as Scene).service
    const opened = attack.plain === true ? new Set<string>() : (scene as Scene).opened
    const target = scene.consumer.libp2p.getMultiaddrs()[0].toString()
    // RSS from here: the nodes are up, the attack and the healthy fetch are what grows it
    const liveBaseline = live()
    const rss = new RssProbe()
    const lag = new LagProbe()
    let held = 0
    const memory = new MemoryProbe(() => service?.getOverallStatus().observer?.bufferedBytes ?? 0)
    const sampler = setInterval(() => {
      held = Math.max(held, service?.getOverallStatus().observer?.bufferedBytes ?? 0)
      memory.sample()
    }, 10)
    const identities = Number(attack.order.identities)
    const attacking = identities > 0 ? attackFrom(target, attack.order) : undefined
    await attacking?.ready
    const [result, attacker] = await Promise.all([scene.fetch(), attacking?.done])
    clearInterval(sampler)
    const healthyKey = scene.healthy.peerId.toString()
    const status = service?.getOverallStatus()
    return {
      attack: attack.name,
      fetchMs: Math.round(result.ms),
      slowdown: Math.round(result.ms / baselineMs * 100) / 100,
      received: result.received,
      blocks: scene.blocks.length,
      healthyEverOpen: opened.has(healthyKey),
      attackersOpened: [...opened].filter(key => key !== healthyKey).length,
      identities,
      rssGrowthMiB: Math.round(rss.stop() * 10) / 10,
      liveRetainedMiB: Math.round((live() - liveBaseline) * 10) / 10,
      ...memory.stop(),
      maxLagMs: Math.round(lag.stop()),
      stalls: status?.eventLoop.stalls,
      maxStallMs: status === undefined ? undefined : Math.round(status.eventLoop.maxStallMs),
      heldMiB: service === undefined ? undefined : Math.round(held / MiB * 10) / 10,
      budgetMiB: service === undefined ? undefined : BUDGET / MiB,
      attacker
    }
  } finally {
    await net.stop()
  }
}

/** One attack in a fresh process (bench/hostile-run.ts), so that no run inherits another's heap */
async function runIsolated (attack: Attack, baselineMs: number): Promise<HostileRun> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/hostile-run.ts', attack.name, String(baselineMs)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  await new Promise(resolve => child.on('exit', resolve))
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as HostileRun
}

/** Runs the attack named `name` here and now (what bench/hostile-run.ts calls) */
export async function runNamed (name: string, baselineMs: number): Promise<HostileRun> {
  const attack = ATTACKS.find(a => a.name === name)
  if (attack === undefined) {
    throw new Error(`no attack ${name}`)
  }
  return runOne(attack, baselineMs)
}

const round1 = (bytes: number): number => Math.round(bytes / MiB * 10) / 10

/** Bytes read by this process so far (sockets included), or undefined off Linux */
function bytesRead (): number | undefined {
  try {
    return Number(/rchar: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1])
  } catch {
    return undefined
  }
}

/** Where the RSS goes: peak heap and array buffers, live array buffers after forced GCs (HOSTILE_GC_MS) */
class MemoryProbe {
  private readonly base = process.memoryUsage()
  private readonly readAtStart = bytesRead()
  private readonly gcEveryMs = Number(process.env.HOSTILE_GC_MS ?? 0)
  private gcAt = performance.now()
  private heap = 0
  private arrayBuffers = 0
  private live = -1
  private heldAtLive = 0

  constructor (private readonly held: () => number) {}

  sample (): void {
    const { heapUsed, arrayBuffers } = process.memoryUsage()
    this.heap = Math.max(this.heap, heapUsed - this.base.heapUsed)
    this.arrayBuffers = Math.max(this.arrayBuffers, arrayBuffers - this.base.arrayBuffers)
    if (this.gcEveryMs > 0 && performance.now() - this.gcAt >= this.gcEveryMs) {
      globalThis.gc?.()
      this.gcAt = performance.now()
      const live = process.memoryUsage().arrayBuffers - this.base.arrayBuffers
      if (live > this.live) {
        this.live = live
        this.heldAtLive = this.held()
      }
    }
  }

  stop (): Pick<HostileRun, 'peakHeapMiB' | 'peakArrayBuffersMiB' | 'liveArrayBuffersMiB' | 'heldAtLiveMiB' | 'readMiB'> {
    const read = bytesRead()
    return {
      peakHeapMiB: round1(this.heap),
      peakArrayBuffersMiB: round1(this.arrayBuffers),
      liveArrayBuffersMiB: this.live < 0 ? undefined : round1(this.live),
      heldAtLiveMiB: this.live < 0 ? undefined : round1(this.heldAtLive),
      readMiB: read === undefined || this.readAtStart === undefined ? undefined : Math.round((read - this.readAtStart) / MiB)
    }
  }
}

/** Heap plus array buffers after a full GC, MiB */
function live (): number {
  globalThis.gc?.()
  globalThis.gc?.()
  const { heapUsed, arrayBuffers } = process.memoryUsage()
  return Math.round((heapUsed + arrayBuffers) / MiB * 10) / 10
}

export async function runHostile (): Promise<HostileRun[]> {
  const runs: HostileRun[] = []
  let baseline = 0
  for (const attack of ATTACKS) {
    log(`hostile: ${attack.name}`)
    const run = await runIsolated(attack, baseline === 0 ? 1 : baseline)
    if (attack.name === 'none') {
      baseline = run.fetchMs
      run.slowdown = 1
    }
    runs.push(run)
    log(`hostile: ${attack.name}: ${run.received}/${run.blocks} blocks in ${run.fetchMs} ms (${run.slowdown}x), healthy ever OPEN ${run.healthyEverOpen}, attackers opened ${run.attackersOpened}/${run.identities}, RSS +${run.rssGrowthMiB} MiB peak (heap +${run.peakHeapMiB}, array buffers +${run.peakArrayBuffersMiB}), read ${run.readMiB ?? '-'} MiB, live +${run.liveRetainedMiB} MiB after GC, held ${run.heldMiB ?? '-'} MiB, lag ${run.maxLagMs} ms`)
  }
  return runs
}
