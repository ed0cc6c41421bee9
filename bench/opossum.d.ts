/**
 * The part of opossum 10 the benchmark uses (the package ships no types and @types/opossum is not
 * installed).
 */

declare module 'opossum' {
  import type { EventEmitter } from 'node:events'

  export interface RotateBucketController {
    on(event: string, listener: () => void): unknown
    removeListener(event: string, listener: () => void): unknown
    listenerCount(event: string, listener?: () => void): number
  }

  export interface CircuitBreakerOptions {
    /** ms, or false for no per-call timer */
    timeout?: number | false
    resetTimeout?: number
    errorThresholdPercentage?: number
    rollingCountTimeout?: number
    rollingCountBuckets?: number
    rollingPercentilesEnabled?: boolean
    enableSnapshots?: boolean
    rotateBucketController?: RotateBucketController
    name?: string
  }

  export default class CircuitBreaker<A extends unknown[] = unknown[], R = unknown> extends EventEmitter {
    constructor (action: (...args: A) => R | Promise<R>, options?: CircuitBreakerOptions)
    fire (...args: A): Promise<R>
    shutdown (): void
  }
}
