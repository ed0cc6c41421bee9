/**
 * Every option of the service (and so of the engine: the service takes the engine's options too)
 * with the bad values a new user would try: NaN, a negative, Infinity where it does not mean "off",
 * a wrong type, null, and an empty or malformed list. Each goes into a real `createLibp2p`, which
 * must reject with an `InvalidConfigError` naming the option's full path, what is allowed and what
 * it got, and leave nothing installed or started: a probe service built just before ours sees its
 * `start` never called, no middleware on the Bitswap protocols and no wrapped `openStream`.
 */

import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createLibp2p } from 'libp2p'
import { bitswapCircuitBreaker } from '../../src/index.ts'
import { DEFAULT_BITSWAP_PROTOCOLS } from '../../src/libp2p/config.ts'
import { libp2pConfig } from '../../fixtures/index.ts'
import { describe as describeValue } from '../../src/validate.ts'
import type { BitswapCircuitBreakerInit } from '../../src/index.ts'
import type { FixtureComponents } from '../../fixtures/index.ts'
import type { ComponentLogger, Logger, PrivateKey, Startable } from '@libp2p/interface'

type Kind = 'number' | 'integer' | 'boolean' | 'function' | 'list' | 'section' | 'enum'

/** Every option, by full path, with its kind and whether Infinity is documented as "off" */
const OPTIONS: Array<[path: string, kind: Kind, infinityIsOff?: boolean]> = [
  ['protocols', 'list'],
  ['disconnectOnOpen', 'boolean'],
  ['redialOnHalfOpen', 'boolean'],
  ['observeMessages', 'boolean'],
  ['releaseWaits', 'boolean'],
  ['allowlist', 'list'],
  ['responseDeadline', 'number'],
  ['rampConcurrency', 'integer'],
  ['random', 'function'],
  ['clock', 'section'],
  ['enableAutoRecovery', 'boolean'],
  ['enableHealthBasedTripping', 'boolean'],
  ['enableAutoTuning', 'boolean'],
  ['maxPeers', 'integer'],
  ['idleTimeout', 'number', true],
  ['observe', 'section'],
  ['observe.maxMessageSize', 'integer'],
  ['observe.minDeadline', 'number'],
  ['observe.maxDeadline', 'number'],
  ['observe.coldDeadline', 'number'],
  ['observe.coldRttMultiplier', 'number'],
  ['observe.deadlineMultiplier', 'number'],
  ['observe.ewmaAlpha', 'number'],
  ['observe.maxWantsPerPeer', 'integer'],
  ['observe.maxPeers', 'integer'],
  ['observe.settledRetention', 'number'],
  ['observe.maxInboundStreamsPerPeer', 'integer'],
  ['observe.maxInboundBytesPerSecond', 'number'],
  ['observe.maxInboundBurstBytes', 'number'],
  ['observe.maxInboundBufferedBytes', 'number'],
  ['observe.maxWantlistEntries', 'integer'],
  ['observe.maxWantlistEntriesPerSecond', 'number'],
  ['openStream', 'section'],
  ['openStream.coldDeadline', 'number'],
  ['openStream.coldMultiplier', 'number'],
  ['openStream.sampleMultiplier', 'number'],
  ['openStream.minSamples', 'integer'],
  ['openStream.sampleWindow', 'integer'],
  ['openStream.minDeadline', 'number'],
  ['openStream.maxDeadline', 'number'],
  ['openStream.unconnectedFloor', 'number'],
  ['openStream.firstOpenHold', 'number'],
  ['openStream.neutralErrors', 'list'],
  ['openStream.clock', 'section'],
  ['circuitBreaker', 'section'],
  ['circuitBreaker.maxRequests', 'integer'],
  ['circuitBreaker.interval', 'number', true],
  ['circuitBreaker.timeout', 'number'],
  ['circuitBreaker.readyToTrip', 'function'],
  ['circuitBreaker.isSuccessful', 'function'],
  ['circuitBreaker.onStateChange', 'function'],
  ['circuitBreaker.backoffMultiplier', 'number'],
  ['circuitBreaker.maxTimeout', 'number', true],
  ['circuitBreaker.jitter', 'number'],
  ['circuitBreaker.backoffDecay', 'number', true],
  ['circuitBreaker.maxHalfOpenDwell', 'number', true],
  ['healthMonitor', 'section'],
  ['healthMonitor.healthyThreshold', 'number'],
  ['healthMonitor.degradedThreshold', 'number'],
  ['healthMonitor.maxResponseTime', 'number', true],
  ['healthMonitor.maxConsecutiveErrors', 'integer'],
  ['healthMonitor.minSamples', 'integer'],
  ['healthMonitor.maxAge', 'number'],
  ['healthMonitor.window', 'number'],
  ['recovery', 'section'],
  ['recovery.strategy', 'enum'],
  ['recovery.initialRecoveryRate', 'number'],
  ['recovery.maxRecoveryRate', 'number'],
  ['recovery.recoveryInterval', 'number'],
  ['recovery.recoveryIncrement', 'number'],
  ['recovery.successThreshold', 'integer'],
  ['recovery.failureThreshold', 'integer'],
  ['recovery.maxRecoveryTime', 'number', true],
  ['recovery.cooldownPeriod', 'number'],
  ['populationGuard', 'section'],
  ['populationGuard.maxOpenShare', 'number'],
  ['populationGuard.localFailureShare', 'number'],
  ['populationGuard.minPeersForLocalSuspicion', 'integer', true],
  ['populationGuard.localFailureWindow', 'number'],
  ['populationGuard.outlierDetection', 'boolean'],
  ['populationGuard.outlierStdevFactor', 'number'],
  ['populationGuard.outlierMinVolume', 'integer'],
  ['populationGuard.outlierMinPeers', 'integer'],
  ['populationGuard.outlierInterval', 'number'],
  ['autoTune', 'section'],
  ['autoTune.rateWindow', 'number'],
  ['autoTune.rateSmoothing', 'number'],
  ['autoTune.minTripRequests', 'integer'],
  ['autoTune.maxTripRequests', 'integer'],
  ['autoTune.minTripFailureRatio', 'number'],
  ['autoTune.maxTripFailureRatio', 'number'],
  ['autoTune.minRampSpeed', 'number'],
  ['autoTune.maxRampSpeed', 'number']
]

