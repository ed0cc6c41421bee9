import { InvalidMessageError } from './errors.ts'

/**
 * A visitor-style reader of Bitswap protobuf messages (`message.proto` of @helia/bitswap, adapted
 * from boxo). It walks the bytes once and reports what matters to the breaker without decoding
 * into objects: no allocation per field, no copy of block data, no hashing.
 *
 * ```proto
 * message Message {
 *   Wantlist wantlist = 1;               // { repeated Entry entries = 1; bool full = 2 }
 *   repeated bytes blocks = 2;           // bitswap 1.0.0 only
 *   repeated Block payload = 3;          // { bytes prefix = 1; bytes data = 2 }
 *   repeated BlockPresence blockPresences = 4; // { bytes cid = 1; BlockPresenceType type = 2 }
 *   int32 pendingBytes = 5;
 * }
 * // Entry { bytes block = 1; int32 priority = 2; bool cancel = 3; WantType wantType = 4; bool sendDontHave = 5 }
 * ```
 */

/** `Wantlist.Entry.wantType` */
export const WantType = {
  Block: 0,
  Have: 1
} as const
export type WantType = typeof WantType[keyof typeof WantType]

/** `BlockPresence.type` */
export const PresenceType = {
  Have: 0,
  DontHave: 1
} as const
export type PresenceType = typeof PresenceType[keyof typeof PresenceType]

/**
 * Receives what `readMessage` finds, in wire order. One object can serve every message; every
 * method is optional, and a view is only created for a method that exists. `Uint8Array` arguments
 * are views into the message, valid only during the call: copy what you keep.
 */
export interface MessageVisitor {
  /** One wantlist entry, after all its fields were read (a repeated scalar field: the last wins) */
  wantlistEntry?(cid: Uint8Array, wantType: WantType, cancel: boolean, sendDontHave: boolean, priority: number): void
  /** The wantlist's `full` flag, after its entries, when the field is present */
  wantlistFull?(full: boolean): void
  /** A bitswap 1.2.0 block: its CID prefix and the size of its data (never read) */
  block?(prefix: Uint8Array, dataLength: number): void
  /** A bitswap 1.0.0 block (field 2). @helia/bitswap 4.0.19 ignores these. */
  legacyBlock?(dataLength: number): void
  /** A HAVE or DONT_HAVE */
  presence?(cid: Uint8Array, type: PresenceType): void
  /** `pendingBytes`, when present */
  pendingBytes?(bytes: number): void
}

const WIRE_VARINT = 0
const WIRE_FIXED64 = 1
const WIRE_BYTES = 2
const WIRE_START_GROUP = 3
const WIRE_END_GROUP = 4
const WIRE_FIXED32 = 5

/** Unknown groups nest; past this depth the input is hostile, not data */
const MAX_GROUP_DEPTH = 32

// The last varint read: its low 32 bits, and whether any higher bit was set. Module state, not a
// returned object, so reading allocates nothing; every caller copies them out before reading again,
// which also keeps a visitor that calls readMessage re-entrantly safe.
let varLow = 0
let varHigh = 0

/**
 * Reads a varint of at most 10 bytes (64 bits) at `pos`, returning the position after it.
 * Fields are 32-bit, so like protons (which @helia/bitswap uses) only the low 32 bits are kept.
 */
function readVarint (buf: Uint8Array, pos: number, end: number): number {
  let low = 0
  let byte: number
  for (let shift = 0; shift < 28; shift += 7) {
    if (pos >= end) {
      throw new InvalidMessageError('truncated')
    }
    byte = buf[pos++]
    low |= (byte & 0x7f) << shift
    if (byte < 0x80) {
      varLow = low >>> 0
      varHigh = 0
      return pos
    }
  }
  if (pos >= end) {
    throw new InvalidMessageError('truncated')
  }
  byte = buf[pos++]
  low |= (byte & 0x0f) << 28
  let high = byte & 0x70
  if (byte >= 0x80) {
    for (let i = 5; ; i++) {
      if (i === 10) {
        throw new InvalidMessageError('varint', 'invalid bitswap message: varint longer than 10 bytes')
      }
      if (pos >= end) {
        throw new InvalidMessageError('truncated')
      }
      byte = buf[pos++]
      if (i === 9 && byte > 1) {
        throw new InvalidMessageError('varint', 'invalid bitswap message: varint overflows 64 bits')
      }
      high |= byte & 0x7f
      if (byte < 0x80) {
        break
      }
    }
  }
  varLow = low >>> 0
  varHigh = high
  return pos
}

