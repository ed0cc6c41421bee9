import assert from 'node:assert/strict'
import { deliverVerdict, VerdictQueue } from '../../../src/bitswap/verdicts.ts'
import type { AnswerKind, WantOutcomeSink, WantVerdict } from '../../../src/bitswap/verdicts.ts'

/** A sink that writes down each call as one line */
function recorder (calls: string[]): WantOutcomeSink {
  return {
    answered: (peer: string, kind: AnswerKind, latency: number) => { calls.push(`answered ${peer} ${kind} ${latency}`) },
    missed: (peer: string, age: number, deadline: number) => { calls.push(`missed ${peer} ${age} ${deadline}`) },
    unrequested: (peer: string, what: string) => { calls.push(`unrequested ${peer} ${what}`) },
    late: (peer: string, kind: AnswerKind, latency: number) => { calls.push(`late ${peer} ${kind} ${latency}`) }
  }
}

const ONE_OF_EACH: WantVerdict[] = [
  { type: 'answered', peerKey: 'A', kind: 'block', latencyMs: 10 },
  { type: 'missed', peerKey: 'B', ageMs: 600, deadlineMs: 500 },
  { type: 'unrequested', peerKey: 'C', what: 'presence' },
  { type: 'late', peerKey: 'B', kind: 'dont-have', latencyMs: 700 }
]

describe('bitswap/verdicts', () => {
  it('each verdict reaches the sink method it names, with its fields', () => {
    const calls: string[] = []
    const sink = recorder(calls)
    ONE_OF_EACH.forEach(verdict => { deliverVerdict(sink, verdict) })
    assert.deepEqual(calls, ['answered A block 10', 'missed B 600 500', 'unrequested C presence', 'late B dont-have 700'])
  })

  it('late is optional: a sink without it hears nothing for a late answer', () => {
    const calls: string[] = []
    const { late: _late, ...sink } = recorder(calls)
    deliverVerdict(sink, ONE_OF_EACH[3])
    assert.deepEqual(calls, [])
  })

  it('nothing is delivered before flush; flush delivers in order, once', () => {
    const calls: string[] = []
    const queue = new VerdictQueue(recorder(calls))
    ONE_OF_EACH.forEach(verdict => { queue.push(verdict) })
    assert.deepEqual(calls, [])
    queue.flush()
    assert.equal(calls.length, 4)
    queue.flush()
    assert.equal(calls.length, 4, 'a second flush delivers nothing again')
  })

  it('verdicts queued by the sink during a flush are delivered by that same flush, after the others', () => {
    const calls: string[] = []
    const inner = recorder(calls)
    const queue: VerdictQueue = new VerdictQueue({
      ...inner,
      missed: (peer, age, deadline) => {
        inner.missed(peer, age, deadline)
        // a sink calling back in (removePeer, a new want) queues and flushes re-entrantly
        queue.push({ type: 'unrequested', peerKey: peer, what: 'block' })
        queue.flush()
        assert.equal(calls.at(-1), `missed ${peer} ${age} ${deadline}`, 'the re-entrant flush waits for the outer one')
      }
    })
    queue.push(ONE_OF_EACH[1])
    queue.push(ONE_OF_EACH[0])
    queue.flush()
    assert.deepEqual(calls, ['missed B 600 500', 'answered A block 10', 'unrequested B block'])
  })

  it('a throwing sink loses no other verdict, and the queue is empty after', () => {
    const calls: string[] = []
    const inner = recorder(calls)
    const queue = new VerdictQueue({ ...inner, answered: () => { throw new Error('boom') } })
    ONE_OF_EACH.forEach(verdict => { queue.push(verdict) })
    queue.flush()
    assert.deepEqual(calls, ['missed B 600 500', 'unrequested C presence', 'late B dont-have 700'])
    queue.flush()
    assert.equal(calls.length, 3)
  })
})
