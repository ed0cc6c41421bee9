/**
 * Bitswap wire knowledge for the breaker: framing, a visitor-style message reader, cheap CID keys
 * and the per-peer want ledger that turns wants and answers into verdicts.
 */
export { CIDV0_PREFIX_KEY, cidKey, multihashKey, prefixKey, prefixOfCid } from './cid-key.ts'
export { FrameTooLargeError, InvalidFrameError, InvalidMessageError } from './errors.ts'
export type { InvalidMessageReason } from './errors.ts'
export { DEFAULT_MAX_MESSAGE_SIZE, FrameDecoder } from './frames.ts'
export type { FrameDecoderInit } from './frames.ts'
export { PresenceType, readMessage, WantType } from './message.ts'
export type { MessageVisitor } from './message.ts'
export { WantLedger } from './want-ledger.ts'
export {
  DEFAULT_COLD_DEADLINE, DEFAULT_DEADLINE_MULTIPLIER, DEFAULT_EWMA_ALPHA, DEFAULT_LEDGER_MAX_PEERS,
  DEFAULT_MAX_DEADLINE, DEFAULT_MAX_WANTS_PER_PEER, DEFAULT_MIN_DEADLINE, DEFAULT_SETTLED_RETENTION
} from './want-ledger-init.ts'
export type { WantLedgerInit } from './want-ledger-init.ts'
export type { AnswerKind, WantOutcomeSink, WantVerdict } from './verdicts.ts'