/**
 * Reads a varint where protons (@helia/bitswap's decoder) reads a 32-bit one: tags, lengths and
 * 32-bit scalars. protons reads 5 bytes and then skips 5 more without looking at them, so helia
 * misreads a 6 to 9 byte varint (it swallows what follows); rejecting those keeps us from seeing a
 * message differently than helia does. Encoders write at most 5 bytes, or 10 for a negative int32.
 */
function readVarint32 (buf: Uint8Array, pos: number, end: number): number {
  const next = readVarint(buf, pos, end)
  const length = next - pos
  if (length > 5 && length < 10) {
    throw new InvalidMessageError('varint', `invalid bitswap message: a ${length} byte varint, which protons misreads`)
  }
  return next
}

/** Reads a length prefix at `pos` and checks that many bytes remain; returns the body's start */
function readLength (buf: Uint8Array, pos: number, end: number): number {
  pos = readVarint32(buf, pos, end)
  if (varHigh !== 0) {
    throw new InvalidMessageError('length', 'invalid bitswap message: length does not fit in 32 bits')
  }
  if (varLow > end - pos) {
    throw new InvalidMessageError('truncated', `invalid bitswap message: field of ${varLow} bytes with ${end - pos} left`)
  }
  return pos
}

/** Reads a tag, returning the position after it; the tag is left in `varLow` */
function readTag (buf: Uint8Array, pos: number, end: number): number {
  pos = readVarint32(buf, pos, end)
  if (varHigh !== 0 || varLow >>> 3 === 0) {
    throw new InvalidMessageError('field-number')
  }
  const wireType = varLow & 7
  if (wireType > WIRE_FIXED32) {
    throw new InvalidMessageError('wire-type', `invalid bitswap message: wire type ${wireType}`)
  }
  return pos
}

function expectWireType (actual: number, expected: number): void {
  if (actual !== expected) {
    throw new InvalidMessageError('wire-type', `invalid bitswap message: wire type ${actual} where ${expected} was expected`)
  }
}

/** Skips the value of a field with the given wire type, returning the position after it */
function skipField (buf: Uint8Array, pos: number, end: number, field: number, wireType: number, depth: number): number {
  switch (wireType) {
    case WIRE_VARINT:
      return readVarint(buf, pos, end)
    case WIRE_FIXED64:
      if (end - pos < 8) {
        throw new InvalidMessageError('truncated')
      }
      return pos + 8
    case WIRE_BYTES:
      pos = readLength(buf, pos, end)
      return pos + varLow
    case WIRE_FIXED32:
      if (end - pos < 4) {
        throw new InvalidMessageError('truncated')
      }
      return pos + 4
    case WIRE_START_GROUP:
      if (depth >= MAX_GROUP_DEPTH) {
        throw new InvalidMessageError('group', 'invalid bitswap message: groups nested too deep')
      }
      for (;;) {
        // running out of bytes inside a group is a truncation; readTag throws it
        pos = readTag(buf, pos, end)
        const tag = varLow
        if ((tag & 7) === WIRE_END_GROUP) {
          if (tag >>> 3 !== field) {
            throw new InvalidMessageError('group', 'invalid bitswap message: mismatched end group')
          }
          return pos
        }
        pos = skipField(buf, pos, end, tag >>> 3, tag & 7, depth + 1)
      }
    default:
      // an end group with no start group
      throw new InvalidMessageError('group', 'invalid bitswap message: unexpected end group')
  }
}

/**
 * Checks an enum value the way protons does: @helia/bitswap rejects the whole message when a
 * `wantType` or presence `type` is not a known value, so we do too rather than credit answers
 * helia never saw.
 */
