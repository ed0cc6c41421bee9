/**
 * Runs the scenario once on fresh in-process nodes (memory transport, nothing leaves the process):
 * a consumer, with or without the breaker, a healthy provider and a flaky one whose fault mode
 * follows PHASES. Records everything the live view, the summary and the picture need.
 */

import { bitswapCircuitBreaker } from '../src/index.ts'
import { TestNet, connect, fetchAll } from '../fixtures/index.ts'
import { FLAKY, HEALTHY } from './recording.ts'
import { PHASES, SCENARIO, breakerSettings, phaseAt } from './scenario.ts'
import type { DemoEvent, DemoEventKind, PeerIndex, PeerSample, RunRecording, Sample } from './recording.ts'
import type { BitswapCircuitBreakerService, CircuitEventDetail, RecoveryEventDetail } from '../src/index.ts'
import type { FetchResult, HeliaNode, TestBlock } from '../fixtures/index.ts'
import type { PeerId } from '@libp2p/interface'

/** What the run reports while it goes */
export interface RunObserver {
  sample(sample: Sample): void
  event(event: DemoEvent): void
}

export interface DemoBlocks {
  /** Per wave: held by the healthy provider, every other one also by the flaky one */
  shared: TestBlock[][]
  /** Per wave: held only by the flaky provider */
  own: TestBlock[][]
}

interface BreakerServices extends Record<string, unknown> {
  breaker: BitswapCircuitBreakerService
}

const SAMPLE_EVERY = 100

