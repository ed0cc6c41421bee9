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
 */

const SLOT_BITS = 21
/** A timer firing later than this (ms) means our event loop was busy: see `fire` */
const LATE_TIMER_GRACE = 50

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

export class DeadlineScheduler {
  /** The time base of `at` */
  readonly clock: Clock
  private readonly entries: Entry[] = []
  private readonly free: Entry[] = []
  private readonly heap = new MinHeap<Entry>()
  private timer: ReturnType<typeof setTimeout> | undefined
  private armedAt = Infinity
  private readonly onTimer: () => void

  constructor (init: DeadlineSchedulerInit = {}) {
    this.clock = init.clock ?? systemClock
    this.onTimer = () => { this.fire() }
  }

  /** Pending deadlines */
  get size (): number {
    return this.heap.size
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
    entry.heapKey = at
    entry.fn = fn as Callback
    entry.arg = arg
    this.heap.push(entry)

    if (at < this.armedAt) {
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
    for (const entry of this.heap) {
      this.release(entry)
    }
    this.heap.clear()
  }

  /** Set while a late timer is giving pending I/O one turn before its deadlines fire */
  private graceTaken = false

  private fire (): void {
    this.timer = undefined
    this.armedAt = Infinity
    const now = this.clock.now()
    const first = this.heap.peek()
    if (!this.graceTaken && first !== undefined && now - first.heapKey > LATE_TIMER_GRACE) {
      // Our own event loop was busy past the deadline, so the answer may already be waiting in a
      // socket buffer: let one turn of I/O run before judging any peer (a re-armed 0 ms timer fires
      // after the poll phase). Otherwise a CPU spike here would look like every peer stalling.
      this.graceTaken = true
      this.arm()
      return
    }
    this.graceTaken = false
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

  private arm (): void {
    this.disarm()
    const at = (this.heap.peek() as Entry).heapKey
    const delay = Math.min(Math.max(0, at - this.clock.now()), MAX_TIMER_DELAY)
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
