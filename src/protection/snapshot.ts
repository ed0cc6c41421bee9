import { InvalidSnapshotError } from '../errors.ts'
import { CircuitState } from '../states.ts'
import { describe } from '../validate.ts'
import type { ResolvedCircuitBreakerConfig } from '../breaker/config.ts'
import type { PeerSnapshot, RestoreStats } from './types.ts'

/**
 * Checks a snapshot (from `snapshot()`, possibly through JSON, a file or an attacker) before any
 * of it is restored, and picks what to restore. Pure: time and limits are passed in.
 * - Malformed parts throw `InvalidSnapshotError` naming their path; a later version is refused.
 * - A peer string the caller does not accept as a peer id is skipped and counted, not restored.
 * - OPEN entries whose open time has ended, and HALF_OPEN ones, are dropped: nothing to hold.
 * - At most `capacity` entries are restored (half the peer table, so live peers keep room):
 *   isolations first, then the newest trips, then CLOSED peers that only carry backoff.
 * - No peer stays gated past `maxTimeout` from now, whatever `openUntil` says; an isolation comes
 *   back as an open circuit until then (only an uncapped `maxTimeout: Infinity` keeps it isolated).
 */

/** The snapshot format this library writes and reads */
export const SNAPSHOT_VERSION = 1

/**
 * No snapshot longer than this is read, whatever `maxPeers` is: 10x the default peer table, which
 * restores in about 0.16 s (a million entries took about 2 s). A node with more bad peers than this
 * at once has bigger problems than forgetting some of them.
 */
export const MAX_SNAPSHOT_ENTRIES = 100_000

/** Backoff levels above this are no snapshot's: 2^64 times the timeout is no open duration */
const MAX_BACKOFF_LEVEL = 64

export interface PrepareSnapshotOptions {
  /** The restoring clock's now, ms */
  now: number
  /** How the snapshot is named in errors: `snapshot` for `restore()`, `initialState` for the service */
  path?: string
  /** At most this many entries are restored */
  capacity: number
  /** A snapshot with more entries than this is refused unread */
  maxEntries: number
  /** The restoring breaker's open durations */
  breaker: Pick<ResolvedCircuitBreakerConfig, 'timeout' | 'backoffMultiplier' | 'maxTimeout' | 'jitter'>
  /** Whether a peer string names a peer (default: any non-empty string does) */
  isValidPeer?: (peer: string) => boolean
}

/** What `restore()` made of a snapshot: the entries it took, in priority order, and what it skipped or dropped */
export interface PreparedSnapshot {
  /** The entries to restore, in priority order; `openUntil` already clamped */
  entries: PeerSnapshot[]
  stats: RestoreStats
}

const STATES: readonly string[] = [CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN]

interface Candidate {
  entry: PeerSnapshot
  /** Higher first: isolations, then newer trips, then CLOSED peers by level */
  rank: number
}

