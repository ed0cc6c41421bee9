/**
 * Per-peer state is stored as columns (typed arrays indexed by a slot number) rather than one object
 * per peer: a tracked peer then costs a few dozen bytes instead of hundreds, and the hot path reads
 * plain numbers with no pointer chasing. These helpers grow a column, keeping its contents.
 */

export function growFloat64 (column: Float64Array, capacity: number): Float64Array {
  const next = new Float64Array(capacity)
  next.set(column)
  return next
}

export function growFloat32 (column: Float32Array, capacity: number): Float32Array {
  const next = new Float32Array(capacity)
  next.set(column)
  return next
}

export function growUint32 (column: Uint32Array, capacity: number): Uint32Array {
  const next = new Uint32Array(capacity)
  next.set(column)
  return next
}

export function growUint16 (column: Uint16Array, capacity: number): Uint16Array {
  const next = new Uint16Array(capacity)
  next.set(column)
  return next
}

export function growUint8 (column: Uint8Array, capacity: number): Uint8Array {
  const next = new Uint8Array(capacity)
  next.set(column)
  return next
}

/**
 * What a component keeps per slot. The registry calls `grow` when it adds capacity, `reset` when a
 * slot is handed to a new peer, and asks `evictable` before it forgets a peer: a peer is evicted only
 * when every attached component agrees (e.g. its breaker is CLOSED and clean, it is not recovering).
 */
export interface SlotColumns {
  grow(capacity: number): void
  reset(slot: number): void
  evictable(slot: number, now: number): boolean
}
