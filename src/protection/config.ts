import { defaultBitswapCircuitBreakerConfig } from '../breaker/config.ts'
import { DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_PEERS } from '../constants.ts'
import { InvalidConfigError } from '../errors.ts'
import { defaultHealthMonitorConfig } from '../health/config.ts'
import { defaultRecoveryConfig } from '../recovery/config.ts'
import { checkBoolean } from '../validate.ts'
import type { CircuitBreakerConfig } from '../breaker/config.ts'
import type { HealthMonitorConfig } from '../health/config.ts'
import type { RecoveryConfig } from '../recovery/config.ts'
import type { AutoTuneConfig } from './auto-tune.ts'
import type { PopulationGuardConfig } from './population-guard.ts'

export interface ProtectionConfig {
  circuitBreaker: CircuitBreakerConfig
  healthMonitor: HealthMonitorConfig
  recovery: RecoveryConfig

  /**
   * After a circuit closes again, ramp the peer's traffic back up by the recovery strategy instead
   * of letting everything through at once
   *
   * @default true
   */
  enableAutoRecovery: boolean

  /**
   * Trip a peer's circuit when its health becomes UNHEALTHY (e.g. too many consecutive errors),
   * even if the breaker's own rule has not fired yet. (The seed's flag of this name did nothing.)
   *
   * @default true
   */
  enableHealthBasedTripping: boolean

  /**
   * Tune trip sensitivity and the recovery ramp from each peer's load and the population's health
   * (see auto-tune.ts). Without it (or with your own `circuitBreaker.readyToTrip`) the fixed rule applies.
   *
   * @default true
   */
  enableAutoTuning: boolean

  /** Caps on how much of the population may be ejected, and local-network suspicion */
  populationGuard: PopulationGuardConfig

  /** Bounds of the auto-tuning rules */
  autoTune: AutoTuneConfig

  /**
   * The most peers tracked at once (breaker, health and recovery state share one entry per peer)
   *
   * @default 10000
   */
  maxPeers: number

  /**
   * A clean peer (CLOSED, not recovering) unseen for this long is forgotten
   *
   * @default 600000
   */
  idleTimeout: number
}

/** Every part is partial: an omitted field takes its default */
export interface ProtectionConfigInit {
  circuitBreaker?: Partial<CircuitBreakerConfig>
  healthMonitor?: Partial<HealthMonitorConfig>
  recovery?: Partial<RecoveryConfig>
  enableAutoRecovery?: boolean
  enableHealthBasedTripping?: boolean
  enableAutoTuning?: boolean
  populationGuard?: PopulationGuardConfig
  autoTune?: AutoTuneConfig
  maxPeers?: number
  idleTimeout?: number
}

export function defaultProtectionConfig (): ProtectionConfig {
  return {
    circuitBreaker: defaultBitswapCircuitBreakerConfig(),
    healthMonitor: defaultHealthMonitorConfig(),
    recovery: defaultRecoveryConfig(),
    enableAutoRecovery: true,
    enableHealthBasedTripping: true,
    enableAutoTuning: true,
    populationGuard: {},
    autoTune: {},
    maxPeers: DEFAULT_MAX_PEERS,
    idleTimeout: DEFAULT_IDLE_TIMEOUT
  }
}

/** Validates the manager's own switches; each component validates its own part */
export function resolveProtectionSwitches (init: ProtectionConfigInit): Pick<ProtectionConfig, 'enableAutoRecovery' | 'enableHealthBasedTripping' | 'enableAutoTuning'> {
  if (init == null || typeof init !== 'object') {
    throw new InvalidConfigError(`config must be an object, got ${String(init)}`)
  }
  return {
    enableAutoRecovery: checkBoolean('enableAutoRecovery', init.enableAutoRecovery ?? true),
    enableHealthBasedTripping: checkBoolean('enableHealthBasedTripping', init.enableHealthBasedTripping ?? true),
    enableAutoTuning: checkBoolean('enableAutoTuning', init.enableAutoTuning ?? true)
  }
}
