import { isPeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { DEFAULT_MAX_MESSAGE_SIZE } from '../bitswap/frames.ts'
import { resolveWantLedgerConfig } from '../bitswap/want-ledger-init.ts'
import { systemClock } from '../clock.ts'
import { InvalidConfigError } from '../errors.ts'
import { resolveProtectionConfig } from '../protection/config.ts'
import { describe, optionalBoolean, optionalClock, optionalFunction, optionalNumber, optionalStrings, pathOf, section } from '../validate.ts'
import type { Clock, RandomSource } from '../clock.ts'
import type { BitswapCircuitBreakerInit } from '../index.ts'
import type { ResolvedProtectionConfig } from '../protection/config.ts'
import type { ProtectionSnapshot } from '../protection/protection-manager.ts'

/**
 * The service's options, resolved once: every field of `BitswapCircuitBreakerInit` (the engine's
 * too) is checked here, before the service builds anything, so a bad value throws
 * `InvalidConfigError` naming its full path (`observe.maxMessageSize`) and no part of the service
 * was created, installed or started. The parts are then handed to the components as they are.
 * Every default of the libp2p/ folder is here, with where its number came from; the want ledger's
 * are in bitswap/want-ledger-init.ts.
 */

// -- the service --

/** Every Bitswap protocol id: @helia/bitswap 4 dials only 1.2.0, but other implementations speak the older ones */
export const DEFAULT_BITSWAP_PROTOCOLS: readonly string[] = [
  '/ipfs/bitswap/1.2.0',
  '/ipfs/bitswap/1.1.0',
  '/ipfs/bitswap/1.0.0',
  '/ipfs/bitswap'
]

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

// -- inbound limits (observe.*) --

/**
 * Concurrent inbound Bitswap streams one peer may hold. @helia/bitswap opens one stream per
 * message and closes it, so an honest peer rarely holds more than a few; helia itself allows 1024
 * per connection, which lets one peer pin that many idle streams for its 10 s idle timeout.
 */
export const DEFAULT_MAX_INBOUND_STREAMS_PER_PEER = 32

/**
 * Inbound Bitswap bytes per second from one peer. Generous on purpose: it also carries the blocks
 * we asked for, and a provider on a fast LAN must not be cut off; this is a backstop against
 * floods (unrequested data is counted against the sender separately).
 */
export const DEFAULT_MAX_INBOUND_BYTES_PER_SECOND = 64 * 1024 * 1024

/**
 * Bytes of partly received Bitswap frames held for all peers together: issue 11's figure, sixteen
 * of helia's 4 MiB messages in flight at once. Per-peer limits cannot bound this: any number of
 * fresh identities can each pin frames just under them (two pinned 263–382 MB before).
 */
export const DEFAULT_MAX_INBOUND_BUFFERED_BYTES = 64 * 1024 * 1024

/**
 * Wantlist entries one message may carry, and the size of a peer's entry budget: boxo's server
 * keeps at most 1024 entries per peer (`MaxQueuedWantlistEntriesPerPeer`), helia's
 * `DEFAULT_MAX_WANTLIST_SIZE` is 1024, and both spend work on every entry before truncating.
 */
export const DEFAULT_MAX_WANTLIST_ENTRIES = 1024

/**
 * Sustained wantlist entries per second from one peer: eight whole 1024-entry lists a second, well
 * above a client fetching from us a few thousand blocks a second (a want and a cancel per block)
 */
export const DEFAULT_MAX_WANTLIST_ENTRIES_PER_SECOND = 8192

// -- open streams (openStream.*) --

/** Error names from the inner open that do not count against the peer (openStream.neutralErrors) */
export const DEFAULT_NEUTRAL_OPEN_ERRORS: readonly string[] = [
  // someone else's abort (shutdown, a signal inside libp2p)
  'AbortError',
  // the peer does not speak Bitswap: not a health problem
  'UnsupportedProtocolError',
  // our own decisions and limits
  'DialDeniedError',
  'CircuitOpenError',
  'TooManyRequestsError',
  'RecoveryThrottledError',
  'TooManyOutboundProtocolStreamsError',
  'LimitedConnectionError',
  'NotStartedError',
  'InvalidParametersError',
  // we know no address for the peer: a routing problem, not the peer's
  'NoValidAddressesError'
]

// open-stream deadlines: measured against a blackholed peer ("the experiment", docs/design.md)
/** A peer with no samples, identify time or RTT gets this long to open a stream, ms (the experiment's fixed deadline) */
export const DEFAULT_OPEN_COLD_DEADLINE = 1_000
/** Before samples: this x the identify time on the connection (the experiment's 4x) */
export const DEFAULT_OPEN_COLD_MULTIPLIER = 4
/** With samples: this x the median successful open (the experiment's 4x) */
export const DEFAULT_OPEN_SAMPLE_MULTIPLIER = 4
/** Successful opens before the median decides (the experiment's >= 3) */
export const DEFAULT_OPEN_MIN_SAMPLES = 3
/** Open times kept per peer: the experiment used 32; 8 follows a peer that slowed down sooner */
export const DEFAULT_OPEN_SAMPLE_WINDOW = 8
/** Lower clamp, ms: 250 left a healthy peer >= 2.3x headroom under load, 100 only ~1.5x */
export const DEFAULT_OPEN_MIN_DEADLINE = 250
/** Upper clamp, ms (the experiment's 2000) */
export const DEFAULT_OPEN_MAX_DEADLINE = 2_000
/** An unconnected peer is dialled first: at least this long, ms (one dial through TCP, noise and yamux) */
export const DEFAULT_OPEN_UNCONNECTED_FLOOR = 2_000

/**
 * An unproven peer holds its first caller at most this long, ms. Issue 10 allows 100 ms (a
 * wantlist round waits for every peer's send); a blackholed peer cost a 400-block get ~150 ms more
 * at 100 than at 0-30 in our runs, and a LAN or loopback open completes in a few ms
 */
export const DEFAULT_OPEN_FIRST_HOLD = 25

/** setTimeout's limit, ms: every duration the service arms a timer for stays below it */
const MAX_TIMER = 2 ** 31 - 1

export interface ResolvedOpenStreamConfig {
  coldDeadline: number
  coldMultiplier: number
  sampleMultiplier: number
  minSamples: number
  sampleWindow: number
  minDeadline: number
  maxDeadline: number
  unconnectedFloor: number
  firstOpenHold: number
  neutralErrors?: string[]
}

export interface ResolvedObserveConfig {
  maxMessageSize: number
  minDeadline: number
  maxDeadline: number
  coldDeadline: number
  coldRttMultiplier: number
  deadlineMultiplier: number
  ewmaAlpha: number
  maxWantsPerPeer: number
  maxPeers: number
  settledRetention: number
  maxInboundStreamsPerPeer: number
  maxInboundBytesPerSecond: number
  maxInboundBurstBytes: number
  maxInboundBufferedBytes: number
  maxWantlistEntries: number
  maxWantlistEntriesPerSecond: number
}

export interface ResolvedServiceConfig {
  protection: ResolvedProtectionConfig
  protocols: string[]
  disconnectOnOpen: boolean
  redialOnHalfOpen: boolean
  /** Peer ids as strings */
  allowlist: Set<string>
  responseDeadline: number
  rampConcurrency: number
  observeMessages: boolean
  releaseWaits: boolean
  observe: ResolvedObserveConfig
  openStream: ResolvedOpenStreamConfig
  initialState: ProtectionSnapshot | undefined
  clock: Clock
  random: RandomSource | undefined
}

/** Validates every option of the service and fills in the defaults; throws `InvalidConfigError` */
export function resolveServiceConfig (init: BitswapCircuitBreakerInit = {}): ResolvedServiceConfig {
  if (init === null || typeof init !== 'object' || Array.isArray(init)) {
    throw new InvalidConfigError(`init must be an object, got ${describe(init)}`)
  }
  return {
    protection: resolveProtectionConfig(init),
    protocols: optionalStrings('protocols', init.protocols, DEFAULT_BITSWAP_PROTOCOLS, { nonEmpty: true, each: 'a protocol id starting with "/"', map: protocolId }),
    disconnectOnOpen: optionalBoolean('disconnectOnOpen', init.disconnectOnOpen, true),
    redialOnHalfOpen: optionalBoolean('redialOnHalfOpen', init.redialOnHalfOpen, true),
    allowlist: new Set(optionalStrings('allowlist', init.allowlist, [], { each: 'a PeerId or a peer id string', map: peerIdString })),
    responseDeadline: optionalNumber('responseDeadline', init.responseDeadline, DEFAULT_RESPONSE_DEADLINE, { min: 1, max: MAX_TIMER }),
    rampConcurrency: optionalNumber('rampConcurrency', init.rampConcurrency, DEFAULT_RAMP_CONCURRENCY, { min: 1, max: 1024, integer: true }),
    observeMessages: optionalBoolean('observeMessages', init.observeMessages, true),
    releaseWaits: optionalBoolean('releaseWaits', init.releaseWaits, true),
    observe: resolveObserveConfig(init.observe),
    openStream: resolveOpenStreamConfig(init.openStream),
    initialState: init.initialState,
    clock: optionalClock('clock', init.clock, systemClock),
    random: optionalFunction<RandomSource | undefined>('random', init.random, undefined)
  }
}

/** `observe.*`: message observation, want deadlines and inbound limits */
export function resolveObserveConfig (init: BitswapCircuitBreakerInit['observe'], path: string = 'observe'): ResolvedObserveConfig {
  const o = section(path, init)
  const at = (field: string): string => pathOf(path, field)
  const maxInboundBytesPerSecond = optionalNumber(at('maxInboundBytesPerSecond'), o.maxInboundBytesPerSecond, DEFAULT_MAX_INBOUND_BYTES_PER_SECOND, { min: 0, minExclusive: true })
  return {
    ...resolveWantLedgerConfig(o, path),
    maxMessageSize: optionalNumber(at('maxMessageSize'), o.maxMessageSize, DEFAULT_MAX_MESSAGE_SIZE, { min: 1, max: 2 ** 31 - 1, integer: true }),
    maxInboundStreamsPerPeer: optionalNumber(at('maxInboundStreamsPerPeer'), o.maxInboundStreamsPerPeer, DEFAULT_MAX_INBOUND_STREAMS_PER_PEER, { min: 1, max: 65_535, integer: true }),
    maxInboundBytesPerSecond,
    maxInboundBurstBytes: optionalNumber(at('maxInboundBurstBytes'), o.maxInboundBurstBytes, maxInboundBytesPerSecond, { min: 1 }),
    maxInboundBufferedBytes: optionalNumber(at('maxInboundBufferedBytes'), o.maxInboundBufferedBytes, DEFAULT_MAX_INBOUND_BUFFERED_BYTES, { min: 1 }),
    maxWantlistEntries: optionalNumber(at('maxWantlistEntries'), o.maxWantlistEntries, DEFAULT_MAX_WANTLIST_ENTRIES, { min: 1, max: 2 ** 31 - 1, integer: true }),
    maxWantlistEntriesPerSecond: optionalNumber(at('maxWantlistEntriesPerSecond'), o.maxWantlistEntriesPerSecond, DEFAULT_MAX_WANTLIST_ENTRIES_PER_SECOND, { min: 0, minExclusive: true })
  }
}

/** `openStream.*`: deadlines of outbound Bitswap stream opens */
export function resolveOpenStreamConfig (init: BitswapCircuitBreakerInit['openStream'], path: string = 'openStream'): ResolvedOpenStreamConfig {
  const o = section(path, init)
  const at = (field: string): string => pathOf(path, field)
  if (o.clock !== undefined) {
    optionalClock(at('clock'), o.clock, systemClock)
  }
  const minSamples = optionalNumber(at('minSamples'), o.minSamples, DEFAULT_OPEN_MIN_SAMPLES, { min: 1, max: 1024, integer: true })
  const minDeadline = optionalNumber(at('minDeadline'), o.minDeadline, DEFAULT_OPEN_MIN_DEADLINE, { min: 0, max: MAX_TIMER, minExclusive: true })
  const resolved: ResolvedOpenStreamConfig = {
    coldDeadline: optionalNumber(at('coldDeadline'), o.coldDeadline, DEFAULT_OPEN_COLD_DEADLINE, { min: 0, max: MAX_TIMER, minExclusive: true }),
    coldMultiplier: optionalNumber(at('coldMultiplier'), o.coldMultiplier, DEFAULT_OPEN_COLD_MULTIPLIER, { min: 0, max: 1000, minExclusive: true }),
    sampleMultiplier: optionalNumber(at('sampleMultiplier'), o.sampleMultiplier, DEFAULT_OPEN_SAMPLE_MULTIPLIER, { min: 0, max: 1000, minExclusive: true }),
    minSamples,
    // derived when omitted, like maxDeadline: raising one bound alone never meets the other's default
    sampleWindow: optionalNumber(at('sampleWindow'), o.sampleWindow, Math.max(DEFAULT_OPEN_SAMPLE_WINDOW, minSamples), { min: minSamples, max: 1024, integer: true }),
    minDeadline,
    maxDeadline: optionalNumber(at('maxDeadline'), o.maxDeadline, Math.max(DEFAULT_OPEN_MAX_DEADLINE, minDeadline), { min: minDeadline, max: MAX_TIMER }),
    unconnectedFloor: optionalNumber(at('unconnectedFloor'), o.unconnectedFloor, DEFAULT_OPEN_UNCONNECTED_FLOOR, { min: 0, max: MAX_TIMER }),
    firstOpenHold: optionalNumber(at('firstOpenHold'), o.firstOpenHold, DEFAULT_OPEN_FIRST_HOLD, { min: 0, max: MAX_TIMER })
  }
  if (o.neutralErrors !== undefined) {
    resolved.neutralErrors = optionalStrings(at('neutralErrors'), o.neutralErrors, [], { each: 'an error name' })
  }
  return resolved
}

function protocolId (value: unknown): string | undefined {
  return typeof value === 'string' && value.startsWith('/') ? value : undefined
}

/** Whether a string parses as a peer id (a snapshot's peers are checked with it) */
export function isPeerIdString (value: string): boolean {
  return peerIdString(value) !== undefined
}

/** A PeerId, or a string that parses as one: a typo must not silently leave a peer gated */
function peerIdString (value: unknown): string | undefined {
  if (isPeerId(value)) {
    return value.toString()
  }
  if (typeof value !== 'string') {
    return undefined
  }
  try {
    return peerIdFromString(value).toString()
  } catch {
    return undefined
  }
}
