import { DEFAULT_TRIP_FAILURE_RATIO, DEFAULT_TRIP_MIN_REQUESTS, defaultBitswapCircuitBreakerConfig, resolveCircuitBreakerConfig } from '../breaker/config.ts'
import { InvalidConfigError } from '../errors.ts'
import { defaultHealthMonitorConfig, resolveHealthMonitorConfig } from '../health/config.ts'
import { DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_PEERS, MAX_PEERS_LIMIT } from '../peers/config.ts'
import { defaultRecoveryConfig, resolveRecoveryConfig } from '../recovery/config.ts'
import { describe, optionalBoolean, optionalNumber, pathOf } from '../validate.ts'
import type { CircuitBreakerDefaults, CircuitBreakerInit, ResolvedCircuitBreakerConfig } from '../breaker/config.ts'
import type { HealthMonitorInit, ResolvedHealthMonitorConfig } from '../health/config.ts'
import type { RecoveryInit, ResolvedRecoveryConfig } from '../recovery/config.ts'

/**
 * The protection manager's options and defaults, and those of its population guard and auto-tuning:
 * every number the protection/ folder uses, with where it came from.
 */

// -- population guard --

/**
 * At most this share of the tracked peers may be OPEN or HALF_OPEN at once. Envoy defaults to 10 %
 * because its hosts are interchangeable replicas sized for the load: ejecting one only moves its
 * share onto the others, and a big ejection is more likely a bad detector than a bad fleet. Bitswap
 * peers are not replicas. Blocks live on a few providers, a broken peer costs a full deadline on
 * every want sent to it, and the connected set routinely holds many poor peers; a 10 % cap would
 * keep most of them stalling our fetches. Past half, though, the likelier story is that the fault
 * is ours, which is exactly where local-network suspicion takes over (`localFailureShare`): the two
 * rules meet at the same line, so the breaker never cuts us off from a majority of the network.
 */
export const DEFAULT_MAX_OPEN_SHARE = 0.5
/** Suspect our own network when more than this share of the peers is failing at once */
export const DEFAULT_LOCAL_FAILURE_SHARE = 0.5
/** ... and at least this many peers are: two failing peers of three are just two bad peers */
export const DEFAULT_MIN_PEERS_FOR_LOCAL_SUSPICION = 3
/**
 * A failure counts towards local suspicion for this long (ms), unless the peer succeeds since.
 * When our link drops, every in-flight Bitswap open and response misses its deadline, and those
 * deadlines are clamped to 250–2000 ms (see the open-stream guard and DEFAULT_RESPONSE_DEADLINE),
 * so one local outage puts a failure on every busy peer within 2 s. Longer windows only add
 * unrelated failures of genuinely bad peers (of which a p2p node has many) and make a suspicion
 * outlast the outage when no traffic comes to clear it.
 */
export const DEFAULT_LOCAL_FAILURE_WINDOW = 2_000
/** Envoy's `success_rate_stdev_factor` 1900 / 1000 */
export const DEFAULT_OUTLIER_STDEV_FACTOR = 1.9
/** Envoy's `success_rate_request_volume` */
export const DEFAULT_OUTLIER_MIN_VOLUME = 100
/** Envoy's `success_rate_minimum_hosts` */
export const DEFAULT_OUTLIER_MIN_PEERS = 5
/** Envoy's outlier detection `interval` */
export const DEFAULT_OUTLIER_INTERVAL = 10_000

/** Outlier detection is opt-in: it ejects by comparison, which a small population makes noisy */
export const DEFAULT_OUTLIER_DETECTION = false
const MAX_UINT32 = 0xFFFFFFFF
/** Timer-safe upper bound of an interval, ms (2^31, setTimeout's limit) */
const MAX_INTERVAL = 2 ** 31

// -- auto-tuning --

/**
 * A peer's request rate is counted per window of this many ms. One second: the trip rule asks a
 * busy peer for about one second of its own traffic as evidence.
 */
export const DEFAULT_RATE_WINDOW = 1_000
/**
 * Weight of the newest whole window in the rate's moving average. 0.5 (boxo's ScoreLedger uses the
 * same alpha for its short-term score) forgets a burst within a few windows.
 */
