import { EventEmitter } from '../event.ts'
import { growFloat64, growUint32, growUint8 } from '../peers/columns.ts'
import { Outcome, STATE_CLOSED } from '../states.ts'
import { resolvePopulationGuardConfig } from './config.ts'
import type { Clock } from '../clock.ts'
import type { PopulationGuardInit, ResolvedPopulationGuardConfig } from './config.ts'
import type { Disposable, Listener } from '../event.ts'
import type { SlotColumns } from '../peers/columns.ts'
import type { PeerRegistry } from '../peers/registry.ts'

export { defaultPopulationGuardConfig, resolvePopulationGuardConfig } from './config.ts'
export type { PopulationGuardConfig, PopulationGuardInit, ResolvedPopulationGuardConfig } from './config.ts'

/**
 * Shares times a population are floored to whole peers. This absorbs the binary error of products
 * like 0.57 × 100 = 56.99999999999999, which must floor to 57, not 56.
 */
const SHARE_EPSILON = 1e-9
const MAX_UINT32 = 0xFFFFFFFF

/**
 * How many circuits may be OPEN or HALF_OPEN among `population` tracked peers:
 * `max(1, floor(share × population))`. Flooring makes the cap a promise (never more than the share,
 * the Envoy check `(ejected + 1) / hosts <= percent`); the floor of one is Envoy's
 * `always_eject_one_host`, without which a 10 % cap ejects nobody below ten hosts (Envoy #3263,
 * #26877). At the default 0.5: 1 peer → 1 (the only peer may be cut off: refusing would leave a
 * broken peer stalling every want), 2 → 1, 3 → 1, 4 → 2, 10 → 5.
 */
export function maxOpenPeers (population: number, share: number): number {
  const n = Math.floor(share * population + SHARE_EPSILON)
  return n > 1 ? n : 1
}

/**
 * The least number of failing peers that makes local suspicion: more than `share × population`
 * (so the floor of that plus one) and at least `minPeers`. At the defaults: 3 peers → 3, 4 → 3,
 * 5 → 3, 6 → 4, 10 → 6.
 */
export function localSuspicionThreshold (population: number, share: number, minPeers: number): number {
  const more = Math.floor(share * population + SHARE_EPSILON) + 1
  return more > minPeers ? more : minPeers
}

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
  /** The protection manager's registry: its size is the population; the guard attaches its columns */
  registry: PeerRegistry
  /** Used by the reads that are not given a time. @default the registry's clock */
  clock?: Clock
}

// per-slot flags
const OPEN = 1
const FAILING = 2

const NO_SLOTS: readonly number[] = Object.freeze([])

/**
 * Keeps the circuit breaker from cutting this node off from the network by mistake:
 *
 * - a **cap** on how many peers may be OPEN / HALF_OPEN at once (`maxOpenShare`), so a detector
 *   gone wrong or a burst of bad luck cannot eject everyone;
 * - **local-network suspicion**: when most peers fail at once, the fault is most likely ours (a
 *   dropped link, a saturated uplink, a sleeping laptop), so no circuit trips until it clears;
 * - optional **success-rate outlier detection** (Envoy's mean − k·σ) for peers that fail often but
 *   never enough to trip on their own.
 *
 * The manager consults it from `core.canTrip`, tells it every outcome (`onOutcome`, before the core
 * sees the same outcome, so the failure that crosses the suspicion line cannot trip) and every
 * transition (`recordTransition`). No timers: failures expire lazily on the next outcome or read,
 * from an intrusive list ordered by failure time, so every hot-path call is O(1) amortised and
 * allocation-free. `nextCheckAt()` tells a service with a shared timer when a suspicion would
 * clear by itself. Per peer: 17 bytes, plus 24 when outlier detection is on.
 */
export class PopulationGuard implements SlotColumns {
  readonly config: Readonly<ResolvedPopulationGuardConfig>
  readonly registry: PeerRegistry
  /** Subscribes to local-suspicion changes; returns a disposable */
  readonly onChange: (listener: Listener<LocalSuspicionChange>) => Disposable

  private readonly clock: Clock
  private readonly changes = new EventEmitter<LocalSuspicionChange>()
  private readonly window: number
  private readonly outliers: boolean
  private readonly outlierInterval: number

