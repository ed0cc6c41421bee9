import { EventEmitter } from '../event.ts'
import { CircuitState, Outcome } from '../states.ts'
import { FailingList, lastFailure, localSuspicionThreshold } from './local-suspicion.ts'
import { maxOpenPeers, underOpenCap } from './open-cap.ts'
import { countOutlierOutcome, findOutliers } from './outliers.ts'
import { resolvePopulationGuardConfig } from './config.ts'
import type { PopulationGuardInit, ResolvedPopulationGuardConfig } from './config.ts'
import type { Clock } from '../clock.ts'
import type { Disposable, Listener } from '../event.ts'
import type { PeerRecord } from '../peers/peer-record.ts'
import type { PeerTable, RecordKeeper } from '../peers/peer-table.ts'

export { defaultPopulationGuardConfig, resolvePopulationGuardConfig } from './config.ts'
export type { PopulationGuardConfig, PopulationGuardInit, ResolvedPopulationGuardConfig } from './config.ts'
export { maxOpenPeers } from './open-cap.ts'
export { localSuspicionThreshold } from './local-suspicion.ts'

/** A change of local-network suspicion */
export interface LocalSuspicionChange {
  suspected: boolean
  /** Peers failing when it changed */
  failing: number
  /** Tracked peers when it changed */
  population: number
  /**
   * When it changed: the failure that crossed the line, the success that fell back below it, or
   * the moment the window let enough failures expire (found lazily, reported at its true time)
   */
  at: number
}

export interface PopulationGuardOptions {
  /** The protection manager's table: its size is the population; the guard keeps its fields in the records */
  registry: PeerTable
  /** Used by the reads that are not given a time. @default the table's clock */
  clock?: Clock
}

// `PeerRecord.guardFlags` bits
const OPEN = 1
const FAILING = 2
/** Did useful work for us (an answered want, a completed exchange): only these peers are counted */
const USEFUL = 4
const OPEN_USEFUL = OPEN | USEFUL
const FAILING_USEFUL = FAILING | USEFUL
const ALL = OPEN | FAILING | USEFUL

const NO_RECORDS: readonly PeerRecord[] = Object.freeze([])

/**
 * Keeps the circuit breaker from cutting this node off from the network by mistake:
 *
 * - a **cap** on how many peers may be OPEN / HALF_OPEN at once (`maxOpenShare`, open-cap.ts), so a
 *   detector gone wrong or a burst of bad luck cannot eject everyone;
 * - **local-network suspicion** (local-suspicion.ts): when most peers fail at once, the fault is
 *   most likely ours (a dropped link, a saturated uplink, a sleeping laptop), so no circuit trips
 *   until it clears;
 * - optional **success-rate outlier detection** (outliers.ts, Envoy's mean − k·σ) for peers that
 *   fail often but never enough to trip on their own.
 *
 * The manager consults it from `core.canTrip`, tells it every outcome (`onOutcome`, before the core
 * sees the same outcome, so the failure that crosses the suspicion line cannot trip) and every
 * transition (`recordTransition`). No timers: failures expire lazily on the next outcome or read,
 * from a list ordered by failure time, so every hot-path call is O(1) amortised and
 * allocation-free. `nextCheckAt()` tells a service with a shared timer when a suspicion would
 * clear by itself.
 */
export class PopulationGuard implements RecordKeeper {
  readonly config: Readonly<ResolvedPopulationGuardConfig>
  readonly registry: PeerTable
  /** Subscribes to local-suspicion changes; returns a disposable */
  readonly onChange: (listener: Listener<LocalSuspicionChange>) => Disposable

  private readonly clock: Clock
  private readonly changes = new EventEmitter<LocalSuspicionChange>()
  private readonly window: number
  private readonly outliers: boolean
  private readonly outlierInterval: number
  private readonly failing = new FailingList()

