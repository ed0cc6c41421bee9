import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'

/**
 * Adds a deny rule to the node's connection gater, in place.
 *
 * libp2p keeps no list of gaters: `components.connectionGater` is the very object the user passed
 * as `connectionGater` (or `{}`), and the dial queue and upgrader read its methods at call time.
 * So we replace two methods on that object:
 *
 * - `denyDialPeer`: our own dials (a redial of a peer whose circuit is open);
 * - `denyInboundEncryptedConnection`: the earliest inbound hook that knows the remote peer.
 *
 * A peer is denied when `deny(peer)` is true OR the method that was there before says so. The
 * previous method's result is returned as-is, so sync and async answers both keep working
 * (libp2p awaits whatever comes back). `deny` runs first and is synchronous, so a denied peer
 * never waits on the user's gater.
 *
 * The returned function restores the previous state exactly: the previous own method, or no own
 * property at all if there was none (an inherited method shows through again).
 *
 * Stacking: if a second wrapper was installed on top of ours and ours is restored first, ours
 * cannot be taken out of the middle of the chain. It becomes a transparent pass-through instead,
 * and when the outer wrapper is restored it skips any such pass-throughs below it, so restoring
 * both, in either order, leaves exactly the original state.
 */

type Method = 'denyDialPeer' | 'denyInboundEncryptedConnection'
const METHODS: readonly Method[] = ['denyDialPeer', 'denyInboundEncryptedConnection']

type DenyFn = (this: unknown, peer: PeerId, maConn?: MultiaddrConnection) => boolean | Promise<boolean>

interface Wrapping {
  /** What `gater[method]` was before this wrapper (may be inherited or undefined) */
  previous: DenyFn | undefined
  /** Whether the gater had it as an own property */
  hadOwn: boolean
  active: boolean
}

/** Every live wrapper, so an outer restore can skip inner wrappers already restored */
const wrappings = new WeakMap<DenyFn, Wrapping>()

export function wrapGater (gater: ConnectionGater, deny: (peer: PeerId) => boolean): () => void {
  const target = gater as Record<Method, DenyFn | undefined>
  const installed: Array<[Method, DenyFn, Wrapping]> = []

  for (const method of METHODS) {
    const wrapping: Wrapping = {
      previous: target[method],
      hadOwn: Object.prototype.hasOwnProperty.call(gater, method),
      active: true
    }
    const wrapper: DenyFn = function (this: unknown, peer, maConn) {
      if (wrapping.active && deny(peer)) {
        return true
      }
      const previous = wrapping.previous
      if (previous == null) {
        return false
      }
      // libp2p calls these as methods of the gater (`apply(gater, args)`): keep that `this`
      return previous.call(this ?? gater, peer, maConn)
    }
    wrappings.set(wrapper, wrapping)
    target[method] = wrapper
    installed.push([method, wrapper, wrapping])
  }

  let restored = false
  return () => {
    if (restored) {
      return
    }
    restored = true
    for (const [method, wrapper, wrapping] of installed) {
      wrapping.active = false
      if (target[method] !== wrapper) {
        // someone wrapped on top of us: stay in their chain as a pass-through
        continue
      }
      wrappings.delete(wrapper)
      // skip inner wrappers that were restored while we were on top of them
      let { previous, hadOwn } = wrapping
      let inner = previous == null ? undefined : wrappings.get(previous)
      while (inner != null && !inner.active) {
        wrappings.delete(previous as DenyFn)
        previous = inner.previous
        hadOwn = inner.hadOwn
        inner = previous == null ? undefined : wrappings.get(previous)
      }
      if (hadOwn) {
        target[method] = previous
      } else {
        delete target[method]
      }
    }
  }
}
