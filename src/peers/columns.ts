/**
 * Per-peer state is stored as columns (typed arrays indexed by a slot number) rather than one object
 * per peer: a tracked peer then costs a few dozen bytes instead of hundreds, and the hot path reads
 * plain numbers with no pointer chasing.
 */

/** The typed arrays a column may be */
export type Column = Float64Array | Float32Array | Int32Array | Uint32Array | Uint16Array | Uint8Array

/**
 * A column of the same type and `capacity` slots, holding the old one's contents (the extra slots
 * are zero). Not on a hot path: the registry grows its capacity by doubling.
 */
export function growColumn<C extends Column> (column: C, capacity: number): C {
  // every typed array constructor takes a length
  const next = new (column.constructor as new (length: number) => C)(capacity)
  next.set(column)
  return next
}

// `growColumn` under per-type names, for the callers that still import those
export const growFloat64: (column: Float64Array, capacity: number) => Float64Array = growColumn
export const growFloat32: (column: Float32Array, capacity: number) => Float32Array = growColumn
export const growUint32: (column: Uint32Array, capacity: number) => Uint32Array = growColumn
export const growUint16: (column: Uint16Array, capacity: number) => Uint16Array = growColumn
export const growUint8: (column: Uint8Array, capacity: number) => Uint8Array = growColumn

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