  /** Useful peers OPEN or HALF_OPEN, failing, and both: never-useful peers count nowhere */
  private openCount = 0
  private failingCount = 0
  /** Records both OPEN and FAILING, so "open or failing" is a subtraction away */
  private bothCount = 0
  /** Peers that did useful work for us: the population the cap and suspicion shares are of */
  private usefulCount = 0
  /** The last success of a useful peer: while established peers answer, our network is fine */
  private lastGoodAt = -Infinity
  private isSuspected = false
  private evaluatedEpoch = -Infinity

  constructor (config: PopulationGuardInit = {}, options: PopulationGuardOptions) {
    this.config = resolvePopulationGuardConfig(config)
    this.registry = options.registry
    this.clock = options.clock ?? options.registry.clock
    this.window = this.config.localFailureWindow
    this.outliers = this.config.outlierDetection
    this.outlierInterval = this.config.outlierInterval
    this.onChange = this.changes.listen
    this.registry.attach(this)
  }

  // -- reads --

  /** The tracked peers (OPEN ones included: their state must survive, so they stay tracked) */
  get population (): number {
    return this.usefulCount
  }

  /** Circuits OPEN or HALF_OPEN now, as last reported by the core */
  get openPeers (): number {
    return this.openCount
  }

  /** The cap at the current population (see `maxOpenPeers`) */
  get maxOpen (): number {
    return maxOpenPeers(this.usefulCount, this.config.maxOpenShare)
  }

  /** Whether our own network is suspected now */
  get suspected (): boolean {
    return this.check(this.clock.now())
  }

  /** Brings the state up to `now` (expiring failures, firing any change) and returns `suspected` */
  check (now: number): boolean {
    this.refresh(now)
    return this.isSuspected
  }

  /** Peers failing at `now`: a failure within the window and no success since */
  failingPeers (now: number): number {
    this.refresh(now)
    return this.failingCount
  }

  /** Peers that are OPEN / HALF_OPEN or failing at `now` */
  unavailablePeers (now: number): number {
    this.refresh(now)
    return this.openCount + this.failingCount - this.bothCount
  }

  isFailing (record: PeerRecord | undefined, now: number): boolean {
    if (record === undefined) {
      return false
    }
    this.refresh(now)
    return (record.guardFlags & FAILING) !== 0
  }

  isOpen (record: PeerRecord | undefined): boolean {
    return record !== undefined && (record.guardFlags & OPEN) !== 0
  }

  /**
   * While suspected: when the suspicion will clear by itself if no outcome arrives before then (the
   * expiry of the failure that takes the count below the line). Infinity when not suspected, since
   * time alone never starts a suspicion. Schedule one re-check (`check(at)`) for this time.
   */
  nextCheckAt (): number {
    if (!this.isSuspected) {
      return Infinity
    }
    const need = localSuspicionThreshold(this.usefulCount, this.config.localFailureShare, this.config.minPeersForLocalSuspicion)
    // this many expiries take the count below `need`; a larger population may already have cleared it
    return this.failing.expiryOf(this.failingCount - need + 1, this.window) ?? this.clock.now()
  }

  // -- hooks --

  /**
   * The core's veto (`core.canTrip`): false while our network is suspected or when the cap is
   * reached. True means the core trips the circuit at once, so the peer is counted as open here
   * and now: several trips in one flush of transitions cannot overshoot the cap. Call it only as
   * the last check of the core's veto; `tripAllowed` asks without counting.
   */
  canTrip (record: PeerRecord | undefined, now: number): boolean {
    if (!this.tripAllowed(record, now)) {
      return false
    }
    if (record !== undefined) {
      this.setFlags(record, record.guardFlags | OPEN)
    }
    return true
  }

  /** Whether the peer ever did useful work for us (a bit, not a time: a time would box a double a peer) */
  isUseful (record: PeerRecord): boolean {
    return (record.guardFlags & USEFUL) !== 0
  }

