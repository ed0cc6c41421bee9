import { checkNumber } from '../validate.ts'

export interface WantLedgerInit {
  /** Shortest adaptive deadline, ms (default 50, boxo's MinTimeout) */
  minDeadline?: number
  /** Longest adaptive deadline, ms (default 7000, boxo's MaxTimeout) */
  maxDeadline?: number
  /**
   * Deadline before a peer's first latency sample, ms, plus `coldRttMultiplier` × its connection's
   * RTT when known (default 2000, boxo's maxExpectedWantProcessTime)
   */
  coldDeadline?: number
  /** The RTT share of the cold deadline (default 3, boxo's pingLatency multiplier) */
  coldRttMultiplier?: number
  /** Deadline = this x the latency EWMA (default 2, as boxo) */
  deadlineMultiplier?: number
  /** EWMA weight of a new sample, in (0, 1] (default 0.5, boxo's floor for 1/n) */
  ewmaAlpha?: number
  /** Wants remembered per peer (default 1024, helia's and boxo's wantlist limit) */
  maxWantsPerPeer?: number
  /** Peers remembered (default 10000, the registry's default) */
  maxPeers?: number
  /** How long an ended want is remembered so a late or duplicate answer is not unrequested, ms (default 60000) */
  settledRetention?: number
}

/**
 * boxo uses 50 ms, but a JS node shares one event loop with everything else: answers from a
 * healthy peer jitter by tens of ms under load, and a 50 ms floor tripped the only healthy
 * provider in our demo. A second is still far below the 10 s Bitswap send timeout.
 */
export const DEFAULT_MIN_DEADLINE = 1_000
export const DEFAULT_MAX_DEADLINE = 7_000
/**
 * boxo's cold rule is 2 s + 3 × the ping RTT (its flat 5 s DontHaveTimeout applies only without a
 * ping). 5 s let a silent provider hold every want of a 400-block fetch past its end (issue 10).
 */
export const DEFAULT_COLD_DEADLINE = 2_000
export const DEFAULT_COLD_RTT_MULTIPLIER = 3
export const DEFAULT_DEADLINE_MULTIPLIER = 2
export const DEFAULT_EWMA_ALPHA = 0.5
export const DEFAULT_MAX_WANTS_PER_PEER = 1024
export const DEFAULT_LEDGER_MAX_PEERS = 10_000
export const DEFAULT_SETTLED_RETENTION = 60_000

/** The ledger's settings, every field resolved */
export type WantLedgerConfig = Readonly<Required<WantLedgerInit>>

/** Fills in the defaults and checks every field (InvalidConfigError naming `wantLedger.<field>`) */
export function resolveWantLedgerConfig (init: WantLedgerInit): WantLedgerConfig {
  const minDeadline = checkNumber('wantLedger.minDeadline', init.minDeadline ?? DEFAULT_MIN_DEADLINE, 0, Infinity, { minExclusive: true })
  return {
    minDeadline,
    maxDeadline: checkNumber('wantLedger.maxDeadline', init.maxDeadline ?? DEFAULT_MAX_DEADLINE, minDeadline, Infinity),
    coldDeadline: checkNumber('wantLedger.coldDeadline', init.coldDeadline ?? DEFAULT_COLD_DEADLINE, 0, Infinity, { minExclusive: true }),
    coldRttMultiplier: checkNumber('wantLedger.coldRttMultiplier', init.coldRttMultiplier ?? DEFAULT_COLD_RTT_MULTIPLIER, 0, Infinity),
    deadlineMultiplier: checkNumber('wantLedger.deadlineMultiplier', init.deadlineMultiplier ?? DEFAULT_DEADLINE_MULTIPLIER, 0, Infinity, { minExclusive: true }),
    ewmaAlpha: checkNumber('wantLedger.ewmaAlpha', init.ewmaAlpha ?? DEFAULT_EWMA_ALPHA, 0, 1, { minExclusive: true }),
    maxWantsPerPeer: checkNumber('wantLedger.maxWantsPerPeer', init.maxWantsPerPeer ?? DEFAULT_MAX_WANTS_PER_PEER, 1, Infinity, { integer: true }),
    maxPeers: checkNumber('wantLedger.maxPeers', init.maxPeers ?? DEFAULT_LEDGER_MAX_PEERS, 1, Infinity, { integer: true }),
    settledRetention: checkNumber('wantLedger.settledRetention', init.settledRetention ?? DEFAULT_SETTLED_RETENTION, 0, Infinity)
  }
}
