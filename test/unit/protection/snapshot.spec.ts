import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { isPeerIdString } from '../../../src/libp2p/config.ts'
import { BitswapProtectionManager, CircuitState } from '../../../src/index.ts'
import { prepareSnapshot } from '../../../src/protection/snapshot.ts'
import { FakeClock } from '../helpers.ts'
import type { PrepareSnapshotOptions } from '../../../src/protection/snapshot.ts'
import type { PeerSnapshot } from '../../../src/protection/types.ts'

const NOW = 1_000_000_000
const TIMEOUT = 60_000
const MAX_TIMEOUT = 600_000

function entry (peer: string, overrides: Partial<PeerSnapshot> = {}): PeerSnapshot {
  return { peer, state: CircuitState.OPEN, openUntil: NOW + 30_000, backoffLevel: 1, isolated: false, ...overrides }
}

function snapshotOf (peers: unknown[], extra: Record<string, unknown> = {}): unknown {
  return { version: 1, takenAt: NOW - 1_000, peers, ...extra }
}

const OPTIONS: PrepareSnapshotOptions = {
  now: NOW,
  capacity: 5_000,
  maxEntries: 10_000,
  breaker: { timeout: TIMEOUT, backoffMultiplier: 2, maxTimeout: MAX_TIMEOUT, jitter: 0.2 }
}

