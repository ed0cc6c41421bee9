import assert from 'node:assert/strict'
import fc from 'fast-check'
import { resolveOpenStreamConfig } from '../../../src/libp2p/config.ts'
import { OpenDeadlines, OpenTiming } from '../../../src/libp2p/open-deadline.ts'
import type { Connection, PeerId } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

const PEER = { toString: () => 'peer' } as unknown as PeerId

/** A connection manager whose only connection to PEER has this rtt (or none at all) */
function withRtt (rtt?: number, connected = true): ConnectionManager {
  const connections = connected ? [{ rtt } as unknown as Connection] : []
  return { getConnections: () => connections } as unknown as ConnectionManager
}

function timing (init: Partial<OpenTiming> = {}): OpenTiming {
  return Object.assign(new OpenTiming(), init)
}

describe('libp2p/open-deadline', () => {
  const defaults = new OpenDeadlines(resolveOpenStreamConfig({}))

  it('cold: coldMultiplier × identify time, else × the connection rtt, else coldDeadline, clamped to [250, 2000]', () => {
    assert.equal(defaults.deadline(withRtt(), PEER, timing({ identifyMs: 100 }), true), 400)
    assert.equal(defaults.deadline(withRtt(90), PEER, undefined, true), 360)
    assert.equal(defaults.deadline(withRtt(), PEER, undefined, true), 1000)
    assert.equal(defaults.deadline(withRtt(10), PEER, undefined, true), 250)
    assert.equal(defaults.deadline(withRtt(), PEER, timing({ identifyMs: 900 }), true), 2000)
  })

  it('an unconnected peer gets at least unconnectedFloor, after the clamp', () => {
    assert.equal(defaults.deadline(withRtt(undefined, false), PEER, undefined, false), 2000)
    const tight = new OpenDeadlines(resolveOpenStreamConfig({ maxDeadline: 500, unconnectedFloor: 800 }))
    assert.equal(tight.deadline(withRtt(), PEER, timing({ identifyMs: 1000 }), false), 800)
    assert.equal(tight.deadline(withRtt(), PEER, timing({ identifyMs: 1000 }), true), 500)
  })

  it('samples decide once there are minSamples: sampleMultiplier × their median', () => {
    const t = timing({ identifyMs: 200 })
    defaults.addSample(t, 100)
    defaults.addSample(t, 300)
    assert.equal(t.sampleDeadline, 0, 'two samples are not enough')
    assert.equal(defaults.deadline(withRtt(), PEER, t, true), 800, 'identify still decides')
    defaults.addSample(t, 120)
    assert.equal(t.sampleDeadline, 480)
    assert.equal(defaults.deadline(withRtt(), PEER, t, true), 480)
    defaults.addSample(t, 130)
    assert.equal(t.sampleDeadline, 4 * 125, 'an even count takes the mean of the middle two')
  })

  it('the window keeps only the latest sampleWindow opens', () => {
    const deadlines = new OpenDeadlines(resolveOpenStreamConfig({ sampleWindow: 3, minSamples: 3 }))
    const t = timing()
    for (const ms of [1000, 1000, 1000, 10, 10, 10]) {
      deadlines.addSample(t, ms)
    }
    assert.equal(t.count, 3)
    assert.equal(t.sampleDeadline, 40)
  })

  it('forget drops what was learned', () => {
    const t = timing({ identifyMs: 5 })
    for (let i = 0; i < 3; i++) {
      defaults.addSample(t, 50)
    }
    assert.equal(t.known, true)
    t.forget()
    assert.equal(t.known, false)
    assert.equal(t.sampleDeadline, 0)
    assert.equal(t.samples, undefined)
    assert.equal(defaults.deadline(withRtt(), PEER, t, true), 1000)
  })

  it('property: the median of the window, whatever order the samples came in', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 10_000 }), { minLength: 3, maxLength: 30 }), (samples) => {
      const t = timing()
      samples.forEach(ms => { defaults.addSample(t, ms) })
      const window = samples.slice(-8).sort((a, b) => a - b)
      const n = window.length
      const median = n % 2 === 1 ? window[n >> 1] : (window[n / 2 - 1] + window[n / 2]) / 2
      assert.equal(t.sampleDeadline, 4 * median)
    }), { numRuns: 200 })
  })
})
