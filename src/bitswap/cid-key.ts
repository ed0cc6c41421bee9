/**
 * Cheap `Map` keys for CIDs and for CID prefixes, computed from raw bytes without decoding a CID
 * object or hashing anything.
 *
 * A block on the wire carries only its CID *prefix* (version, codec, multihash code, digest length)
 * and its data; the CID is known only after hashing the data, which the breaker's hot path must not
 * do. So blocks are matched to wants by prefix key: `prefixOfCid(want)` equals `prefixKey(prefix)`
 * for the block that answers it, for CIDv0 and CIDv1 alike.
 */

const fromCharCode = String.fromCharCode

/** Reused argument arrays, one per length, for the common short keys */
const SCRATCH_MAX = 128
const scratch: number[][] = []

/** Apply's argument count is bounded; longer inputs are converted in chunks of this size */
const CHUNK = 4096

/**
 * A latin1 string with one char per byte of `buf[start, end)`: injective, so equal keys mean equal
 * bytes. Measured on Node 24 for 36-byte CIDs against per-byte `+=` (a rope, slow to hash on
 * lookup), TextDecoder('latin1'), base64 and spreading the Uint8Array itself: filling a reused
 * number array and spreading it into `String.fromCharCode` is the fastest, 2-10x (~130-200 ns).
 */
function bytesKey (buf: Uint8Array, start: number, end: number): string {
  const length = end - start
  if (length <= SCRATCH_MAX) {
    let args = scratch[length]
    if (args === undefined) {
      args = new Array<number>(length).fill(0)
      scratch[length] = args
    }
    for (let i = 0; i < length; i++) {
      args[i] = buf[start + i]
    }
    return fromCharCode(...args)
  }
  // long (hostile) inputs only: slower, but bounded in argument count
  let key = ''
  for (let i = start; i < end; i += CHUNK) {
    key += fromCharCode(...buf.subarray(i, Math.min(i + CHUNK, end)))
  }
  return key
}

/** A map key for arbitrary bytes (latin1 string, one char per byte) */
export function cidKey (bytes: Uint8Array): string {
  return bytesKey(bytes, 0, bytes.length)
}

// The last unsigned varint read by `readUvarint`: module state so parsing allocates nothing
let uvarValue = 0

/**
 * Reads an unsigned varint of up to 5 bytes whose value fits in 32 bits (every multicodec, hash
 * code and digest length in use does); returns the position after it, or -1 if invalid or truncated.
 */
function readUvarint (buf: Uint8Array, pos: number, end: number): number {
  let value = 0
  let scale = 1
  for (let i = 0; i < 5; i++) {
    if (pos >= end) {
      return -1
    }
    const byte = buf[pos++]
    value += (byte & 0x7f) * scale
    if (byte < 0x80) {
      if (value > 0xffffffff) {
        return -1
      }
      uvarValue = value
      return pos
    }
    scale *= 128
  }
  return -1
}

/**
 * `readUvarint` for CID bytes, which multiformats also requires to be minimally encoded (no
 * trailing zero byte): returns -1 for a padded varint, as `CID.decode` throws for one.
 */
function readCidUvarint (buf: Uint8Array, pos: number, end: number): number {
  const next = readUvarint(buf, pos, end)
  if (next - pos > 1 && buf[next - 1] === 0) {
    return -1
  }
  return next
}

// What `parseCid` found: module state, read right after the call
let cidVersion = 0
let cidCodec = 0
let cidHashCode = 0
let cidDigestLength = 0
let cidMultihashStart = 0

const SHA2_256 = 0x12
const DAG_PB = 0x70

/**
 * Parses CID bytes as multiformats' `CID.decode` (14.x) accepts them, which is how @helia/bitswap
 * reads the CIDs of wants and presences:
 * - `<0x12><length><digest>`: a CIDv0, a bare multihash (any digest length)
 * - `<1><codec><hash code><length><digest>`: a CIDv1
 * - `<0><codec><hash code><length><digest>`: also a CIDv0 of that multihash, the codec ignored
 * Varints must be minimal, and the digest must end exactly at the end of the bytes. Unlike
 * multiformats, varints over 32 bits are refused (no multicodec or digest length needs them, and
 * `prefixKey` could not match them). Returns false for anything else.
 */
