import { AbortError } from '@libp2p/interface'
import { isAbortError } from '../errors.ts'
import { Outcome } from '../states.ts'
import type { Permit } from './permit.ts'

/** The protected call. It receives the caller's signal (if any) so it can stop early. */
export type ProtectedFunction<T> = (signal?: AbortSignal) => T | Promise<T>

/** Options of one protected call (`execute`, `executeWithPeer`, `executeRequest`) */
export interface ExecuteOptions {
  /** Aborting it makes the call's outcome neutral; an already-aborted signal rejects at once */
  signal?: AbortSignal
}

/** The error for an already-aborted signal: its reason if that is an AbortError, else a new one */
export function abortErrorFor (signal: AbortSignal): Error {
  const reason: unknown = signal.reason
  return isAbortError(reason) ? reason as Error : new AbortError()
}

/**
 * How a call ended. Aborts (the caller's signal fired, or an AbortError) are neutral; otherwise
 * the user's `isSuccessful` decides, and a throwing `isSuccessful` counts as a failure.
 */
export function classifyOutcome (isSuccessful: (err: unknown) => boolean, threw: boolean, err: unknown, signal: AbortSignal | undefined): Outcome {
  if (signal?.aborted === true || (threw && isAbortError(err))) {
    return Outcome.NEUTRAL
  }
  if (threw && err == null) {
    // `throw undefined` is still a throw: isSuccessful(undefined) would call it a success
    return Outcome.FAILURE
  }
  try {
    return isSuccessful(err) ? Outcome.SUCCESS : Outcome.FAILURE
  } catch {
    return Outcome.FAILURE
  }
}

/**
 * Runs `fn` under an admitted permit and settles the permit with the call's outcome. The
 * function's own result or error is passed through unchanged; a synchronous throw counts like a
 * rejection. A synchronous `fn` is settled at once, without waiting for a microtask.
 */
export function runAdmitted<T> (permit: Permit, isSuccessful: (err: unknown) => boolean, fn: ProtectedFunction<T>, signal: AbortSignal | undefined): Promise<T> {
  let value: T | PromiseLike<T>
  try {
    value = fn(signal)
  } catch (err) {
    permit.settle(classifyOutcome(isSuccessful, true, err, signal), 0, err)
    return Promise.reject(err)
  }
  if (isPromiseLike(value)) {
    return Promise.resolve(value).then(
      (result) => {
        permit.settle(classifyOutcome(isSuccessful, false, undefined, signal), 0)
        return result
      },
      (err: unknown) => {
        permit.settle(classifyOutcome(isSuccessful, true, err, signal), 0, err)
        throw err
      }
    )
  }
  permit.settle(classifyOutcome(isSuccessful, false, undefined, signal), 0)
  return Promise.resolve(value)
}

/** Runs `fn` with no circuit (an untracked peer), turning a synchronous throw into a rejection */
export function runUnprotected<T> (fn: ProtectedFunction<T>, signal: AbortSignal | undefined): Promise<T> {
  try {
    return Promise.resolve(fn(signal))
  } catch (err) {
    return Promise.reject(err)
  }
}

function isPromiseLike<T> (value: T | PromiseLike<T>): value is PromiseLike<T> {
  return value != null && typeof (value as { then?: unknown }).then === 'function'
}
