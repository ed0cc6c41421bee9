/**
 * The printed table: every figure as `median (min–max)`, and every target as PASS or MISS.
 */

import { fmt } from './stats.ts'
import type { Extras, Results } from './results.ts'
import type { Summary } from './stats.ts'

export function renderTable (r: Results, extras: Extras): string {
  const lines: string[] = []
  const row = (...cells: string[]): void => { lines.push(`| ${cells.join(' | ')} |`) }
  const head = (...cells: string[]): void => {
    row(...cells)
    lines.push(`|${cells.map(() => '---').join('|')}|`)
  }
  const blank = (): void => { lines.push('') }

  lines.push(`Machine: ${r.machine.cpu}, ${r.machine.cores} cores, Node ${r.machine.node}; load average ${extras.run.loadAverage.start.join(' / ')} at the start, ${extras.run.loadAverage.end.join(' / ')} at the end; ${extras.run.seconds} s`)
  blank()

  lines.push('**1. Success-path overhead** (ns/op above a bare `await`, median (min–max) of ' +
    `${extras.overhead?.rounds ?? '?'} interleaved rounds × ${extras.overhead?.opsPerRound ?? '?'} ops)`)
  blank()
  head('variant', 'ns/op above bare await')
  const o = r.overhead
  row('bare `await work()` (its own ns/op)', fmt(o.bareAwait))
  row('`CircuitBreaker.execute`', fmt(o.execute))
  row('`BitswapCircuitBreaker.executeWithPeer`', fmt(o.executeWithPeer))
  row('`BitswapProtectionManager.executeRequest`', fmt(o.executeRequest))
  row('gating decision (`admit(peer, false)` + `settle`)', fmt(o.gatingDecision))
  if (extras.overhead != null) {
    row('gating decision, synchronous loop (its own ns/op)', fmt(extras.overhead.gatingDecisionSync))
  }
  row('opossum 10 `fire` (defaults)', fmt(o.opossum))
  row('cockatiel 4 ConsecutiveBreaker(5)', fmt(o.cockatielConsecutive))
  row('cockatiel 4 SamplingBreaker', fmt(o.cockatielSampling))
  blank()

  const m = r.memory.bytesPerPeer
  const mp = extras.memory?.peers
  lines.push('**2. Memory** (heap + external bytes per tracked peer, median of ' + `${extras.memory?.rounds ?? '?'} rounds)`)
  blank()
  head('subject', 'peers measured', 'bytes/peer', 'min–max')
  row('ours: `BitswapProtectionManager` (breaker + health + recovery + guards)', String(mp?.ours ?? ''), String(m.ours), range(extras.memory?.ours))
  row('opossum: one instance per peer, timers off', String(mp?.opossum ?? ''), String(m.opossum), range(extras.memory?.opossum))
  row('cockatiel: one ConsecutiveBreaker policy per peer', String(mp?.cockatiel ?? ''), String(m.cockatiel), range(extras.memory?.cockatiel))
  blank()

  if (extras.scale != null) {
    const s = extras.scale
    lines.push(`**3. Scale** (ns per call, median (min–max) of ${s.rounds} rounds × ${s.opsPerRound} calls; hot = round-robin over ${s.hotSet} of the N tracked peers (all of them at N = 10), all = round-robin over all N, ten = the same 10 peers at every N; \`executeWithPeer\` is awaited, the gating decision is synchronous; worst operation (hot): ${s.worst})`)
    blank()
    head('operation', 'pattern', '10 peers', '10 000 peers', '100 000 peers', '100 000 / 10')
    for (const pattern of ['hot', 'all', 'ten'] as const) {
      for (const op of ['executeWithPeer', 'gatingDecision', 'floor'] as const) {
        const c = s[pattern][op]
        row(op === 'floor' ? 'floor: plain `Map` get + field write' : op, pattern, fmt(c['10']), fmt(c['10000']), fmt(c['100000']), fmt(c.ratio, 2))
      }
    }
    blank()
  }

  const b = r.bitswap
  lines.push(`**4. Bitswap** (${extras.bitswap?.blocks ?? '?'} × 4 KiB, \`blockstore.get\`, concurrency ${extras.bitswap?.concurrency ?? '?'}, TCP + noise + yamux, ${extras.bitswap?.rounds ?? '?'} interleaved rounds each)`)
  blank()
  head('consumer', 'blocks/s', 'ms per fetch')
  row('without the service', fmt(b.without.blocksPerSec, 0), extras.bitswap == null ? '' : fmt(extras.bitswap.ms.without, 0))
  row('with the service', fmt(b.with.blocksPerSec, 0), extras.bitswap == null ? '' : fmt(extras.bitswap.ms.with, 0))
  if (extras.bitswap != null) {
    row('with / without (per round)', fmt(extras.bitswap.ratio, 3), '')
    row('diagnostic: with, `observeMessages: false`', fmt(extras.bitswap.unobserved.blocksPerSec, 0), fmt(extras.bitswap.ms.unobserved, 0))
    row('diagnostic: unobserved / without (per round)', fmt(extras.bitswap.unobserved.ratio, 3), '')
    const { lost } = extras.bitswap
    if (lost.with + lost.without + lost.unobserved > 0) {
      blank()
      lines.push(`Blocks that never arrived within ${extras.bitswap.fetchTimeoutMs / 1000} s (all ${extras.bitswap.rounds} rounds): without ${lost.without}, with ${lost.with}, unobserved ${lost.unobserved}`)
    }
  }
  blank()

  const f = r.faulty
  lines.push(`**5. Faulty provider** (${extras.faulty?.blocks ?? '?'} × 4 KiB, concurrency ${extras.faulty?.concurrency ?? '?'}, ms, median (min–max) of ${extras.faulty?.rounds ?? '?'} runs; × = median / healthy-alone median)`)
  blank()
  head('fault', 'get: off', 'get: on', 'session: off', 'session: on')
  row('healthy alone', fmt(f.healthyAlone.get, 0), '', fmt(f.healthyAlone.session, 0), '')
  for (const fault of ['reset', 'stall', 'blackhole'] as const) {
    const cell = (state: 'off' | 'on', api: 'get' | 'session'): string =>
      `${fmt(f[fault][state][api], 0)} ×${(f[fault][state][api].median / f.healthyAlone[api].median).toFixed(2)}`
    row(fault, cell('off', 'get'), cell('on', 'get'), cell('off', 'session'), cell('on', 'session'))
  }
  if (extras.faulty != null && Object.keys(extras.faulty.lost).length > 0) {
    blank()
    lines.push(`Blocks that never arrived within ${extras.faulty.fetchTimeoutMs / 1000} s (all rounds): ${Object.entries(extras.faulty.lost).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  }
  blank()

  const sw = extras.swarm
  if (sw != null) {
    lines.push(`**6. Eight-provider swarm** (issue 10: 3 healthy, reset, silent, blackholed, 400 ms slow, flapping; ${sw.blocks} × 4 KiB, ms, median (min–max) of ${sw.rounds} runs; × = per-run ratio to the healthy three alone; providers ${sw.providers === 'in-process' ? 'in the consumer\'s process' : 'in a process of their own'})`)
    blank()
    head('setup', 'get', 'session')
    const c = (key: string): string => sw.ms[key] == null ? '' : `${fmt(sw.ms[key], 0)}${sw.ratio[key] == null ? '' : ` ×${sw.ratio[key].median.toFixed(2)}`}${(sw.lost[key] ?? 0) > 0 ? `, ${sw.lost[key]} lost` : ''}`
    row('healthy three alone', c('healthy/get'), c('healthy/session'))
    row('one healthy alone (the session reference: see docs/upstream-caveats.md)', '', c('healthy1/session'))
    row('swarm, service off', c('swarm-off/get'), c('swarm-off/session'))
    row('swarm, service on', c('swarm-on/get'), c('swarm-on/session'))
    row('swarm without its reset, silent and blackholed members, service off (the floor)', c('survivors-off/get'), '')
    row('the same, service on', c('survivors-on/get'), '')
    row('one blackholed + the healthy three (get) or one healthy (session), service on', c('blackhole-on/get'), c('blackhole1-on/session'))
    row('first five session providers silent (20 blocks), service on', '', c('silent5-on/session'))
    blank()
    lines.push(`A blackholed peer adds ${sw.blackholeAddsMs.get} ms to a get and ${sw.blackholeAddsMs.session} ms to a session (median over rounds of the difference within a round).${sw.overFloor == null ? '' : ` Within each round, the swarm's get with the service took ×${span(sw.overFloor)} of its floor, and the floor with the service ×${span(sw.serviceOnFloor)} of the floor without it.`}`)
    blank()
  }

  lines.push('**Targets**')
  blank()
  head('target', 'measured', 'limit', '')
  for (const c of extras.checks) {
    row(c.target, String(c.value), String(c.limit), c.pass ? 'PASS' : 'MISS')
  }
  return lines.join('\n')
}

/** `median (min–max)` of a ratio */
function span (s: Summary): string {
  return `${s.median.toFixed(2)} (${s.min.toFixed(2)}–${s.max.toFixed(2)})`
}

function range (s: Summary | undefined): string {
  return s == null ? '' : `${s.min}–${s.max}`
}
