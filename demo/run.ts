/**
 * `npm run demo`: the scenario with the breaker, then the same without it, then a summary and a
 * picture. Everything runs in this process on the memory transport; no setup, no network.
 */

import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { makeBlocks } from '../fixtures/index.ts'
import { seconds, wrap } from './format.ts'
import { LiveView } from './live.ts'
import { runScenario } from './run-scenario.ts'
import { PHASES, SCENARIO, breakerSettings } from './scenario.ts'
import { summarize, summaryLine } from './summary.ts'
import { renderTimeline } from './timeline-svg.ts'
import type { DemoBlocks } from './run-scenario.ts'

const OUTPUT_DIR = fileURLToPath(new URL('../.demo-output/', import.meta.url))

async function main (): Promise<void> {
  const out = process.stdout
  const width = Math.min(100, (out.columns ?? 100) - 1)
  const say = (line = ''): void => { out.write(`${wrap(line, width).join('\n')}\n`) }
  const blocks = await demoBlocks()
  const total = blocks.shared.flat().length + blocks.own.flat().length

  say('bitswap-circuit-breaker demo: in-process Helia nodes on the memory transport; nothing leaves this process.')
  say(`A consumer wants ${total} blocks of ${SCENARIO.blockSize / 1024} KiB, ${SCENARIO.sharedPerWave + SCENARIO.ownPerWave} every ${seconds(SCENARIO.period)}, ` +
    'from two providers.')
  say(`The healthy provider holds ${SCENARIO.sharedPerWave} of each wave; the flaky one holds half of those plus ${SCENARIO.ownPerWave} that only it has.`)
  for (const phase of PHASES) {
    say(`  from ${seconds(phase.at).padStart(6)}  "${phase.name}": ${phase.description}`)
  }
  say(`Breaker settings, short so the whole arc fits: ${describeSettings()}`)
  say()

  const runs = []
  for (const protect of [true, false]) {
    const title = protect ? 'Run 1 of 2: with the breaker' : 'Run 2 of 2: the same scenario without the breaker'
    const view = new LiveView({ out, title, protect, total })
    runs.push(await runScenario(protect, blocks, view))
    view.finish()
    say()
  }
  const [withBreaker, without] = runs

  for (const line of summarize(withBreaker, without)) {
    say(line)
  }

  await mkdir(OUTPUT_DIR, { recursive: true })
  const picture = path.join(OUTPUT_DIR, 'timeline.svg')
  await writeFile(picture, renderTimeline(withBreaker, without))
  // the raw samples and events, for anyone who wants to plot them differently
  await writeFile(path.join(OUTPUT_DIR, 'recordings.json'), JSON.stringify({ withBreaker, without }))
  const shown = path.relative(process.cwd(), picture)

  say()
  // the last two lines keep their exact form, however narrow the terminal
  out.write(`${summaryLine(withBreaker, without)}\n`)
  out.write(`Picture: ${shown.startsWith('..') || path.isAbsolute(shown) ? picture : shown}\n`)
}

async function demoBlocks (): Promise<DemoBlocks> {
  const shared = []
  const own = []
  for (let wave = 0; wave < SCENARIO.waves; wave++) {
    shared.push(await makeBlocks(SCENARIO.sharedPerWave, SCENARIO.blockSize, { seed: wave + 1 }))
    own.push(await makeBlocks(SCENARIO.ownPerWave, SCENARIO.blockSize, { seed: 10_000 + wave }))
  }
  return { shared, own }
}

function describeSettings (): string {
  const { circuitBreaker, recovery, responseDeadline } = breakerSettings()
  return `open ${seconds(circuitBreaker?.timeout ?? 0)} (backing off to ${seconds(circuitBreaker?.maxTimeout ?? 0)}), ` +
    `${circuitBreaker?.maxRequests} good probes close it, a stream left open ${seconds(responseDeadline ?? 0)} or a want unanswered ` +
    `past its adaptive deadline (at least 1 s) is a failure, ramp-up from ${Math.round((recovery?.initialRecoveryRate ?? 0) * 100)} % ` +
    `until ${recovery?.successThreshold} answers in a row.`
}

main().then(() => {
  // nodes are stopped; if a library left a handle open, do not hang the terminal
  setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref()
}, (err: Error) => {
  console.error('demo failed:', err)
  process.exit(1)
})
