/**
 * Scenario 3: per-call cost with 10, 10 000 and 100 000 peers tracked.
 *
 * Two operations: `executeWithPeer` (awaited, so the figure includes the await) and the service's
 * gating decision (`admit(peer, false)` + `settle`, synchronous). Two access patterns:
 * - `hot`: round-robin over a fixed hot set of min(N, 1 000) peers while N are tracked (a node talks
 *   to a few hundred Bitswap peers at a time; the rest are remembered, not used);
 * - `all`: round-robin over all N tracked peers (every call touches a different, cold peer);
 * - `ten`: round-robin over the same 10 peers at every N (only the number tracked changes).
 * Both engines are filled to N peers first (`maxPeers: 100 000`). Rounds interleave the sizes in a
 * rotated order; the 100 000 / 10 ratio is taken within each round.
 *
 * The floor: the same access pattern over a plain `Map<string, { n: number }>` of N entries (one
 * `get` by the peer's string and one field write), so a reader sees how much of the growth is the
 * memory system's and how much is ours.
 */

import { BitswapCircuitBreaker, BitswapProtectionManager } from '../src/index.ts'
import { Outcome } from '../src/states.ts'
import type { Admission } from '../src/breaker/permit.ts'
import { peerIds } from './peers.ts'
import { log, rotated, summarize } from './stats.ts'
import type { Summary } from './stats.ts'
import type { PeerId } from '@libp2p/interface'

export const SIZES = [10, 10_000, 100_000] as const
const HOT_SET = 1000
const PATTERNS: Pattern[] = ['hot', 'all', 'ten']
const MAX_PEERS = 100_000

type Op = 'executeWithPeer' | 'gatingDecision' | 'floor'
type Pattern = 'hot' | 'all' | 'ten'

export interface ScaleCell {
  /** ns per call */
  '10': Summary
  '10000': Summary
  '100000': Summary
  /** ns at 100 000 / ns at 10, per round */
  ratio: Summary
}

export interface ScaleExtra {
  /** `floor`: a plain `Map<string, { n }>` lookup + one field write, the same pattern (not an operation of ours) */
  hot: Record<Op, ScaleCell>
  all: Record<Op, ScaleCell>
  ten: Record<Op, ScaleCell>
  /** The operation whose hot-set ratio is the largest: its figures are `scale` in results.json */
  worst: Exclude<Op, 'floor'>
  hotSet: number
  rounds: number
  opsPerRound: number
}

async function work (): Promise<number> {
  return 1
}

// one loop function per operation: shared call sites would turn megamorphic
async function executeWithPeerLoop (breaker: BitswapCircuitBreaker, peers: PeerId[], n: number): Promise<void> {
  const k = peers.length
  for (let i = 0, j = 0; i < n; i++) {
    await breaker.executeWithPeer(peers[j], work)
    j = j + 1 === k ? 0 : j + 1
  }
}

// as the service does: admitted at the time libp2p stamped the stream with (no clock read of ours)
function gatingLoop (manager: BitswapProtectionManager, peers: PeerId[], n: number, stream: { timeline: { open: number } }): void {
  const k = peers.length
  for (let i = 0, j = 0; i < n; i++) {
    settleAdmitted(manager.admit(peers[j], false, stream.timeline.open))
    j = j + 1 === k ? 0 : j + 1
  }
}

function floorLoop (map: Map<string, { n: number }>, peers: PeerId[], n: number): void {
  const k = peers.length
  for (let i = 0, j = 0; i < n; i++) {
    const entry = map.get(peers[j].toString())
    if (entry !== undefined) {
      entry.n++
    }
    j = j + 1 === k ? 0 : j + 1
  }
}

interface Engines {
  size: number
  breaker: BitswapCircuitBreaker
  manager: BitswapProtectionManager
  floor: Map<string, { n: number }>
  sets: Record<Pattern, PeerId[]>
}

