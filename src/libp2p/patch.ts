/**
 * The one way we replace a method on a libp2p object (the gater, the connection manager, the
 * registrar): libp2p reads these methods at call time, so an own property on the very object is
 * how a service hooks in, and stop() must leave the object exactly as it was.
 *
 * - `restore()` puts back what was there: the previous own method, or no own property at all if
 *   the method was inherited or absent. Idempotent.
 * - If someone replaced the method on top of ours, ours cannot be taken out of the middle of their
 *   chain: it becomes a pass-through to what it wrapped (or, with `keepWhenCovered`, keeps working,
 *   for a fix the outer wrapper may still rely on). When the outer patch is restored, it skips the
 *   pass-throughs below it, so restoring several patches in any order leaves the original state.
 */

type Method = (this: unknown, ...args: never[]) => unknown

export interface MethodPatch<F> {
  /** The function now installed on the object (ours, until someone replaces it) */
  readonly installed: F
  /** See the module comment; later calls do nothing */
  restore(): void
}

export interface PatchOptions {
  /** After a restore while covered by someone else's patch, keep ours working rather than passing through */
  keepWhenCovered?: boolean
}

interface Patch {
  /** What the method was before this patch (may be inherited or undefined) */
  readonly previous: Method | undefined
  /** Whether the object had it as an own property */
  readonly hadOwn: boolean
  active: boolean
}

/** Every installed function of a live patch, so an outer restore can skip inner ones already restored */
const patches = new WeakMap<Method, Patch>()

/**
 * Replaces `target[name]` with `replace(previous)`. The replacement is called with the caller's
 * `this` (the object itself when called bare); `previous` is what was there, maybe undefined.
 */
export function patchMethod<T extends object, K extends keyof T> (target: T, name: K, replace: (previous: T[K]) => T[K], options: PatchOptions = {}): MethodPatch<T[K]> {
  const object = target as Record<K, Method | undefined>
  const previous = object[name]
  const patch: Patch = { previous, hadOwn: Object.prototype.hasOwnProperty.call(target, name), active: true }
  const replacement = replace(previous as T[K]) as Method
  const installed: Method = function (this: unknown, ...args: never[]): unknown {
    if (patch.active) {
      return Reflect.apply(replacement, this ?? target, args)
    }
    return patch.previous === undefined ? undefined : Reflect.apply(patch.previous, this ?? target, args)
  }
  patches.set(installed, patch)
  object[name] = installed

  let restored = false
  return {
    installed: installed as T[K],
    restore () {
      if (restored) {
        return
      }
      restored = true
      if (object[name] !== installed) {
        // someone patched on top of us: stay in their chain
        patch.active = options.keepWhenCovered === true
        return
      }
      patch.active = false
      patches.delete(installed)
      // skip inner patches that were restored while we were on top of them
      let { previous, hadOwn } = patch
      let inner = previous === undefined ? undefined : patches.get(previous)
      while (inner !== undefined && !inner.active) {
        patches.delete(previous as Method)
        previous = inner.previous
        hadOwn = inner.hadOwn
        inner = previous === undefined ? undefined : patches.get(previous)
      }
      if (hadOwn) {
        object[name] = previous
      } else {
        delete object[name]
      }
    }
  }
}
