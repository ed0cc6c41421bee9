/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { seededRandom } from '../../../src/clock.ts'
import {
  HISTOGRAM_BUCKETS,
  LatencyHistogram,
  bucketLower,
  bucketUpper,
  histogramBucket
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
        const histogram = new LatencyHistogram()
        const values: number[] = []
        for (let i = 0; i < 5000; i++) {
          const ms = draw(random)
          values.push(ms)
          histogram.add(ms)
        }
        const exact = exactQuantile(values, 0.95)
        const estimate = histogram.quantile(0.95, -1)
        assert.ok(Math.abs(estimate / exact - 1) <= 0.15, `seed ${seed}: estimate ${estimate} vs exact ${exact}`)
        assert.ok(estimate / exact <= Math.SQRT2 && exact / estimate <= Math.SQRT2)
      }
    })
  }

  it('is not a running maximum: one huge outlier barely moves p95', () => {
    const histogram = new LatencyHistogram()
    for (let i = 0; i < 99; i++) {
      histogram.add(100)
    }
    histogram.add(30_000)
    const p95 = histogram.quantile(0.95, -1)
    assert.ok(p95 >= bucketLower(histogramBucket(100)) && p95 < bucketUpper(histogramBucket(100)), `p95 ${p95}`)
    assert.ok(histogram.quantile(1, -1) >= bucketLower(histogramBucket(30_000)))
  })

  it('returns the fallback when empty', () => {
    assert.equal(new LatencyHistogram().quantile(0.95, 42), 42)
  })

  it('halves every counter when one would overflow, keeping the shape', () => {
    const histogram = new LatencyHistogram()
    for (let i = 0; i < 127; i++) {
      histogram.add(10)
    }
    for (let i = 0; i < 20; i++) {
      histogram.add(1000)
    }
    assert.equal(histogram.count(histogramBucket(10)), 127)
    histogram.add(10)
    assert.equal(histogram.count(histogramBucket(10)), 64)
    assert.equal(histogram.count(histogramBucket(1000)), 10)
  })

  it('keeps its 32 counters apart though four share a field', () => {
    const histogram = new LatencyHistogram()
    for (let bucket = 0; bucket < HISTOGRAM_BUCKETS; bucket++) {
      for (let i = 0; i < bucket * 4; i++) {
        histogram.add(bucket === 0 ? 0 : bucketLower(bucket))
      }
    }
    for (let bucket = 0; bucket < HISTOGRAM_BUCKETS; bucket++) {
      assert.equal(histogram.count(bucket), bucket * 4, `bucket ${bucket}`)
    }
  })

  it('decays by halving once per elapsed window and empties after 7', () => {
    const histogram = new LatencyHistogram()
    for (let i = 0; i < 100; i++) histogram.add(bucketLower(5))
    for (let i = 0; i < 3; i++) histogram.add(bucketLower(6))
    histogram.decay(0)
    assert.equal(histogram.count(5), 100)
    histogram.decay(2)
    assert.equal(histogram.count(5), 25)
    assert.equal(histogram.count(6), 0)
    histogram.decay(7)
    assert.equal(histogram.count(5), 0)
  })
})
