import { InvalidConfigError } from './errors.ts'
import { MAX_PEERS_LIMIT } from './peers/config.ts'
import type { Clock } from './clock.ts'

/**
 * Config validation helpers. Every option is checked once, at construction, and a bad value throws
 * `InvalidConfigError` with the option's full path, what is allowed and what it got, so a typo never
 * becomes a silently broken breaker. The rules, the same for every option:
 * - `undefined` asks for the default; `null` is an error unless an option documents a meaning for it.
 * - Numbers are finite unless the option documents Infinity as "off" (`off: true`).
 * - Booleans must be booleans, lists arrays, sections plain objects.
 */

export interface NumberRange {
  /** The least value allowed (see `minExclusive`) */
  min: number
  /** The largest finite value allowed (default: unbounded) */
  max?: number
  integer?: boolean
  /** `min` itself is not allowed */
  minExclusive?: boolean
  /** Infinity is allowed and means "off" / "never" (documented on the option) */
  off?: boolean
}

/** How a bad value reads in a message: strings quoted, so `'false'` and `false` look different */
export function describe (value: unknown): string {
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value == null) {
    return String(value)
  }
  if (typeof value === 'function') {
    return 'a function'
  }
  if (typeof value === 'symbol') {
    return value.toString()
  }
  if (Array.isArray(value)) {
    return `an array of ${value.length}`
  }
  return 'an object'
}

function rangeText (range: NumberRange): string {
  const kind = range.integer === true ? 'an integer' : 'a number'
  const lower = range.minExclusive === true ? `> ${range.min}` : `>= ${range.min}`
  const max = range.max ?? Infinity
  const upper = Number.isFinite(max) ? ` and <= ${max}` : ''
  return `${kind} ${lower}${upper}${range.off === true ? ', or Infinity' : ''}`
}

/** A number in `range`; anything else throws naming `path` */
export function numberIn (path: string, value: unknown, range: NumberRange): number {
  if (typeof value === 'number' && !Number.isNaN(value)) {
    if (value === Infinity) {
      if (range.off === true) {
        return value
      }
    } else if (
      value !== -Infinity &&
      (range.integer !== true || Number.isInteger(value)) &&
      (range.minExclusive === true ? value > range.min : value >= range.min) &&
      value <= (range.max ?? Infinity)
    ) {
      return value
    }
  }
  throw new InvalidConfigError(`${path} must be ${rangeText(range)}, got ${describe(value)}`)
}

/** An optional number: `undefined` takes `fallback` (which is not checked), anything else `numberIn` */
export function optionalNumber (path: string, value: unknown, fallback: number, range: NumberRange): number {
  return value === undefined ? fallback : numberIn(path, value, range)
}

export function optionalBoolean (path: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) {
    return fallback
  }
  if (typeof value !== 'boolean') {
    throw new InvalidConfigError(`${path} must be true or false, got ${describe(value)}`)
  }
  return value
}

export function optionalFunction<T> (path: string, value: unknown, fallback: T): T {
  if (value === undefined) {
    return fallback
  }
  if (typeof value !== 'function') {
    throw new InvalidConfigError(`${path} must be a function, got ${describe(value)}`)
  }
  return value as T
}

export function optionalOneOf<T extends string> (path: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) {
    return fallback
  }
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new InvalidConfigError(`${path} must be one of ${allowed.join(', ')}, got ${describe(value)}`)
  }
  return value as T
}

/**
 * An optional list of strings (a string is not a list of its characters). `each` says what an item
 * must be; `map` turns an accepted item into its string (e.g. a PeerId) or returns undefined to
 * refuse it. By default an item must be a non-empty string.
 */
export function optionalStrings (path: string, value: unknown, fallback: readonly string[], options: { nonEmpty?: boolean, each?: string, map?: (item: unknown) => string | undefined } = {}): string[] {
  if (value === undefined) {
    return [...fallback]
  }
  const each = options.each ?? 'a non-empty string'
  if (!Array.isArray(value) || (options.nonEmpty === true && value.length === 0)) {
    throw new InvalidConfigError(`${path} must be ${options.nonEmpty === true ? 'a non-empty' : 'an'} array, each item ${each}, got ${describe(value)}`)
  }
  const out: string[] = []
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i]
    const s = options.map != null ? options.map(v) : (typeof v === 'string' && v.length > 0 ? v : undefined)
    if (s === undefined) {
      throw new InvalidConfigError(`${path}[${i}] must be ${each}, got ${describe(v)}`)
    }
    out.push(s)
  }
  return out
}

/** A section of options: `undefined` is an empty one, anything but a plain object throws */
export function section<T extends object> (path: string, value: T | undefined): Partial<T> {
  if (value === undefined) {
    return {}
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidConfigError(`${path} must be an object, got ${describe(value)}`)
  }
  return value
}

/** `prefix` + `field`, where an empty prefix is the top level */
export function pathOf (prefix: string, field: string): string {
  return prefix === '' ? field : `${prefix}.${field}`
}

/** A clock is an object with a `now()` function (`Date.now`-like); `undefined` takes `fallback` */
export function optionalClock (path: string, value: unknown, fallback: Clock): Clock {
  if (value === undefined) {
    return fallback
  }
  if (value === null || typeof value !== 'object' || typeof (value as Partial<Clock>).now !== 'function') {
    throw new InvalidConfigError(`${path} must be an object with a now() function, got ${describe(value)}`)
  }
  return value as Clock
}

/**
 * The second argument of the engine classes (`clock`, `random`, a shared `registry`, and the
 * `maxPeers` / `idleTimeout` of a table of their own), checked like any option
 */
export function checkEngineOptions (options: unknown, path: string = 'options'): void {
  const o = section(path, options as object | undefined) as Record<string, unknown>
  if (o.clock !== undefined) {
    optionalClock(pathOf(path, 'clock'), o.clock, { now: Date.now })
  }
  optionalFunction(pathOf(path, 'random'), o.random, undefined)
  optionalNumber(pathOf(path, 'maxPeers'), o.maxPeers, 0, { min: 1, max: MAX_PEERS_LIMIT, integer: true })
  optionalNumber(pathOf(path, 'idleTimeout'), o.idleTimeout, 0, { min: 0, off: true })
  if (o.registry !== undefined && typeof (o.registry as { attach?: unknown } | null)?.attach !== 'function') {
    throw new InvalidConfigError(`${pathOf(path, 'registry')} must be a PeerTable, got ${describe(o.registry)}`)
  }
}

// -- the older helpers, kept for components that check their own options --

export function checkNumber (field: string, value: unknown, min: number, max: number, options: { integer?: boolean, minExclusive?: boolean, off?: boolean } = {}): number {
  return numberIn(field, value, { min, max, ...options })
}

export function checkFunction<T> (field: string, value: T): T {
  if (typeof value !== 'function') {
    throw new InvalidConfigError(`${field} must be a function, got ${describe(value)}`)
  }
  return value
}

export function checkOneOf<T extends string> (field: string, value: unknown, allowed: readonly T[]): T {
  if (value === undefined) {
    throw new InvalidConfigError(`${field} must be one of ${allowed.join(', ')}, got undefined`)
  }
  return optionalOneOf(field, value, allowed, allowed[0])
}

export function checkBoolean (field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') {
    throw new InvalidConfigError(`${field} must be true or false, got ${describe(value)}`)
  }
  return value
}
