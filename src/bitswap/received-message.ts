import { multihashKey, prefixKey } from './cid-key.ts'
import { readMessage } from './message.ts'
import type { MessageVisitor } from './message.ts'

/** Above this many items, a message's keys are dropped after it rather than pinned until the next one */
const KEEP_SCRATCH = 1024

/**
 * A received message's presences and blocks, read whole before any of it counts: helia drops a
 * message it cannot decode, so a malformed one must change nothing. One instance is reused.
 */
export class ReceivedMessage {
  /** Multihash keys of the presences (undefined: not a CID) */
  readonly presenceKeys: Array<string | undefined> = []
  readonly presenceTypes: number[] = []
  presences = 0
  /** Prefix keys of the blocks (undefined: a bitswap 1.0.0 block, or a bad prefix) */
  readonly blockKeys: Array<string | undefined> = []
  blocks = 0
  private readonly visitor: MessageVisitor

  constructor () {
    this.visitor = {
      presence: (cid, type) => {
        this.presenceKeys[this.presences] = multihashKey(cid)
        this.presenceTypes[this.presences] = type
        this.presences++
      },
      block: (prefix) => {
        this.blockKeys[this.blocks++] = prefixKey(prefix)
      },
      legacyBlock: () => {
        // helia 4.0.19 ignores bitswap 1.0.0 blocks: nothing we asked for arrived
        this.blockKeys[this.blocks++] = undefined
      }
    }
  }

  /** Collects the message's items; throws `InvalidMessageError` with nothing collected */
  read (message: Uint8Array): void {
    this.reset()
    try {
      readMessage(message, this.visitor)
    } catch (err) {
      this.reset()
      throw err
    }
  }

  /** Forgets the items (a huge message's keys are released, not kept for the next one) */
  reset (): void {
    if (this.presences > KEEP_SCRATCH) {
      this.presenceKeys.length = 0
      this.presenceTypes.length = 0
    }
    if (this.blocks > KEEP_SCRATCH) {
      this.blockKeys.length = 0
    }
    this.presences = 0
    this.blocks = 0
  }
}