export const DEFAULT_RATE_SMOOTHING = 0.5
/** The busiest peer's trip volume: 12 failures of the first 20 at a 10 % base rate is ~1e-7 (rule 1 in auto-tune.ts) */
export const DEFAULT_MAX_TRIP_MIN_REQUESTS = 20
/** Trip ratio while others fail as much as local suspicion allows: 9 in 10 must fail (rule 2) */
export const DEFAULT_MAX_TRIP_FAILURE_RATIO = 0.9
/** Ramp at half speed while every other peer is available (rule 3: a relapse costs more than the capacity) */
export const DEFAULT_MIN_RAMP_SPEED = 0.5
/** ... and at twice the speed while none is, so half available is exactly 1x */
export const DEFAULT_MAX_RAMP_SPEED = 2

// -- the manager's switches: the original Go design's DefaultProtectionConfig() (docs/design.md) --
/** Ramp a peer back up after its circuit closes (the Go original's default) */
export const DEFAULT_ENABLE_AUTO_RECOVERY = true
/** Trip a peer whose health turns UNHEALTHY (the Go original's default) */
export const DEFAULT_ENABLE_HEALTH_BASED_TRIPPING = true
/** Auto-tune trip sensitivity and ramp speed (ours: see auto-tune.ts for each rule's reason) */
export const DEFAULT_ENABLE_AUTO_TUNING = true

/** Population-level checks: cap on open circuits, local-network suspicion, outlier detection */
export interface PopulationGuardInit {
  /**
   * The most OPEN or HALF_OPEN circuits, as a share of the tracked peers: a trip is allowed while
   * fewer than `max(1, floor(maxOpenShare × peers))` circuits are open (see `maxOpenPeers`). At
   * least one is always allowed (Envoy's `always_eject_one_host`), so a small node can still cut
   * off a broken peer. 1 turns the cap off.
   *
   * @default 0.5
   */
  maxOpenShare?: number

  /**
   * Our own network is suspected when more than this share of the tracked peers are failing (a
   * failure within `localFailureWindow` and no success since). While suspected, no circuit trips.
   *
   * @default 0.5
   */
  localFailureShare?: number

  /**
   * ... and at least this many peers are failing. Infinity turns local suspicion off.
   *
   * @default 3
   */
  minPeersForLocalSuspicion?: number

  /**
   * How long (ms) a failure keeps a peer counted as failing
   *
   * @default 2000
   */
  localFailureWindow?: number

  /**
   * Envoy-style success-rate outlier detection across peers (`evaluateOutliers`)
   *
   * @default false
   */
  outlierDetection?: boolean

  /**
   * A peer is an outlier when its success rate is below mean − this × σ of the qualifying peers
   *
   * @default 1.9
   */
  outlierStdevFactor?: number

  /**
   * Only peers with at least this many requests in the last outlier interval qualify
   *
   * @default 100
   */
  outlierMinVolume?: number

  /**
   * No peer is an outlier unless at least this many peers qualify
   *
   * @default 5
   */
  outlierMinPeers?: number

  /**
   * Length (ms) of the tumbling interval over which success rates are counted; detection runs at
   * most once per interval
   *
   * @default 10000
   */
  outlierInterval?: number
}

/** @deprecated use `PopulationGuardInit` */
export type PopulationGuardConfig = PopulationGuardInit

/** `PopulationGuardInit` validated, every default filled in */
export interface ResolvedPopulationGuardConfig {
  maxOpenShare: number
  localFailureShare: number
  minPeersForLocalSuspicion: number
  localFailureWindow: number
  outlierDetection: boolean
  outlierStdevFactor: number
  outlierMinVolume: number
  outlierMinPeers: number
  outlierInterval: number
}

export function defaultPopulationGuardConfig (): ResolvedPopulationGuardConfig {
  return {
    maxOpenShare: DEFAULT_MAX_OPEN_SHARE,
    localFailureShare: DEFAULT_LOCAL_FAILURE_SHARE,
    minPeersForLocalSuspicion: DEFAULT_MIN_PEERS_FOR_LOCAL_SUSPICION,
    localFailureWindow: DEFAULT_LOCAL_FAILURE_WINDOW,
    outlierDetection: DEFAULT_OUTLIER_DETECTION,
    outlierStdevFactor: DEFAULT_OUTLIER_STDEV_FACTOR,
    outlierMinVolume: DEFAULT_OUTLIER_MIN_VOLUME,
    outlierMinPeers: DEFAULT_OUTLIER_MIN_PEERS,
    outlierInterval: DEFAULT_OUTLIER_INTERVAL
  }
}

