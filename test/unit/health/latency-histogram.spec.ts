/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { seededRandom } from '../../../src/clock.ts'
import {
  HISTOGRAM_BUCKETS,
  bucketLower,
  bucketUpper,
  histogramAdd,
  histogramBucket,
  histogramDecay,
  histogramQuantile
} from '../../../src/health/latency-histogram.ts'
import type { RandomSource } from '../../../src/clock.ts'

function normal (random: RandomSource): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
}

/** The exact p95 of a sample (nearest rank) */
function exactQuantile (values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.ceil(q * sorted.length) - 1]
}

const distributions: Record<string, (random: RandomSource) => number> = {
  'log-normal (median 100 ms, sigma 0.5)': (r) => 100 * Math.exp(0.5 * normal(r)),
  'log-normal (median 50 ms, sigma 1.2)': (r) => 50 * Math.exp(1.2 * normal(r)),
  'exponential (mean 200 ms)': (r) => -200 * Math.log(1 - r()),
  'uniform 50..500 ms': (r) => 50 + r() * 450,
  'bimodal (90 % at 20-30 ms, 10 % at 2-3 s)': (r) => r() < 0.9 ? 20 + r() * 10 : 2000 + r() * 1000
}

describe('latency histogram', () => {
  it('puts each value in the bucket whose bounds hold it', () => {
    fc.assert(fc.property(fc.double({ min: 1, max: 40_000, noNaN: true }), (ms) => {
      const bucket = histogramBucket(ms)
      assert.ok(bucketLower(bucket) <= ms && ms < bucketUpper(bucket), `${ms} in bucket ${bucket}`)
    }))
    assert.equal(histogramBucket(0), 0)
    assert.equal(histogramBucket(0.5), 0)
    assert.equal(histogramBucket(-3), 0)
    assert.equal(histogramBucket(Number.NaN), 0)
    assert.equal(histogramBucket(1), 1)
    assert.equal(histogramBucket(1e9), HISTOGRAM_BUCKETS - 1)
  })

  for (const [name, draw] of Object.entries(distributions)) {
    it(`estimates p95 of ${name} within 15 % of the exact p95, and never outside its bucket`, () => {
      for (let seed = 1; seed <= 10; seed++) {
        const random = seededRandom(seed)
        const counts = new Uint8Array(HISTOGRAM_BUCKETS * 3)
        const base = HISTOGRAM_BUCKETS // a middle slot: neighbours must stay untouched
        const values: number[] = []
        for (let i = 0; i < 5000; i++) {
          const ms = draw(random)
          values.push(ms)
          histogramAdd(counts, base, ms)
        }
        const exact = exactQuantile(values, 0.95)
        const estimate = histogramQuantile(counts, base, 0.95, -1)
        assert.ok(Math.abs(estimate / exact - 1) <= 0.15, `seed ${seed}: estimate ${estimate} vs exact ${exact}`)
        assert.ok(estimate / exact <= Math.SQRT2 && exact / estimate <= Math.SQRT2)
        assert.ok(counts.subarray(0, base).every(c => c === 0))
        assert.ok(counts.subarray(base + HISTOGRAM_BUCKETS).every(c => c === 0))
      }
    })
  }

  it('is not a running maximum: one huge outlier barely moves p95', () => {
    const counts = new Uint8Array(HISTOGRAM_BUCKETS)
    for (let i = 0; i < 99; i++) {
      histogramAdd(counts, 0, 100)
    }
    histogramAdd(counts, 0, 30_000)
    const p95 = histogramQuantile(counts, 0, 0.95, -1)
    assert.ok(p95 >= bucketLower(histogramBucket(100)) && p95 < bucketUpper(histogramBucket(100)), `p95 ${p95}`)
    assert.ok(histogramQuantile(counts, 0, 1, -1) >= bucketLower(histogramBucket(30_000)))
  })

  it('returns the fallback when empty', () => {
    assert.equal(histogramQuantile(new Uint8Array(HISTOGRAM_BUCKETS), 0, 0.95, 42), 42)
  })

  it('halves every counter when one would overflow, keeping the shape', () => {
    const counts = new Uint8Array(HISTOGRAM_BUCKETS)
    for (let i = 0; i < 255; i++) {
      histogramAdd(counts, 0, 10)
    }
    for (let i = 0; i < 20; i++) {
      histogramAdd(counts, 0, 1000)
    }
    assert.equal(counts[histogramBucket(10)], 255)
    histogramAdd(counts, 0, 10)
    assert.equal(counts[histogramBucket(10)], 128)
    assert.equal(counts[histogramBucket(1000)], 10)
  })

  it('decays by halving once per elapsed window and empties after 8', () => {
    const counts = new Uint8Array(HISTOGRAM_BUCKETS)
    counts[5] = 200
    counts[6] = 3
    histogramDecay(counts, 0, 0)
    assert.equal(counts[5], 200)
    histogramDecay(counts, 0, 2)
    assert.equal(counts[5], 50)
    assert.equal(counts[6], 0)
    histogramDecay(counts, 0, 8)
    assert.equal(counts[5], 0)
  })
})
