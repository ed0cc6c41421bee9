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
