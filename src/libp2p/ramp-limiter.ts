import { patchMethod } from './patch.ts'
import type { PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

type OpenStream = ConnectionManager['openStream']

interface PeerSlots {
  active: number
  waiting: Array<() => void>
  /** Set by `restore`: the limiter no longer limits these, and no longer owns the peer's map entry */
  released: boolean
}

/**
 * How the recovery ramp throttles Bitswap after a circuit closes: a recovering peer gets at most
 * `limitOf(peer)` outbound Bitswap opens at once (the ramp rate times a ceiling, at least one),
 * and further opens WAIT for a slot instead of failing.
 *
 * Why not refuse a fraction of sends, as `RecoveryManager.shouldAllowRequest` does for
 * `executeRequest`: @helia/bitswap re-sends a refused wantlist only when another want or cancel
 * comes along, so refusing the send to the only peer that holds a block stalls the fetch for good
 * (measured: 4 of 20 blocks arrived). Waiting costs nothing but time, and while one send waits,
 * Bitswap merges later messages for that peer into the queued one, so the peer really receives
 * fewer, larger messages until the ramp completes.
 */
export class RampLimiter {
  private readonly peers = new Map<string, PeerSlots>()

  constructor (private readonly limitOf: (peer: PeerId) => number) {}

  /** Wraps `connectionManager.openStream` (as an instance property, see patch.ts) for the given protocols */
  wrap (cm: ConnectionManager, protocols: readonly string[]): () => void {
    const wanted = new Set(protocols)
    const patch = patchMethod(cm, 'openStream', (original: OpenStream): OpenStream => (target, protocol, options) => {
      if (!isPeerIdLike(target) || !matches(protocol, wanted)) {
        return original.call(cm, target, protocol, options)
      }
      const limit = this.limitOf(target)
      if (limit === Infinity && !this.peers.has(target.toString())) {
        return original.call(cm, target, protocol, options)
      }
      return this.limited(target, limit, async () => original.call(cm, target, protocol, options), options?.signal)
    })
    return () => {
      patch.restore()
      for (const slots of this.peers.values()) {
        slots.released = true
        slots.waiting.splice(0).forEach(wake => { wake() })
      }
      this.peers.clear()
    }
  }

  private async limited (peer: PeerId, limit: number, open: () => Promise<Stream>, signal?: AbortSignal): Promise<Stream> {
    const key = peer.toString()
    let slots = this.peers.get(key)
    if (slots == null) {
      slots = { active: 0, waiting: [], released: false }
      this.peers.set(key, slots)
    }
    // once released, a woken waiter goes ahead: the limiter it waited for is gone
    while (!slots.released && slots.active >= limit) {
      await waitForSlot(slots, signal)
      limit = this.limitOf(peer)
    }
    slots.active++
    try {
      return await open()
    } finally {
      slots.active--
      const wake = slots.waiting.shift()
      if (wake != null) {
        wake()
      } else if (slots.active === 0 && !slots.released) {
        // a released entry is no longer in the map, but a new wrap's entry for the same peer may be
        this.peers.delete(key)
      }
    }
  }
}

async function waitForSlot (slots: PeerSlots, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      const index = slots.waiting.indexOf(wake)
      if (index !== -1) {
        slots.waiting.splice(index, 1)
      }
      reject(signal?.reason)
    }
    const wake = (): void => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    slots.waiting.push(wake)
  })
}

function isPeerIdLike (target: unknown): target is PeerId {
  return target != null && typeof target === 'object' && typeof (target as PeerId).toMultihash === 'function'
}

function matches (protocol: string | string[], wanted: Set<string>): boolean {
  if (typeof protocol === 'string') {
    return wanted.has(protocol)
  }
  for (const p of protocol) {
    if (wanted.has(p)) {
      return true
    }
  }
  return false
}
