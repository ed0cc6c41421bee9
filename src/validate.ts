import { InvalidConfigError } from './errors.ts'

/**
 * Config validation helpers: every bad value throws at construction with the field's path and the
 * allowed range, so a typo never becomes a silently broken breaker.
 */

export function checkNumber (field: string, value: unknown, min: number, max: number, options: { integer?: boolean, minExclusive?: boolean } = {}): number {
  const kind = options.integer === true ? 'an integer' : 'a number'
  const lower = options.minExclusive === true ? `> ${min}` : `>= ${min}`
  const range = max === Infinity ? lower : `${lower} and <= ${max}`
  if (typeof value !== 'number' || Number.isNaN(value) || (options.integer === true && !Number.isInteger(value) && value !== Infinity)) {
    throw new InvalidConfigError(`${field} must be ${kind} ${range}, got ${String(value)}`)
  }
  if ((options.minExclusive === true ? value <= min : value < min) || value > max) {
    throw new InvalidConfigError(`${field} must be ${kind} ${range}, got ${value}`)
  }
  return value
}

export function checkFunction<T> (field: string, value: T): T {
  if (typeof value !== 'function') {
    throw new InvalidConfigError(`${field} must be a function, got ${typeof value}`)
  }
  return value
}

export function checkOneOf<T extends string> (field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new InvalidConfigError(`${field} must be one of ${allowed.join(', ')}, got ${String(value)}`)
  }
  return value as T
}

export function checkBoolean (field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') {
    throw new InvalidConfigError(`${field} must be true or false, got ${String(value)}`)
  }
  return value
}
