/**
 * Bitswap wire knowledge for releasing a wait: a length-prefixed Bitswap 1.2.0 message carrying
 * only DONT_HAVE presences, and the CID bytes of a want rebuilt from the ledger's keys.
 *
 * ```proto
 * message Message { repeated BlockPresence blockPresences = 4; }
 * message BlockPresence { bytes cid = 1; BlockPresenceType type = 2; }  // DontHave = 1
 * ```
 *
 * Runs only when the service releases wants, never per message: it allocates freely.
 */

/** Field 4 (blockPresences), wire type 2 (length-delimited) */
const TAG_BLOCK_PRESENCE = (4 << 3) | 2
/** BlockPresence field 1 (cid), wire type 2 */
const TAG_PRESENCE_CID = (1 << 3) | 2
/** BlockPresence field 2 (type), wire type 0 (varint) */
const TAG_PRESENCE_TYPE = 2 << 3
const DONT_HAVE = 1

function varintLength (value: number): number {
  let length = 1
  while (value >= 0x80) {
    value = Math.floor(value / 128)
    length++
  }
  return length
}

function writeVarint (value: number, out: Uint8Array, pos: number): number {
  while (value >= 0x80) {
    out[pos++] = (value % 128) | 0x80
    value = Math.floor(value / 128)
  }
  out[pos++] = value
  return pos
}

/**
 * One length-prefixed frame (as @helia/bitswap reads them) holding a Bitswap message whose only
 * content is a DONT_HAVE for each CID, in order
 */
export function dontHaveFrame (cids: readonly Uint8Array[]): Uint8Array {
  let body = 0
  for (const cid of cids) {
    const presence = 1 + varintLength(cid.byteLength) + cid.byteLength + 2
    body += 1 + varintLength(presence) + presence
  }
  const frame = new Uint8Array(varintLength(body) + body)
  let pos = writeVarint(body, frame, 0)
  for (const cid of cids) {
    const presence = 1 + varintLength(cid.byteLength) + cid.byteLength + 2
    frame[pos++] = TAG_BLOCK_PRESENCE
    pos = writeVarint(presence, frame, pos)
    frame[pos++] = TAG_PRESENCE_CID
    pos = writeVarint(cid.byteLength, frame, pos)
    frame.set(cid, pos)
    pos += cid.byteLength
    frame[pos++] = TAG_PRESENCE_TYPE
    frame[pos++] = DONT_HAVE
  }
  return frame
}

/**
 * The CID bytes of a want, from the ledger's keys: `multihashKey` (one latin1 char per multihash
 * byte) and `prefixKey` (`"version/codec/hashCode/digestLength"`, see cid-key.ts). A CIDv0 is its
 * bare multihash; a CIDv1 is `<1><codec><multihash>`. @helia/bitswap matches presences by digest,
 * so this names exactly the content the want asked for. Undefined for keys that are not a CID's.
 */
export function cidBytesFromKeys (multihashKey: string, prefixKey: string): Uint8Array | undefined {
  const parts = prefixKey.split('/')
  if (parts.length !== 4 || multihashKey.length === 0) {
    return undefined
  }
  const version = Number(parts[0])
  const codec = Number(parts[1])
  if (!Number.isSafeInteger(codec) || codec < 0 || (version !== 0 && version !== 1)) {
    return undefined
  }
  const head = version === 0 ? 0 : 1 + varintLength(codec)
  const bytes = new Uint8Array(head + multihashKey.length)
  if (version === 1) {
    writeVarint(codec, bytes, writeVarint(1, bytes, 0))
  }
  for (let i = 0; i < multihashKey.length; i++) {
    const code = multihashKey.charCodeAt(i)
    if (code > 0xff) {
      return undefined
    }
    bytes[head + i] = code
  }
  return bytes
}