function checkEnum (value: number): 0 | 1 {
  if (value !== 0 && value !== 1) {
    throw new InvalidMessageError('enum', `invalid bitswap message: enum value ${value | 0}`)
  }
  return value
}

function readEntry (buf: Uint8Array, pos: number, end: number, visitor: MessageVisitor): void {
  let cidStart = pos
  let cidEnd = pos
  let priority = 0
  let cancel = false
  let wantType = 0
  let sendDontHave = false
  while (pos < end) {
    pos = readTag(buf, pos, end)
    const tag = varLow
    switch (tag >>> 3) {
      case 1:
        expectWireType(tag & 7, WIRE_BYTES)
        cidStart = readLength(buf, pos, end)
        cidEnd = pos = cidStart + varLow
        break
      case 2:
        expectWireType(tag & 7, WIRE_VARINT)
        pos = readVarint32(buf, pos, end)
        priority = varLow | 0
        break
      case 3:
        expectWireType(tag & 7, WIRE_VARINT)
        pos = readVarint32(buf, pos, end)
        cancel = varLow !== 0
        break
      case 4:
        expectWireType(tag & 7, WIRE_VARINT)
        pos = readVarint32(buf, pos, end)
        wantType = checkEnum(varLow | 0)
        break
      case 5:
        expectWireType(tag & 7, WIRE_VARINT)
        pos = readVarint32(buf, pos, end)
        sendDontHave = varLow !== 0
        break
      default:
        pos = skipField(buf, pos, end, tag >>> 3, tag & 7, 0)
    }
  }
  visitor.wantlistEntry?.(buf.subarray(cidStart, cidEnd), wantType as WantType, cancel, sendDontHave, priority)
}

function readWantlist (buf: Uint8Array, pos: number, end: number, visitor: MessageVisitor): void {
  let full = -1
  while (pos < end) {
    pos = readTag(buf, pos, end)
    const tag = varLow
    switch (tag >>> 3) {
      case 1: {
        expectWireType(tag & 7, WIRE_BYTES)
        const start = readLength(buf, pos, end)
        pos = start + varLow
        readEntry(buf, start, pos, visitor)
        break
      }
      case 2:
        expectWireType(tag & 7, WIRE_VARINT)
        pos = readVarint32(buf, pos, end)
        full = varLow !== 0 ? 1 : 0
        break
      default:
        pos = skipField(buf, pos, end, tag >>> 3, tag & 7, 0)
    }
  }
  if (full !== -1) {
    visitor.wantlistFull?.(full === 1)
  }
}

function readBlock (buf: Uint8Array, pos: number, end: number, visitor: MessageVisitor): void {
  let prefixStart = pos
  let prefixEnd = pos
  let dataLength = 0
  while (pos < end) {
    pos = readTag(buf, pos, end)
    const tag = varLow
    switch (tag >>> 3) {
      case 1:
        expectWireType(tag & 7, WIRE_BYTES)
        prefixStart = readLength(buf, pos, end)
        prefixEnd = pos = prefixStart + varLow
        break
      case 2:
        expectWireType(tag & 7, WIRE_BYTES)
        pos = readLength(buf, pos, end)
        dataLength = varLow
        pos += dataLength
        break
      default:
        pos = skipField(buf, pos, end, tag >>> 3, tag & 7, 0)
    }
  }
  visitor.block?.(buf.subarray(prefixStart, prefixEnd), dataLength)
}

function readPresence (buf: Uint8Array, pos: number, end: number, visitor: MessageVisitor): void {
  let cidStart = pos
  let cidEnd = pos
  let type = 0
  while (pos < end) {
    pos = readTag(buf, pos, end)
    const tag = varLow
    switch (tag >>> 3) {
      case 1:
        expectWireType(tag & 7, WIRE_BYTES)
        cidStart = readLength(buf, pos, end)
        cidEnd = pos = cidStart + varLow
        break
      case 2:
        expectWireType(tag & 7, WIRE_VARINT)
        pos = readVarint32(buf, pos, end)
        type = checkEnum(varLow | 0)
        break
      default:
        pos = skipField(buf, pos, end, tag >>> 3, tag & 7, 0)
    }
  }
  visitor.presence?.(buf.subarray(cidStart, cidEnd), type as PresenceType)
}

