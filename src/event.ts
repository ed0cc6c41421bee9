/**
 * Disposable events in the style of cockatiel: `const d = thing.onX(listener)` subscribes,
 * `d.dispose()` unsubscribes. Emitting with no listener costs one length check.
 */

/** What `onX(listener)` returns */
export interface Disposable {
  /** Unsubscribes (or, for `isolatePeer`, releases); later calls do nothing */
  dispose(): void
}

/** A listener of `onX` events */
export type Listener<T> = (value: T) => void

export class EventEmitter<T> {
  private listeners: Array<Listener<T>> = []

  /** Subscribes; bound so it can be exposed as `readonly onX = emitter.listen` */
  readonly listen = (listener: Listener<T>): Disposable => {
    this.listeners = [...this.listeners, listener]
    return {
      dispose: () => {
        this.listeners = this.listeners.filter(l => l !== listener)
      }
    }
  }

  get size (): number {
    return this.listeners.length
  }

  /**
   * Calls every listener. A throwing listener does not stop the others or the caller: state has
   * already changed, and a user callback must not corrupt it.
   */
  emit (value: T): void {
    const listeners = this.listeners
    for (let i = 0; i < listeners.length; i++) {
      try {
        listeners[i](value)
      } catch {
        // listeners' errors are theirs; the breaker's state is already consistent
      }
    }
  }

  clear (): void {
    this.listeners = []
  }
}
