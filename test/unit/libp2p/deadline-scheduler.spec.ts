/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import fc from 'fast-check'
import sinon from 'sinon'
import { DeadlineScheduler } from '../../../src/libp2p/deadline-scheduler.ts'

describe('DeadlineScheduler', () => {
  let clock: sinon.SinonFakeTimers

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000 })
  })

  afterEach(() => {
    clock.restore()
    sinon.restore()
  })

  it('fires deadlines in time order, equal times in scheduling order, on one timer', () => {
    const s = new DeadlineScheduler()
    const fired: string[] = []
    const t0 = Date.now()
    s.schedule(t0 + 300, () => fired.push('c'))
    s.schedule(t0 + 100, () => fired.push('a1'))
    s.schedule(t0 + 200, () => fired.push('b'))
    s.schedule(t0 + 100, () => fired.push('a2'))
    assert.equal(s.size, 4)
    assert.equal(clock.countTimers(), 1)

    clock.tick(99)
    assert.deepEqual(fired, [])
    clock.tick(1)
    assert.deepEqual(fired, ['a1', 'a2'])
    clock.tick(200)
    assert.deepEqual(fired, ['a1', 'a2', 'b', 'c'])
    assert.equal(s.size, 0)
    assert.equal(clock.countTimers(), 0)
  })

  it('passes the argument to the callback', () => {
    const s = new DeadlineScheduler()
    const seen: number[] = []
    const record = (n: number): void => { seen.push(n) }
    s.schedule(Date.now() + 10, record, 7)
    s.schedule(Date.now() + 5, record, 3)
    clock.tick(10)
    assert.deepEqual(seen, [3, 7])
  })

  it('re-arms for an earlier deadline scheduled later', () => {
    const s = new DeadlineScheduler()
    const fired: number[] = []
    const t0 = Date.now()
    s.schedule(t0 + 1000, () => fired.push(1000))
    s.schedule(t0 + 50, () => fired.push(50))
    assert.equal(clock.countTimers(), 1)
    clock.tick(50)
    assert.deepEqual(fired, [50])
    clock.tick(949)
    assert.deepEqual(fired, [50])
    clock.tick(1)
    assert.deepEqual(fired, [50, 1000])
  })

  it('cancel prevents firing; cancelling the earliest re-arms for the next', () => {
    const s = new DeadlineScheduler()
    const fired: number[] = []
    const t0 = Date.now()
    const h50 = s.schedule(t0 + 50, () => fired.push(50))
    const h80 = s.schedule(t0 + 80, () => fired.push(80))
    s.schedule(t0 + 120, () => fired.push(120))
    assert.equal(s.cancel(h50), true)
    assert.equal(s.cancel(h80), true)
    assert.equal(s.size, 1)
    clock.tick(119)
    assert.deepEqual(fired, [])
    clock.tick(1)
    assert.deepEqual(fired, [120])
    assert.equal(clock.countTimers(), 0)
  })

  it('cancel of a fired, cancelled or unknown handle is a no-op that returns false', () => {
    const s = new DeadlineScheduler()
    const fired: string[] = []
    const h = s.schedule(Date.now() + 10, () => fired.push('old'))
    clock.tick(10)
    assert.equal(s.cancel(h), false)
    // the slot is reused by the next deadline: the stale handle must not cancel it
    const h2 = s.schedule(Date.now() + 10, () => fired.push('new'))
    assert.notEqual(h2, h)
    assert.equal(s.cancel(h), false)
    assert.equal(s.cancel(0), false)
    assert.equal(s.cancel(-5), false)
    assert.equal(s.cancel(123456789), false)
    clock.tick(10)
    assert.deepEqual(fired, ['old', 'new'])
    assert.equal(s.cancel(h2), false)
  })

  it('clears the timer when the last deadline is cancelled', () => {
    const s = new DeadlineScheduler()
    const a = s.schedule(Date.now() + 100, () => {})
    const b = s.schedule(Date.now() + 200, () => {})
    s.cancel(b)
    assert.equal(clock.countTimers(), 1)
    s.cancel(a)
    assert.equal(clock.countTimers(), 0)
    assert.equal(s.size, 0)
  })

  it('stop drops every deadline and leaves no timer; the scheduler stays usable', () => {
    const s = new DeadlineScheduler()
    const fired: number[] = []
    for (let i = 1; i <= 10; i++) {
      s.schedule(Date.now() + i * 10, () => fired.push(i))
    }
    s.stop()
    assert.equal(s.size, 0)
    assert.equal(clock.countTimers(), 0)
    clock.tick(1000)
    assert.equal(fired.length, 0)

    s.schedule(Date.now() + 5, () => fired.push(99))
    clock.tick(5)
    assert.deepEqual(fired, [99])
  })

  it('a throwing callback does not stop the others', () => {
    const s = new DeadlineScheduler()
    const fired: number[] = []
    s.schedule(Date.now() + 10, () => { throw new Error('boom') })
    s.schedule(Date.now() + 10, () => fired.push(2))
    s.schedule(Date.now() + 20, () => fired.push(3))
    clock.tick(20)
    assert.deepEqual(fired, [2, 3])
  })

  it('a deadline already past fires on the next timer turn; callbacks may schedule more', () => {
    const s = new DeadlineScheduler()
    const fired: string[] = []
    s.schedule(Date.now() - 50, () => {
      fired.push('past')
      s.schedule(Date.now() - 1, () => fired.push('chained'))
      s.schedule(Date.now() + 30, () => fired.push('later'))
    })
    assert.deepEqual(fired, [])
    clock.tick(0)
    assert.deepEqual(fired, ['past', 'chained'])
    clock.tick(30)
    assert.deepEqual(fired, ['past', 'chained', 'later'])
    assert.equal(clock.countTimers(), 0)
  })

  it('uses the injected clock as its time base', () => {
    let now = 5_000
    const s = new DeadlineScheduler({ clock: { now: () => now } })
    const fired: number[] = []
    s.schedule(5_100, () => fired.push(1))
    // the timer was armed for 100 ms from the injected clock's "now"
    clock.tick(99)
    assert.deepEqual(fired, [])
    now = 5_100
    clock.tick(1)
    assert.deepEqual(fired, [1])
  })

  it('re-checks when the timer fires before the clock reaches the deadline', () => {
    let now = 0
    const s = new DeadlineScheduler({ clock: { now: () => now } })
    const fired: number[] = []
    s.schedule(100, () => fired.push(1))
    now = 99 // the runtime's timer fired a millisecond "early" by this clock
    clock.tick(100)
    assert.deepEqual(fired, [])
    assert.equal(clock.countTimers(), 1)
    now = 100
    clock.tick(1)
    assert.deepEqual(fired, [1])
  })

  it('unrefs its timer when the runtime supports it', () => {
    clock.restore()
    const unref = sinon.spy()
    const fakeTimer = { unref }
    const set = sinon.stub(globalThis, 'setTimeout').returns(fakeTimer as unknown as ReturnType<typeof setTimeout>)
    const clear = sinon.stub(globalThis, 'clearTimeout')
    const s = new DeadlineScheduler()
    s.schedule(Date.now() + 1000, () => {})
    assert.equal(set.callCount, 1)
    assert.equal(unref.callCount, 1)
    s.stop()
    assert.equal(clear.callCount, 1)
    assert.equal(clear.firstCall.args[0], fakeTimer)
    set.restore()
    clear.restore()
    clock = sinon.useFakeTimers()
  })

  it('fires exactly the uncancelled deadlines, in (time, scheduling) order (property)', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ delay: fc.integer({ min: 0, max: 500 }), cancel: fc.boolean() }), { maxLength: 200 }),
      (ops) => {
        const s = new DeadlineScheduler()
        const t0 = Date.now()
        const fired: number[] = []
        const handles = ops.map((op, i) => s.schedule(t0 + op.delay, () => fired.push(i)))
        ops.forEach((op, i) => { if (op.cancel) s.cancel(handles[i]) })
        clock.tick(501)
        const expected = ops.map((op, i) => ({ ...op, i }))
          .filter(op => !op.cancel)
          .sort((a, b) => a.delay - b.delay || a.i - b.i)
          .map(op => op.i)
        assert.deepEqual(fired, expected)
        assert.equal(s.size, 0)
        assert.equal(clock.countTimers(), 0)
      }
    ), { numRuns: 100 })
  })

  it('a timer that fires late (our event loop was blocked) pushes every pending deadline back by the stall', () => {
    let t = 0
    const s = new DeadlineScheduler({ clock: { now: () => t } })
    const fired: Array<[string, number]> = []
    s.schedule(100, () => { fired.push(['a', t]) })
    s.schedule(150, () => { fired.push(['b', t]) })

    t = 400 // the process was blocked from t = 0: the timer is 300 ms late when it finally runs
    clock.tick(100)
    assert.equal(fired.length, 0, 'not judged on evidence gathered while we were blocked')
    assert.deepEqual(s.lag, { stalls: 1, stalledMs: 400, maxStallMs: 400, lastLagMs: 300 })
    assert.equal(s.now(), 0)
    // each deadline keeps the time it had left: 100 and 150 ms of our event loop running
    t = 500
    clock.tick(100)
    assert.deepEqual(fired, [['a', 500]])
    t = 550
    clock.tick(50)
    assert.deepEqual(fired, [['a', 500], ['b', 550]])
    assert.equal(clock.countTimers(), 0)

    // a deadline scheduled after the stall is not moved by it
    s.schedule(600, () => { fired.push(['c', t]) })
    t = 600
    clock.tick(50)
    assert.deepEqual(fired.at(-1), ['c', 600])
    assert.equal(s.lag.stalls, 1)
  })

  it('wakes at least every LAG_TICK ms while deadlines are pending, so a stall is measured from a recent wake', () => {
    let t = 0
    const s = new DeadlineScheduler({ clock: { now: () => t } })
    const fired: number[] = []
    s.schedule(1000, () => { fired.push(t) })
    for (let i = 1; i <= 3; i++) {
      t = i * 200
      clock.tick(200)
    }
    assert.deepEqual(fired, [])
    // blocked from 600 to 1400: the deadline at 1000 is moved back by the 800 ms stall
    t = 1400
    clock.tick(200)
    assert.deepEqual(fired, [])
    assert.equal(s.lag.maxStallMs, 800)
    t = 1600
    clock.tick(200)
    assert.deepEqual(fired, [])
    t = 1800
    clock.tick(200)
    assert.deepEqual(fired, [1800])
    assert.equal(s.lag.stalls, 1)
  })
})