  /** Whether the peer's circuit may trip at `now`, without counting it */
  tripAllowed (record: PeerRecord | undefined, now: number): boolean {
    if (record !== undefined && (record.guardFlags & USEFUL) === 0) {
      // a peer that never did anything for us holds no share of the cap and is no sign of our
      // network failing: it can always be opened (Sybils can neither veto a trip nor hold a slot)
      return true
    }
    this.refresh(now)
    if (this.isSuspected) {
      return false
    }
    return underOpenCap(this.openCount, this.isOpen(record), this.usefulCount, this.config.maxOpenShare)
  }

  /**
   * Records how a request to the peer ended, at `now`. Call it before the core settles the same
   * outcome. NEUTRAL says nothing about the peer or our network and is ignored. Allocates nothing
   * unless the suspicion changes.
   */
  onOutcome (record: PeerRecord, outcome: Outcome, now: number): void {
    if (outcome === Outcome.NEUTRAL || !record.live) {
      return
    }
    if (outcome === Outcome.SUCCESS) {
      this.markUseful(record, now)
      if (this.failing.empty && !this.isSuspected && !this.outliers && (record.guardFlags & FAILING) === 0) {
        // the hot path: nobody is failing and this success changes nothing
        return
      }
    }
    this.tally(record, outcome, now)
  }

  /** The rest of `onOutcome`, out of line so that its hot path stays small enough to inline */
  private tally (record: PeerRecord, outcome: Outcome, now: number): void {
    const flags = record.guardFlags
    if ((flags & USEFUL) === 0) {
      // never useful: its failures say nothing about our network (a fresh Sybil's garbage)
      if (this.outliers) {
        countOutlierOutcome(record, false, Math.floor(now / this.outlierInterval))
      }
      return
    }
    if (!this.failing.empty) {
      this.expire(now)
    }
    if (outcome === Outcome.FAILURE) {
      if ((flags & FAILING) !== 0) {
        this.failing.unlink(record)
      } else {
        this.setFlags(record, flags | FAILING)
      }
      this.failing.append(record, now)
    } else if ((flags & FAILING) !== 0) {
      this.failing.unlink(record)
      this.setFlags(record, flags & ~FAILING)
    }
    if (this.outliers) {
      countOutlierOutcome(record, outcome === Outcome.SUCCESS, Math.floor(now / this.outlierInterval))
    }
    this.evaluate(now)
  }

  /**
   * A circuit changed state (pass it to `core.onTransition`): anything but CLOSED counts as open.
   * Bound, so it can be passed as it is.
   */
  readonly recordTransition = (record: PeerRecord, _from: CircuitState, to: CircuitState): void => {
    if (!record.live) {
      return
    }
    const flags = record.guardFlags
    this.setFlags(record, to === CircuitState.CLOSED ? flags & ~OPEN : flags | OPEN)
  }

  /**
   * Success-rate outlier detection, run at most once per `outlierInterval` (aligned to multiples
   * of it): the CLOSED peers whose success rate over the last whole interval is an outlier (see
   * `findOutliers`), never more than the cap leaves room for, and none while our network is
   * suspected. The caller trips them (`core.trip`, which asks `canTrip` again). Not due, or turned
   * off: returns a shared empty array at the cost of one division.
   */
  evaluateOutliers (now: number): readonly PeerRecord[] {
    if (!this.outliers) {
      return NO_RECORDS
    }
    const epoch = Math.floor(now / this.outlierInterval)
    if (epoch <= this.evaluatedEpoch) {
      return NO_RECORDS
    }
    this.evaluatedEpoch = epoch
    this.refresh(now)
    if (this.isSuspected) {
      return NO_RECORDS
    }
    const room = maxOpenPeers(this.usefulCount, this.config.maxOpenShare) - this.openCount
    if (room <= 0) {
      return NO_RECORDS
    }
    const rule = { minVolume: this.config.outlierMinVolume, minPeers: this.config.outlierMinPeers, stdevFactor: this.config.outlierStdevFactor }
    return findOutliers(this.registry, epoch, rule, room, (record) => this.isOpen(record))
  }

