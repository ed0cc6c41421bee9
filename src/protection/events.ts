import { TypedEventEmitter } from '@libp2p/interface'
import type { TransitionEvent } from './types.ts'
import type { LocalSuspicionChange } from './population-guard.ts'
import type { Disposable } from '../event.ts'
import type { HealthStatusChange } from '../health/health-monitor.ts'
import type { RecoveryEvent, RecoveryFailedEvent } from '../recovery/recovery-manager.ts'

/** Everything the protection manager reports, as libp2p-style typed events */
export interface ProtectionEvents {
  /** A circuit changed state */
  'transition': CustomEvent<TransitionEvent>
  /** A recorded request changed a peer's health status */
  'health:change': CustomEvent<HealthStatusChange>
  'recovery:start': CustomEvent<RecoveryEvent>
  'recovery:complete': CustomEvent<RecoveryEvent>
  'recovery:fail': CustomEvent<RecoveryFailedEvent>
  /** Local-network suspicion started or cleared */
  'population:change': CustomEvent<LocalSuspicionChange>
}

type Detail<K extends keyof ProtectionEvents> = ProtectionEvents[K] extends CustomEvent<infer D> ? D : never

/**
 * The manager's one event target. Events raised while a transition is being reported (a recovery
 * that starts because its circuit closed) are held until the transition itself has gone out, so
 * listeners always see the cause first. Nothing is allocated for an event nobody listens to.
 */
export class ProtectionEmitter extends TypedEventEmitter<ProtectionEvents> {
  private holding = 0
  private readonly held: Array<() => void> = []

  /** Dispatches `detail` as `type` if anyone listens (held while a transition is being reported) @internal */
  emit<K extends keyof ProtectionEvents> (type: K, detail: Detail<K>): void {
    if (this.listenerCount(type) === 0) {
      return
    }
    if (this.holding > 0 && type !== 'transition') {
      this.held.push(() => { this.safeDispatchEvent(type, { detail }) })
      return
    }
    this.safeDispatchEvent(type, { detail })
  }

  /** Runs `fn` (which reports a transition) and then sends what it held back @internal */
  reportTransition (fn: () => void): void {
    this.holding++
    try {
      fn()
    } finally {
      this.holding--
    }
    if (this.holding === 0 && this.held.length > 0) {
      const held = this.held.splice(0)
      for (const send of held) {
        send()
      }
    }
  }

  /**
   * `listener` for every `type` event, cockatiel style: the returned handle unsubscribes. A
   * throwing listener is contained (the engine's state is already consistent).
   *
   * @internal
   */
  listen<K extends keyof ProtectionEvents> (type: K, listener: (detail: Detail<K>) => void): Disposable {
    const handler = (evt: ProtectionEvents[K]): void => {
      try {
        listener(evt.detail as Detail<K>)
      } catch {
        // the listener's error is its own
      }
    }
    this.addEventListener(type, handler as never)
    return { dispose: () => { this.removeEventListener(type, handler as never) } }
  }
}
