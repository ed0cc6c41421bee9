/**
 * Scenario 1: success-path cost of one call, ns/op above a bare `await work()`.
 *
 * Every variant has its own loop function (closures of one function literal would share inline
 * caches and turn every call site megamorphic). Rounds interleave the variants, in a rotated order,
 * after warm-up rounds; each round's bare await is subtracted from that round's variants.
 */

import { ConsecutiveBreaker, SamplingBreaker, circuitBreaker, handleAll } from 'cockatiel'
import Opossum from 'opossum'
import { BitswapCircuitBreaker, BitswapProtectionManager, CircuitBreaker } from '../src/index.ts'
import { Outcome } from '../src/states.ts'
import type { Admission } from '../src/breaker/permit.ts'
import { peerIds } from './peers.ts'
import { log, rotated, summarize } from './stats.ts'
import type { Summary } from './stats.ts'

export interface OverheadResult {
  execute: Summary
  executeWithPeer: Summary
  executeRequest: Summary
  gatingDecision: Summary
  bareAwait: Summary
  opossum: Summary
  cockatielConsecutive: Summary
  cockatielSampling: Summary
}

export interface OverheadExtra {
  /** ns per admit + settle pair in a synchronous loop (no await around it) */
  gatingDecisionSync: Summary
  /** Ratios taken within each round (the targets use these medians) */
  ratios: {
    executeOverCockatielConsecutive: Summary
    executeOverOpossum: Summary
    gatingOverBareAwait: Summary
  }
  rounds: number
  opsPerRound: number
}

type Variant = Exclude<keyof OverheadResult, 'bareAwait'> | 'bareAwait' | 'gatingDecisionSync'

async function work (): Promise<number> {
  return 1
}

export async function runOverhead (options: { rounds: number, warmup: number, ops: number }): Promise<{ result: OverheadResult, extra: OverheadExtra }> {
  const [peer] = peerIds(1)
  const breaker = new CircuitBreaker('bench')
  const perPeer = new BitswapCircuitBreaker()
  const manager = new BitswapProtectionManager()
  const gate = new BitswapProtectionManager()
  // opossum as a user gets it: default options (10 s per-call timer, rolling stats, snapshots)
  const opossum = new Opossum(work)
  const consecutive = circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) })
  const sampling = circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new SamplingBreaker({ threshold: 0.2, duration: 10_000 }) })
  // the stream libp2p made, as the gating decision reads it (restamped every round)
  const stream = { timeline: { open: Date.now() } }

  async function bareAwait (n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      await work()
    }
  }
  async function execute (n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      await breaker.execute(work)
    }
  }
  async function executeWithPeer (n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      await perPeer.executeWithPeer(peer, work)
    }
  }
  async function executeRequest (n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      await manager.executeRequest(peer, work)
    }
  }
  // what the service does per Bitswap stream: admit (no recovery throttle) at the time libp2p
  // stamped the stream with (`stream.timeline.open`, its own Date.now()), the stream, settle
  async function gatingDecision (n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const admission = gate.admit(peer, false, stream.timeline.open)
      await work()
      settleAdmitted(admission)
    }
  }
  async function gatingDecisionSync (n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      settleAdmitted(gate.admit(peer, false, stream.timeline.open))
    }
  }
  async function opossumFire (n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      await opossum.fire()
    }
  }
  async function cockatielConsecutive (n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      await consecutive.execute(work)
    }
  }
  async function cockatielSampling (n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      await sampling.execute(work)
    }
  }

  const variants: Array<[Variant, (n: number) => Promise<void>]> = [
    ['bareAwait', bareAwait],
    ['execute', execute],
    ['executeWithPeer', executeWithPeer],
    ['executeRequest', executeRequest],
    ['gatingDecision', gatingDecision],
    ['gatingDecisionSync', gatingDecisionSync],
    ['opossum', opossumFire],
    ['cockatielConsecutive', cockatielConsecutive],
    ['cockatielSampling', cockatielSampling]
  ]
  const nsPerOp = new Map<Variant, number[]>(variants.map(([name]) => [name, []]))

  for (let round = 0; round < options.warmup + options.rounds; round++) {
    const measured = round >= options.warmup
    stream.timeline.open = Date.now()
    for (const [name, loop] of rotated(variants, round)) {
      const started = performance.now()
      await loop(options.ops)
      const ns = (performance.now() - started) * 1e6 / options.ops
      if (measured) {
        nsPerOp.get(name)!.push(ns)
      }
    }
    // opossum's rolling window keeps every latency of the current bucket: let it rotate
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  opossum.shutdown()

  const bare = nsPerOp.get('bareAwait')!
  const overheads = (name: Variant): number[] => nsPerOp.get(name)!.map((ns, i) => ns - bare[i])
  const above = (name: Variant): Summary => summarize(overheads(name))
  const ratio = (a: number[], b: number[]): Summary => summarize(a.map((v, i) => v / b[i]), 3)
  const result: OverheadResult = {
    execute: above('execute'),
    executeWithPeer: above('executeWithPeer'),
    executeRequest: above('executeRequest'),
    gatingDecision: above('gatingDecision'),
    bareAwait: summarize(bare),
    opossum: above('opossum'),
    cockatielConsecutive: above('cockatielConsecutive'),
    cockatielSampling: above('cockatielSampling')
  }
  log(`overhead: ${options.rounds} rounds of ${options.ops} ops after ${options.warmup} warm-up`)
  return {
    result,
    extra: {
      gatingDecisionSync: summarize(nsPerOp.get('gatingDecisionSync')!),
      ratios: {
        executeOverCockatielConsecutive: ratio(overheads('execute'), overheads('cockatielConsecutive')),
        executeOverOpossum: ratio(overheads('execute'), overheads('opossum')),
        gatingOverBareAwait: ratio(overheads('gatingDecision'), bare)
      },
      rounds: options.rounds,
      opsPerRound: options.ops
    }
  }
}

/** Settles an admission as a 1 ms success (the benches only admit peers with closed circuits) */
function settleAdmitted (admission: Admission): void {
  if (admission.admitted) {
    admission.settle(Outcome.SUCCESS, 1)
  }
}
