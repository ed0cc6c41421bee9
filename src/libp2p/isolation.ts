import { REJECTED_OPEN } from '../breaker/permit.ts'
import { TransitionReason } from '../breaker/core.ts'
import { CircuitState, Outcome } from '../states.ts'
import type { ResolvedServiceConfig } from './config.ts'
import type { DeadlineScheduler } from './deadline-scheduler.ts'
import type { OpenStreamGuard } from './open-stream-guard.ts'
import type { BitswapProtectionManager } from '../protection/protection-manager.ts'
import type { Logger, PeerId } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

/**
 * What happens to a peer whose circuit opened: its in-flight opens are cancelled, it is hung up
 * (the gater keeps it out), and when the open duration ends it is redialled once as the half-open
 * probe. A HALF_OPEN circuit always resolves: when no probe settled it (`disconnectOnOpen: false`
 * leaves nothing to redial, and a quiet peer sends nothing), it reopens `maxHalfOpenDwell` after
 * its open duration ended. Everything runs off the service's one scheduler.
 */
export class PeerIsolation {
  /** Set by the service: while false, nothing is cancelled, hung up or redialled */
  running = false
  private readonly connectionManager: ConnectionManager
  private readonly protection: BitswapProtectionManager
  private readonly guard: OpenStreamGuard
  private readonly scheduler: DeadlineScheduler
  private readonly log: Logger
  private readonly disconnectOnOpen: boolean
  private readonly redialOnHalfOpen: boolean
  private readonly dwell: number
  /** peer key -> when its half-open dwell check is due; only the latest check of a peer acts */
  private readonly dwellChecks = new Map<string, number>()

  constructor (connectionManager: ConnectionManager, config: ResolvedServiceConfig, protection: BitswapProtectionManager, guard: OpenStreamGuard, scheduler: DeadlineScheduler, log: Logger) {
    this.connectionManager = connectionManager
    this.protection = protection
    this.guard = guard
    this.scheduler = scheduler
    this.log = log
    this.disconnectOnOpen = config.disconnectOnOpen
    this.redialOnHalfOpen = config.redialOnHalfOpen
    this.dwell = config.protection.circuitBreaker.maxHalfOpenDwell
  }

  /**
   * A circuit just opened: cancel the peer's in-flight opens (they hold slots of Bitswap's shared
   * send queue and would stall sends to every other peer), and hang up so the gater decides when it
   * may come back. Helia re-sends its whole wantlist on reconnect, so the redial is the probe.
   */
  isolate (peer: PeerId): void {
    if (!this.running) {
      return
    }
    const cancelled = this.guard.cancelPeer(peer, REJECTED_OPEN.error)
    if (cancelled > 0) {
      this.log.trace('cancelled %d in-flight opens to %p', cancelled, peer)
    }
    this.scheduleDwellCheck(peer)
    if (!this.disconnectOnOpen) {
      return
    }
    const connections = this.connectionManager.getConnections(peer)
    if (connections.length === 0) {
      return
    }
    for (const connection of connections) {
      connection.abort(REJECTED_OPEN.error)
    }
    if (this.redialOnHalfOpen) {
      this.scheduleProbe(peer)
    }
  }

  /** Redial when the open duration ends (an isolated circuit has none: `release` schedules it) */
  scheduleProbe (peer: PeerId): void {
    const at = this.protection.openUntil(peer)
    if (Number.isFinite(at)) {
      this.scheduler.schedule(at, () => { this.probe(peer) })
    }
  }

  /** Checks, `maxHalfOpenDwell` after the open duration ends, that the half-open circuit resolved */
  scheduleDwellCheck (peer: PeerId): void {
    // HALF_OPEN already (a released isolation) has no open duration left: the dwell starts now
    const until = this.protection.openUntil(peer)
    const now = this.protection.clock.now()
    const at = (until > now ? until : now) + this.dwell
    if (!Number.isFinite(at)) {
      return
    }
    const key = peer.toString()
    this.dwellChecks.set(key, at)
    this.scheduler.schedule(at, () => {
      if (this.dwellChecks.get(key) === at) {
        this.dwellChecks.delete(key)
        this.resolve(peer)
      }
    })
  }

  /** Still HALF_OPEN a dwell after the probes were let in, with nothing settled: open it again */
  private resolve (peer: PeerId): void {
    if (!this.running) {
      return
    }
    const state = this.protection.circuitState(peer)
    if (state === CircuitState.HALF_OPEN) {
      this.log('%p stayed half-open for %d ms without a verdict: reopening', peer, this.dwell)
      this.protection.trip(peer, TransitionReason.HALF_OPEN_DWELL)
    } else if (state === CircuitState.OPEN) {
      // isolated (no open duration) or tripped again without an event reaching us: look again later
      this.scheduleDwellCheck(peer)
    }
  }

  /** Forgets pending dwell checks (the scheduler drops their entries on stop) */
  clear (): void {
    this.dwellChecks.clear()
  }

  /** The open duration has passed: redial once, as the half-open probe */
  private probe (peer: PeerId): void {
    if (!this.running) {
      return
    }
    const state = this.protection.circuitState(peer)
    if (state === CircuitState.OPEN) {
      // tripped again meanwhile: try when the new open duration ends
      this.scheduleProbe(peer)
      return
    }
    if (state !== CircuitState.HALF_OPEN) {
      return
    }
    if (this.connectionManager.getConnections(peer).length > 0) {
      return
    }
    const admission = this.protection.admit(peer, false)
    if (!admission.admitted || !admission.tracked) {
      return
    }
    const startedAt = this.protection.clock.now()
    this.connectionManager.openConnection(peer)
      .then(() => {
        admission.settle(Outcome.SUCCESS, this.protection.clock.now() - startedAt)
      }, (err: Error) => {
        this.log('half-open redial of %p failed - %e', peer, err)
        admission.settle(Outcome.FAILURE, this.protection.clock.now() - startedAt, err)
      })
  }
}
