/** Every Bitswap protocol id: @helia/bitswap 4 dials only 1.2.0, but other implementations speak the older ones */
export const DEFAULT_BITSWAP_PROTOCOLS: readonly string[] = [
  '/ipfs/bitswap/1.2.0',
  '/ipfs/bitswap/1.1.0',
  '/ipfs/bitswap/1.0.0',
  '/ipfs/bitswap'
]

export const SERVICE_NAME = '@ipfs/bitswap-circuit-breaker'

/** The key under which `addBitswapCircuitBreaker` puts the service in a libp2p config */
export const DEFAULT_SERVICE_KEY = 'bitswapCircuitBreaker'

/**
 * The least time a peer gets to finish (close its side of) one of our outbound Bitswap streams
 * before it counts as stalling. A Helia provider closes its side as soon as its handler runs; boxo
 * closes after reading our message. The effective deadline is twice the peer's open deadline when
 * that is longer.
 */
export const DEFAULT_RESPONSE_DEADLINE = 2_000

/**
 * The recovery ramp's ceiling: a recovering peer may have `rate × this` outbound Bitswap opens at
 * once (at least one); more wait (see ramp-limiter.ts)
 */
export const DEFAULT_RAMP_CONCURRENCY = 4
