import assert from 'node:assert/strict'
import { InvalidConfigError } from '../../../src/errors.ts'
import { resolveWantLedgerConfig } from '../../../src/bitswap/want-ledger-init.ts'

describe('bitswap/want-ledger-init: resolveWantLedgerConfig', () => {
  it('fills in boxo\'s numbers, with a 1 s floor (JS shares one event loop)', () => {
    assert.deepEqual(resolveWantLedgerConfig({}), {
      minDeadline: 1000,
      maxDeadline: 7000,
      coldDeadline: 2000,
      coldRttMultiplier: 3,
      deadlineMultiplier: 2,
      ewmaAlpha: 0.5,
      maxWantsPerPeer: 1024,
      maxPeers: 10_000,
      settledRetention: 60_000
    })
  })

  it('keeps given values; maxDeadline may equal minDeadline, ewmaAlpha may be 1', () => {
    const config = resolveWantLedgerConfig({ minDeadline: 20, maxDeadline: 20, ewmaAlpha: 1, settledRetention: 0 })
    assert.equal(config.minDeadline, 20)
    assert.equal(config.maxDeadline, 20)
    assert.equal(config.ewmaAlpha, 1)
    assert.equal(config.settledRetention, 0)
  })

  it('rejects values out of range, naming the field under wantLedger.', () => {
    for (const init of [{ minDeadline: 0 }, { minDeadline: 20, maxDeadline: 10 }, { coldDeadline: -1 }, { deadlineMultiplier: 0 },
      { ewmaAlpha: 0 }, { ewmaAlpha: 1.5 }, { maxWantsPerPeer: 0 }, { maxWantsPerPeer: 1.5 }, { maxPeers: 0 }, { settledRetention: -1 }]) {
      const field = Object.keys(init).at(-1) ?? ''
      assert.throws(() => resolveWantLedgerConfig(init), (err: Error) => err instanceof InvalidConfigError && err.message.includes(`wantLedger.${field}`), JSON.stringify(init))
    }
  })
})
