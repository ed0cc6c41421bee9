import { Uint8ArrayList } from 'uint8arraylist'
import { FrameTooLargeError, InvalidFrameError } from './errors.ts'

/** @helia/bitswap 4.0.19's effective inbound and outbound limit (its docs say 2 MiB; the code uses 4) */
export const DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024

/** it-length-prefixed's limit on the length prefix itself */
const MAX_LENGTH_LENGTH = 8

/** A view keeping alive a buffer more than this many times its own length is copied before it is held */
const MAX_PIN_RATIO = 2

/**
 * The chunk with each view that pins a buffer over twice its length replaced by a copy (the chunk
 * itself when none does). noise decrypts messages under 1200 bytes in place, so the 29-byte tail of
 * a yamux frame kept a whole 64 KiB socket read alive: held partial frames cost twice what they counted.
 * (A copy, not `slice()`: on a Node Buffer that is another view.)
 */
export function unpinned (chunk: Uint8Array | Uint8ArrayList): Uint8Array | Uint8ArrayList {
  if (chunk instanceof Uint8Array) {
    return pins(chunk) ? new Uint8Array(chunk) : chunk
  }
  let pinning = false
  for (const view of chunk) {
    if (pins(view)) {
      pinning = true
      break
    }
  }
  if (!pinning) {
    return chunk
  }
  const copy = new Uint8ArrayList()
  for (const view of chunk) {
    copy.append(pins(view) ? new Uint8Array(view) : view)
  }
  return copy
}

function pins (view: Uint8Array): boolean {
  return view.buffer.byteLength > view.byteLength * MAX_PIN_RATIO
}

export interface FrameDecoderInit {
  /** Largest frame body accepted, in bytes (default 4 MiB, as @helia/bitswap) */
  maxMessageSize?: number
}

/**
 * Incremental decoder of unsigned-varint length-prefixed frames, the framing of every Bitswap
 * message. Push chunks as they arrive and pull whole frames with `next()`.
 *
 * A frame inside one chunk is returned as a view of that chunk (no copy); one spanning chunks is
 * joined once. Views stay valid after later pushes: chunks are never written to.
 *
 * Unlike it-length-prefixed, a non-minimal prefix (e.g. `80 00`) is rejected: helia's decoder
 * consumes `encodingLength(value)` bytes for it, so such a prefix desynchronises the stream there.
 * A prefix announcing more than `maxMessageSize` is rejected as soon as the bytes seen prove it,
 * before the body is buffered. After an error the stream is unusable: abort it (or `reset()`).
 */
export class FrameDecoder {
  readonly maxMessageSize: number
  private readonly buffer = new Uint8ArrayList()
  /** Body length of the frame being assembled, or -1 while its prefix is still incomplete */
  private bodyLength = -1
  /** Bytes taken by that frame's prefix */
  private prefixLength = 0

  constructor (init: FrameDecoderInit = {}) {
    this.maxMessageSize = init.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE
  }

  /** Adds received bytes. Empty chunks are ignored. */
  push (chunk: Uint8Array | Uint8ArrayList): void {
    if (chunk.byteLength > 0) {
      this.buffer.append(chunk)
    }
  }

  /**
   * The next complete frame body, or undefined until more bytes arrive. Throws
   * `FrameTooLargeError` or `InvalidFrameError` for a bad prefix.
   */
  next (): Uint8Array | undefined {
    if (this.bodyLength < 0 && !this.readPrefix()) {
      return undefined
    }
    const end = this.prefixLength + this.bodyLength
    if (this.buffer.byteLength < end) {
      return undefined
    }
    const frame = this.buffer.subarray(this.prefixLength, end)
    this.buffer.consume(end)
    this.bodyLength = -1
    this.prefixLength = 0
    return frame
  }

  /** Bytes received and not yet returned as frames (prefixes included) */
  get bufferedBytes (): number {
    return this.buffer.byteLength
  }

  /**
   * Bytes the partial frame will take once whole (prefix and announced body; while the prefix is
   * incomplete, the bytes buffered). Read after `next()` returned undefined.
   */
  get frameBytes (): number {
    return this.bodyLength < 0 ? this.buffer.byteLength : this.prefixLength + this.bodyLength
  }

  /** True when no partial frame is buffered: a clean point for the stream to end */
  get idle (): boolean {
    return this.buffer.byteLength === 0
  }

  /** Call when the stream ends: throws `InvalidFrameError` if it ended inside a frame */
  end (): void {
    if (this.buffer.byteLength > 0) {
      const remaining = this.buffer.byteLength
      this.reset()
      throw new InvalidFrameError(`stream ended inside a frame (${remaining} bytes buffered)`)
    }
  }

  /** Drops buffered bytes and any partial frame */
  reset (): void {
    this.buffer.consume(this.buffer.byteLength)
    this.bodyLength = -1
    this.prefixLength = 0
  }

  /** Parses the length prefix if all of it has arrived; returns whether it did */
  private readPrefix (): boolean {
    const available = this.buffer.byteLength
    let value = 0
    let scale = 1
    for (let i = 0; i < MAX_LENGTH_LENGTH; i++) {
      if (i >= available) {
        return false
      }
      const byte = this.buffer.get(i)
      // multiplication, not shifts: the value may pass 2^31 before we reject it
      value += (byte & 0x7f) * scale
      scale *= 128
      if (value > this.maxMessageSize) {
        // later bytes can only add to the value, so this prefix can never be acceptable
        throw new FrameTooLargeError(`frame of at least ${value} bytes exceeds the ${this.maxMessageSize} byte limit`)
      }
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) {
          throw new InvalidFrameError('non-minimal varint length prefix')
        }
        this.bodyLength = value
        this.prefixLength = i + 1
        return true
      }
    }
    throw new InvalidFrameError(`length prefix longer than ${MAX_LENGTH_LENGTH} bytes`)
  }
}
