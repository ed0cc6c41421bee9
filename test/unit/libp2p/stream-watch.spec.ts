/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { StreamAbortEvent, StreamCloseEvent, StreamResetEvent } from '@libp2p/interface'
import sinon from 'sinon'
import { DeadlineScheduler } from '../../../src/libp2p/deadline-scheduler.ts'
import { classifyClose, watchStream } from '../../../src/libp2p/stream-watch.ts'
import { Outcome } from '../../../src/states.ts'
import { FakeClock } from '../helpers.ts'
import type { StreamOutcomeSink } from '../../../src/libp2p/stream-watch.ts'
import type { Stream } from '@libp2p/interface'

interface Settlement {
  token: number
  outcome: Outcome
  latencyMs: number
  err?: Error
}

class RecordingSink implements StreamOutcomeSink<number> {
  settled: Settlement[] = []

  settleStream (token: number, outcome: Outcome, latencyMs: number, err?: Error): void {
    this.settled.push({ token, outcome, latencyMs, err })
  }
}

/** The part of a libp2p Stream the watch reads: its status and its `close` event */
class FakeStream extends EventTarget {
  constructor (public status: string = 'open') {
    super()
  }
}

function asStream (stream: FakeStream): Stream {
  return stream as unknown as Stream
}

function namedError (name: string): Error {
  const err = new Error(name)
  err.name = name
  return err
}