/** Validates a partial config and fills in the defaults; a bad value throws `InvalidConfigError` */
export function resolvePopulationGuardConfig (config: PopulationGuardInit = {}, path: string = ''): ResolvedPopulationGuardConfig {
  checkSection(path, config)
  const at = (field: string): string => pathOf(path, field)
  return {
    maxOpenShare: optionalNumber(at('maxOpenShare'), config.maxOpenShare, DEFAULT_MAX_OPEN_SHARE, { min: 0, max: 1 }),
    localFailureShare: optionalNumber(at('localFailureShare'), config.localFailureShare, DEFAULT_LOCAL_FAILURE_SHARE, { min: 0, max: 1 }),
    minPeersForLocalSuspicion: optionalNumber(at('minPeersForLocalSuspicion'), config.minPeersForLocalSuspicion, DEFAULT_MIN_PEERS_FOR_LOCAL_SUSPICION, { min: 1, integer: true, off: true }),
    localFailureWindow: optionalNumber(at('localFailureWindow'), config.localFailureWindow, DEFAULT_LOCAL_FAILURE_WINDOW, { min: 0, max: MAX_INTERVAL, minExclusive: true }),
    outlierDetection: optionalBoolean(at('outlierDetection'), config.outlierDetection, DEFAULT_OUTLIER_DETECTION),
    outlierStdevFactor: optionalNumber(at('outlierStdevFactor'), config.outlierStdevFactor, DEFAULT_OUTLIER_STDEV_FACTOR, { min: 0, max: 100 }),
    outlierMinVolume: optionalNumber(at('outlierMinVolume'), config.outlierMinVolume, DEFAULT_OUTLIER_MIN_VOLUME, { min: 1, max: MAX_UINT32, integer: true }),
    outlierMinPeers: optionalNumber(at('outlierMinPeers'), config.outlierMinPeers, DEFAULT_OUTLIER_MIN_PEERS, { min: 2, max: 2 ** 24, integer: true }),
    outlierInterval: optionalNumber(at('outlierInterval'), config.outlierInterval, DEFAULT_OUTLIER_INTERVAL, { min: 1, max: MAX_INTERVAL })
  }
}

/** Bounds of per-peer auto-tuning of trip sensitivity and recovery ramp speed */
export interface AutoTuneInit {
  /**
   * Length (ms) of the windows in which each peer's requests are counted
   *
   * @default 1000
   */
  rateWindow?: number

  /**
   * Weight in (0, 1] of the newest whole window in the moving average of requests per window
   *
   * @default 0.5
   */
  rateSmoothing?: number

  /**
   * The trip rule's minimum request volume for a quiet peer (the default breaker rule's 3)
   *
   * @default 3
   */
  minTripRequests?: number

  /**
   * ... and for the busiest peer. Derived when omitted (so absent from `defaultAutoTuneConfig()`).
   *
   * @default max(20, minTripRequests)
   */
  maxTripRequests?: number

  /**
   * The failure ratio that trips a peer while the rest of the population is fine (the default breaker rule's 0.6)
   *
   * @default 0.6
   */
  minTripFailureRatio?: number

  /**
   * ... and while the rest is failing as much as local suspicion allows. Derived when omitted.
   *
   * @default max(0.9, minTripFailureRatio)
   */
  maxTripFailureRatio?: number

  /**
   * The slowest recovery ramp, as a multiple of the configured speed (the rest is healthy)
   *
   * @default 0.5
   */
  minRampSpeed?: number

  /**
   * The fastest (nothing else is available)
   *
   * @default 2
   */
  maxRampSpeed?: number
}

/** @deprecated use `AutoTuneInit` */
export type AutoTuneConfig = AutoTuneInit

/** `AutoTuneInit` validated, every default filled in */
export interface ResolvedAutoTuneConfig {
  rateWindow: number
  rateSmoothing: number
  minTripRequests: number
  maxTripRequests: number
  minTripFailureRatio: number
  maxTripFailureRatio: number
  minRampSpeed: number
  maxRampSpeed: number
}

/** What `defaultAutoTuneConfig()` returns: every default except the two derived maxima */
export type AutoTuneDefaults = Omit<ResolvedAutoTuneConfig, 'maxTripRequests' | 'maxTripFailureRatio'>