  private capacity = 0
  private flags: Uint8Array = new Uint8Array(0)
  /** When a FAILING slot last failed (its place in the list) */
  private lastFailure: Float64Array = new Float64Array(0)
  /** The failing list, oldest failure first; -1 ends it */
  private prev: Int32Array = new Int32Array(0)
  private next: Int32Array = new Int32Array(0)
  private head = -1
  private tail = -1

  private openCount = 0
  private failingCount = 0
  /** Slots both OPEN and FAILING, so "open or failing" is a subtraction away */
  private bothCount = 0
  private isSuspected = false

  // outlier columns: counts of the interval `epoch` (cur) and the one before it (prev)
  private epoch: Float64Array = new Float64Array(0)
  private curOk: Uint32Array = new Uint32Array(0)
  private curFail: Uint32Array = new Uint32Array(0)
  private prevOk: Uint32Array = new Uint32Array(0)
  private prevFail: Uint32Array = new Uint32Array(0)
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
    return this.registry.size
  }

  /** Circuits OPEN or HALF_OPEN now, as last reported by the core */
  get openPeers (): number {
    return this.openCount
  }

  /** The cap at the current population (see `maxOpenPeers`) */
  get maxOpen (): number {
    return maxOpenPeers(this.registry.size, this.config.maxOpenShare)
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

  isFailing (slot: number, now: number): boolean {
    if (slot < 0 || slot >= this.capacity) {
      return false
    }
    this.refresh(now)
    return (this.flags[slot] & FAILING) !== 0
  }

  isOpen (slot: number): boolean {
    return slot >= 0 && slot < this.capacity && (this.flags[slot] & OPEN) !== 0
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
    const need = localSuspicionThreshold(this.registry.size, this.config.localFailureShare, this.config.minPeersForLocalSuspicion)
    // this many expiries take the count below `need`
    let steps = this.failingCount - need + 1
    let slot = this.head
    while (steps > 1 && slot !== -1) {
      slot = this.next[slot]
      steps--
    }
    // a larger population may already have cleared it: then the next check is due at once
    return slot === -1 || steps < 1 ? this.clock.now() : this.lastFailure[slot] + this.window
  }

  // -- hooks --

  /**
   * The core's veto (`core.canTrip`): false while our network is suspected or when the cap is
   * reached. True means the core trips the circuit at once, so the slot is counted as open here and
   * now: several trips in one flush of transitions cannot overshoot the cap. Call it only as the
   * last check of the core's veto; `tripAllowed` asks without counting.
   */
  canTrip (slot: number, now: number): boolean {
    if (!this.tripAllowed(slot, now)) {
      return false
    }
    if (slot >= 0 && slot < this.capacity) {
      this.setFlags(slot, this.flags[slot] | OPEN)
    }
    return true
  }

  /** Whether the slot's circuit may trip at `now`, without counting it */
  tripAllowed (slot: number, now: number): boolean {
    this.refresh(now)
    if (this.isSuspected) {
      return false
    }
    const self = slot >= 0 && slot < this.capacity && (this.flags[slot] & OPEN) !== 0 ? 1 : 0
    return this.openCount - self < maxOpenPeers(this.registry.size, this.config.maxOpenShare)
  }

  /**
   * Records how a request to the slot's peer ended, at `now`. Call it before the core settles the
   * same outcome. NEUTRAL says nothing about the peer or our network and is ignored. Allocates
   * nothing unless the suspicion changes.
   */
  onOutcome (slot: number, outcome: Outcome, now: number): void {
    if (slot < 0 || slot >= this.capacity || outcome === Outcome.NEUTRAL) {
      return
    }
    const flags = this.flags[slot]
    if (outcome === Outcome.SUCCESS && this.head === -1 && !this.isSuspected && !this.outliers && (flags & FAILING) === 0) {
      // the hot path: nobody is failing and this success changes nothing
      return
    }
    if (this.head !== -1) {
      this.expire(now)
    }
    if (outcome === Outcome.FAILURE) {
      if ((flags & FAILING) !== 0) {
        this.unlink(slot)
      } else {
        this.setFlags(slot, flags | FAILING)
      }
      this.append(slot, now)
    } else if ((flags & FAILING) !== 0) {
      this.unlink(slot)
      this.setFlags(slot, flags & ~FAILING)
    }
    if (this.outliers) {
      this.countOutcome(slot, outcome === Outcome.SUCCESS, now)
    }
    this.evaluate(now)
  }

  /**
   * A circuit changed state (pass it to `core.onTransition`): anything but CLOSED counts as open.
   * Bound, so it can be passed as it is.
   */
  readonly recordTransition = (slot: number, _from: number, to: number): void => {
    if (slot < 0 || slot >= this.capacity) {
      return
    }
    const flags = this.flags[slot]
    this.setFlags(slot, to === STATE_CLOSED ? flags & ~OPEN : flags | OPEN)
  }

  /**
   * Success-rate outlier detection, run at most once per `outlierInterval` (aligned to multiples
   * of it): returns the CLOSED slots whose success rate over the last whole interval is below
   * mean − k·σ of every peer with at least `outlierMinVolume` requests in it, if at least
   * `outlierMinPeers` qualify; worst first, never more than the cap leaves room for, and none while
   * our network is suspected. The caller trips them (`core.trip`, which asks `canTrip` again).
   * Not due, or turned off: returns a shared empty array at the cost of one division.
   */
  evaluateOutliers (now: number): readonly number[] {
    if (!this.outliers) {
      return NO_SLOTS
    }
    const epoch = Math.floor(now / this.outlierInterval)
    if (epoch <= this.evaluatedEpoch) {
      return NO_SLOTS
    }
    this.evaluatedEpoch = epoch
    this.refresh(now)
    if (this.isSuspected) {
      return NO_SLOTS
    }
    const room = maxOpenPeers(this.registry.size, this.config.maxOpenShare) - this.openCount
    if (room <= 0) {
      return NO_SLOTS
    }
    const last = epoch - 1
    const minVolume = this.config.outlierMinVolume
    const slots: number[] = []
    const rates: number[] = []
    this.registry.forEach((slot) => {
      let ok = 0
      let fail = 0
      const e = this.epoch[slot]
      if (e === last) {
        ok = this.curOk[slot]
        fail = this.curFail[slot]
      } else if (e === epoch) {
        ok = this.prevOk[slot]
        fail = this.prevFail[slot]
      }
      const volume = ok + fail
      if (volume >= minVolume) {
        slots.push(slot)
        rates.push(ok / volume)
      }
    })
    const n = rates.length
    if (n < this.config.outlierMinPeers) {
      return NO_SLOTS
    }
    let mean = 0
    for (let i = 0; i < n; i++) {
      mean += rates[i]
    }
    mean /= n
    let variance = 0
    for (let i = 0; i < n; i++) {
      variance += (rates[i] - mean) ** 2
    }
    // population σ, as Envoy
    const threshold = mean - this.config.outlierStdevFactor * Math.sqrt(variance / n)
    const found: number[] = []
    for (let i = 0; i < n; i++) {
      if (rates[i] < threshold && (this.flags[slots[i]] & OPEN) === 0) {
        found.push(i)
      }
    }
    found.sort((a, b) => rates[a] - rates[b] || slots[a] - slots[b])
    const out: number[] = []
    for (let i = 0; i < found.length && i < room; i++) {
      out.push(slots[found[i]])
    }
    return out
  }

  /** Drops every listener */
  close (): void {
    this.changes.clear()
  }

  // -- SlotColumns --

  grow (capacity: number): void {
    if (capacity <= this.capacity) {
      return
    }
    this.flags = growUint8(this.flags, capacity)
    this.lastFailure = growFloat64(this.lastFailure, capacity)
    this.prev = growInt32(this.prev, capacity)
    this.next = growInt32(this.next, capacity)
    if (this.outliers) {
      this.epoch = growFloat64(this.epoch, capacity)
      this.curOk = growUint32(this.curOk, capacity)
      this.curFail = growUint32(this.curFail, capacity)
      this.prevOk = growUint32(this.prevOk, capacity)
      this.prevFail = growUint32(this.prevFail, capacity)
    }
    this.capacity = capacity
  }

  /**
   * The slot is handed to a new peer, or forgotten: its counts leave the totals. (The core resets
   * its circuit to CLOSED silently at the same moment.)
   */
  reset (slot: number): void {
    if ((this.flags[slot] & FAILING) !== 0) {
      this.unlink(slot)
    }
    this.setFlags(slot, 0)
    this.lastFailure[slot] = 0
    if (this.outliers) {
      this.epoch[slot] = 0
      this.curOk[slot] = 0
      this.curFail[slot] = 0
      this.prevOk[slot] = 0
      this.prevFail[slot] = 0
    }
  }

  /** A failing peer is kept until its failure expires, so the failing share stays honest. Pure. */
  evictable (slot: number, now: number): boolean {
    return (this.flags[slot] & FAILING) === 0 || now - this.lastFailure[slot] >= this.window
  }

  // -- internals --

  /** Expires failures and re-evaluates the suspicion at `now` (the population may have changed) */
  private refresh (now: number): void {
    if (this.head !== -1) {
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
      need = localSuspicionThreshold(this.registry.size, this.config.localFailureShare, this.config.minPeersForLocalSuspicion)
    }
    let slot = this.head
    while (slot !== -1 && now - this.lastFailure[slot] >= window) {
      const expiredAt = this.lastFailure[slot] + window
      this.unlink(slot)
      this.setFlags(slot, this.flags[slot] & ~FAILING)
      if (this.isSuspected && this.failingCount < need) {
        this.isSuspected = false
        clearedAt = expiredAt
        clearedFailing = this.failingCount
      }
      slot = this.head
    }
    if (clearedAt !== -1) {
      this.emit(false, clearedFailing, clearedAt)
    }
  }

  private evaluate (now: number): void {
    const population = this.registry.size
    const suspected = this.failingCount >= localSuspicionThreshold(population, this.config.localFailureShare, this.config.minPeersForLocalSuspicion)
    if (suspected !== this.isSuspected) {
      this.isSuspected = suspected
      this.emit(suspected, this.failingCount, now)
    }
  }

  private emit (suspected: boolean, failing: number, at: number): void {
    if (this.changes.size > 0) {
      this.changes.emit({ suspected, failing, population: this.registry.size, at })
    }
  }

  /** Sets a slot's flags, keeping the totals in step */
  private setFlags (slot: number, to: number): void {
    const from = this.flags[slot]
    if (from === to) {
      return
    }
    this.openCount += (to & OPEN) - (from & OPEN)
    this.failingCount += ((to & FAILING) - (from & FAILING)) / FAILING
    this.bothCount += (to === (OPEN | FAILING) ? 1 : 0) - (from === (OPEN | FAILING) ? 1 : 0)
    this.flags[slot] = to
  }

  /** Links the slot at the tail as failing at `now` (kept in order if the clock stepped back) */
  private append (slot: number, now: number): void {
    const tail = this.tail
    this.lastFailure[slot] = tail !== -1 && this.lastFailure[tail] > now ? this.lastFailure[tail] : now
    this.prev[slot] = tail
    this.next[slot] = -1
    if (tail === -1) {
      this.head = slot
    } else {
      this.next[tail] = slot
    }
    this.tail = slot
  }

  private unlink (slot: number): void {
    const prev = this.prev[slot]
    const next = this.next[slot]
    if (prev === -1) {
      this.head = next
    } else {
      this.next[prev] = next
    }
    if (next === -1) {
      this.tail = prev
    } else {
      this.prev[next] = prev
    }
    this.prev[slot] = -1
    this.next[slot] = -1
  }

  /** Counts an outcome into the slot's current outlier interval, rolling it if time moved on */
  private countOutcome (slot: number, success: boolean, now: number): void {
    const epoch = Math.floor(now / this.outlierInterval)
    const last = this.epoch[slot]
    if (last < epoch) {
      if (last === epoch - 1) {
        this.prevOk[slot] = this.curOk[slot]
        this.prevFail[slot] = this.curFail[slot]
      } else {
        this.prevOk[slot] = 0
        this.prevFail[slot] = 0
      }
      this.curOk[slot] = 0
      this.curFail[slot] = 0
      this.epoch[slot] = epoch
    }
    if (success) {
      if (this.curOk[slot] < MAX_UINT32) {
        this.curOk[slot]++
      }
    } else if (this.curFail[slot] < MAX_UINT32) {
      this.curFail[slot]++
    }
  }
}

function growInt32 (column: Int32Array, capacity: number): Int32Array {
  const next = new Int32Array(capacity)
  next.set(column)
  next.fill(-1, column.length)
  return next
}
