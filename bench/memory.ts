/**
 * Scenario 2: heap bytes per tracked peer.
 *
 * How it counts: the peer ids and their cached strings are made before the "before" reading and
 * stay alive until after the "after" reading, so they are the bench's (the caller owns them in real
 * use too), not the breaker's. Everything else created for the peers counts: our registry's map
 * entries, slot arrays and typed-array columns (with their doubling slack), and for the libraries
 * one instance per peer plus the `Map<string, breaker>` a user needs to find it. Typed-array backing
 * stores live outside the V8 heap, so `heapUsed + external` is measured, after forced GCs.
 */

import { ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel'
import Opossum from 'opossum'
import { BitswapProtectionManager } from '../src/index.ts'
import { Outcome } from '../src/states.ts'
import type { Admission } from '../src/breaker/permit.ts'
import { peerIds } from './peers.ts'
import { heapBytes, log, rotated, settleHeap, summarize } from './stats.ts'
import type { Summary } from './stats.ts'
import type { PeerId } from '@libp2p/interface'
import type { RotateBucketController } from 'opossum'

export interface MemoryExtra {
  ours: Summary
  opossum: Summary
  cockatiel: Summary
  peers: { ours: number, opossum: number, cockatiel: number }
  rounds: number
}

type Subject = 'ours' | 'opossum' | 'cockatiel'

async function work (): Promise<number> {
  return 1
}

/**
 * opossum without timers: no per-call timeout, no snapshot interval, and instead of one bucket
 * interval per breaker a controller that never rotates. (opossum's own EventEmitter controller
 * would cost O(n) per registration: its `listenerCount(event, listener)` scans every listener.)
 */
const silentController: RotateBucketController = {
  on: () => undefined,
  removeListener: () => undefined,
  listenerCount: () => 0
}

async function build (subject: Subject, peers: PeerId[]): Promise<unknown> {
  switch (subject) {
    case 'ours': {
      // every peer goes through the service's gating path: breaker, health and recovery state
      const manager = new BitswapProtectionManager({ maxPeers: peers.length })
      for (const peer of peers) {
        settleAdmitted(manager.admit(peer, false))
      }
      if (manager.registry.size !== peers.length) {
        throw new Error(`tracked ${manager.registry.size} of ${peers.length} peers`)
      }
      return manager
    }
    case 'opossum': {
      const breakers = new Map<string, Opossum>()
      for (const peer of peers) {
        const breaker = new Opossum(work, { timeout: false, enableSnapshots: false, rotateBucketController: silentController })
        breakers.set(peer.toString(), breaker)
        await breaker.fire()
      }
      return breakers
    }
    case 'cockatiel': {
      const breakers = new Map<string, ReturnType<typeof circuitBreaker>>()
      for (const peer of peers) {
        const breaker = circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) })
        breakers.set(peer.toString(), breaker)
        await breaker.execute(work)
      }
      return breakers
    }
  }
}

function release (built: unknown): void {
  if (built instanceof BitswapProtectionManager) {
    built.close()
  } else if (built instanceof Map) {
    for (const breaker of built.values()) {
      if (breaker instanceof Opossum) {
        breaker.shutdown()
      }
    }
  }
}

/**
 * One reading. A function of its own: a suspended async function keeps its locals alive, so the
 * last subject would still be on the heap at the next subject's "before" reading.
 */
async function measure (subject: Subject, peers: PeerId[]): Promise<number> {
  settleHeap()
  const before = heapBytes()
  const built = await build(subject, peers)
  settleHeap()
  const after = heapBytes()
  release(built)
  return (after - before) / peers.length
}

/** Heap bytes per peer for each subject, `rounds` times each, interleaved */
export async function runMemory (options: { rounds: number, peers: number, opossumPeers: number }): Promise<{ bytesPerPeer: { ours: number, opossum: number, cockatiel: number }, extra: MemoryExtra }> {
  const counts: Record<Subject, number> = { ours: options.peers, opossum: options.opossumPeers, cockatiel: options.peers }
  const all = peerIds(options.peers)
  const samples: Record<Subject, number[]> = { ours: [], opossum: [], cockatiel: [] }

  for (let round = 0; round < options.rounds; round++) {
    for (const subject of rotated<Subject>(['ours', 'opossum', 'cockatiel'], round)) {
      samples[subject].push(await measure(subject, all.slice(0, counts[subject])))
    }
  }
  settleHeap()

  const ours = summarize(samples.ours, 0)
  const opossum = summarize(samples.opossum, 0)
  const cockatiel = summarize(samples.cockatiel, 0)
  log(`memory: ${options.rounds} rounds; ours and cockatiel at ${options.peers} peers, opossum at ${options.opossumPeers}`)
  return {
    bytesPerPeer: { ours: ours.median, opossum: opossum.median, cockatiel: cockatiel.median },
    extra: { ours, opossum, cockatiel, peers: counts, rounds: options.rounds }
  }
}

/** Settles an admission as a 1 ms success (the benches only admit peers with closed circuits) */
function settleAdmitted (admission: Admission): void {
  if (admission.admitted) {
    admission.settle(Outcome.SUCCESS, 1)
  }
}
