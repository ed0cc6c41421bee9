import { systemClock } from '../clock.ts'
import type { Clock } from '../clock.ts'

/**
 * Many deadlines on one timer.
 *
 * Every guarded stream open needs a deadline, and most of them are cancelled (the open succeeds)
 * long before they fire. A `setTimeout` per open would mean one timer allocation and one clear
 * per open; here a binary min-heap of slots holds the deadlines and a single timer is armed for
 * the earliest one.
 *
 * - Slots live in parallel arrays reused through a free list, so `schedule` allocates nothing
 *   beyond the caller's `fn` (pass an `arg` to avoid a closure: `fn(arg)` is called).
 * - A handle encodes slot + generation, so a stale handle (already fired or cancelled) never
 *   cancels a newer deadline that reuses its slot. Handles are always > 0: 0 can mean "none".
 * - `cancel` removes from the heap in O(log n) and does not touch the timer unless the heap
 *   becomes empty: a timer armed for a cancelled earliest deadline just fires early and re-arms.
 * - The timer is `unref`'d where the runtime supports it, so pending deadlines never keep a
 *   process alive; `stop()` clears the timer and every pending deadline.
 * - Due entries with equal times fire in the order they were scheduled.
 */

const SLOT_BITS = 21
/** At most this many deadlines may be pending at once */
/** A timer firing later than this (ms) means our event loop was busy: see `fire` */
const LATE_TIMER_GRACE = 50

export const MAX_PENDING_DEADLINES = 2 ** SLOT_BITS
/** Generations wrap here, keeping handles below 2^52 (exact doubles) */
const MAX_GENERATION = 2 ** 31
/** setTimeout clamps larger delays to 1 ms: arm at most this far ahead and re-check */
const MAX_TIMER_DELAY = 2 ** 31 - 1

type Callback = (arg: unknown) => void

export interface DeadlineSchedulerInit {
  /** @default systemClock */
  clock?: Clock
}

export class DeadlineScheduler {
  /** The time base of `at` */
  readonly clock: Clock
  // per slot
  private at: number[] = []
  private seq: number[] = []
  private fns: Array<Callback | undefined> = []
  private args: unknown[] = []
  private pos: number[] = []
  private gen: number[] = []
  private free: number[] = []
  // heap of slot numbers ordered by (at, seq)
  private heap: number[] = []
  private nextSeq = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private armedAt = Infinity
  private readonly onTimer: () => void

  constructor (init: DeadlineSchedulerInit = {}) {
    this.clock = init.clock ?? systemClock
    this.onTimer = () => { this.fire() }
  }

  /** Pending deadlines */
  get size (): number {
    return this.heap.length
  }

  /**
   * Calls `fn(arg)` once the clock reaches `at` (ms, the clock's time base). Returns a handle
   * (> 0) for `cancel`. A throwing `fn` does not stop the others.
   */
  schedule (at: number, fn: () => void): number
  schedule<T> (at: number, fn: (arg: T) => void, arg: T): number
  schedule (at: number, fn: (arg: never) => void, arg?: unknown): number {
    let slot = this.free.pop()
    if (slot === undefined) {
      slot = this.at.length
      if (slot >= MAX_PENDING_DEADLINES) {
        throw new RangeError(`more than ${MAX_PENDING_DEADLINES} pending deadlines`)
      }
      this.at.push(0)
      this.seq.push(0)
      this.fns.push(undefined)
      this.args.push(undefined)
      this.pos.push(-1)
      this.gen.push(0)
    }
    const generation = this.gen[slot] >= MAX_GENERATION ? 1 : this.gen[slot] + 1
    this.gen[slot] = generation
    this.at[slot] = at
    this.seq[slot] = this.nextSeq++
    this.fns[slot] = fn as Callback
    this.args[slot] = arg
    const i = this.heap.length
    this.heap.push(slot)
    this.pos[slot] = i
    this.siftUp(i)

    if (at < this.armedAt) {
      this.arm()
    }
    return generation * MAX_PENDING_DEADLINES + slot
  }

  /** Cancels a pending deadline. Returns false if it already fired or was cancelled. */
  cancel (handle: number): boolean {
    const slot = handle % MAX_PENDING_DEADLINES
    if (handle <= 0 || slot >= this.gen.length || this.pos[slot] < 0 ||
      this.gen[slot] !== Math.floor(handle / MAX_PENDING_DEADLINES)) {
      return false
    }
    this.remove(slot)
    if (this.heap.length === 0) {
      this.disarm()
    }
    return true
  }

  /** Drops every pending deadline and clears the timer */
  stop (): void {
    this.disarm()
    for (const slot of this.heap) {
      this.release(slot)
    }
    this.heap.length = 0
  }

  /** Set while a late timer is giving pending I/O one turn before its deadlines fire */
  private graceTaken = false

  private fire (): void {
    this.timer = undefined
    this.armedAt = Infinity
    const now = this.clock.now()
    if (!this.graceTaken && this.heap.length > 0 && now - this.at[this.heap[0]] > LATE_TIMER_GRACE) {
      // Our own event loop was busy past the deadline, so the answer may already be waiting in a
      // socket buffer: let one turn of I/O run before judging any peer (a re-armed 0 ms timer fires
      // after the poll phase). Otherwise a CPU spike here would look like every peer stalling.
      this.graceTaken = true
      this.arm()
      return
    }
    this.graceTaken = false
    // entries scheduled by a callback for a time already past fire in this same pass
    while (this.heap.length > 0) {
      const slot = this.heap[0]
      if (this.at[slot] > now) {
        break
      }
      const fn = this.fns[slot]
      const arg = this.args[slot]
      this.remove(slot)
      try {
        fn?.(arg)
      } catch {
        // the callback's failure is its own; the other deadlines must still fire
      }
    }
    if (this.heap.length > 0 && this.timer === undefined) {
      this.arm()
    }
  }

  private arm (): void {
    this.disarm()
    const at = this.at[this.heap[0]]
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

  private remove (slot: number): void {
    const i = this.pos[slot]
    const last = this.heap.pop() as number
    if (last !== slot) {
      this.heap[i] = last
      this.pos[last] = i
      if (i > 0 && this.less(last, this.heap[(i - 1) >> 1])) {
        this.siftUp(i)
      } else {
        this.siftDown(i)
      }
    }
    this.release(slot)
  }

  private release (slot: number): void {
    this.pos[slot] = -1
    this.fns[slot] = undefined
    this.args[slot] = undefined
    this.free.push(slot)
  }

  private less (a: number, b: number): boolean {
    return this.at[a] < this.at[b] || (this.at[a] === this.at[b] && this.seq[a] < this.seq[b])
  }

  private siftUp (i: number): void {
    const heap = this.heap
    const slot = heap[i]
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.less(slot, heap[parent])) {
        break
      }
      heap[i] = heap[parent]
      this.pos[heap[i]] = i
      i = parent
    }
    heap[i] = slot
    this.pos[slot] = i
  }

  private siftDown (i: number): void {
    const heap = this.heap
    const n = heap.length
    const slot = heap[i]
    for (;;) {
      let child = 2 * i + 1
      if (child >= n) {
        break
      }
      if (child + 1 < n && this.less(heap[child + 1], heap[child])) {
        child++
      }
      if (!this.less(heap[child], slot)) {
        break
      }
      heap[i] = heap[child]
      this.pos[heap[i]] = i
      i = child
    }
    heap[i] = slot
    this.pos[slot] = i
  }
}
