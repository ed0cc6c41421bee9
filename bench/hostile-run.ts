/** One attack of bench/hostile.ts in this (fresh) process: prints its run as one JSON line */
import { runNamed } from './hostile.ts'

const run = await runNamed(process.argv[2] ?? 'none', Number(process.argv[3] ?? 1))
process.stdout.write(JSON.stringify(run) + '\n')
