import type { OutlierCounts, PeerRecord } from '../peers/peer-record.ts'
import type { PeerTable } from '../peers/peer-table.ts'

const MAX_COUNT = 0xFFFFFFFF

export interface OutlierRule {
  minVolume: number
  minPeers: number
  stdevFactor: number
}

/** Counts an outcome into the record's current outlier interval `epoch`, rolling it if time moved on */
export function countOutlierOutcome (record: PeerRecord, success: boolean, epoch: number): void {
  let counts = record.outliers
  if (counts === undefined) {
    counts = record.outliers = { epoch: 0, ok: 0, fail: 0, prevOk: 0, prevFail: 0 }
  }
  if (counts.epoch < epoch) {
    if (counts.epoch === epoch - 1) {
      counts.prevOk = counts.ok
      counts.prevFail = counts.fail
    } else {
      counts.prevOk = 0
      counts.prevFail = 0
    }
    counts.ok = 0
    counts.fail = 0
    counts.epoch = epoch
  }
  if (success) {
    if (counts.ok < MAX_COUNT) {
      counts.ok++
    }
  } else if (counts.fail < MAX_COUNT) {
    counts.fail++
  }
}

/** The counts of the last whole interval before `epoch` */
function lastInterval (counts: OutlierCounts | undefined, epoch: number): { ok: number, fail: number } | undefined {
  if (counts === undefined) {
    return undefined
  }
  if (counts.epoch === epoch - 1) {
    return { ok: counts.ok, fail: counts.fail }
  }
  if (counts.epoch === epoch) {
    return { ok: counts.prevOk, fail: counts.prevFail }
  }
  return undefined
}

/**
 * Envoy's success-rate outlier detection over the last whole interval before `epoch`: the CLOSED
 * peers (not `isOpen`) whose success rate is below mean − k·σ of every peer with at least
 * `minVolume` requests in it, if at least `minPeers` qualify; worst first, at most `room`.
 */
export function findOutliers (table: PeerTable, epoch: number, rule: OutlierRule, room: number, isOpen: (record: PeerRecord) => boolean): PeerRecord[] {
  const records: PeerRecord[] = []
  const rates: number[] = []
  table.forEach((record) => {
    const counts = lastInterval(record.outliers, epoch)
    if (counts === undefined) {
      return
    }
    const volume = counts.ok + counts.fail
    if (volume >= rule.minVolume) {
      records.push(record)
      rates.push(counts.ok / volume)
    }
  })
  const n = rates.length
  if (n < rule.minPeers) {
    return []
  }
  let mean = 0
  for (let i = 0; i < n; i++) {
    mean += rates[i]
  }
  mean /= n
  let variance = 0
  for (let i = 0; i < n; i++) {
    variance += (rates[i] - mean) ** 2
  }
  // population σ, as Envoy
  const threshold = mean - rule.stdevFactor * Math.sqrt(variance / n)
  const found: number[] = []
  for (let i = 0; i < n; i++) {
    if (rates[i] < threshold && !isOpen(records[i])) {
      found.push(i)
    }
  }
  // worst first; ties in the order the peers were first seen
  found.sort((a, b) => rates[a] - rates[b] || a - b)
  const out: PeerRecord[] = []
  for (let i = 0; i < found.length && i < room; i++) {
    out.push(records[found[i]])
  }
  return out
}
