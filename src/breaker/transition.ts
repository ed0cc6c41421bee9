import { copyCounts } from './counts.ts'
import type { Counts } from './config.ts'
import type { Disposable } from '../event.ts'
import type { PeerRecord } from '../peers/peer-record.ts'
import type { CircuitState } from '../states.ts'

/** Why a circuit changed state */
export const TransitionReason = {
  /** The trip rule fired after a failure while CLOSED */
  FAILURES: 'failures',
  /** The open duration elapsed: probes may go through */
  TIMEOUT: 'timeout',
  /** A HALF_OPEN probe failed */
  PROBE_FAILURE: 'probe-failure',
  /** `maxRequests` consecutive HALF_OPEN probes succeeded */
  PROBES_SUCCEEDED: 'probes-succeeded',
  /** A HALF_OPEN probe stayed unsettled longer than `maxHalfOpenDwell` */
  HALF_OPEN_DWELL: 'half-open-dwell',
  /** Forced open by `trip()` */
  TRIP: 'trip',
  /** Held open by `isolate()` */
  ISOLATE: 'isolate',
  /** The last isolation was released */
  RELEASE: 'release',
  /** Cleared by the user */
  RESET: 'reset',
  /** Put back from a snapshot */
  RESTORED: 'restored',
  /** The health monitor found the peer UNHEALTHY */
  UNHEALTHY: 'health: unhealthy',
  /** Success-rate outlier detection picked the peer */
  OUTLIER: 'outlier',
  /** The recovery ramp failed on consecutive failures */
  RECOVERY_FAILED: 'recovery failed: failures',
  /** An outbound open missed its deadline before the peer ever completed one (blackholing) */
  OPEN_DEADLINE: 'open deadline missed before any open',
  /** The peer flooded us (bytes, wantlist entries or partial frames past a budget): opened without veto */
  ABUSE: 'abuse'
} as const
export type TransitionReason = typeof TransitionReason[keyof typeof TransitionReason]

/**
 * Called after a circuit changed state, once the record is consistent; `cause` is the error that
 * caused a trip, when there was one.
 */
export type TransitionListener = (record: PeerRecord, from: CircuitState, to: CircuitState, reason: TransitionReason, now: number, cause?: unknown) => void

/** The trip rule, as cockatiel's `IBreaker`: asked after each failure while CLOSED, with the peer's record */
export interface TripPolicy {
  shouldTrip(counts: Readonly<Counts>, record: PeerRecord, now: number): boolean
}

/** A policy from the user's `readyToTrip(counts)`, which gets a copy of the counts */
export function readyToTripPolicy (readyToTrip: (counts: Counts) => boolean): TripPolicy {
  return { shouldTrip: (counts) => Boolean(readyToTrip(copyCounts(counts))) }
}

interface PendingTransition {
  record: PeerRecord
  from: CircuitState
  to: CircuitState
  reason: TransitionReason
  now: number
  cause: unknown
  name: string
}

/**
 * Transitions queued while a record changes and delivered once it is consistent, to the core's
 * listeners and the user's `onStateChange`. A listener that calls back into the core queues more,
 * and they are delivered by the loop already running, in order.
 */
export class TransitionQueue {
  private listeners: TransitionListener[] = []
  private readonly pending: PendingTransition[] = []
  private flushing = false

  constructor (private readonly onStateChange: ((name: string, from: CircuitState, to: CircuitState) => void) | undefined) {}

  get empty (): boolean {
    return this.pending.length === 0
  }

  listen (listener: TransitionListener): Disposable {
    this.listeners = [...this.listeners, listener]
    return {
      dispose: () => {
        this.listeners = this.listeners.filter(l => l !== listener)
      }
    }
  }

  push (record: PeerRecord, from: CircuitState, to: CircuitState, reason: TransitionReason, now: number, cause: unknown, name: string): void {
    this.pending.push({ record, from, to, reason, now, cause, name })
  }

  flush (): void {
    if (this.flushing) {
      return
    }
    this.flushing = true
    const pending = this.pending
    try {
      for (let i = 0; i < pending.length; i++) {
        const t = pending[i]
        const listeners = this.listeners
        for (let j = 0; j < listeners.length; j++) {
          try {
            listeners[j](t.record, t.from, t.to, t.reason, t.now, t.cause)
          } catch {
            // a listener's error is its own; the state is already consistent
          }
        }
        if (this.onStateChange !== undefined) {
          try {
            this.onStateChange(t.name, t.from, t.to)
          } catch {
            // as above
          }
        }
      }
    } finally {
      pending.length = 0
      this.flushing = false
    }
  }
}