/**
 * Walks one Bitswap message (a frame body) and reports its wantlist entries, blocks and presences
 * to `visitor`, in wire order. Unknown fields of any wire type are skipped.
 *
 * Throws `InvalidMessageError` for malformed input. Callbacks already made for the part before the
 * error stand: buffer them if the message must count all-or-nothing (helia drops the whole message).
 *
 * A second `wantlist` field is read as well (protobuf merges it; protons keeps only the last).
 */
export function readMessage (bytes: Uint8Array, visitor: MessageVisitor): void {
  const end = bytes.length
  let pos = 0
  while (pos < end) {
    pos = readTag(bytes, pos, end)
    const tag = varLow
    switch (tag >>> 3) {
      case 1: {
        expectWireType(tag & 7, WIRE_BYTES)
        const start = readLength(bytes, pos, end)
        pos = start + varLow
        readWantlist(bytes, start, pos, visitor)
        break
      }
      case 2:
        expectWireType(tag & 7, WIRE_BYTES)
        pos = readLength(bytes, pos, end)
        pos += varLow
        visitor.legacyBlock?.(varLow)
        break
      case 3: {
        expectWireType(tag & 7, WIRE_BYTES)
        const start = readLength(bytes, pos, end)
        pos = start + varLow
        readBlock(bytes, start, pos, visitor)
        break
      }
      case 4: {
        expectWireType(tag & 7, WIRE_BYTES)
        const start = readLength(bytes, pos, end)
        pos = start + varLow
        readPresence(bytes, start, pos, visitor)
        break
      }
      case 5:
        expectWireType(tag & 7, WIRE_VARINT)
        pos = readVarint32(bytes, pos, end)
        visitor.pendingBytes?.(varLow | 0)
        break
      default:
        pos = skipField(bytes, pos, end, tag >>> 3, tag & 7, 0)
    }
  }
}

/** Presences counted by the last `countWantlistEntries` call (module state, like the varint reader) */
let countedPresences = 0

/** The block presences the last `countWantlistEntries` call found (at most its limit + 1) */
export function lastPresenceCount (): number {
  return countedPresences
}

/**
 * Counts a message's wantlist entries (and, see `lastPresenceCount`, its block presences) without
 * reading them, stopping as soon as either passes `limit`: the cost of judging a hostile message
 * is bounded by the limit, not by the message. Only the framing of the top level and of the
 * wantlist is read; a malformed part found on the way throws `InvalidMessageError`.
 */
export function countWantlistEntries (bytes: Uint8Array, limit: number): number {
  const end = bytes.length
  let pos = 0
  let entries = 0
  countedPresences = 0
  while (pos < end && entries <= limit && countedPresences <= limit) {
    pos = readTag(bytes, pos, end)
    const tag = varLow
    const field = tag >>> 3
    if (field === 1 && (tag & 7) === WIRE_BYTES) {
      const start = readLength(bytes, pos, end)
      pos = start + varLow
      entries += countEntries(bytes, start, pos, limit - entries)
    } else if (field === 4 && (tag & 7) === WIRE_BYTES) {
      pos = readLength(bytes, pos, end)
      pos += varLow
      countedPresences++
    } else {
      pos = skipField(bytes, pos, end, field, tag & 7, 0)
    }
  }
  return entries
}

/** Entries (field 1) of one wantlist, stopping past `limit` */
function countEntries (buf: Uint8Array, pos: number, end: number, limit: number): number {
  let entries = 0
  while (pos < end && entries <= limit) {
    pos = readTag(buf, pos, end)
    const tag = varLow
    if ((tag >>> 3) === 1 && (tag & 7) === WIRE_BYTES) {
      pos = readLength(buf, pos, end)
      pos += varLow
      entries++
    } else {
      pos = skipField(buf, pos, end, tag >>> 3, tag & 7, 0)
    }
  }
  return entries
}
