/**
 * "The process exits by itself after stop()" (issue 11), shown directly: a child process runs an
 * attack scene on real Helia nodes over TCP loopback, stops every node and returns. It must end on
 * its own, exit code 0, with no unhandled rejection. The control child leaves one interval running
 * and must be caught, so the check itself can fail.
 */

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const CHILD = fileURLToPath(new URL('./exit/scene-child.ts', import.meta.url))
// time the child has after printing `stopped`: far above what closing sockets needs, even on a loaded CI
const GRACE_MS = 10_000
// the control child never exits: a shorter wait keeps the suite quick
const CONTROL_GRACE_MS = 3_000

interface Ended {
  /** null: still running GRACE_MS after `stopped`, then killed */
  code: number | null
  stopped: boolean
  stderr: string
}

async function runChild (graceMs: number, env: Record<string, string> = {}): Promise<Ended> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stopped = false
    let stderr = ''
    let grace: ReturnType<typeof setTimeout> | undefined
    let killed = false
    // nothing should take this long; a hang before `stopped` fails the test instead of mocha's timeout
    const overall = setTimeout(() => { killed = true; child.kill('SIGKILL') }, 50_000)
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (!stopped && chunk.includes('stopped')) {
        stopped = true
        grace = setTimeout(() => { killed = true; child.kill('SIGKILL') }, graceMs)
      }
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(overall)
      clearTimeout(grace)
      resolve({ code: killed ? null : code, stopped, stderr })
    })
  })
}

describe('the process exits by itself after stop() (child process, TCP loopback)', function () {
  this.timeout(60_000)

  it('a node that ran the service through an attack scene leaves nothing running after stop()', async () => {
    const ended = await runChild(GRACE_MS)
    assert.equal(ended.stopped, true, `the scene did not finish: ${ended.stderr.slice(-2000)}`)
    assert.equal(ended.code, 0, `exit code ${String(ended.code)} (null: still running ${GRACE_MS} ms after stop()): ${ended.stderr.slice(-2000)}`)
    assert.doesNotMatch(ended.stderr, /unhandled rejection/)
  })

  it('control: a child that leaves an interval running is caught', async () => {
    const ended = await runChild(CONTROL_GRACE_MS, { EXIT_CHILD_LEAK: '1' })
    assert.equal(ended.stopped, true, ended.stderr.slice(-2000))
    assert.equal(ended.code, null)
  })
})
