/**
 * Summaries of benchmark rounds: every reported figure is a median with the min and max beside it.
 */

export interface Summary {
  median: number
  min: number
  max: number
}

/** Median (mean of the middle two for an even count), min and max, rounded to `digits` decimals */
export function summarize (samples: number[], digits = 1): Summary {
  if (samples.length === 0) {
    return { median: Number.NaN, min: Number.NaN, max: Number.NaN }
  }
  const sorted = [...samples].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  return { median: round(median, digits), min: round(sorted[0], digits), max: round(sorted[sorted.length - 1], digits) }
}

export function round (value: number, digits = 1): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}

/** `12.3 (11.9–13.0)` */
export function fmt (s: Summary, digits = 1): string {
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`
}

/** Runs `gc()` a few times so the heap settles (needs `node --expose-gc`) */
export function settleHeap (): void {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc == null) {
    throw new Error('run with node --expose-gc (npm run bench does)')
  }
  for (let i = 0; i < 4; i++) {
    gc()
  }
}

/** Heap in use plus memory outside it (typed-array backing stores live there) */
export function heapBytes (): number {
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.external
}

/** Rotates `items` by `round` so each variant runs at each position of the round in turn */
export function rotated<T> (items: readonly T[], round: number): T[] {
  const k = round % items.length
  return [...items.slice(k), ...items.slice(0, k)]
}

export function log (message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}