function parseCid (bytes: Uint8Array): boolean {
  const end = bytes.length
  let pos = readCidUvarint(bytes, 0, end)
  if (pos < 0) {
    return false
  }
  if (uvarValue === SHA2_256) {
    // the varint read was the multihash's own code
    cidVersion = 0
    cidCodec = DAG_PB
    cidMultihashStart = pos = 0
  } else if (uvarValue === 1 || uvarValue === 0) {
    cidVersion = uvarValue
    pos = readCidUvarint(bytes, pos, end)
    if (pos < 0) {
      return false
    }
    cidCodec = cidVersion === 0 ? DAG_PB : uvarValue
    cidMultihashStart = pos
  } else {
    return false
  }
  pos = readCidUvarint(bytes, pos, end)
  if (pos < 0) {
    return false
  }
  cidHashCode = uvarValue
  pos = readCidUvarint(bytes, pos, end)
  if (pos < 0) {
    return false
  }
  cidDigestLength = uvarValue
  return end - pos === cidDigestLength
}

/**
 * The key of a CID's multihash (code, length, digest), or undefined if the bytes are not a CID.
 * @helia/bitswap keys its wantlist by multihash and matches blocks and presences by digest, so the
 * same content asked for as CIDv0 and as CIDv1 is one want: wants are keyed the same way.
 */
export function multihashKey (cidBytes: Uint8Array): string | undefined {
  if (!parseCid(cidBytes)) {
    return undefined
  }
  return bytesKey(cidBytes, cidMultihashStart, cidBytes.length)
}

/** Interned prefix keys, so the steady state allocates no string per block or want */
const PREFIX_CACHE_MAX = 256
const prefixCache = new Map<number, string>()

function makePrefixKey (version: number, codec: number, hashCode: number, digestLength: number): string {
  // pack into an exact integer below 2^53 when the parts are small, as all common ones are
  if (codec < 0x1000000 && hashCode < 0x100000 && digestLength < 0x100) {
    const packed = ((codec * 0x100000 + hashCode) * 0x100 + digestLength) * 2 + version
    let key = prefixCache.get(packed)
    if (key === undefined) {
      if (prefixCache.size >= PREFIX_CACHE_MAX) {
        prefixCache.clear()
      }
      key = `${version}/${codec}/${hashCode}/${digestLength}`
      prefixCache.set(packed, key)
    }
    return key
  }
  return `${version}/${codec}/${hashCode}/${digestLength}`
}

/**
 * The prefix key of a want's CID bytes (`"version/codec/hashCode/digestLength"`), or undefined if
 * the bytes are not a CID. A CIDv0 has the prefix `0/112/18/32` (dag-pb, sha2-256).
 */
export function prefixOfCid (cidBytes: Uint8Array): string | undefined {
  if (!parseCid(cidBytes)) {
    return undefined
  }
  return makePrefixKey(cidVersion, cidCodec, cidHashCode, cidDigestLength)
}

/**
 * The prefix key of a block's `prefix` field (four varints: version, codec, hash code, digest
 * length, as @helia/bitswap's `cidToPrefix` writes them), or undefined if it has fewer than four.
 * Like helia's receiver, any non-zero version reads as 1 and trailing bytes are ignored.
 */
export function prefixKey (prefixBytes: Uint8Array): string | undefined {
  const end = prefixBytes.length
  let pos = readUvarint(prefixBytes, 0, end)
  if (pos < 0) {
    return undefined
  }
  const version = uvarValue === 0 ? 0 : 1
  pos = readUvarint(prefixBytes, pos, end)
  if (pos < 0) {
    return undefined
  }
  const codec = uvarValue
  pos = readUvarint(prefixBytes, pos, end)
  if (pos < 0) {
    return undefined
  }
  const hashCode = uvarValue
  pos = readUvarint(prefixBytes, pos, end)
  if (pos < 0) {
    return undefined
  }
  return makePrefixKey(version, codec, hashCode, uvarValue)
}

/** The prefix key of every CIDv0 (dag-pb, sha2-256, 32-byte digest) */
export const CIDV0_PREFIX_KEY = makePrefixKey(0, DAG_PB, SHA2_256, 32)
