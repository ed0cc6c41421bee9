/** Names: what the service is called, and where `addBitswapCircuitBreaker` puts it (its defaults are in config.ts) */

export const SERVICE_NAME = '@ipfs/bitswap-circuit-breaker'

/** The key under which `addBitswapCircuitBreaker` puts the service in a libp2p config */
export const DEFAULT_SERVICE_KEY = 'bitswapCircuitBreaker'
