import type { ResolvedCircuitBreakerConfig } from './config.ts'
import type { RandomSource } from '../clock.ts'

/** The backoff level is kept below this: it only has to reach the level where `maxTimeout` caps */
const MAX_LEVEL_CAP = 255

/**
 * The open duration of a trip at backoff `level`: `timeout` for the first trip, then
 * `min(timeout × multiplier^level, maxTimeout)` plus up to `jitter` of it at random. Pure.
 */
export function openDuration (level: number, config: ResolvedCircuitBreakerConfig, random: RandomSource): number {
  if (level <= 0) {
    return config.timeout
  }
  const duration = Math.min(config.timeout * config.backoffMultiplier ** level, config.maxTimeout)
  return config.jitter > 0 ? duration + duration * config.jitter * random() : duration
}

/** The level at which the backed-off duration reaches `maxTimeout`: levels above it change nothing */
export function maxBackoffLevel (config: ResolvedCircuitBreakerConfig): number {
  if (config.backoffMultiplier <= 1) {
    // no growth, but a raised level still jitters later open durations
    return 1
  }
  let level = 0
  while (level < MAX_LEVEL_CAP && config.timeout * config.backoffMultiplier ** level < config.maxTimeout) {
    level++
  }
  return Math.max(level, 1)
}

/** The level after `elapsed` ms spent CLOSED: one step forgiven per `decay` ms (Envoy) */
export function decayedLevel (level: number, elapsed: number, decay: number): number {
  if (level === 0) {
    return 0
  }
  const steps = Math.floor(elapsed / decay)
  return steps >= level ? 0 : level - Math.max(steps, 0)
}
