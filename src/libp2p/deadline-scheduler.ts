import { systemClock } from '../clock.ts'
import { MinHeap } from '../util/min-heap.ts'
import type { Clock } from '../clock.ts'
import type { HeapItem } from '../util/min-heap.ts'

/**
 * Many deadlines on one timer.
 *
 * Every guarded stream open needs a deadline, and most of them are cancelled (the open succeeds)
 * long before they fire. A `setTimeout` per open would mean one timer allocation and one clear
 * per open; here a min-heap of entries holds the deadlines and a single timer is armed for the
 * earliest one.
 *
 * - Entries are reused through a free list, so `schedule` allocates nothing once warm beyond the
 *   caller's `fn` (pass an `arg` to avoid a closure: `fn(arg)` is called).
 * - A handle encodes slot + generation, so a stale handle (already fired or cancelled) never
 *   cancels a newer deadline that reuses its slot. Handles are always > 0: 0 can mean "none".
 * - `cancel` removes from the heap in O(log n) and does not touch the timer unless the heap
 *   becomes empty: a timer armed for a cancelled earliest deadline just fires early and re-arms.
 * - The timer is `unref`'d where the runtime supports it, so pending deadlines never keep a
 *   process alive; `stop()` clears the timer and every pending deadline.
 * - Due entries with equal times fire in the order they were scheduled.
 * - Our own stalls are not the peers' failures. While deadlines are pending the timer also wakes
 *   at least every `LAG_TICK` ms, so a timer firing late measures how long our event loop was
 *   blocked. Every pending deadline is then pushed back by that stall (one offset, O(1)): the time
 *   a peer had to answer does not run while we could not read its answer. `now()` is the clock
 *   minus every stall so far, the time base for judging peers by their own latency.
 */

const SLOT_BITS = 21
/** A timer firing later than this (ms) means our event loop was blocked: see `fire` */
export const LATE_TIMER_GRACE = 50
/**
 * While deadlines are pending, wake at least this often (ms): a stall is then measured from the
 * last wake, overstated by at most this, instead of only from the earliest deadline
 */
export const LAG_TICK = 200

/** At most this many deadlines may be pending at once */
export const MAX_PENDING_DEADLINES = 2 ** SLOT_BITS
/** Generations wrap here, keeping handles below 2^52 (exact doubles) */
const MAX_GENERATION = 2 ** 31
/** setTimeout clamps larger delays to 1 ms: arm at most this far ahead and re-check */
const MAX_TIMER_DELAY = 2 ** 31 - 1

type Callback = (arg: unknown) => void

/** One slot: a pending deadline while in the heap, free otherwise */
class Entry implements HeapItem {
  readonly slot: number
  /** When it fires (the heap's own order puts equal times first-scheduled first) */
  heapKey = 0
  heapSeq = 0
  generation = 0
  fn: Callback | undefined = undefined
  arg: unknown = undefined
  heapIndex = -1

  constructor (slot: number) {
    this.slot = slot
  }
}

export interface DeadlineSchedulerInit {
  /** @default systemClock */
  clock?: Clock
}

/** How blocked our own event loop has been, as the scheduler measured it */
export interface EventLoopLag {
  /** Times a timer fired more than LATE_TIMER_GRACE ms late */
  stalls: number
  /** Total time pending deadlines were pushed back by, ms */
  stalledMs: number
  /** The longest stall, ms */
  maxStallMs: number
  /** The lateness of the last timer, ms (0 when on time) */
  lastLagMs: number
}

export class DeadlineScheduler {
  /** The time base of `at` */
  readonly clock: Clock
  private readonly entries: Entry[] = []
  private readonly free: Entry[] = []
  private readonly heap = new MinHeap<Entry>()
  private timer: ReturnType<typeof setTimeout> | undefined
  private armedAt = Infinity
  /** When the timer last fired (or was first armed): a stall began no earlier */
  private lastWake = -Infinity
  /** The clock time of every stall so far: entries store `at - offset` */
  private offset = 0
  private readonly onTimer: () => void
  private readonly lagStats: EventLoopLag = { stalls: 0, stalledMs: 0, maxStallMs: 0, lastLagMs: 0 }

  constructor (init: DeadlineSchedulerInit = {}) {
    this.clock = init.clock ?? systemClock
    this.onTimer = () => { this.fire() }
  }

  /** Pending deadlines */
  get size (): number {
    return this.heap.size
  }

  /** The clock's time minus every stall of our event loop so far (never ahead of the clock) */
  now (): number {
    return this.clock.now() - this.offset
  }

  /** The clock time of a `now()` time: schedule deadlines kept in `now()` time with it */
  toClock (time: number): number {
    return time + this.offset
  }