type Init = BitswapCircuitBreakerInit
/** Every option by name, so that typecheck fails here when an option is added without a row above */
const EVERY_OPTION: {
  top: Record<Exclude<keyof Init, 'initialState'>, true>
  observe: Record<keyof NonNullable<Init['observe']>, true>
  openStream: Record<keyof NonNullable<Init['openStream']>, true>
  circuitBreaker: Record<keyof NonNullable<Init['circuitBreaker']>, true>
  healthMonitor: Record<keyof NonNullable<Init['healthMonitor']>, true>
  recovery: Record<keyof NonNullable<Init['recovery']>, true>
  populationGuard: Record<keyof NonNullable<Init['populationGuard']>, true>
  autoTune: Record<keyof NonNullable<Init['autoTune']>, true>
} = {
  top: { protocols: true, disconnectOnOpen: true, redialOnHalfOpen: true, observeMessages: true, releaseWaits: true, allowlist: true, responseDeadline: true, rampConcurrency: true, random: true, clock: true, enableAutoRecovery: true, enableHealthBasedTripping: true, enableAutoTuning: true, maxPeers: true, idleTimeout: true, observe: true, openStream: true, circuitBreaker: true, healthMonitor: true, recovery: true, populationGuard: true, autoTune: true },
  observe: { maxMessageSize: true, minDeadline: true, maxDeadline: true, coldDeadline: true, coldRttMultiplier: true, deadlineMultiplier: true, ewmaAlpha: true, maxWantsPerPeer: true, maxPeers: true, settledRetention: true, maxInboundStreamsPerPeer: true, maxInboundBytesPerSecond: true, maxInboundBurstBytes: true, maxInboundBufferedBytes: true, maxWantlistEntries: true, maxWantlistEntriesPerSecond: true },
  openStream: { coldDeadline: true, coldMultiplier: true, sampleMultiplier: true, minSamples: true, sampleWindow: true, minDeadline: true, maxDeadline: true, unconnectedFloor: true, firstOpenHold: true, neutralErrors: true, clock: true },
  circuitBreaker: { maxRequests: true, interval: true, timeout: true, readyToTrip: true, isSuccessful: true, onStateChange: true, backoffMultiplier: true, maxTimeout: true, jitter: true, backoffDecay: true, maxHalfOpenDwell: true },
  healthMonitor: { healthyThreshold: true, degradedThreshold: true, maxResponseTime: true, maxConsecutiveErrors: true, minSamples: true, maxAge: true, window: true },
  recovery: { strategy: true, initialRecoveryRate: true, maxRecoveryRate: true, recoveryInterval: true, recoveryIncrement: true, successThreshold: true, failureThreshold: true, maxRecoveryTime: true, cooldownPeriod: true },
  populationGuard: { maxOpenShare: true, localFailureShare: true, minPeersForLocalSuspicion: true, localFailureWindow: true, outlierDetection: true, outlierStdevFactor: true, outlierMinVolume: true, outlierMinPeers: true, outlierInterval: true },
  autoTune: { rateWindow: true, rateSmoothing: true, minTripRequests: true, maxTripRequests: true, minTripFailureRatio: true, maxTripFailureRatio: true, minRampSpeed: true, maxRampSpeed: true }
}