/** The auto-tuning defaults; `maxTripRequests` and `maxTripFailureRatio` are derived, so left out */
export function defaultAutoTuneConfig (): AutoTuneDefaults {
  return {
    rateWindow: DEFAULT_RATE_WINDOW,
    rateSmoothing: DEFAULT_RATE_SMOOTHING,
    minTripRequests: DEFAULT_TRIP_MIN_REQUESTS,
    minTripFailureRatio: DEFAULT_TRIP_FAILURE_RATIO,
    minRampSpeed: DEFAULT_MIN_RAMP_SPEED,
    maxRampSpeed: DEFAULT_MAX_RAMP_SPEED
  }
}

/** Validates a partial config and fills in the defaults; a bad value throws `InvalidConfigError` */
export function resolveAutoTuneConfig (config: AutoTuneInit = {}, path: string = ''): ResolvedAutoTuneConfig {
  checkSection(path, config)
  const at = (field: string): string => pathOf(path, field)
  const minTripRequests = optionalNumber(at('minTripRequests'), config.minTripRequests, DEFAULT_TRIP_MIN_REQUESTS, { min: 1, max: MAX_UINT32, integer: true })
  const minTripFailureRatio = optionalNumber(at('minTripFailureRatio'), config.minTripFailureRatio, DEFAULT_TRIP_FAILURE_RATIO, { min: 0, max: 1 })
  return {
    rateWindow: optionalNumber(at('rateWindow'), config.rateWindow, DEFAULT_RATE_WINDOW, { min: 1, max: MAX_INTERVAL }),
    rateSmoothing: optionalNumber(at('rateSmoothing'), config.rateSmoothing, DEFAULT_RATE_SMOOTHING, { min: 0, max: 1, minExclusive: true }),
    minTripRequests,
    maxTripRequests: optionalNumber(at('maxTripRequests'), config.maxTripRequests, Math.max(DEFAULT_MAX_TRIP_MIN_REQUESTS, minTripRequests), { min: minTripRequests, max: MAX_UINT32, integer: true }),
    minTripFailureRatio,
    maxTripFailureRatio: optionalNumber(at('maxTripFailureRatio'), config.maxTripFailureRatio, Math.max(DEFAULT_MAX_TRIP_FAILURE_RATIO, minTripFailureRatio), { min: minTripFailureRatio, max: 1 }),
    minRampSpeed: optionalNumber(at('minRampSpeed'), config.minRampSpeed, DEFAULT_MIN_RAMP_SPEED, { min: 0, max: 1, minExclusive: true }),
    maxRampSpeed: optionalNumber(at('maxRampSpeed'), config.maxRampSpeed, DEFAULT_MAX_RAMP_SPEED, { min: 1, max: 1000 })
  }
}

// -- the manager --

/** Every part resolved: what `defaultProtectionConfig()` returns */
export interface ProtectionConfig extends Required<Pick<ProtectionInit, 'enableAutoRecovery' | 'enableHealthBasedTripping' | 'enableAutoTuning' | 'maxPeers' | 'idleTimeout'>> {
  circuitBreaker: CircuitBreakerDefaults
  healthMonitor: ResolvedHealthMonitorConfig
  recovery: ResolvedRecoveryConfig
  populationGuard: ResolvedPopulationGuardConfig
  autoTune: AutoTuneDefaults
}

/**
 * The protection manager's options. Every field is optional: `undefined` takes the default, and
 * `{ ...defaultProtectionConfig(), x }` is valid for every field.
 */
export interface ProtectionInit {
  /** The per-peer circuit breakers (see `CircuitBreakerInit`) */
  circuitBreaker?: CircuitBreakerInit

  /** Per-peer health (see `HealthMonitorInit`) */
  healthMonitor?: HealthMonitorInit

  /** The ramp back to full traffic after a circuit closes (see `RecoveryInit`) */
  recovery?: RecoveryInit

  /**
   * After a circuit closes again, ramp the peer's traffic back up by the recovery strategy instead
   * of letting everything through at once
   *
   * @default true
   */
  enableAutoRecovery?: boolean

  /**
   * Trip a peer's circuit when its health becomes UNHEALTHY (e.g. too many consecutive errors),
   * even if the breaker's own rule has not fired yet.
   *
   * @default true
   */
  enableHealthBasedTripping?: boolean

  /**
   * Tune trip sensitivity and the recovery ramp from each peer's load and the population's health
   * (see auto-tune.ts). Without it (or with your own `circuitBreaker.readyToTrip`) the fixed rule applies.
   *
   * @default true
   */
  enableAutoTuning?: boolean

  /** Caps on how much of the population may be ejected, and local-network suspicion */
  populationGuard?: PopulationGuardInit

