import type { ReleaseReason } from '../bitswap/want-release.ts'
import type { Counter, CounterGroup, Histogram, Metrics } from '@libp2p/interface'

/** Every metric name starts with this */
export const METRIC_PREFIX = 'libp2p_bitswap_circuit_breaker_'

/** Where calculated (scrape-time) metrics read their numbers from */
export interface MetricsSource {
  /** Peers per circuit state */
  circuitStates(): { closed: number, open: number, halfOpen: number }
  /** Peers per health status */
  healthStates(): { healthy: number, degraded: number, unhealthy: number, unknown: number }
  /** 1 while our own network is suspected (the population guard holds circuits closed), else 0 */
  localNetworkSuspected(): number
  /** Total time our own event loop was stalled while deadlines were pending, ms (deadline-scheduler.ts) */
  stalledMs(): number
}

/** `dial`: a connection (our dial, or an inbound one) denied by the gater while the circuit is OPEN */
export type RejectionDirection = 'inbound' | 'outbound' | 'dial'
/** Circuit refusals, then what the inbound abuse guard counts (see observer.ts) */
export type RejectionReason = 'open' | 'half_open' | 'recovery' | 'protocol_error' | 'unrequested' | 'stream_limit' | 'byte_limit' | 'wantlist_limit' | 'memory_limit'
export type RecoveryEvent = 'started' | 'completed' | 'failed'

/** Latency buckets in seconds, from a fast LAN answer to Bitswap's 10 s send timeout */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/**
 * The service's metrics, through the libp2p `Metrics` component (so `@libp2p/prometheus-metrics`
 * or any other implementation exposes them). Low cardinality on purpose: no per-peer labels;
 * per-peer detail is in `getPeerStatus()` and the events. Without a metrics component every
 * method is a no-op.
 */
export class ServiceMetrics {
  private readonly trips?: Counter
  private readonly rejections?: CounterGroup
  private readonly recoveries?: CounterGroup
  private readonly wantLatency?: Histogram
  private readonly misses?: Counter
  private readonly releases?: CounterGroup

  constructor (metrics: Metrics | undefined, source: MetricsSource) {
    if (metrics == null) {
      return
    }
    metrics.registerMetricGroup(`${METRIC_PREFIX}peers`, {
      label: 'state',
      help: 'Tracked Bitswap peers per circuit state',
      calculate: () => {
        const s = source.circuitStates()
        return { closed: s.closed, open: s.open, half_open: s.halfOpen }
      }
    })
    metrics.registerMetricGroup(`${METRIC_PREFIX}peer_health`, {
      label: 'status',
      help: 'Tracked Bitswap peers per health status',
      calculate: () => source.healthStates()
    })
    metrics.registerMetric(`${METRIC_PREFIX}local_network_suspected`, {
      help: '1 while most peers fail at once and circuits are held closed (our own network is suspected)',
      calculate: () => source.localNetworkSuspected()
    })
    // operators see our stalls (which never count against peers) beside the trips they could explain
    metrics.registerCounter(`${METRIC_PREFIX}event_loop_stalled_seconds_total`, {
      help: 'Time our own event loop was blocked while want deadlines were pending; deadlines were pushed back by it',
      calculate: () => source.stalledMs() / 1000
    })
    this.trips = metrics.registerCounter(`${METRIC_PREFIX}trips_total`, {
      help: 'Circuits opened'
    })
    this.rejections = metrics.registerCounterGroup(`${METRIC_PREFIX}rejections_total`, {
      label: 'rejection',
      help: 'Bitswap streams and dials refused, by direction and reason (e.g. outbound_open)'
    })
    this.recoveries = metrics.registerCounterGroup(`${METRIC_PREFIX}recoveries_total`, {
      label: 'event',
      help: 'Recovery ramps started, completed and failed'
    })
    this.wantLatency = metrics.registerHistogram(`${METRIC_PREFIX}want_response_seconds`, {
      help: 'Time from sending a want to its answer (block, HAVE or DONT_HAVE)',
      buckets: LATENCY_BUCKETS
    })
    this.misses = metrics.registerCounter(`${METRIC_PREFIX}want_misses_total`, {
      help: 'Wants that got no answer by the peer\'s adaptive deadline'
    })
    this.releases = metrics.registerCounterGroup(`${METRIC_PREFIX}released_wants_total`, {
      label: 'reason',
      help: 'Bitswap waits ended with a DONT_HAVE on behalf of a peer that will not answer, by why (deadline, circuit_open, disconnect, send_failed)'
    })
  }

  trip (): void {
    this.trips?.increment()
  }

  rejection (direction: RejectionDirection, reason: RejectionReason): void {
    this.rejections?.increment({ [`${direction}_${reason}`]: true })
  }

  recovery (event: RecoveryEvent): void {
    this.recoveries?.increment({ [event]: true })
  }

  answer (latencyMs: number): void {
    this.wantLatency?.observe(latencyMs / 1000)
  }

  miss (): void {
    this.misses?.increment()
  }

  released (reason: ReleaseReason): void {
    this.releases?.increment({ [reason]: true })
  }
}
