/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify as identifyService } from '@libp2p/identify'
import { StreamResetError, TypedEventEmitter, UnsupportedProtocolError } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { memory } from '@libp2p/memory'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createLibp2p } from 'libp2p'
import sinon from 'sinon'
import { CircuitOpenError, ClosedError, OpenStreamDeadlineError, TooManyRequestsError } from '../../../src/errors.ts'
import { DeadlineScheduler } from '../../../src/libp2p/deadline-scheduler.ts'
import { OpenStreamGuard } from '../../../src/libp2p/open-stream-guard.ts'
import { Outcome } from '../../../src/states.ts'
import { REJECTED_HALF_OPEN_FULL, REJECTED_OPEN } from '../../../src/breaker/permit.ts'
import type { Rejection } from '../../../src/breaker/permit.ts'
import type { OpenStreamGate, OpenStreamGuardInit } from '../../../src/libp2p/open-stream-init.ts'
import type { Connection, DialTarget, Libp2p, Libp2pEvents, PeerId, Stream, TypedEventTarget, ComponentLogger } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

const BITSWAP = '/ipfs/bitswap/1.2.0'

/** The part of a Multiaddr the guard reads (@multiformats/multiaddr is not a dependency of ours) */
function multiaddr (addr: string): DialTarget {
  const p2p = /\/p2p\/([^/]+)/.exec(addr)?.[1]
  return {
    getComponents: () => p2p == null ? [{ code: 777, name: 'memory', value: 'x' }] : [{ code: 777, name: 'memory', value: 'x' }, { code: 421, name: 'p2p', value: p2p }],
    toString: () => addr
  } as unknown as DialTarget
}

async function newPeer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

interface InnerCall {
  target: DialTarget
  protocols: string | string[]
  options: { signal?: AbortSignal } | undefined
  resolve(stream: Stream): void
  reject(err: Error): void
}

/** A stand-in for libp2p's connection manager: `openStream` is a prototype method, like libp2p's */
class FakeConnectionManager {
  connections = new Map<string, Connection[]>()
  calls: InnerCall[] = []
  /** true: the inner open rejects with the signal's reason when aborted (as mss.select does) */
  honoursSignal = true

  openStream (target: DialTarget, protocols: string | string[], options?: { signal?: AbortSignal }): Promise<Stream> {
    return new Promise<Stream>((resolve, reject) => {
      this.calls.push({ target, protocols, options, resolve, reject })
      const signal = options?.signal
      if (this.honoursSignal && signal != null) {
        signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
      }
    })
  }

  getConnections (peer?: PeerId): Connection[] {
    if (peer == null) {
      return [...this.connections.values()].flat()
    }
    return this.connections.get(peer.toString()) ?? []
  }

  connect (peer: PeerId, init: { open?: number, rtt?: number } = {}): Connection {
    const conn = { remotePeer: peer, timeline: { open: init.open ?? Date.now() }, rtt: init.rtt } as unknown as Connection
    this.connections.set(peer.toString(), [...(this.connections.get(peer.toString()) ?? []), conn])
    return conn
  }
}

/** Tokens are plain numbers here: the guard only hands them back */
const UNTRACKED = 0

class FakeGate implements OpenStreamGate<number> {
  admitResult: number | Rejection | undefined
  nextToken = 1
  admits: PeerId[] = []
  openedCalls: Array<{ token: number, peer: PeerId, stream: Stream, openMs: number }> = []
  failedCalls: Array<{ token: number, peer: PeerId, outcome: Outcome, openMs: number, err: Error }> = []

  admit (peer: PeerId): number | Rejection {
    this.admits.push(peer)
    return this.admitResult ?? this.nextToken++
  }

  rejection (rejection: Rejection): Error {
    return rejection.error
  }

  opened (token: number, peer: PeerId, stream: Stream, openMs: number): void {
    this.openedCalls.push({ token, peer, stream, openMs })
  }

  failed (token: number, peer: PeerId, outcome: Outcome, openMs: number, err: Error): void {
    this.failedCalls.push({ token, peer, outcome, openMs, err })
  }
}

function fakeStream (): Stream & { abort: sinon.SinonSpy } {
  return { abort: sinon.spy() } as unknown as Stream & { abort: sinon.SinonSpy }
}

