/**
 * The one workaround for an upstream libp2p bug. Delete this file once the minimum supported libp2p
 * contains js-libp2p PR #3534 ("fix: handle terminal middleware without mutating chains").
 *
 * The bug (libp2p <= 3.3.11, `dist/src/connection.js`): `Connection.onIncomingStream` takes the array
 * `registrar.getMiddleware(protocol)` returns and pushes the protocol handler onto it. The registrar
 * hands out its stored array, so every inbound stream appends another handler: the Nth inbound stream
 * runs the handler N times, and outbound streams (which run the same array) run it too. With
 * @helia/bitswap that makes the provider's own handler close its block-sending streams, and every fetch
 * times out as soon as any middleware is registered on the Bitswap protocol.
 *
 * The workaround makes `getMiddleware` return a copy, so the push lands on a throwaway array.
 *
 * Detection: we probe the registrar, not the version. If `getMiddleware` already returns a fresh array
 * for a registered protocol (a registrar that copies, or a stub), nothing is patched. PR #3534, per its
 * description, copies the list in the connection before appending and does not touch the registrar, so
 * on a libp2p with that fix this still reports `applied`: the copy is then redundant but harmless (one
 * short array per stream). That is why the file should be deleted, not just left to detect. The unit
 * spec's "piles handlers up" case fails on the day libp2p is fixed, as the reminder.
 */

import { patchMethod } from './patch.ts'
import type { MethodPatch } from './patch.ts'
import type { StreamMiddleware } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'

/** The part of the registrar this workaround touches */
export type MiddlewareRegistrar = Pick<Registrar, 'use' | 'unuse' | 'getMiddleware'>

export interface MiddlewarePatch {
  /** True when `getMiddleware` hands out copies because of this workaround (ours or an earlier caller's) */
  readonly applied: boolean
  /** Release this caller's hold on the patch; the last release puts the original method back. Idempotent. */
  restore(): void
}

/** Shared by every caller patching the same registrar, so two services can patch and restore in any order */
interface PatchState {
  holders: number
  readonly patch: MethodPatch<MiddlewareRegistrar['getMiddleware']>
}

type PatchedGetMiddleware = MiddlewareRegistrar['getMiddleware'] & { [PATCH]?: PatchState }

/** Symbol.for so that two copies of this module loaded side by side still share one patch */
const PATCH = Symbol.for('bitswap-circuit-breaker/middleware-pileup-patch')

const NOT_APPLIED: MiddlewarePatch = Object.freeze({ applied: false, restore () {} })

let probes = 0

/**
 * Make `registrar.getMiddleware` return a copy when it would hand out its stored array. Call it before
 * any stream arrives (in a service's constructor or `start`), and call `restore()` on stop.
 */
export function patchMiddlewarePileup (registrar: MiddlewareRegistrar): MiddlewarePatch {
  let state = (registrar.getMiddleware as PatchedGetMiddleware)[PATCH]

  if (state == null) {
    if (!handsOutStoredArray(registrar)) {
      return NOT_APPLIED
    }
    // if someone wraps getMiddleware after us, our copy must stay under them even once released
    const patch = patchMethod(registrar, 'getMiddleware', (original) => (protocol: string): StreamMiddleware[] => original.call(registrar, protocol).slice(), { keepWhenCovered: true })
    state = { holders: 0, patch }
    ;(patch.installed as PatchedGetMiddleware)[PATCH] = state
  }

  state.holders++
  const held = state
  let released = false

  return {
    applied: true,
    restore () {
      if (released) {
        return
      }
      released = true
      held.holders--
      if (held.holders === 0) {
        held.patch.restore()
      }
    }
  }
}

/** Register a throwaway protocol and see whether `getMiddleware` returns the very array it stores */
function handsOutStoredArray (registrar: MiddlewareRegistrar): boolean {
  const protocol = `/bitswap-circuit-breaker/middleware-probe/${++probes}`
  const list: StreamMiddleware[] = [(stream, connection, next) => { next(stream, connection) }]

  registrar.use(protocol, list)

  try {
    const first = registrar.getMiddleware(protocol)
    return first === list || first === registrar.getMiddleware(protocol)
  } finally {
    registrar.unuse(protocol)
  }
}