describe('stream-watch', () => {
  describe('classifyClose', () => {
    it('a clean close is the given clean-close outcome, SUCCESS by default', () => {
      assert.equal(classifyClose(undefined, undefined), Outcome.SUCCESS)
      assert.equal(classifyClose(undefined, false), Outcome.SUCCESS)
      assert.equal(classifyClose(undefined, true), Outcome.SUCCESS)
      // with message observation on, a clean close is no evidence either way
      assert.equal(classifyClose(undefined, undefined, Outcome.NEUTRAL), Outcome.NEUTRAL)
      assert.equal(classifyClose(undefined, true, Outcome.NEUTRAL), Outcome.NEUTRAL)
      assert.equal(classifyClose(undefined, false, Outcome.NEUTRAL), Outcome.NEUTRAL)
    })

    it('an error the remote caused (local false or unknown) is a FAILURE, whatever a clean close counts as', () => {
      for (const cleanClose of [Outcome.SUCCESS, Outcome.NEUTRAL]) {
        assert.equal(classifyClose(namedError('StreamResetError'), false, cleanClose), Outcome.FAILURE)
        assert.equal(classifyClose(namedError('StreamResetError'), undefined, cleanClose), Outcome.FAILURE)
        // even a timeout: only our own idle timeout is special-cased below, a remote one is a failure anyway
        assert.equal(classifyClose(namedError('TimeoutError'), false, cleanClose), Outcome.FAILURE)
        assert.equal(classifyClose(namedError('AbortError'), undefined, cleanClose), Outcome.FAILURE)
      }
    })

    it('our own abort is NEUTRAL, except a TimeoutError (the remote went quiet), which is a FAILURE', () => {
      for (const cleanClose of [Outcome.SUCCESS, Outcome.NEUTRAL]) {
        assert.equal(classifyClose(namedError('AbortError'), true, cleanClose), Outcome.NEUTRAL)
        assert.equal(classifyClose(namedError('CircuitOpenError'), true, cleanClose), Outcome.NEUTRAL)
        assert.equal(classifyClose(new Error('plain'), true, cleanClose), Outcome.NEUTRAL)
        assert.equal(classifyClose(namedError('TimeoutError'), true, cleanClose), Outcome.FAILURE)
      }
    })

    it('reads the real libp2p close events the same way', () => {
      const reset = new StreamResetEvent(new Error('reset'))
      assert.equal(classifyClose(reset.error, reset.local), Outcome.FAILURE)
      const abort = new StreamAbortEvent(namedError('AbortError'))
      assert.equal(classifyClose(abort.error, abort.local), Outcome.NEUTRAL)
      const idle = new StreamAbortEvent(namedError('TimeoutError'))
      assert.equal(classifyClose(idle.error, idle.local), Outcome.FAILURE)
      const clean = new StreamCloseEvent()
      assert.equal(classifyClose(clean.error, clean.local), Outcome.SUCCESS)
    })
  })

  describe('watchStream', () => {
    let clock: FakeClock
    let sink: RecordingSink

    beforeEach(() => {
      clock = new FakeClock()
      sink = new RecordingSink()
    })

    afterEach(() => {
      sinon.restore()
    })

    for (const status of ['reset', 'aborted']) {
      it(`a stream already '${status}' settles FAILURE at once, with no listener added`, () => {
        const stream = new FakeStream(status)
        const add = sinon.spy(stream, 'addEventListener')
        const startedAt = clock.time - 30
        const watch = watchStream(asStream(stream), 7, startedAt, clock, sink, Outcome.SUCCESS)
        assert.deepEqual(sink.settled, [{ token: 7, outcome: Outcome.FAILURE, latencyMs: 30, err: undefined }])
        assert.equal(watch.done, true)
        assert.equal(add.callCount, 0)
      })
    }

    for (const [name, cleanClose] of [['SUCCESS', Outcome.SUCCESS], ['NEUTRAL', Outcome.NEUTRAL]] as const) {
      it(`a stream already 'closed' settles the clean-close outcome (${name}) at once, with no listener added`, () => {
        const stream = new FakeStream('closed')
        const add = sinon.spy(stream, 'addEventListener')
        watchStream(asStream(stream), 3, clock.time, clock, sink, cleanClose)
        assert.deepEqual(sink.settled, [{ token: 3, outcome: cleanClose, latencyMs: 0, err: undefined }])
        assert.equal(add.callCount, 0)
      })
    }

    it('an open stream settles on its close event, with the latency from startedAt', () => {
      const stream = new FakeStream('open')
      const startedAt = clock.time - 5
      const watch = watchStream(asStream(stream), 11, startedAt, clock, sink, Outcome.SUCCESS)
      assert.equal(getEventListeners(stream, 'close').length, 1)
      assert.deepEqual(sink.settled, [])
      assert.equal(watch.done, false)
      clock.tick(120)
      stream.dispatchEvent(new StreamCloseEvent())
      assert.deepEqual(sink.settled, [{ token: 11, outcome: Outcome.SUCCESS, latencyMs: 125, err: undefined }])
      assert.equal(watch.done, true)
      assert.equal(getEventListeners(stream, 'close').length, 0, 'the listener does not outlive the stream')
    })

    it('a remote reset settles FAILURE with the stream\'s error; our own abort settles NEUTRAL', () => {
      const reset = new FakeStream('open')
      const resetErr = namedError('StreamResetError')
      watchStream(asStream(reset), 1, clock.time, clock, sink, Outcome.SUCCESS)
      reset.dispatchEvent(new StreamResetEvent(resetErr))

      const aborted = new FakeStream('open')
      const abortErr = namedError('AbortError')
      watchStream(asStream(aborted), 2, clock.time, clock, sink, Outcome.SUCCESS)
      aborted.dispatchEvent(new StreamAbortEvent(abortErr))

      assert.equal(sink.settled.length, 2)
      assert.equal(sink.settled[0].outcome, Outcome.FAILURE)
      assert.equal(sink.settled[0].err, resetErr)
      assert.equal(sink.settled[1].outcome, Outcome.NEUTRAL)
      assert.equal(sink.settled[1].err, abortErr)
    })

    it('settles exactly once: a second close event (or handleEvent call) is ignored', () => {
      const stream = new FakeStream('open')
      const watch = watchStream(asStream(stream), 4, clock.time, clock, sink, Outcome.SUCCESS)
      stream.dispatchEvent(new StreamCloseEvent())
      clock.tick(10)
      stream.dispatchEvent(new StreamResetEvent(new Error('late')))
      // past the `once` listener: the watch itself must refuse a second settlement
      watch.handleEvent(new StreamResetEvent(new Error('later')))
      watch.settle(Outcome.FAILURE)
      assert.deepEqual(sink.settled, [{ token: 4, outcome: Outcome.SUCCESS, latencyMs: 0, err: undefined }])
    })

    describe('with a response deadline', () => {
      let timers: sinon.SinonFakeTimers
      let scheduler: DeadlineScheduler

      beforeEach(() => {
        timers = sinon.useFakeTimers({ now: 1_000_000 })
        scheduler = new DeadlineScheduler()
      })

      afterEach(() => {
        scheduler.stop()
        timers.restore()
      })

      it('a stream still open at the deadline settles FAILURE with a ResponseDeadlineError', () => {
        const stream = new FakeStream('open')
        const startedAt = Date.now()
        const watch = watchStream(asStream(stream), 9, startedAt, scheduler.clock, sink, Outcome.SUCCESS, scheduler, startedAt + 500)
        assert.equal(scheduler.size, 1)
        timers.tick(499)
        assert.equal(sink.settled.length, 0)
        timers.tick(1)
        assert.equal(sink.settled.length, 1)
        const { token, outcome, latencyMs, err } = sink.settled[0]
        assert.equal(token, 9)
        assert.equal(outcome, Outcome.FAILURE)
        assert.equal(latencyMs, 500)
        assert.equal(err?.name, 'ResponseDeadlineError')
        assert.equal(watch.done, true)
        assert.equal(scheduler.size, 0)
        // the stream ending afterwards changes nothing
        stream.dispatchEvent(new StreamCloseEvent())
        assert.equal(sink.settled.length, 1)
      })

      it('a stream that closes first cancels its deadline', () => {
        const stream = new FakeStream('open')
        const startedAt = Date.now()
        watchStream(asStream(stream), 5, startedAt, scheduler.clock, sink, Outcome.SUCCESS, scheduler, startedAt + 500)
        // another deadline on the same scheduler must survive our cancel
        const other = sinon.spy()
        scheduler.schedule(startedAt + 1000, other)
        assert.equal(scheduler.size, 2)
        timers.tick(200)
        stream.dispatchEvent(new StreamCloseEvent())
        assert.equal(scheduler.size, 1)
        timers.tick(1000)
        assert.deepEqual(sink.settled, [{ token: 5, outcome: Outcome.SUCCESS, latencyMs: 200, err: undefined }])
        assert.equal(other.callCount, 1)
        assert.equal(scheduler.size, 0)
      })

      it('a stream already over schedules no deadline', () => {
        watchStream(asStream(new FakeStream('reset')), 1, Date.now(), scheduler.clock, sink, Outcome.SUCCESS, scheduler, Date.now() + 500)
        watchStream(asStream(new FakeStream('closed')), 2, Date.now(), scheduler.clock, sink, Outcome.SUCCESS, scheduler, Date.now() + 500)
        assert.equal(scheduler.size, 0)
        assert.equal(timers.countTimers(), 0)
      })

      it('without deadlineAt no deadline is scheduled', () => {
        watchStream(asStream(new FakeStream('open')), 1, Date.now(), scheduler.clock, sink, Outcome.SUCCESS, scheduler)
        assert.equal(scheduler.size, 0)
      })
    })
  })
})
