/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { BitswapProtectionManager, CircuitState } from '../../../src/index.ts'
import { PeerTable } from '../../../src/peers/peer-table.ts'
import { Outcome } from '../../../src/states.ts'
import type { Admission } from '../../../src/breaker/permit.ts'
import type { PeerRecord } from '../../../src/peers/peer-record.ts'

// The service admits a stream at the time libp2p stamped it (`stream.timeline.open`), which can be
// a little older than times the engine has already seen (other streams' ends, its own clock reads).
// These properties drive the engine with such stamps and check that nothing goes backwards.

const START = 1_000_000
const PEERS = ['12D3KooWPeerA', '12D3KooWPeerB', '12D3KooWPeerC']
/** How far a stamp may lag the clock: the protocol negotiation between libp2p's stamp and our middleware */
const MAX_LAG = 400

type Command =
  | { kind: 'tick', ms: number }
  | { kind: 'admit', peer: number, lag: number, throttle: boolean }
  | { kind: 'settle', index: number, outcome: Outcome, latency: number, withNow: boolean }
  | { kind: 'observe', peer: number, outcome: Outcome, latency: number }

const outcomeArb = fc.constantFrom<Outcome>(Outcome.SUCCESS, Outcome.SUCCESS, Outcome.FAILURE, Outcome.NEUTRAL)
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.oneof(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 3000 })) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('admit' as const), peer: fc.nat(PEERS.length - 1), lag: fc.integer({ min: 0, max: MAX_LAG }), throttle: fc.boolean() }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('settle' as const), index: fc.nat(), outcome: outcomeArb, latency: fc.integer({ min: 0, max: 600 }), withNow: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('observe' as const), peer: fc.nat(PEERS.length - 1), outcome: outcomeArb, latency: fc.integer({ min: 0, max: 600 }) }) }
)

/** What must never go backwards in a record, as last seen */
interface Seen {
  lastSeen: number
  healthBucket: number
  healthSeen: number
  closedState: object | undefined
  windowEnd: number
}

function finiteAtLeastZero (value: number, what: string): void {
  assert.ok(Number.isFinite(value) && value >= 0, `${what} = ${value}`)
}

describe('engine under stamps older than times already seen', () => {
  it('never throws, keeps counts and rates sane, and moves no time-driven state backwards', () => {
    fc.assert(fc.property(fc.array(commandArb, { minLength: 1, maxLength: 120 }), (commands) => {
      let time = START
      const manager = new BitswapProtectionManager({
        circuitBreaker: { maxRequests: 2, interval: 1000, timeout: 1500, jitter: 0, readyToTrip: (c) => c.consecutiveFailures >= 3 },
        healthMonitor: { window: 2000, minSamples: 3 },
        enableAutoTuning: false
      }, { clock: { now: () => time }, random: () => 0 })
      const pending: Admission[] = []
      const seen = new Map<PeerRecord, Seen>()

      for (const command of commands) {
        if (command.kind === 'tick') {
          time += command.ms
        } else if (command.kind === 'admit') {
          const peer = PEERS[command.peer]
          const stamp = time - command.lag
          const before = manager.registry.find(peer)
          const open = before !== undefined && manager.circuitState(peer) === CircuitState.OPEN ? manager.openUntil(peer) : 0
          const admission = manager.admit(peer, command.throttle, stamp)
          if (open >= time) {
            // OPEN until a time not yet reached by the clock: an older stamp cannot let a call through
            assert.equal(admission.admitted, false)
          }
          pending.push(admission)
        } else if (command.kind === 'settle') {
          if (pending.length > 0) {
            const admission = pending.splice(command.index % pending.length, 1)[0]
            if (admission.admitted) {
              admission.settle(command.outcome, command.latency, undefined, command.withNow ? time : undefined)
            }
          }
        } else {
          manager.observe(PEERS[command.peer], command.outcome, command.latency)
        }

        const overall = manager.getOverallStatus()
        const states = overall.circuitStates
        assert.equal(states.closed + states.open + states.halfOpen, overall.totalPeers)
        for (const peer of PEERS) {
          const record = manager.registry.find(peer)
          if (record === undefined) {
            continue
          }
          const status = manager.getPeerStatus(peer)
          const c = status.counts
          for (const [name, value] of Object.entries(c)) {
            assert.ok(Number.isInteger(value) && value >= 0, `${name} = ${value}`)
          }
          assert.ok(c.requests >= c.totalSuccesses + c.totalFailures, 'settled more calls than were admitted')
          finiteAtLeastZero(status.recoveryRate, 'recoveryRate')
          assert.ok(status.recoveryRate <= 1)
          if (status.health !== undefined) {
            const h = status.health
            assert.ok(h.successRate >= 0 && h.successRate <= 1, `successRate = ${h.successRate}`)
            finiteAtLeastZero(h.meanResponseTime, 'meanResponseTime')
            finiteAtLeastZero(h.p95ResponseTime, 'p95ResponseTime')
            assert.ok(h.totalRequests >= h.errorCount)
          }

          const last = seen.get(record)
          const state = record.state
          const now: Seen = {
            lastSeen: record.lastSeen,
            healthBucket: record.health?.bucket ?? 0,
            healthSeen: record.health?.lastSeen ?? 0,
            closedState: state.kind === 'closed' ? state : undefined,
            windowEnd: state.kind === 'closed' ? state.windowEnd : 0
          }
          if (last !== undefined) {
            assert.ok(now.lastSeen >= last.lastSeen, 'the table\'s lastSeen went back')
            if (record.health !== undefined && record.health.total > 0 && last.healthSeen > 0 && now.healthSeen >= last.healthSeen) {
              assert.ok(now.healthBucket >= last.healthBucket, 'a health bucket went back')
            }
            if (now.closedState !== undefined && now.closedState === last.closedState && last.windowEnd !== 0) {
              assert.ok(now.windowEnd >= last.windowEnd, 'a CLOSED window ended earlier than it was set to')
            }
          }
          seen.set(record, now)
        }
      }
      manager.close()
    }), { numRuns: 300 })
  })

  it('the peer table keeps the newest time it saw', () => {
    const table = new PeerTable({ clock: { now: () => START } })
    const record = table.get('12D3KooWPeerA', START + 500)
    assert.ok(record !== undefined)
    table.get('12D3KooWPeerA', START + 100)
    assert.equal(record.lastSeen, START + 500)
    table.touch(record, START + 200)
    assert.equal(record.lastSeen, START + 500)
    table.get('12D3KooWPeerA', START + 900)
    assert.equal(record.lastSeen, START + 900)
  })
})