/** A tampered snapshot, and the start of the message its InvalidSnapshotError must have */
const TAMPERED: Array<[label: string, snapshot: unknown, message: RegExp]> = [
  ['null', null, /^snapshot must be an object from snapshot\(\), got null$/],
  ['a string', '{"version":1,"peers":[]}', /^snapshot must be an object from snapshot\(\), got "\{/],
  ['an array', [entry('a')], /^snapshot must be an object from snapshot\(\), got an array of 1$/],
  ['no version', { takenAt: NOW, peers: [] }, /^snapshot\.version must be 1, got undefined$/],
  ['a later version', snapshotOf([], { version: 2 }), /^snapshot\.version is 2, but this library reads snapshot versions up to 1: /],
  ['version as a string', snapshotOf([], { version: '1' }), /^snapshot\.version must be 1, got "1"$/],
  ['version 0', snapshotOf([], { version: 0 }), /^snapshot\.version must be 1, got 0$/],
  ['takenAt "yesterday"', snapshotOf([], { takenAt: 'yesterday' }), /^snapshot\.takenAt must be a time in ms \(a finite number >= 0\), got "yesterday"$/],
  ['peers: null', snapshotOf([], { peers: null }), /^snapshot\.peers must be an array, got null$/],
  ['peers as an object', snapshotOf([], { peers: { 0: entry('a') } }), /^snapshot\.peers must be an array, got an object$/],
  ['an entry that is null', snapshotOf([entry('a'), entry('b'), entry('c'), null]), /^snapshot\.peers\[3\] must be an object, got null$/],
  ['peer: null', snapshotOf([{ ...entry('a'), peer: null }]), /^snapshot\.peers\[0\]\.peer must be a peer id string, got null$/],
  ['peer: 42', snapshotOf([{ ...entry('a'), peer: 42 }]), /^snapshot\.peers\[0\]\.peer must be a peer id string, got 42$/],
  ['peer: ""', snapshotOf([entry('')]), /^snapshot\.peers\[0\]\.peer must be a peer id string, got ""$/],
  ['openUntil: "soon"', snapshotOf([entry('a'), entry('b'), entry('c'), { ...entry('d'), openUntil: 'soon' }]), /^snapshot\.peers\[3\]\.openUntil must be a time in ms \(a finite number >= 0\), got "soon"$/],
  ['openUntil: NaN', snapshotOf([entry('a', { openUntil: Number.NaN })]), /^snapshot\.peers\[0\]\.openUntil .* got NaN$/],
  ['openUntil: Infinity (gated forever)', snapshotOf([entry('a', { openUntil: Infinity })]), /^snapshot\.peers\[0\]\.openUntil .* got Infinity$/],
  ['openUntil: -5', snapshotOf([entry('a', { openUntil: -5 })]), /^snapshot\.peers\[0\]\.openUntil .* got -5$/],
  ['state: "BROKEN"', snapshotOf([{ ...entry('a'), state: 'BROKEN' }]), /^snapshot\.peers\[0\]\.state must be one of CLOSED, OPEN, HALF_OPEN, got "BROKEN"$/],
  ['state missing', snapshotOf([{ peer: 'a', openUntil: 0, backoffLevel: 0, isolated: false }]), /^snapshot\.peers\[0\]\.state must be one of .* got undefined$/],
  ['backoffLevel: -1', snapshotOf([entry('a', { backoffLevel: -1 })]), /^snapshot\.peers\[0\]\.backoffLevel must be an integer >= 0 and <= 64, got -1$/],
  ['backoffLevel: 1.5', snapshotOf([entry('a', { backoffLevel: 1.5 })]), /^snapshot\.peers\[0\]\.backoffLevel .* got 1\.5$/],
  ['backoffLevel: 1e9', snapshotOf([entry('a', { backoffLevel: 1e9 })]), /^snapshot\.peers\[0\]\.backoffLevel .* got 1000000000$/],
  ['isolated: "yes"', snapshotOf([{ ...entry('a'), isolated: 'yes' }]), /^snapshot\.peers\[0\]\.isolated must be true or false, got "yes"$/],
  ['isolated but CLOSED', snapshotOf([entry('a', { state: CircuitState.CLOSED, isolated: true })]), /^snapshot\.peers\[0\]\.isolated is true, so state must be OPEN, got "CLOSED"$/]
]

describe('snapshot validation', () => {
  describe('tampered snapshots throw InvalidSnapshotError naming the path', () => {
    it(`has at least 15 of them (${TAMPERED.length})`, () => {
      assert.ok(TAMPERED.length >= 15)
    })

    for (const [label, snapshot, message] of TAMPERED) {
      it(label, () => {
        assert.throws(() => prepareSnapshot(snapshot, OPTIONS), (err: Error) => {
          assert.equal(err.name, 'InvalidSnapshotError')
          assert.match(err.message, message)
          return true
        })
      })
    }

    it('names the path it was given (initialState for the service)', () => {
      assert.throws(() => prepareSnapshot(snapshotOf([null]), { ...OPTIONS, path: 'initialState' }), {
        name: 'InvalidSnapshotError',
        message: 'initialState.peers[0] must be an object, got null'
      })
    })

    it('refuses 1 000 000 entries by size, unread', () => {
      const peers = new Array(1_000_000)
      assert.throws(() => prepareSnapshot(snapshotOf(peers), OPTIONS), {
        name: 'InvalidSnapshotError',
        message: 'snapshot.peers has 1000000 entries, more than this node reads (at most 10000): refused unread'
      })
    })

    it('refuses a million entries even on a node whose peer table is larger (the read is capped at 100 000)', () => {
      const manager = new BitswapProtectionManager({ maxPeers: 2 ** 20 }, { clock: new FakeClock(NOW) })
      assert.throws(() => manager.restore(snapshotOf(new Array(1_000_000)) as never), {
        name: 'InvalidSnapshotError',
        message: 'snapshot.peers has 1000000 entries, more than this node reads (at most 100000): refused unread'
      })
      manager.close()
    })

    it('restores nothing of a snapshot with one bad entry, however late it comes', () => {
      const clock = new FakeClock(NOW)
      const manager = new BitswapProtectionManager({}, { clock })
      assert.throws(() => manager.restore(snapshotOf([entry('a'), entry('b', { openUntil: -1 })]) as never), { name: 'InvalidSnapshotError' })
      assert.equal(manager.circuitState('a'), CircuitState.CLOSED)
      assert.equal(manager.getOverallStatus().totalPeers, 0)
      manager.close()
    })
  })

  describe('what is restored', () => {
    it('skips and counts peer strings that are not peer ids', async () => {
      const valid = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
      const prepared = prepareSnapshot(snapshotOf([entry('not-a-peer'), entry(valid), entry('12D3KooWPeerA'), entry('Qm')]), { ...OPTIONS, isValidPeer: isPeerIdString })
      assert.deepEqual(prepared.entries.map(e => e.peer), [valid])
      assert.equal(prepared.stats.invalidPeers, 3)
      assert.equal(prepared.stats.restored, 1)
    })

    it('drops OPEN entries whose open time has ended, and HALF_OPEN ones; keeps CLOSED ones with backoff', () => {
      const prepared = prepareSnapshot(snapshotOf([
        entry('ended', { openUntil: NOW - 1 }),
        entry('exactly-now', { openUntil: NOW }),
        entry('half', { state: CircuitState.HALF_OPEN, openUntil: 0 }),
        entry('clean', { state: CircuitState.CLOSED, openUntil: 0, backoffLevel: 0 }),
        entry('backoff', { state: CircuitState.CLOSED, openUntil: 0, backoffLevel: 2 }),
        entry('open')
      ]), OPTIONS)
      assert.deepEqual(prepared.entries.map(e => e.peer), ['open', 'backoff'])
      assert.equal(prepared.stats.expired, 3)
    })

    it('never keeps a peer gated past maxTimeout from now', () => {
      const prepared = prepareSnapshot(snapshotOf([
        entry('year', { openUntil: NOW + 365 * 86_400_000, backoffLevel: 64 }),
        entry('fine', { openUntil: NOW + 1_000 })
      ]), OPTIONS)
      const byPeer = new Map(prepared.entries.map(e => [e.peer, e.openUntil]))
      assert.equal(byPeer.get('year'), NOW + MAX_TIMEOUT)
      assert.equal(byPeer.get('fine'), NOW + 1_000)
      assert.equal(prepared.stats.clamped, 1)
    })

    it('brings an isolation back as an open circuit until maxTimeout from now', () => {
      const prepared = prepareSnapshot(snapshotOf([entry('held', { openUntil: 0, backoffLevel: 0, isolated: true })]), OPTIONS)
      assert.deepEqual(prepared.entries, [{ peer: 'held', state: CircuitState.OPEN, openUntil: NOW + MAX_TIMEOUT, backoffLevel: 0, isolated: false }])
      assert.equal(prepared.stats.clamped, 1)
    })

    it('nor past what its own backoff level could give it, when maxTimeout is Infinity', () => {
      const prepared = prepareSnapshot(snapshotOf([entry('a', { openUntil: NOW + 1e12, backoffLevel: 1 })]), { ...OPTIONS, breaker: { ...OPTIONS.breaker, maxTimeout: Infinity } })
      assert.equal(prepared.entries[0].openUntil, NOW + TIMEOUT * 1.2)
    })

    it('takes at most the capacity: isolations first, then the newest trips', () => {
      const peers = [
        // tripped 50 s ago at level 1 (60 s): 10 s left
        entry('recent', { openUntil: NOW + 10_000, backoffLevel: 1 }),
        // tripped 10 s ago at level 3 (240 s): 230 s left, the newest trip although not the latest end
        entry('newest', { openUntil: NOW + 230_000, backoffLevel: 3 }),
        // tripped 100 s ago at level 3: 140 s left, so it goes although it ends later than 'recent'
        entry('oldest', { openUntil: NOW + 140_000, backoffLevel: 3 }),
        entry('isolated', { openUntil: 0, backoffLevel: 0, isolated: true }),
        entry('backoff', { state: CircuitState.CLOSED, openUntil: 0, backoffLevel: 5 })
      ]
      const prepared = prepareSnapshot(snapshotOf(peers), { ...OPTIONS, capacity: 3 })
      assert.deepEqual(prepared.entries.map(e => e.peer), ['isolated', 'newest', 'recent'])
      assert.equal(prepared.stats.overCapacity, 2)
    })

    it('restores a peer once, from its first entry in priority order', () => {
      const prepared = prepareSnapshot(snapshotOf([entry('a', { openUntil: NOW + 5_000 }), entry('a', { openUntil: NOW + 20_000 })]), OPTIONS)
      assert.equal(prepared.entries.length, 1)
      assert.equal(prepared.stats.duplicates, 1)
    })

    it('does not change or keep the caller\'s snapshot', () => {
      const original = snapshotOf([entry('a', { openUntil: NOW + 365 * 86_400_000 })])
      const copy = JSON.parse(JSON.stringify(original))
      const prepared = prepareSnapshot(original, OPTIONS)
      assert.deepEqual(original, copy)
      assert.notEqual(prepared.entries[0], (original as { peers: unknown[] }).peers[0])
    })

    it('a manager restores at most half its peer table and reports what it did in the status', () => {
      const clock = new FakeClock(NOW)
      const manager = new BitswapProtectionManager({ maxPeers: 10, circuitBreaker: { timeout: TIMEOUT } }, { clock })
      const peers = Array.from({ length: 20 }, (_, i) => entry(`p${i}`, { openUntil: NOW + 1_000 * (i + 1) }))
      const { stats } = manager.restore(snapshotOf(peers) as never)
      assert.equal(stats.restored, 5)
      assert.equal(stats.overCapacity, 15)
      const status = manager.getOverallStatus()
      assert.equal(status.circuitStates.open, 5)
      assert.deepEqual(status.restored, stats)
      // a fresh peer still finds room, and is protected
      assert.equal(manager.circuitState('live'), CircuitState.CLOSED)
      assert.equal(manager.admit('live').admitted, true)
      assert.equal(manager.getOverallStatus().totalPeers, 6, 'the fresh peer is tracked')
      manager.close()
    })

    it('a restored OPEN peer is OPEN until its (clamped) time, then HALF_OPEN', () => {
      const clock = new FakeClock(NOW)
      const manager = new BitswapProtectionManager({ circuitBreaker: { timeout: TIMEOUT } }, { clock })
      manager.restore(snapshotOf([entry('a', { openUntil: NOW + 365 * 86_400_000, backoffLevel: 64 })]) as never)
      clock.time = NOW + MAX_TIMEOUT
      assert.equal(manager.circuitState('a'), CircuitState.OPEN)
      clock.time = NOW + MAX_TIMEOUT + 1
      assert.equal(manager.circuitState('a'), CircuitState.HALF_OPEN)
      manager.close()
    })
  })
})
