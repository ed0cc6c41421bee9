import { InvalidConfigError } from '../errors.ts'
import { checkBoolean, checkNumber } from '../validate.ts'

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

const MAX_UINT32 = 0xFFFFFFFF

export interface PopulationGuardConfig {
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
    outlierDetection: false,
    outlierStdevFactor: DEFAULT_OUTLIER_STDEV_FACTOR,
    outlierMinVolume: DEFAULT_OUTLIER_MIN_VOLUME,
    outlierMinPeers: DEFAULT_OUTLIER_MIN_PEERS,
    outlierInterval: DEFAULT_OUTLIER_INTERVAL
  }
}

/** Validates a partial config and fills in the defaults; a bad value throws `InvalidConfigError` */
export function resolvePopulationGuardConfig (config: PopulationGuardConfig = {}, path: string = ''): ResolvedPopulationGuardConfig {
  const prefix = path === '' ? '' : `${path}.`
  if (config == null || typeof config !== 'object') {
    throw new InvalidConfigError(`${path === '' ? 'config' : path} must be an object, got ${String(config)}`)
  }
  const d = defaultPopulationGuardConfig()
  return {
    maxOpenShare: checkNumber(`${prefix}maxOpenShare`, config.maxOpenShare ?? d.maxOpenShare, 0, 1),
    localFailureShare: checkNumber(`${prefix}localFailureShare`, config.localFailureShare ?? d.localFailureShare, 0, 1),
    minPeersForLocalSuspicion: checkNumber(`${prefix}minPeersForLocalSuspicion`, config.minPeersForLocalSuspicion ?? d.minPeersForLocalSuspicion, 1, Infinity, { integer: true }),
    localFailureWindow: checkNumber(`${prefix}localFailureWindow`, config.localFailureWindow ?? d.localFailureWindow, 0, Infinity, { minExclusive: true }),
    outlierDetection: checkBoolean(`${prefix}outlierDetection`, config.outlierDetection ?? d.outlierDetection),
    outlierStdevFactor: checkNumber(`${prefix}outlierStdevFactor`, config.outlierStdevFactor ?? d.outlierStdevFactor, 0, 100),
    outlierMinVolume: checkNumber(`${prefix}outlierMinVolume`, config.outlierMinVolume ?? d.outlierMinVolume, 1, MAX_UINT32, { integer: true }),
    outlierMinPeers: checkNumber(`${prefix}outlierMinPeers`, config.outlierMinPeers ?? d.outlierMinPeers, 2, 2 ** 24, { integer: true }),
    outlierInterval: checkNumber(`${prefix}outlierInterval`, config.outlierInterval ?? d.outlierInterval, 1, 2 ** 31)
  }
}