  /**
   * The peer did useful work for us (an answered want, a completed exchange) at `now`: from now on
   * it is counted, and its success says our network works
   */
  markUseful (record: PeerRecord, now: number): void {
    if (now > this.lastGoodAt) {
      this.lastGoodAt = now
    }
    if ((record.guardFlags & USEFUL) === 0 && record.live) {
      this.setFlags(record, record.guardFlags | USEFUL)
    }
  }

  /** Drops every listener */
  close (): void {
    this.changes.clear()
  }

  // -- RecordKeeper --

  /** The peer is forgotten: its flags leave the totals */
  removed (record: PeerRecord): void {
    if ((record.guardFlags & FAILING) !== 0) {
      this.failing.unlink(record)
    }
    this.setFlags(record, 0)
    record.failing = undefined
    record.outliers = undefined
  }

  /** A failing peer is kept until its failure expires, so the failing share stays honest. Pure. */
  evictable (record: PeerRecord, now: number): boolean {
    return (record.guardFlags & FAILING) === 0 || now - lastFailure(record) >= this.window
  }

  // -- internals --

  /** Expires failures and re-evaluates the suspicion at `now` (the population may have changed) */
  private refresh (now: number): void {
    if (!this.failing.empty) {
      this.expire(now)
    }
    this.evaluate(now)
  }

  /** Drops failures older than the window, reporting a suspicion cleared by it at its true time */
  private expire (now: number): void {
    const window = this.window
    let clearedAt = -1
    let clearedFailing = 0
    let need = 0
    if (this.isSuspected) {
      need = localSuspicionThreshold(this.usefulCount, this.config.localFailureShare, this.config.minPeersForLocalSuspicion)
    }
    let record = this.failing.head
    while (record !== undefined && now - lastFailure(record) >= window) {
      const expiredAt = lastFailure(record) + window
      this.failing.unlink(record)
      this.setFlags(record, record.guardFlags & ~FAILING)
      if (this.isSuspected && this.failingCount < need) {
        this.isSuspected = false
        clearedAt = expiredAt
        clearedFailing = this.failingCount
      }
      record = this.failing.head
    }
    if (clearedAt !== -1) {
      this.emit(false, clearedFailing, clearedAt)
    }
  }

  private evaluate (now: number): void {
    const need = localSuspicionThreshold(this.usefulCount, this.config.localFailureShare, this.config.minPeersForLocalSuspicion)
    // enough established peers failing, and none of them answered since those failures began
    const suspected = this.failingCount >= need && this.lastGoodAt <= (this.failing.newest(need) ?? Infinity)
    if (suspected !== this.isSuspected) {
      this.isSuspected = suspected
      this.emit(suspected, this.failingCount, now)
    }
  }

  private emit (suspected: boolean, failing: number, at: number): void {
    if (this.changes.size > 0) {
      this.changes.emit({ suspected, failing, population: this.usefulCount, at })
    }
  }

  /** Sets a record's flags, keeping the totals (of useful peers only) in step */
  private setFlags (record: PeerRecord, to: number): void {
    const from = record.guardFlags
    if (from === to) {
      return
    }
    this.openCount += ((to & OPEN_USEFUL) === OPEN_USEFUL ? 1 : 0) - ((from & OPEN_USEFUL) === OPEN_USEFUL ? 1 : 0)
    this.failingCount += ((to & FAILING_USEFUL) === FAILING_USEFUL ? 1 : 0) - ((from & FAILING_USEFUL) === FAILING_USEFUL ? 1 : 0)
    this.bothCount += ((to & ALL) === ALL ? 1 : 0) - ((from & ALL) === ALL ? 1 : 0)
    this.usefulCount += ((to & USEFUL) !== 0 ? 1 : 0) - ((from & USEFUL) !== 0 ? 1 : 0)
    record.guardFlags = to
  }
}