  /** What the timer saw of our event loop */
  get lag (): Readonly<EventLoopLag> {
    return this.lagStats
  }

  /**
   * Calls `fn(arg)` once the clock reaches `at` (ms, the clock's time base). Returns a handle
   * (> 0) for `cancel`. A throwing `fn` does not stop the others.
   */
  schedule (at: number, fn: () => void): number
  schedule<T> (at: number, fn: (arg: T) => void, arg: T): number
  schedule (at: number, fn: (arg: never) => void, arg?: unknown): number {
    let entry = this.free.pop()
    if (entry === undefined) {
      const slot = this.entries.length
      if (slot >= MAX_PENDING_DEADLINES) {
        throw new RangeError(`more than ${MAX_PENDING_DEADLINES} pending deadlines`)
      }
      entry = new Entry(slot)
      this.entries.push(entry)
    }
    entry.generation = entry.generation >= MAX_GENERATION ? 1 : entry.generation + 1
    entry.heapKey = at - this.offset
    entry.fn = fn as Callback
    entry.arg = arg
    this.heap.push(entry)

    if (at - this.offset < this.armedAt) {
      this.arm()
    }
    return entry.generation * MAX_PENDING_DEADLINES + entry.slot
  }

  /** Cancels a pending deadline. Returns false if it already fired or was cancelled. */
  cancel (handle: number): boolean {
    const entry = handle > 0 ? this.entries[handle % MAX_PENDING_DEADLINES] : undefined
    if (entry === undefined || entry.heapIndex < 0 || entry.generation !== Math.floor(handle / MAX_PENDING_DEADLINES)) {
      return false
    }
    this.remove(entry)
    if (this.heap.size === 0) {
      this.disarm()
    }
    return true
  }

  /** Drops every pending deadline and clears the timer */
  stop (): void {
    this.disarm()
    this.lastWake = -Infinity
    for (const entry of this.heap) {
      this.release(entry)
    }
    this.heap.clear()
  }

  private fire (): void {
    const armedFor = this.armedAt + this.offset
    this.timer = undefined
    this.armedAt = Infinity
    const clockNow = this.clock.now()
    const late = clockNow - armedFor
    if (late > LATE_TIMER_GRACE) {
      // Our own event loop was blocked: the answers may be waiting in socket buffers, unread.
      // Every pending deadline moves back by the whole stall (from the last wake, at most LAG_TICK
      // before the armed time), so none is judged before its peer had its time with us running.
      const stall = clockNow - Math.max(this.lastWake, armedFor - LAG_TICK)
      this.offset += stall
      this.recordStall(clockNow - stall, clockNow, late)
    } else {
      this.lagStats.lastLagMs = late > 0 ? late : 0
    }
    this.lastWake = clockNow
    const now = clockNow - this.offset
    // entries scheduled by a callback for a time already past fire in this same pass
    for (let entry = this.heap.peek(); entry !== undefined && entry.heapKey <= now; entry = this.heap.peek()) {
      const { fn, arg } = entry
      this.remove(entry)
      try {
        fn?.(arg)
      } catch {
        // the callback's failure is its own; the other deadlines must still fire
      }
    }
    if (this.heap.size > 0 && this.timer === undefined) {
      this.arm()
    }
  }

  private recordStall (start: number, end: number, late: number): void {
    const lag = this.lagStats
    lag.stalls++
    lag.stalledMs += end - start
    lag.maxStallMs = Math.max(lag.maxStallMs, end - start)
    lag.lastLagMs = late
  }

  private arm (): void {
    this.disarm()
    const clockNow = this.clock.now()
    if (this.lastWake === -Infinity) {
      this.lastWake = clockNow
    }
    const now = clockNow - this.offset
    // wake at least every LAG_TICK while anything is pending, to measure stalls from a recent wake
    const at = Math.min((this.heap.peek() as Entry).heapKey, now + LAG_TICK)
    const delay = Math.min(Math.max(0, at - now), MAX_TIMER_DELAY)
    const timer = setTimeout(this.onTimer, delay)
    // Node and Deno have unref; browsers return a number
    if (typeof timer === 'object' && typeof (timer as { unref?: unknown }).unref === 'function') {
      (timer as { unref: () => void }).unref()
    }
    this.timer = timer
    this.armedAt = at
  }

  private disarm (): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    this.armedAt = Infinity
    if (this.heap.size === 0) {
      // idle: the next stall is measured from when deadlines are pending again
      this.lastWake = -Infinity
    }
  }

  private remove (entry: Entry): void {
    this.heap.remove(entry)
    this.release(entry)
  }

  private release (entry: Entry): void {
    entry.fn = undefined
    entry.arg = undefined
    this.free.push(entry)
  }
}