/** `null` means something only here (documented on each option) */
const NULL_ALLOWED = new Set(['circuitBreaker.readyToTrip', 'circuitBreaker.onStateChange'])

interface BadValue {
  label: string
  value: unknown
  /** The path the error must name (a list item is `path[i]`) */
  names?: string
}

function badValues (path: string, kind: Kind, infinityIsOff = false): BadValue[] {
  const out: BadValue[] = []
  if (!NULL_ALLOWED.has(path)) {
    out.push({ label: 'null', value: null })
  }
  switch (kind) {
    case 'number':
    case 'integer':
      out.push({ label: 'NaN', value: Number.NaN }, { label: 'negative', value: -1 }, { label: 'a numeric string', value: '5' }, { label: 'a boolean', value: true })
      if (!infinityIsOff) {
        out.push({ label: 'Infinity', value: Infinity })
      }
      out.push({ label: '-Infinity', value: -Infinity })
      if (kind === 'integer') {
        out.push({ label: 'a fraction', value: 2.5 })
      }
      break
    case 'boolean':
      out.push({ label: 'the string "false"', value: 'false' }, { label: '0', value: 0 }, { label: '"no"', value: 'no' })
      break
    case 'function':
      out.push({ label: 'a string', value: 'yes' }, { label: 'a number', value: 5 })
      break
    case 'enum':
      out.push({ label: 'an unknown name', value: 'FAST' }, { label: 'lower case', value: 'linear' }, { label: 'a number', value: 1 })
      break
    case 'section':
      out.push({ label: 'a number', value: 5 }, { label: 'a string', value: 'strict' }, { label: 'an array', value: [] })
      break
    case 'list':
      out.push({ label: 'a string', value: '/ipfs/bitswap/1.2.0' }, { label: 'an object', value: {} })
      out.push({ label: '[null]', value: [null], names: `${path}[0]` })
      out.push({ label: '[5]', value: [5], names: `${path}[0]` })
      if (path === 'protocols') {
        out.push({ label: 'empty', value: [] }, { label: 'an id without "/"', value: ['ipfs/bitswap'], names: 'protocols[0]' })
      }
      if (path === 'allowlist') {
        out.push({ label: 'a typo of a peer id', value: ['12D3KooWnot-a-peer'], names: 'allowlist[0]' })
      }
      if (path === 'openStream.neutralErrors') {
        out.push({ label: 'an empty name', value: [''], names: 'openStream.neutralErrors[0]' })
      }
      break
  }
  return out
}

/** `{ a: { b: value } }` for the path `a.b` */
function initWith (path: string, value: unknown): BitswapCircuitBreakerInit {
  const [head, tail] = path.split('.')
  return (tail === undefined ? { [head]: value } : { [head]: { [tail]: value } }) as BitswapCircuitBreakerInit
}

interface Probe {
  started: boolean
  components?: FixtureComponents
}

/** A service built just before ours: it sees the components and whether libp2p started anything */
function probeService (probe: Probe): (components: FixtureComponents) => Startable {
  return (components) => {
    probe.components = components
    return {
      start: () => { probe.started = true },
      stop: () => {}
    }
  }
}

/** A ComponentLogger that keeps every formatted line (`%d`, `%s`, `%p` and `%e` substituted) */
function capturingLogger (lines: string[]): ComponentLogger {
  const make = (name: string): Logger => {
    const log = ((format: string, ...args: unknown[]) => {
      let i = 0
      lines.push(`${name} ${String(format).replace(/%[dspe]/g, () => String(args[i++]))}`)
    }) as Logger
    return Object.assign(log, { error: log, trace: () => {}, enabled: true, newScope: (scope: string) => make(`${name}:${scope}`) })
  }
  return { forComponent: make }
}

async function tryNode (init: BitswapCircuitBreakerInit, privateKey: PrivateKey): Promise<{ error: Error | undefined, probe: Probe }> {
  const probe: Probe = { started: false }
  let error: Error | undefined
  try {
    const node = await createLibp2p({
      ...libp2pConfig({ listen: false }),
      privateKey,
      services: {
        probe: probeService(probe),
        breaker: bitswapCircuitBreaker(init)
      }
    })
    await node.stop()
  } catch (err) {
    error = err as Error
  }
  return { error, probe }
}