export function prepareSnapshot (snapshot: unknown, options: PrepareSnapshotOptions): PreparedSnapshot {
  const path = options.path ?? 'snapshot'
  if (!isRecord(snapshot)) {
    throw new InvalidSnapshotError(`${path} must be an object from snapshot(), got ${describe(snapshot)}`)
  }
  const version = snapshot.version
  if (typeof version === 'number' && Number.isInteger(version) && version > SNAPSHOT_VERSION) {
    throw new InvalidSnapshotError(`${path}.version is ${version}, but this library reads snapshot versions up to ${SNAPSHOT_VERSION}: restore it with the release that wrote it, or start without it`)
  }
  if (version !== SNAPSHOT_VERSION) {
    throw new InvalidSnapshotError(`${path}.version must be ${SNAPSHOT_VERSION}, got ${describe(version)}`)
  }
  const takenAt = snapshot.takenAt
  if (typeof takenAt !== 'number' || !Number.isFinite(takenAt) || takenAt < 0) {
    throw new InvalidSnapshotError(`${path}.takenAt must be a time in ms (a finite number >= 0), got ${describe(takenAt)}`)
  }
  const peers = snapshot.peers
  if (!Array.isArray(peers)) {
    throw new InvalidSnapshotError(`${path}.peers must be an array, got ${describe(peers)}`)
  }
  if (peers.length > options.maxEntries) {
    throw new InvalidSnapshotError(`${path}.peers has ${peers.length} entries, more than this node reads (at most ${options.maxEntries}): refused unread`)
  }

  const { now, breaker } = options
  const stats: RestoreStats = { restored: 0, invalidPeers: 0, expired: 0, overCapacity: 0, duplicates: 0, clamped: 0 }
  const candidates: Candidate[] = []
  for (let i = 0; i < peers.length; i++) {
    const entry = checkEntry(peers[i], `${path}.peers[${i}]`)
    if (entry.isolated) {
      candidates.push({ entry, rank: Infinity })
    } else if (entry.state === CircuitState.OPEN && entry.openUntil > now) {
      // the trip's time, estimated from the open duration its level gave it (before jitter)
      candidates.push({ entry, rank: entry.openUntil - openDuration(breaker, entry.backoffLevel - 1) })
    } else if (entry.state === CircuitState.CLOSED) {
      if (entry.backoffLevel > 0) {
        candidates.push({ entry, rank: -Infinity })
      }
    } else {
      stats.expired++
    }
  }
  candidates.sort((a, b) => b.rank - a.rank || b.entry.backoffLevel - a.entry.backoffLevel)

  const isValidPeer = options.isValidPeer
  const seen = new Set<string>()
  const entries: PeerSnapshot[] = []
  const latest = now + (Number.isFinite(breaker.maxTimeout) ? breaker.maxTimeout : Infinity)
  for (let i = 0; i < candidates.length; i++) {
    if (entries.length >= options.capacity) {
      stats.overCapacity += candidates.length - i
      break
    }
    const entry = candidates[i].entry
    if (seen.has(entry.peer)) {
      stats.duplicates++
      continue
    }
    if (isValidPeer != null && !isValidPeer(entry.peer)) {
      stats.invalidPeers++
      continue
    }
    seen.add(entry.peer)
    if (entry.isolated && Number.isFinite(breaker.maxTimeout)) {
      // an isolation from a file is held like a trip at most: isolate() again to hold it longer
      entry.isolated = false
      entry.openUntil = latest
      stats.clamped++
    } else if (entry.state === CircuitState.OPEN && !entry.isolated) {
      // an uncapped backoff is still bounded by what this entry's level could have given it
      const bound = Math.min(latest, now + openDuration(breaker, entry.backoffLevel - 1) * (1 + breaker.jitter))
      if (entry.openUntil > bound) {
        entry.openUntil = bound
        stats.clamped++
      }
    }
    entries.push(entry)
  }
  stats.restored = entries.length
  return { entries, stats }
}

/** A fresh, checked copy of one entry (the input is never kept or changed) */
function checkEntry (value: unknown, path: string): PeerSnapshot {
  if (!isRecord(value)) {
    throw new InvalidSnapshotError(`${path} must be an object, got ${describe(value)}`)
  }
  const { peer, state, openUntil, backoffLevel, isolated } = value
  if (typeof peer !== 'string' || peer.length === 0) {
    throw new InvalidSnapshotError(`${path}.peer must be a peer id string, got ${describe(peer)}`)
  }
  if (typeof state !== 'string' || !STATES.includes(state)) {
    throw new InvalidSnapshotError(`${path}.state must be one of ${STATES.join(', ')}, got ${describe(state)}`)
  }
  if (typeof openUntil !== 'number' || !Number.isFinite(openUntil) || openUntil < 0) {
    throw new InvalidSnapshotError(`${path}.openUntil must be a time in ms (a finite number >= 0), got ${describe(openUntil)}`)
  }
  if (typeof backoffLevel !== 'number' || !Number.isInteger(backoffLevel) || backoffLevel < 0 || backoffLevel > MAX_BACKOFF_LEVEL) {
    throw new InvalidSnapshotError(`${path}.backoffLevel must be an integer >= 0 and <= ${MAX_BACKOFF_LEVEL}, got ${describe(backoffLevel)}`)
  }
  if (typeof isolated !== 'boolean') {
    throw new InvalidSnapshotError(`${path}.isolated must be true or false, got ${describe(isolated)}`)
  }
  if (isolated && state !== CircuitState.OPEN) {
    throw new InvalidSnapshotError(`${path}.isolated is true, so state must be OPEN, got ${describe(state)}`)
  }
  return { peer, state: state as CircuitState, openUntil, backoffLevel, isolated }
}

/** The core's rule: `min(timeout × multiplier^level, maxTimeout)` */
function openDuration (breaker: PrepareSnapshotOptions['breaker'], level: number): number {
  return Math.min(breaker.timeout * breaker.backoffMultiplier ** Math.max(0, level), breaker.maxTimeout)
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
