/**
 * The shape of bench/results.json (issue 6, §6). Everything not in that shape lives under `targets`.
 */

import type { BitswapExtra, BitswapResult } from './bitswap.ts'
import type { FaultyExtra, FaultyResult } from './faulty.ts'
import type { MemoryExtra } from './memory.ts'
import type { OverheadExtra, OverheadResult } from './overhead.ts'
import type { ScaleExtra } from './scale.ts'
import type { SwarmResult } from './swarm.ts'
import type { Summary } from './stats.ts'
import type { TargetCheck } from './targets.ts'

export interface Results {
  machine: { cpu: string, cores: number, node: string }
  /** ns/op above a bare await; `bareAwait` is the bare await's own ns/op */
  overhead: OverheadResult
  memory: { bytesPerPeer: { ours: number, opossum: number, cockatiel: number } }
  /** ns per call of the worst operation (hot set of 1 000 peers) */
  scale: { '10': Summary, '10000': Summary, '100000': Summary }
  bitswap: BitswapResult
  /** ms */
  faulty: FaultyResult
}

/** Extra fields, kept apart so the required shape stays exact */
export interface Extras {
  checks: TargetCheck[]
  overhead?: OverheadExtra
  memory?: MemoryExtra
  scale?: ScaleExtra
  bitswap?: BitswapExtra
  faulty?: FaultyExtra
  /** Issue 10: the eight-provider swarm and the five-silent session */
  swarm?: SwarmResult
  run: {
    startedAt: string
    seconds: number
    /** 1-, 5- and 15-minute load averages at the start and the end: the machine is shared */
    loadAverage: { start: number[], end: number[] }
    cpuMHz?: number
  }
}

export type ResultsFile = Results & { targets: Extras }
