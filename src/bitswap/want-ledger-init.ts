import { optionalNumber, pathOf, section } from '../validate.ts'

/** The want ledger's options (the service's `observe.*`); every default names where it came from */
export interface WantLedgerInit {
  /**
   * Shortest adaptive deadline, ms
   *
   * @default 1000
   */
  minDeadline?: number

  /**
   * Longest adaptive deadline, ms; at least `minDeadline`
   *
   * @default max(7000, minDeadline)
   */
  maxDeadline?: number

  /**
   * Deadline before a peer's first latency sample, ms, plus `coldRttMultiplier` × its connection's
   * RTT when known
   *
   * @default 2000
   */
  coldDeadline?: number

  /**
   * The RTT share of the cold deadline
   *
   * @default 3
   */
  coldRttMultiplier?: number

  /**
   * Deadline = this × the latency EWMA
   *
   * @default 2
   */
  deadlineMultiplier?: number

  /**
   * EWMA weight of a new sample, in (0, 1]
   *
   * @default 0.5
   */
  ewmaAlpha?: number

  /**
   * Wants remembered per peer
   *
   * @default 1024
   */
  maxWantsPerPeer?: number

  /**
   * Peers remembered
   *
   * @default 10000
   */
  maxPeers?: number

  /**
   * How long an ended want is remembered so a late or duplicate answer is not unrequested, ms
   *
   * @default 60000
   */
  settledRetention?: number
}

/**
 * boxo uses 50 ms, but a JS node shares one event loop with everything else: answers from a
 * healthy peer jitter by tens of ms under load, and a 50 ms floor tripped the only healthy
 * provider in our demo. A second is still far below the 10 s Bitswap send timeout.
 */
export const DEFAULT_MIN_DEADLINE = 1_000
/** boxo's MaxTimeout */
export const DEFAULT_MAX_DEADLINE = 7_000
/**
 * boxo's cold rule is 2 s + 3 × the ping RTT (its flat 5 s DontHaveTimeout applies only without a
 * ping). 5 s let a silent provider hold every want of a 400-block fetch past its end (issue 10).
 */
export const DEFAULT_COLD_DEADLINE = 2_000
/** boxo's pingLatency multiplier */
export const DEFAULT_COLD_RTT_MULTIPLIER = 3
/** boxo's: twice the peer's latency */
export const DEFAULT_DEADLINE_MULTIPLIER = 2
/** boxo's 1/n, clamped to 0.5 from the second sample on */
export const DEFAULT_EWMA_ALPHA = 0.5
/** helia's and boxo's wantlist limit */
export const DEFAULT_MAX_WANTS_PER_PEER = 1024
/** The engine's default peer table size (peers/config.ts) */
export const DEFAULT_LEDGER_MAX_PEERS = 10_000
/** A minute: longer than any deadline, so a late answer to a missed want is still recognised */
export const DEFAULT_SETTLED_RETENTION = 60_000

/** setTimeout's limit, ms: every deadline is armed on a timer */
const MAX_TIMER = 2 ** 31 - 1
/** The engine's peer table bound */
const MAX_COUNT = 2 ** 24

/** The ledger's settings, every field resolved */
export type WantLedgerConfig = Readonly<Required<WantLedgerInit>>

/**
 * Fills in the defaults and checks every field: `undefined` is the default, anything else out of
 * range (null, NaN, Infinity, a string) throws InvalidConfigError naming `<path>.<field>`
 */
export function resolveWantLedgerConfig (init: WantLedgerInit = {}, path: string = 'wantLedger'): WantLedgerConfig {
  const o = section(path, init)
  const at = (field: string): string => pathOf(path, field)
  const minDeadline = optionalNumber(at('minDeadline'), o.minDeadline, DEFAULT_MIN_DEADLINE, { min: 0, max: MAX_TIMER, minExclusive: true })
  return {
    minDeadline,
    // derived when omitted, so raising the floor alone never meets the default ceiling
    maxDeadline: optionalNumber(at('maxDeadline'), o.maxDeadline, Math.max(DEFAULT_MAX_DEADLINE, minDeadline), { min: minDeadline, max: MAX_TIMER }),
    coldDeadline: optionalNumber(at('coldDeadline'), o.coldDeadline, DEFAULT_COLD_DEADLINE, { min: 0, max: MAX_TIMER, minExclusive: true }),
    coldRttMultiplier: optionalNumber(at('coldRttMultiplier'), o.coldRttMultiplier, DEFAULT_COLD_RTT_MULTIPLIER, { min: 0, max: 1000 }),
    deadlineMultiplier: optionalNumber(at('deadlineMultiplier'), o.deadlineMultiplier, DEFAULT_DEADLINE_MULTIPLIER, { min: 0, max: 1000, minExclusive: true }),
    ewmaAlpha: optionalNumber(at('ewmaAlpha'), o.ewmaAlpha, DEFAULT_EWMA_ALPHA, { min: 0, max: 1, minExclusive: true }),
    maxWantsPerPeer: optionalNumber(at('maxWantsPerPeer'), o.maxWantsPerPeer, DEFAULT_MAX_WANTS_PER_PEER, { min: 1, max: MAX_COUNT, integer: true }),
    maxPeers: optionalNumber(at('maxPeers'), o.maxPeers, DEFAULT_LEDGER_MAX_PEERS, { min: 1, max: MAX_COUNT, integer: true }),
    settledRetention: optionalNumber(at('settledRetention'), o.settledRetention, DEFAULT_SETTLED_RETENTION, { min: 0, max: MAX_TIMER })
  }
}