function assertNothingInstalled (probe: Probe): void {
  assert.equal(probe.started, false, 'libp2p started a component')
  const components = probe.components
  assert.ok(components != null, 'the probe was built')
  for (const protocol of DEFAULT_BITSWAP_PROTOCOLS) {
    assert.equal(components.registrar.getMiddleware(protocol).length, 0, `middleware left on ${protocol}`)
  }
  assert.equal(Object.hasOwn(components.connectionManager, 'openStream'), false, 'openStream was wrapped')
}

describe('bad config on a real libp2p node', function () {
  this.timeout(120_000)
  let privateKey: PrivateKey

  before(async () => {
    privateKey = await generateKeyPair('Ed25519')
  })

  const cases = OPTIONS.flatMap(([path, kind, off]) => badValues(path, kind, off).map(bad => ({ path, ...bad })))

  it(`covers at least 70 bad values (has ${cases.length}) over every option`, () => {
    assert.ok(cases.length >= 70)
    assert.equal(new Set(cases.map(c => c.path)).size, OPTIONS.length)
    const every = [
      ...Object.keys(EVERY_OPTION.top),
      ...Object.entries(EVERY_OPTION).filter(([section]) => section !== 'top').flatMap(([section, fields]) => Object.keys(fields).map(f => `${section}.${f}`))
    ].sort()
    assert.deepEqual(OPTIONS.map(([path]) => path).sort(), every)
  })

  for (const { path, label, value, names } of cases) {
    it(`${path} = ${label}: InvalidConfigError naming it, and nothing started`, async () => {
      const { error, probe } = await tryNode(initWith(path, value), privateKey)
      assert.ok(error != null, 'createLibp2p accepted it')
      assert.equal(error.name, 'InvalidConfigError', error.stack)
      const field = names ?? path
      assert.ok(error.message.startsWith(`${field} must be `), `"${error.message}" does not start with "${field} must be "`)
      const got = names != null && Array.isArray(value) ? value[0] : value
      assert.ok(error.message.endsWith(`, got ${describeValue(got)}`), `"${error.message}" does not say what it got`)
      assertNothingInstalled(probe)
    })
  }

  it('a bad snapshot in initialState throws InvalidSnapshotError, and nothing started', async () => {
    const { error, probe } = await tryNode({ initialState: { version: 1, takenAt: 0, peers: null } as unknown as BitswapCircuitBreakerInit['initialState'] }, privateKey)
    assert.equal(error?.name, 'InvalidSnapshotError')
    assert.match(error.message, /^initialState\.peers must be an array/)
    assertNothingInstalled(probe)
  })

  it('initialState with peer strings that are not peer ids: skipped, counted in the status and in one log line', async () => {
    const lines: string[] = []
    const valid = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const now = Date.now()
    const open = (peer: string): object => ({ peer, state: 'OPEN', openUntil: now + 30_000, backoffLevel: 1, isolated: false })
    const initialState = { version: 1, takenAt: now, peers: [open('not-a-peer'), open(valid), open('12D3KooWPeerA')] } as unknown as BitswapCircuitBreakerInit['initialState']
    const node = await createLibp2p({
      ...libp2pConfig({ listen: false }),
      privateKey,
      logger: capturingLogger(lines),
      services: { breaker: bitswapCircuitBreaker({ initialState }) }
    })
    try {
      const restored = node.services.breaker.getOverallStatus().restored
      assert.equal(restored?.restored, 1)
      assert.equal(restored?.invalidPeers, 2)
      assert.equal(node.services.breaker.getPeerStatus(valid).circuitState, 'OPEN')
      const logged = lines.filter(line => line.startsWith('libp2p:bitswap-circuit-breaker initialState:'))
      assert.deepEqual(logged, ['libp2p:bitswap-circuit-breaker initialState: restored 1 peers; skipped 2 invalid peer ids and 0 duplicates, dropped 0 whose open time had ended and 0 over half the peer table'])
    } finally {
      await node.stop()
    }
  })

  it('the same harness starts a node whose config is valid (so the checks above can fail)', async () => {
    const probe: Probe = { started: false }
    const node = await createLibp2p({
      ...libp2pConfig({ listen: false }),
      privateKey,
      services: { probe: probeService(probe), breaker: bitswapCircuitBreaker({ allowlist: [peerIdFromPrivateKey(privateKey)], protocols: ['/ipfs/bitswap/1.2.0'] }) }
    })
    try {
      assert.equal(probe.started, true)
      assert.equal(node.status, 'started')
      assert.equal(probe.components?.registrar.getMiddleware('/ipfs/bitswap/1.2.0').length, 1)
    } finally {
      await node.stop()
    }
  })
})
