/**
 * Kept for importers from before the defaults moved: every number now lives, with where it came
 * from, in its folder's config.ts (breaker/, health/, recovery/, peers/, protection/). Add nothing here.
 */

export * from './breaker/config.ts'
export * from './health/config.ts'
export * from './recovery/config.ts'
export * from './peers/config.ts'