describe('OpenStreamGuard', () => {
  let clock: sinon.SinonFakeTimers
  let cm: FakeConnectionManager
  let events: TypedEventEmitter<Libp2pEvents>
  let gate: FakeGate
  let guard: OpenStreamGuard<number>
  let peer: PeerId
  let other: PeerId

  before(async () => {
    [peer, other] = await Promise.all([newPeer(), newPeer()])
  })

  /** The first-open hold is off unless a spec asks for it: the others are about deadlines */
  function makeGuard (init: OpenStreamGuardInit = {}): OpenStreamGuard<number> {
    guard = new OpenStreamGuard({
      connectionManager: cm as unknown as ConnectionManager,
      events,
      logger: defaultLogger()
    }, gate, { firstOpenHold: 60_000, ...init })
    guard.start()
    return guard
  }

  /** What Bitswap does: `libp2p.dialProtocol` → `components.connectionManager.openStream` */
  function open (target: DialTarget, options?: { signal?: AbortSignal }, protocols: string | string[] = [BITSWAP]): Promise<Stream> {
    return (cm as unknown as ConnectionManager).openStream(target, protocols, options)
  }

  function identify (p: PeerId, connection: Connection): void {
    events.safeDispatchEvent('peer:identify', {
      detail: { peerId: p, connection, listenAddrs: [], protocols: [] }
    })
  }

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000 })
    cm = new FakeConnectionManager()
    events = new TypedEventEmitter<Libp2pEvents>()
    gate = new FakeGate()
  })

  afterEach(() => {
    guard?.stop()
    clock.restore()
  })

  describe('deadline', () => {
    it('a miss rejects with OpenStreamDeadlineError, aborts the inner signal with it, reports FAILURE', async () => {
      cm.connect(peer)
      makeGuard()
      assert.equal(guard.deadlineFor(peer), 1000)
      const result = open(peer).catch((err: Error) => err)
      assert.equal(guard.inFlight(peer), 1)
      assert.equal(cm.calls.length, 1)
      const innerSignal = cm.calls[0].options?.signal as AbortSignal

      await clock.tickAsync(999)
      assert.equal(innerSignal.aborted, false)
      await clock.tickAsync(1)

      const err = await result
      assert.ok(err instanceof OpenStreamDeadlineError)
      assert.equal(innerSignal.aborted, true)
      assert.equal(innerSignal.reason, err)
      assert.equal(gate.failedCalls.length, 1)
      assert.equal(gate.failedCalls[0].outcome, Outcome.FAILURE)
      assert.equal(gate.failedCalls[0].err, err)
      assert.equal(gate.failedCalls[0].openMs, 1000)
      assert.equal(gate.failedCalls[0].token, 1)
      assert.equal(gate.openedCalls.length, 0)
      assert.equal(guard.inFlight(peer), 0)
      assert.equal(clock.countTimers(), 0)
    })

    it('releases the caller when the inner open ignores the signal, and aborts a late stream', async () => {
      cm.connect(peer)
      cm.honoursSignal = false
      makeGuard()
      const result = open(peer).catch((err: Error) => err)
      await clock.tickAsync(1000)
      const err = await result
      assert.ok(err instanceof OpenStreamDeadlineError)

      const late = fakeStream()
      cm.calls[0].resolve(late)
      await clock.tickAsync(0)
      assert.equal(late.abort.callCount, 1)
      assert.equal(late.abort.firstCall.args[0], err)
      // reported once, as the miss; the late stream is not a success
      assert.equal(gate.failedCalls.length, 1)
      assert.equal(gate.openedCalls.length, 0)
    })

    it('success reports opened() with the open time and cancels the deadline', async () => {
      cm.connect(peer)
      makeGuard()
      const result = open(peer)
      await clock.tickAsync(30)
      const stream = fakeStream()
      cm.calls[0].resolve(stream)
      assert.equal(await result, stream)
      assert.deepEqual(gate.openedCalls, [{ token: 1, peer, stream, openMs: 30 }])
      assert.equal(gate.failedCalls.length, 0)
      assert.equal(stream.abort.callCount, 0)
      assert.equal(guard.inFlight(peer), 0)
      assert.equal(clock.countTimers(), 0)
    })

    it('the inner call gets its own signal and the caller options otherwise unchanged', async () => {
      cm.connect(peer)
      makeGuard()
      const caller = new AbortController()
      const options = { signal: caller.signal, priority: 75 }
      const result = open(peer, options)
      const passed = cm.calls[0].options as { signal: AbortSignal, priority: number }
      assert.notEqual(passed, options)
      assert.notEqual(passed.signal, caller.signal)
      assert.equal(passed.priority, 75)
      assert.equal(options.signal, caller.signal)
      cm.calls[0].resolve(fakeStream())
      await result
    })

    it('an untracked admission (token 0) is still timed and reported with token 0', async () => {
      cm.connect(peer)
      gate.admitResult = UNTRACKED
      makeGuard()
      const result = open(peer).catch((err: Error) => err)
      await clock.tickAsync(1000)
      assert.ok(await result instanceof OpenStreamDeadlineError)
      assert.equal(gate.failedCalls[0].token, UNTRACKED)
    })
  })

  describe('outcomes', () => {
    it("the caller's abort rejects with its reason, reports NEUTRAL, and removes our listener", async () => {
      cm.connect(peer)
      makeGuard()
      const caller = new AbortController()
      const result = open(peer, { signal: caller.signal }).catch((err: Error) => err)
      assert.equal(getEventListeners(caller.signal, 'abort').length, 1)
      await clock.tickAsync(100)
      const reason = new Error('the session ended')
      caller.abort(reason)
      assert.equal(await result, reason)
      assert.equal(cm.calls[0].options?.signal?.aborted, true)
      assert.equal(gate.failedCalls.length, 1)
      assert.equal(gate.failedCalls[0].outcome, Outcome.NEUTRAL)
      assert.equal(gate.failedCalls[0].openMs, 100)
      assert.equal(getEventListeners(caller.signal, 'abort').length, 0)
      assert.equal(clock.countTimers(), 0)
    })

    it('a long-lived caller signal keeps no listener after the open succeeds', async () => {
      cm.connect(peer)
      makeGuard()
      const session = new AbortController()
      for (let i = 0; i < 5; i++) {
        const result = open(peer, { signal: session.signal })
        cm.calls[i].resolve(fakeStream())
        await result
      }
      assert.equal(getEventListeners(session.signal, 'abort').length, 0)
    })

    it('an already aborted caller signal rejects without admission or an inner call', async () => {
      cm.connect(peer)
      makeGuard()
      const caller = new AbortController()
      const reason = new Error('gone')
      caller.abort(reason)
      await assert.rejects(open(peer, { signal: caller.signal }), (err) => err === reason)
      assert.equal(gate.admits.length, 0)
      assert.equal(cm.calls.length, 0)
    })

    it('a rejected admission throws the gate error at once, without calling the original', async () => {
      cm.connect(peer)
      makeGuard()
      gate.admitResult = REJECTED_OPEN
      await assert.rejects(open(peer), CircuitOpenError)
      gate.admitResult = REJECTED_HALF_OPEN_FULL
      await assert.rejects(open(peer), TooManyRequestsError)
      assert.equal(cm.calls.length, 0)
      assert.equal(gate.failedCalls.length, 0)
      assert.equal(guard.inFlight(peer), 0)
      assert.equal(clock.countTimers(), 0)
    })

    it('inner errors: a reset is a FAILURE, an unsupported protocol is NEUTRAL, a sync throw is a FAILURE', async () => {
      cm.connect(peer)
      makeGuard()

      const reset = open(peer).catch((err: Error) => err)
      const resetErr = new StreamResetError('reset during negotiation')
      cm.calls[0].reject(resetErr)
      assert.equal(await reset, resetErr)

      const unsupported = open(peer).catch((err: Error) => err)
      const unsupportedErr = new UnsupportedProtocolError('protocol selection failed')
      cm.calls[1].reject(unsupportedErr)
      assert.equal(await unsupported, unsupportedErr)

      const syncErr = new Error('boom')
      sinon.stub(cm, 'openStream').throws(syncErr)
      // the guard captured the prototype method at start: stub the instance's original instead
      guard.stop()
      makeGuard()
      await assert.rejects(open(peer), (err) => err === syncErr)

      assert.deepEqual(gate.failedCalls.map(c => [c.outcome, c.err.name]), [
        [Outcome.FAILURE, 'StreamResetError'],
        [Outcome.NEUTRAL, 'UnsupportedProtocolError'],
        [Outcome.FAILURE, 'Error']
      ])
      assert.equal(guard.inFlight(peer), 0)
      assert.equal(clock.countTimers(), 0)
    })

    it('neutralErrors is configurable', async () => {
      cm.connect(peer)
      makeGuard({ neutralErrors: ['StreamResetError'] })
      const reset = open(peer).catch(() => {})
      cm.calls[0].reject(new StreamResetError('reset'))
      await reset
      const unsupported = open(peer).catch(() => {})
      cm.calls[1].reject(new UnsupportedProtocolError('nope'))
      await unsupported
      assert.deepEqual(gate.failedCalls.map(c => c.outcome), [Outcome.NEUTRAL, Outcome.FAILURE])
    })
  })

  describe('per-peer deadline', () => {
    it('cold: coldMultiplier × identify time, from peer:identify and connection.timeline.open', () => {
      const conn = cm.connect(peer, { open: Date.now() - 100 })
      makeGuard()
      assert.equal(guard.deadlineFor(peer), 1000)
      identify(peer, conn)
      assert.equal(guard.deadlineFor(peer), 400)
    })

    it('identify push on the same connection does not change the measurement', async () => {
      const conn = cm.connect(peer, { open: Date.now() - 100 })
      makeGuard()
      identify(peer, conn)
      await clock.tickAsync(60_000)
      identify(peer, conn)
      assert.equal(guard.deadlineFor(peer), 400)
    })

    it('the identify deadline is applied to the open', async () => {
      const conn = cm.connect(peer, { open: Date.now() - 120 })
      makeGuard()
      identify(peer, conn)
      const result = open(peer).catch((err: Error) => err)
      await clock.tickAsync(479)
      assert.equal(gate.failedCalls.length, 0)
      await clock.tickAsync(1)
      assert.ok(await result instanceof OpenStreamDeadlineError)
    })

    it('cold without identify: coldMultiplier × connection.rtt, else coldDeadline', () => {
      cm.connect(peer, { rtt: 90 })
      cm.connect(other)
      makeGuard({ coldDeadline: 1500 })
      assert.equal(guard.deadlineFor(peer), 360)
      assert.equal(guard.deadlineFor(other), 1500)
    })

    it('clamps to [minDeadline, maxDeadline]', () => {
      const fast = cm.connect(peer, { open: Date.now() - 20 })
      const slow = cm.connect(other, { open: Date.now() - 5000 })
      makeGuard()
      identify(peer, fast)
      identify(other, slow)
      assert.equal(guard.deadlineFor(peer), 250)
      assert.equal(guard.deadlineFor(other), 2000)
    })

    it('custom clamps and multipliers', () => {
      const conn = cm.connect(peer, { open: Date.now() - 20 })
      makeGuard({ minDeadline: 50, maxDeadline: 500, coldMultiplier: 3 })
      identify(peer, conn)
      assert.equal(guard.deadlineFor(peer), 60)
    })

    it('an unconnected peer gets at least unconnectedFloor, also for its open', async () => {
      makeGuard({ unconnectedFloor: 3000 })
      assert.equal(guard.deadlineFor(peer), 3000)
      const result = open(peer).catch((err: Error) => err)
      await clock.tickAsync(2999)
      assert.equal(gate.failedCalls.length, 0)
      await clock.tickAsync(1)
      assert.ok(await result instanceof OpenStreamDeadlineError)
    })

    async function succeedAfter (ms: number): Promise<void> {
      const result = open(peer)
      await clock.tickAsync(ms)
      cm.calls[cm.calls.length - 1].resolve(fakeStream())
      await result
    }

    it('after minSamples successful opens: sampleMultiplier × median open time', async () => {
      const conn = cm.connect(peer, { open: Date.now() - 100 })
      makeGuard()
      identify(peer, conn)
      await succeedAfter(100)
      await succeedAfter(350)
      // two samples: still the identify deadline
      assert.equal(guard.deadlineFor(peer), 400)
      await succeedAfter(120)
      // median(100, 350, 120) = 120
      assert.equal(guard.deadlineFor(peer), 480)
      await succeedAfter(130)
      // median(100, 120, 130, 350) = 125
      assert.equal(guard.deadlineFor(peer), 500)

      // and it is what the next open gets
      const result = open(peer).catch((err: Error) => err)
      await clock.tickAsync(499)
      assert.equal(gate.failedCalls.length, 0)
      await clock.tickAsync(1)
      assert.ok(await result instanceof OpenStreamDeadlineError)
    })

    it('the sample window forgets old open times', async () => {
      cm.connect(peer)
      makeGuard({ sampleWindow: 3 })
      for (const ms of [400, 400, 400]) {
        await succeedAfter(ms)
      }
      assert.equal(guard.deadlineFor(peer), 1600)
      for (const ms of [100, 100]) {
        await succeedAfter(ms)
      }
      assert.equal(guard.deadlineFor(peer), 400)
    })

    it('opens that had to dial first are not samples', async () => {
      makeGuard()
      for (let i = 0; i < 3; i++) {
        await succeedAfter(10)
      }
      cm.connect(peer)
      assert.equal(guard.deadlineFor(peer), 1000)
    })

    it('peer:disconnect drops what was learned about the peer', async () => {
      const conn = cm.connect(peer, { open: Date.now() - 100 })
      makeGuard()
      identify(peer, conn)
      for (let i = 0; i < 3; i++) {
        await succeedAfter(200)
      }
      assert.equal(guard.deadlineFor(peer), 800)
      events.safeDispatchEvent('peer:disconnect', { detail: peer })
      assert.equal(guard.deadlineFor(peer), 1000)
    })

    it('peer:disconnect while an open is in flight: state goes once it settles, no sample kept', async () => {
      const conn = cm.connect(peer, { open: Date.now() - 100 })
      makeGuard({ minSamples: 1 })
      identify(peer, conn)
      const result = open(peer)
      events.safeDispatchEvent('peer:disconnect', { detail: peer })
      assert.equal(guard.inFlight(peer), 1)
      await clock.tickAsync(10)
      cm.calls[0].resolve(fakeStream())
      await result
      assert.equal(guard.inFlight(peer), 0)
      assert.equal(guard.deadlineFor(peer), 1000)
    })
  })

  describe('first-open hold (an unproven peer may hold a wantlist round once, 100 ms)', () => {
    /** A real-enough stream for replay: records what it is asked to do, in order */
    function recordingStream (): Stream & { ops: string[] } {
      const ops: string[] = []
      const target = new EventTarget()
      return Object.assign(target, {
        ops,
        status: 'open',
        closeRead: async () => { ops.push('closeRead') },
        send: (data: Uint8Array) => { ops.push(`send ${data[0]}`); return true },
        close: async () => { ops.push('close') },
        abort: (err: Error) => { ops.push(`abort ${err.name}`) }
      }) as unknown as Stream & { ops: string[] }
    }

    it('the caller of a connected peer\'s first open gets a stream at 100 ms; what it did reaches the real stream once it opens', async () => {
      cm.connect(peer)
      makeGuard({ firstOpenHold: 100 })
      const got: { stream?: Stream } = {}
      void open(peer).then(s => { got.stream = s })
      await clock.tickAsync(99)
      assert.equal(got.stream, undefined)
      await clock.tickAsync(1)
      const handed = got.stream as Stream | undefined as Stream
      assert.ok(handed != null, 'handed a stream at 100 ms')
      assert.equal(gate.openedCalls.length, 0)
      await handed.closeRead()
      assert.equal(handed.send(Uint8Array.of(1)), true)
      handed.send(Uint8Array.of(2))
      await handed.close()
      const real = recordingStream()
      cm.calls[0].resolve(real)
      await clock.tickAsync(0)
      assert.deepEqual(real.ops, ['closeRead', 'send 1', 'send 2', 'close'])
      assert.equal(gate.openedCalls.length, 1, 'the real open is reported as usual')
      assert.equal(gate.openedCalls[0].stream, real)
    })

    it('holds 25 ms by default', async () => {
      cm.connect(peer)
      makeGuard({ firstOpenHold: undefined })
      const got: { stream?: Stream } = {}
      void open(peer).then(s => { got.stream = s })
      await clock.tickAsync(24)
      assert.equal(got.stream, undefined)
      await clock.tickAsync(1)
      assert.ok(got.stream != null)
    })

    it('later opens to the still unproven peer do not wait at all; one that completes first is handed as it is', async () => {
      cm.connect(peer)
      makeGuard({ firstOpenHold: 100 })
      void open(peer)
      await clock.tickAsync(100)
      let second: Stream | undefined
      void open(peer).then(s => { second = s })
      await clock.tickAsync(0)
      assert.ok(second != null, 'no hold the second time')
      assert.equal(cm.calls.length, 2)
    })

    it('a deferred open that misses its deadline ends its stream with OpenStreamDeadlineError, reported as a FAILURE', async () => {
      cm.connect(peer)
      makeGuard({ firstOpenHold: 100 })
      const handed = await Promise.all([open(peer), clock.tickAsync(100)]).then(([s]) => s)
      const closed = new Promise<Event>(resolve => { handed.addEventListener('close', resolve, { once: true }) })
      handed.send(Uint8Array.of(1))
      await clock.tickAsync(900)
      const evt = await closed as unknown as { error?: Error }
      assert.ok(evt.error instanceof OpenStreamDeadlineError)
      assert.deepEqual(gate.failedCalls.map(c => c.outcome), [Outcome.FAILURE])
      assert.throws(() => handed.send(Uint8Array.of(2)), { name: 'StreamStateError' })
    })

    it('once its first open has failed, no later open to the unproven peer waits', async () => {
      cm.connect(peer)
      makeGuard({ firstOpenHold: 100 })
      const first = open(peer)
      await clock.tickAsync(1000)
      await first
      assert.deepEqual(gate.failedCalls.map(c => c.err.name), ['OpenStreamDeadlineError'])
      let later: Stream | undefined
      void open(peer).then(s => { later = s })
      await clock.tickAsync(0)
      assert.ok(later != null, 'handed at once, no second hold')
      assert.equal(cm.calls.length, 2, 'the real open is still tried')
    })

    it('holds once per connection: after a disconnect the new connection may hold once more', async () => {
      cm.connect(peer)
      makeGuard({ firstOpenHold: 100 })
      const first = open(peer)
      await clock.tickAsync(100)
      await first
      cm.calls[0].resolve(fakeStream())
      await clock.tickAsync(0)
      cm.connections.delete(peer.toString())
      events.safeDispatchEvent('peer:disconnect', { detail: peer })
      cm.connect(peer)
      let again: Stream | undefined
      void open(peer).then(s => { again = s })
      await clock.tickAsync(99)
      assert.equal(again, undefined, 'a new connection is unproven again')
      await clock.tickAsync(1)
      assert.ok(again != null)
    })

    it('a peer with a completed open is never deferred; nor is one that must be dialled first', async () => {
      cm.connect(peer)
      makeGuard({ firstOpenHold: 100 })
      const first = open(peer)
      cm.calls[0].resolve(fakeStream())
      await first
      let second: Stream | undefined
      void open(peer).then(s => { second = s })
      await clock.tickAsync(150)
      assert.equal(second, undefined, 'a proven peer holds its caller until the open completes')
      let unconnected: Stream | undefined
      void open(other).then(s => { unconnected = s })
      await clock.tickAsync(150)
      assert.equal(unconnected, undefined)
    })
  })

  describe('cancelPeer', () => {
    it('aborts every in-flight open to the peer with the reason, NEUTRAL, and only that peer', async () => {
      cm.connect(peer)
      cm.connect(other)
      makeGuard()
      const results = [open(peer), open(peer), open(peer)].map(async p => p.catch((err: Error) => err))
      const otherResult = open(other)
      assert.equal(guard.inFlight(peer), 3)
      const reason = new CircuitOpenError()

      assert.equal(guard.cancelPeer(peer, reason), 3)
      for (const result of results) {
        assert.equal(await result, reason)
      }
      for (let i = 0; i < 3; i++) {
        assert.equal(cm.calls[i].options?.signal?.reason, reason)
      }
      assert.deepEqual(gate.failedCalls.map(c => c.outcome), [Outcome.NEUTRAL, Outcome.NEUTRAL, Outcome.NEUTRAL])
      assert.equal(guard.inFlight(peer), 0)
      assert.equal(guard.inFlight(other), 1)
      assert.equal(guard.cancelPeer(peer, reason), 0)

      const stream = fakeStream()
      cm.calls[3].resolve(stream)
      assert.equal(await otherResult, stream)
    })
  })

  describe('scope and lifecycle', () => {
    it('non-Bitswap protocols go straight to the original with the same arguments', async () => {
      cm.connect(peer)
      makeGuard()
      const options = { signal: new AbortController().signal }
      const result = open(peer, options, ['/ipfs/id/1.0.0'])
      assert.equal(cm.calls[0].options, options)
      assert.deepEqual(cm.calls[0].protocols, ['/ipfs/id/1.0.0'])
      assert.equal(guard.inFlight(peer), 0)
      assert.equal(gate.admits.length, 0)
      assert.equal(clock.countTimers(), 0)
      cm.calls[0].resolve(fakeStream())
      await result
      assert.equal(gate.openedCalls.length, 0)
    })

    it('scope: a string protocol, any Bitswap protocol in a list, custom protocols', async () => {
      cm.connect(peer)
      makeGuard({ protocols: ['/custom/1'] })
      void open(peer, undefined, '/custom/1').catch(() => {})
      void open(peer, undefined, ['/other', '/custom/1']).catch(() => {})
      void open(peer, undefined, BITSWAP).catch(() => {})
      assert.equal(gate.admits.length, 2)
      assert.equal(guard.inFlight(peer), 2)
    })

    it('multiaddr targets: guarded when /p2p/ names a connected peer, else passed through', async () => {
      cm.connect(peer)
      makeGuard()
      void open(multiaddr(`/memory/x/p2p/${peer.toString()}`)).catch(() => {})
      assert.equal(gate.admits.length, 1)
      assert.ok(gate.admits[0].equals(peer))
      void open([multiaddr(`/memory/y/p2p/${peer.toString()}`)] as unknown as DialTarget).catch(() => {})
      assert.equal(gate.admits.length, 2)
      void open(multiaddr('/memory/z')).catch(() => {})
      void open(multiaddr(`/memory/w/p2p/${other.toString()}`)).catch(() => {})
      assert.equal(gate.admits.length, 2)
      assert.equal(cm.calls.length, 4)
      assert.equal(guard.inFlight(peer), 2)
    })

    it('stop restores the prototype method (no own property left) and removes listeners', () => {
      const proto = FakeConnectionManager.prototype.openStream
      makeGuard()
      assert.equal(Object.hasOwn(cm, 'openStream'), true)
      assert.equal(events.listenerCount('peer:identify'), 1)
      assert.equal(events.listenerCount('peer:disconnect'), 1)
      guard.stop()
      assert.equal(Object.hasOwn(cm, 'openStream'), false)
      assert.equal(cm.openStream, proto)
      assert.equal(events.listenerCount('peer:identify'), 0)
      assert.equal(events.listenerCount('peer:disconnect'), 0)
    })

    it('stop restores an own openStream exactly', () => {
      const own = async (): Promise<Stream> => fakeStream()
      ;(cm as unknown as { openStream: unknown }).openStream = own
      makeGuard()
      assert.notEqual(cm.openStream, own)
      guard.stop()
      assert.equal(cm.openStream, own)
    })

    it('stop aborts our in-flight opens (NEUTRAL, ClosedError) and leaves no timer', async () => {
      cm.connect(peer)
      makeGuard()
      const result = open(peer).catch((err: Error) => err)
      guard.stop()
      assert.ok(await result instanceof ClosedError)
      assert.equal(gate.failedCalls[0].outcome, Outcome.NEUTRAL)
      assert.equal(clock.countTimers(), 0)
    })

    it("stop leaves a shared scheduler running and others' deadlines in it", async () => {
      cm.connect(peer)
      const scheduler = new DeadlineScheduler()
      let fired = false
      scheduler.schedule(Date.now() + 5000, () => { fired = true })
      makeGuard({ scheduler })
      const result = open(peer).catch((err: Error) => err)
      assert.equal(scheduler.size, 2)
      await clock.tickAsync(1000)
      assert.ok(await result instanceof OpenStreamDeadlineError)
      guard.stop()
      assert.equal(scheduler.size, 1)
      await clock.tickAsync(4000)
      assert.equal(fired, true)
    })

    it('wrapped on top by someone else: stop turns ours into a pass-through', async () => {
      cm.connect(peer)
      makeGuard()
      const ours = cm.openStream
      const outer = async (target: DialTarget, protocols: string | string[], options?: object): Promise<Stream> => ours.call(cm, target, protocols, options)
      ;(cm as unknown as { openStream: unknown }).openStream = outer
      guard.stop()
      assert.equal(cm.openStream, outer)
      const result = open(peer)
      await Promise.resolve()
      assert.equal(gate.admits.length, 0)
      cm.calls[0].resolve(fakeStream())
      await result

      // started again, the guard wraps on top and guards again, without looping through its old wrapper
      guard.start()
      void open(peer).catch(() => {})
      assert.equal(gate.admits.length, 1)
      assert.equal(cm.calls.length, 2)
    })

    it('rejects invalid config', () => {
      const components = { connectionManager: cm as unknown as ConnectionManager, events, logger: defaultLogger() }
      assert.throws(() => new OpenStreamGuard(components, gate, { minDeadline: 0 }), { name: 'InvalidConfigError' })
      assert.throws(() => new OpenStreamGuard(components, gate, { minDeadline: 500, maxDeadline: 400 }), { name: 'InvalidConfigError' })
      assert.throws(() => new OpenStreamGuard(components, gate, { sampleWindow: 2, minSamples: 3 }), { name: 'InvalidConfigError' })
      assert.throws(() => new OpenStreamGuard(components, gate, { protocols: [] }), { name: 'InvalidConfigError' })
      assert.throws(() => new OpenStreamGuard(components, gate, { coldMultiplier: -1 }), { name: 'InvalidConfigError' })
    })
  })
  describe('on real nodes (memory transport, noise, yamux, identify)', function () {
    this.timeout(10_000)

    interface Grabbed { connectionManager: ConnectionManager, events: TypedEventTarget<Libp2pEvents>, logger: ComponentLogger }
    let nodeA: Libp2p, nodeB: Libp2p
    let components: Grabbed
    let realGuard: OpenStreamGuard<number> | undefined
    let received: number

    beforeEach(async () => {
      clock.restore()
      received = 0
      const grab = (c: Grabbed): object => {
        components = c
        return {}
      }
      const common = { transports: [memory()], connectionEncrypters: [noise()], streamMuxers: [yamux()] }
      nodeA = await createLibp2p({ ...common, addresses: { listen: ['/memory/guard-a'] }, services: { identify: identifyService(), grab } })
      nodeB = await createLibp2p({ ...common, addresses: { listen: ['/memory/guard-b'] }, services: { identify: identifyService() } })
      await nodeB.handle(BITSWAP, (stream) => {
        received++
        void stream.close().catch(() => {})
      })
    })

    afterEach(async () => {
      realGuard?.stop()
      realGuard = undefined
      await Promise.all([nodeA?.stop(), nodeB?.stop()])
      clock = sinon.useFakeTimers()
    })

    /** Connects A to B and waits (bounded) for A to have identified B */
    async function connectAndIdentify (): Promise<void> {
      const identified = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { reject(new Error('no peer:identify within 5 s')) }, 5000)
        const onIdentify = (evt: CustomEvent<{ peerId: PeerId }>): void => {
          if (evt.detail.peerId.equals(nodeB.peerId)) {
            clearTimeout(timer)
            nodeA.removeEventListener('peer:identify', onIdentify)
            resolve()
          }
        }
        nodeA.addEventListener('peer:identify', onIdentify)
      })
      await nodeA.dial(nodeB.getMultiaddrs()[0])
      await identified
    }

    it('guards dialProtocol: identify sets the cold deadline, a real open is reported as opened', async () => {
      realGuard = new OpenStreamGuard(components, gate, { coldDeadline: 1999, firstOpenHold: 60_000 })
      realGuard.start()
      await connectAndIdentify()
      // 4 × (identify finished − connection open), clamped: not the cold default
      const upper = 4 * (Date.now() - nodeA.getConnections(nodeB.peerId)[0].timeline.open)
      const deadline = realGuard.deadlineFor(nodeB.peerId)
      assert.ok(deadline >= 250 && deadline <= Math.max(upper, 250) && deadline !== 1999, `deadline ${deadline}, upper bound ${upper}`)

      const stream = await nodeA.dialProtocol(nodeB.peerId, BITSWAP)
      assert.equal(stream.protocol, BITSWAP)
      assert.equal(gate.openedCalls.length, 1)
      assert.equal(gate.openedCalls[0].stream, stream)
      assert.ok(gate.openedCalls[0].peer.equals(nodeB.peerId))
      assert.equal(realGuard.inFlight(nodeB.peerId), 0)
      await stream.close()

      // a multiaddr with /p2p/ of a connected peer is guarded too; other protocols are not
      await (await nodeA.dialProtocol(nodeB.getMultiaddrs()[0], BITSWAP)).close()
      assert.equal(gate.openedCalls.length, 2)
      await assert.rejects(nodeA.dialProtocol(nodeB.peerId, '/not/bitswap'), { name: 'UnsupportedProtocolError' })
      assert.equal(gate.admits.length, 2)
      assert.equal(received, 2)
    })

    it('a slow open misses its deadline: dialProtocol rejects with OpenStreamDeadlineError, the slow call is aborted', async () => {
      await connectAndIdentify()
      const cm = components.connectionManager
      const real = cm.openStream
      let innerSignal: AbortSignal | undefined
      // negotiation that never finishes unless aborted (what a blackholed connection does)
      const slow = async (target: DialTarget, protocols: string | string[], options?: { signal?: AbortSignal }): Promise<Stream> => {
        innerSignal = options?.signal
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, 5000)
          options?.signal?.addEventListener('abort', () => {
            clearTimeout(timer)
            reject(options.signal?.reason)
          }, { once: true })
        })
        return real.call(cm, target, protocols, options)
      }
      cm.openStream = slow
      // the peer was identified before the guard started: the connection's rtt or the cold default applies
      realGuard = new OpenStreamGuard(components, gate, { coldDeadline: 300, maxDeadline: 300, firstOpenHold: 60_000 })
      realGuard.start()

      const started = Date.now()
      const err = await nodeA.dialProtocol(nodeB.peerId, BITSWAP).catch((e: Error) => e)
      const elapsed = Date.now() - started
      assert.ok(err instanceof OpenStreamDeadlineError, `got ${String(err)}`)
      assert.ok(elapsed >= 250 && elapsed < 2000, `rejected after ${elapsed} ms`)
      assert.equal(innerSignal?.aborted, true)
      assert.equal(innerSignal?.reason, err)
      assert.equal(gate.failedCalls.length, 1)
      assert.equal(gate.failedCalls[0].outcome, Outcome.FAILURE)
      assert.equal(received, 0)

      realGuard.stop()
      assert.equal(cm.openStream, slow)
      delete (cm as Partial<ConnectionManager>).openStream
      // the connection is healthy: nothing was left half-open by the abort
      await (await nodeA.dialProtocol(nodeB.peerId, BITSWAP)).close()
      assert.equal(received, 1)
    })
  })
})