async function engines (size: number, all: PeerId[]): Promise<Engines> {
  const peers = all.slice(0, size)
  const breaker = new BitswapCircuitBreaker({}, { maxPeers: MAX_PEERS })
  const manager = new BitswapProtectionManager({ maxPeers: MAX_PEERS })
  const floor = new Map<string, { n: number }>()
  for (const peer of peers) {
    await breaker.executeWithPeer(peer, work)
    settleAdmitted(manager.admit(peer, false))
    floor.set(peer.toString(), { n: 0 })
  }
  if (breaker.size !== size || manager.registry.size !== size) {
    throw new Error(`scale: tracked ${breaker.size} / ${manager.registry.size} of ${size} peers`)
  }
  return { size, breaker, manager, floor, sets: { hot: peers.slice(0, Math.min(size, HOT_SET)), all: peers, ten: peers.slice(0, 10) } }
}

export async function runScale (options: { rounds: number, warmup: number, ops: number }): Promise<{ scale: Record<'10' | '10000' | '100000', Summary>, extra: ScaleExtra }> {
  const all = peerIds(MAX_PEERS)
  const built: Engines[] = []
  for (const size of SIZES) {
    built.push(await engines(size, all))
  }
  // ns per call, by pattern, operation and size, one entry per measured round
  const ns = new Map<string, number[]>()
  const key = (pattern: Pattern, op: Op, size: number): string => `${pattern}/${op}/${size}`

  for (let round = 0; round < options.warmup + options.rounds; round++) {
    for (const pattern of PATTERNS) {
      for (const e of rotated(built, round)) {
        const peers = e.sets[pattern]
        let started = performance.now()
        await executeWithPeerLoop(e.breaker, peers, options.ops)
        const executeNs = (performance.now() - started) * 1e6 / options.ops
        const stream = { timeline: { open: Date.now() } }
        started = performance.now()
        gatingLoop(e.manager, peers, options.ops, stream)
        const gatingNs = (performance.now() - started) * 1e6 / options.ops
        started = performance.now()
        floorLoop(e.floor, peers, options.ops)
        const floorNs = (performance.now() - started) * 1e6 / options.ops
        if (round >= options.warmup) {
          push(ns, key(pattern, 'executeWithPeer', e.size), executeNs)
          push(ns, key(pattern, 'gatingDecision', e.size), gatingNs)
          push(ns, key(pattern, 'floor', e.size), floorNs)
        }
      }
    }
  }

  const cell = (pattern: Pattern, op: Op): ScaleCell => {
    const at = (size: number): number[] => ns.get(key(pattern, op, size)) ?? []
    const small = at(10)
    return {
      10: summarize(small),
      10000: summarize(at(10_000)),
      100000: summarize(at(100_000)),
      ratio: summarize(at(100_000).map((v, i) => v / small[i]), 3)
    }
  }
  const cells = (pattern: Pattern): Record<Op, ScaleCell> => ({ executeWithPeer: cell(pattern, 'executeWithPeer'), gatingDecision: cell(pattern, 'gatingDecision'), floor: cell(pattern, 'floor') })
  const hot = cells('hot')
  const cold = cells('all')
  const ten = cells('ten')
  const worst: Exclude<Op, 'floor'> = hot.gatingDecision.ratio.median >= hot.executeWithPeer.ratio.median ? 'gatingDecision' : 'executeWithPeer'
  for (const e of built) {
    e.manager.close()
  }
  log(`scale: ${options.rounds} rounds of ${options.ops} ops per size, pattern and operation after ${options.warmup} warm-up`)
  return {
    scale: { 10: hot[worst][10], 10000: hot[worst][10000], 100000: hot[worst][100000] },
    extra: { hot, all: cold, ten, worst, hotSet: HOT_SET, rounds: options.rounds, opsPerRound: options.ops }
  }
}

function push (map: Map<string, number[]>, key: string, value: number): void {
  const list = map.get(key)
  if (list == null) {
    map.set(key, [value])
  } else {
    list.push(value)
  }
}

/** Settles an admission as a 1 ms success (the benches only admit peers with closed circuits) */
function settleAdmitted (admission: Admission): void {
  if (admission.admitted) {
    admission.settle(Outcome.SUCCESS, 1)
  }
}