export async function runScenario (protect: boolean, blocks: DemoBlocks, observer: RunObserver): Promise<RunRecording> {
  const net = new TestNet()
  const timers: Array<ReturnType<typeof setTimeout>> = []

  try {
    const healthy = await net.provider({ blocks: blocks.shared.flat() })
    const flaky = await net.provider({
      blocks: [...blocks.shared.flatMap(wave => wave.filter((_, i) => i % 2 === 0)), ...blocks.own.flat()]
    })
    let consumer: HeliaNode
    let service: BitswapCircuitBreakerService | undefined

    if (protect) {
      const node = await net.helia<BreakerServices>({ services: { breaker: bitswapCircuitBreaker(breakerSettings()) } })
      service = node.libp2p.services.breaker
      consumer = node
    } else {
      consumer = await net.helia()
    }

    await connect(consumer, healthy.helia)
    await connect(consumer, flaky.helia)

    const providers: [PeerId, PeerId] = [healthy.peerId, flaky.peerId]
    const indexOf = (peer: PeerId): PeerIndex | undefined => {
      if (peer.equals(providers[HEALTHY])) {
        return HEALTHY
      }
      return peer.equals(providers[FLAKY]) ? FLAKY : undefined
    }

    const started = performance.now()
    const now = (): number => performance.now() - started
    const recording: RunRecording = {
      protected: protect,
      ms: 0,
      total: blocks.shared.flat().length + blocks.own.flat().length,
      received: 0,
      lost: 0,
      corrupt: 0,
      lostOwn: 0,
      arrivals: [[], []],
      longestWait: 0,
      samples: [],
      events: [],
      gaveUp: false
    }
    const emit = (event: DemoEvent): void => {
      recording.events.push(event)
      observer.event(event)
    }

    if (service != null) {
      listen(service, indexOf, now, emit)
    }

    // the flaky provider's script
    for (let i = 1; i < PHASES.length; i++) {
      const phase = PHASES[i]
      timers.push(setTimeout(() => {
        flaky.set(phase.mode)
        emit({ t: now(), kind: 'phase', phase: i })
      }, phase.at))
    }
    emit({ t: 0, kind: 'phase', phase: 0 })

    const peerSample = (index: PeerIndex): PeerSample => {
      const peer = providers[index]
      const sample: PeerSample = {
        blocks: recording.arrivals[index].length,
        connected: consumer.libp2p.getConnections(peer).length > 0
      }
      if (service != null) {
        const status = service.getPeerStatus(peer)
        const health = status.health
        sample.circuit = status.circuitState
        sample.health = status.healthStatus
        sample.recovering = status.isRecovering
        sample.rate = status.recoveryRate
        sample.openFor = status.openUntil > 0 ? Math.max(0, status.openUntil - Date.now()) : 0
        sample.ok = health == null ? 0 : health.totalRequests - health.errorCount
        sample.fail = health?.errorCount ?? 0
        sample.lastError = errorName(health?.lastError)
      }
      return sample
    }
    const takeSample = (): void => {
      const t = now()
      const sample: Sample = {
        t,
        phase: phaseAt(t),
        peers: [peerSample(HEALTHY), peerSample(FLAKY)],
        received: recording.received,
        lost: recording.lost
      }
      recording.samples.push(sample)
      observer.sample(sample)
    }
    const sampler = setInterval(takeSample, SAMPLE_EVERY)
    takeSample()

    // which provider answered: helia reports the sender of each block it got over Bitswap
    const onProgress = (evt: { type: string, detail?: unknown }): void => {
      if (evt.type !== 'bitswap:block') {
        return
      }
      const sender = (evt.detail as { sender?: PeerId } | undefined)?.sender
      const index = sender == null ? undefined : indexOf(sender)
      if (index != null) {
        recording.arrivals[index].push(now())
      }
    }
    const tally = (result: FetchResult, own: boolean): void => {
      recording.received += result.received
      recording.lost += result.lost
      recording.corrupt += result.corrupt
      if (own) {
        recording.lostOwn += result.lost
      }
      for (const ms of result.latencies) {
        if (ms > recording.longestWait) {
          recording.longestWait = ms
        }
      }
    }

    // waves: the shared blocks are awaited (they pace the run), the flaky provider's own blocks wait
    // in the background for as long as it takes, until the grace period after the last wave
    const giveUp = new AbortController()
    const background: Array<Promise<void>> = []
    for (let wave = 0; wave < SCENARIO.waves; wave++) {
      const wait = wave * SCENARIO.period - now()
      if (wait > 0) {
        await new Promise(resolve => setTimeout(resolve, wait))
      }
      background.push(fetchAll(consumer, blocks.own[wave], { signal: giveUp.signal, timeout: 120_000, onProgress })
        .then(result => { tally(result, true) }))
      tally(await fetchAll(consumer, blocks.shared[wave], { signal: giveUp.signal, timeout: 15_000, onProgress }), false)
    }

    const grace = setTimeout(() => {
      recording.gaveUp = true
      giveUp.abort()
    }, SCENARIO.grace)
    await Promise.all(background)
    clearTimeout(grace)

    recording.ms = now()
    clearInterval(sampler)
    takeSample()
    return recording
  } finally {
    for (const timer of timers) {
      clearTimeout(timer)
    }
    await net.stop()
  }
}

function listen (service: BitswapCircuitBreakerService, indexOf: (peer: PeerId) => PeerIndex | undefined, now: () => number, emit: (event: DemoEvent) => void): void {
  const circuit = (kind: DemoEventKind) => (evt: CustomEvent<CircuitEventDetail>): void => {
    const peer = indexOf(evt.detail.peer)
    if (peer != null) {
      const error = errorName(service.getPeerStatus(evt.detail.peer).health?.lastError)
      emit({ t: now(), kind, peer, from: evt.detail.from, to: evt.detail.to, reason: evt.detail.reason, error })
    }
  }
  const recovery = (kind: DemoEventKind) => (evt: CustomEvent<RecoveryEventDetail>): void => {
    const peer = indexOf(evt.detail.peer)
    if (peer != null) {
      const t = now()
      // the engine starts a recovery inside the transition to CLOSED, before the close is announced
      queueMicrotask(() => { emit({ t, kind, peer, reason: evt.detail.reason }) })
    }
  }
  service.addEventListener('circuit:open', circuit('open'))
  service.addEventListener('circuit:half-open', circuit('half-open'))
  service.addEventListener('circuit:close', circuit('close'))
  service.addEventListener('recovery:start', recovery('recovery-start'))
  service.addEventListener('recovery:complete', recovery('recovery-complete'))
  service.addEventListener('recovery:fail', recovery('recovery-fail'))
}

function errorName (err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined
}