  /** Bounds of the auto-tuning rules */
  autoTune?: AutoTuneInit

  /**
   * The most peers tracked at once (breaker, health and recovery state share one record per peer)
   *
   * @default 10000
   */
  maxPeers?: number

  /**
   * A clean peer (CLOSED, not recovering) unseen for this long is forgotten. Infinity: only the
   * `maxPeers` bound evicts.
   *
   * @default 600000
   */
  idleTimeout?: number
}

/** @deprecated use `ProtectionInit` */
export type ProtectionConfigInit = ProtectionInit

/** The Go original's `DefaultProtectionConfig()`, plus the population guard, auto-tuning and peer bounds */
export function defaultProtectionConfig (): ProtectionConfig {
  return {
    circuitBreaker: defaultBitswapCircuitBreakerConfig(),
    healthMonitor: defaultHealthMonitorConfig(),
    recovery: defaultRecoveryConfig(),
    enableAutoRecovery: DEFAULT_ENABLE_AUTO_RECOVERY,
    enableHealthBasedTripping: DEFAULT_ENABLE_HEALTH_BASED_TRIPPING,
    enableAutoTuning: DEFAULT_ENABLE_AUTO_TUNING,
    populationGuard: defaultPopulationGuardConfig(),
    autoTune: defaultAutoTuneConfig(),
    maxPeers: DEFAULT_MAX_PEERS,
    idleTimeout: DEFAULT_IDLE_TIMEOUT
  }
}

/** Validates the manager's own switches; each component validates its own part */
export function resolveProtectionSwitches (init: ProtectionInit, path: string = ''): Pick<ProtectionConfig, 'enableAutoRecovery' | 'enableHealthBasedTripping' | 'enableAutoTuning'> {
  checkSection(path, init)
  return {
    enableAutoRecovery: optionalBoolean(pathOf(path, 'enableAutoRecovery'), init.enableAutoRecovery, DEFAULT_ENABLE_AUTO_RECOVERY),
    enableHealthBasedTripping: optionalBoolean(pathOf(path, 'enableHealthBasedTripping'), init.enableHealthBasedTripping, DEFAULT_ENABLE_HEALTH_BASED_TRIPPING),
    enableAutoTuning: optionalBoolean(pathOf(path, 'enableAutoTuning'), init.enableAutoTuning, DEFAULT_ENABLE_AUTO_TUNING)
  }
}

/** Every part validated and filled in, for the manager to pass down to its components */
export interface ResolvedProtectionConfig extends Pick<ProtectionConfig, 'enableAutoRecovery' | 'enableHealthBasedTripping' | 'enableAutoTuning' | 'maxPeers' | 'idleTimeout'> {
  circuitBreaker: ResolvedCircuitBreakerConfig
  healthMonitor: ResolvedHealthMonitorConfig
  recovery: ResolvedRecoveryConfig
  populationGuard: ResolvedPopulationGuardConfig
  autoTune: ResolvedAutoTuneConfig
}

/** Validates the whole config up front, so an error names the field by its full path (`path` prefixes it) */
export function resolveProtectionConfig (init: ProtectionInit = {}, path: string = ''): ResolvedProtectionConfig {
  const switches = resolveProtectionSwitches(init, path)
  return {
    ...switches,
    circuitBreaker: resolveCircuitBreakerConfig(init.circuitBreaker, pathOf(path, 'circuitBreaker')),
    healthMonitor: resolveHealthMonitorConfig(init.healthMonitor, pathOf(path, 'healthMonitor')),
    recovery: resolveRecoveryConfig(init.recovery, pathOf(path, 'recovery')),
    populationGuard: resolvePopulationGuardConfig(init.populationGuard, pathOf(path, 'populationGuard')),
    autoTune: resolveAutoTuneConfig(init.autoTune, pathOf(path, 'autoTune')),
    maxPeers: optionalNumber(pathOf(path, 'maxPeers'), init.maxPeers, DEFAULT_MAX_PEERS, { min: 1, max: MAX_PEERS_LIMIT, integer: true }),
    idleTimeout: optionalNumber(pathOf(path, 'idleTimeout'), init.idleTimeout, DEFAULT_IDLE_TIMEOUT, { min: 0, off: true })
  }
}

function checkSection (path: string, value: unknown): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidConfigError(`${path === '' ? 'config' : path} must be an object, got ${describe(value)}`)
  }
}
