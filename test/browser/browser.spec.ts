/**
 * The service in a real browser: Debian's Chromium (never a downloaded one) driven by playwright-core,
 * on a page bundled from test/browser/page.ts with esbuild and no Node polyfills. Not part of
 * `npm test` (it needs Chromium): `npm run test:browser`, which .ci/run runs after installing
 * Chromium when it is missing. Any page error or unhandled rejection fails the test.
 */

import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { webSockets } from '@libp2p/websockets'
import { build } from 'esbuild'
import { chromium } from 'playwright-core'
import { createFaultyProvider, makeBlocks } from '../../fixtures/index.ts'
import { CircuitState } from '../../src/index.ts'
import { WEBSOCKETS_BLOCKS } from './shared.ts'
import type { FaultyProvider } from '../../fixtures/index.ts'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { BrowserContext, Page } from 'playwright-core'

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

/** The page's entry points (see page.ts) */
interface PageApi {
  memoryCase(): Promise<{ total: number, received: number, failed: string[], badStates: string[], goodStates: string[], badState: string, userAgent: string }>
  webSocketsStart(address: string): Promise<{ states: string[], connections: number, lastError?: string }>
  webSocketsFinish(): Promise<{ total: number, received: number, failed: string[], states: string[], state: string }>
}

declare const bcb: PageApi
declare const __pageErrors: string[]

describe('in Chromium', function () {
  this.timeout(120_000)

  let server: Server
  let userDataDir: string
  let context: BrowserContext
  let page: Page
  const errors: string[] = []
  const console: string[] = []
  let provider: FaultyProvider | undefined

  /** Page errors and unhandled rejections seen so far, from Playwright and from the page's own listeners */
  async function pageErrors (): Promise<string[]> {
    return [...errors, ...await page.evaluate(() => __pageErrors)]
  }

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does it)`)
    const bundle = await build({
      entryPoints: [fileURLToPath(new URL('page.ts', import.meta.url))],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2023',
      write: false,
      sourcemap: 'inline',
      logLevel: 'silent'
    })
    const js = bundle.outputFiles[0].contents
    const html = '<!doctype html><meta charset="utf-8"><title>loading</title><script type="module" src="/page.js"></script>'

    server = createServer((req, res) => {
      if (req.url === '/page.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(js)
      } else if (req.url === '/favicon.ico') {
        res.writeHead(204).end()
      } else if (req.url === '/') {
        res.writeHead(200, { 'content-type': 'text/html' }).end(html)
      } else {
        res.writeHead(404).end()
      }
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))

    userDataDir = mkdtempSync(join(tmpdir(), 'bcb-chromium-'))
    context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: FLAGS })
    page = context.pages()[0] ?? await context.newPage()
    page.on('pageerror', err => errors.push(`pageerror: ${err.stack ?? err.message}`))
    page.on('console', msg => { console.push(`${msg.type()}: ${msg.text()}`) })
    await page.addInitScript(() => {
      const seen: string[] = []
      Object.assign(globalThis, { __pageErrors: seen })
      addEventListener('unhandledrejection', (evt) => { seen.push(`unhandledrejection: ${(evt.reason as Error)?.stack ?? String(evt.reason)}`) })
      addEventListener('error', (evt) => { seen.push(`error: ${evt.message}`) })
    })
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
    await page.waitForFunction(() => document.title === 'ready', undefined, { timeout: 30_000 })
  })

  afterEach(async function () {
    await provider?.stop()
    provider = undefined
    const seen = await pageErrors()
    if (seen.length > 0 || this.currentTest?.state === 'failed') {
      process.stderr.write(`page console:\n${console.slice(-40).join('\n')}\n`)
    }
    assert.deepEqual(seen, [], 'no page error or unhandled rejection')
  })

  after(async () => {
    await context?.close()
    await new Promise(resolve => server?.close(resolve))
    if (userDataDir != null) rmSync(userDataDir, { recursive: true, force: true })
  })

  it('catches an unhandled rejection in the page (the error check is not vacuous)', async () => {
    await page.evaluate(() => { void Promise.reject(new Error('probe')) })
    await page.waitForFunction(() => __pageErrors.length > 0)
    const seen = await page.evaluate(() => __pageErrors.splice(0))
    errors.splice(0)
    assert.equal(seen.length, 1)
    assert.match(seen[0], /unhandledrejection: Error: probe/)
  })

  it('memory transport in the page: every block arrives, and the resetting provider\'s circuit opens', async () => {
    const result = await page.evaluate(async () => bcb.memoryCase())

    assert.match(result.userAgent, /Chrome\//)
    assert.equal(result.received, result.total, `failed: ${result.failed.join(', ')}`)
    assert.deepEqual(result.failed, [])
    assert.equal(result.badStates[0], CircuitState.OPEN)
    assert.equal(result.badState, CircuitState.OPEN)
    assert.deepEqual(result.goodStates, [], 'the healthy provider\'s circuit never changed')
  })

  it('WebSockets to a Node provider on 127.0.0.1: faulty, isolated; healed, recovered', async () => {
    const blocks = await makeBlocks(WEBSOCKETS_BLOCKS.n, WEBSOCKETS_BLOCKS.size, { seed: WEBSOCKETS_BLOCKS.seed })
    provider = await createFaultyProvider({
      blocks,
      mode: 'reset',
      libp2p: { transports: [webSockets()], addresses: { listen: ['/ip4/127.0.0.1/tcp/0/ws'] } }
    })
    const address = provider.multiaddrs.map(String).find(ma => ma.startsWith('/ip4/127.0.0.1/') && ma.includes('/ws/'))
    assert.ok(address != null, `a ws address among ${provider.multiaddrs.map(String).join(', ')}`)

    const isolated = await page.evaluate(async (ma) => bcb.webSocketsStart(ma), address)
    assert.deepEqual(isolated.states, [CircuitState.OPEN])
    assert.equal(isolated.connections, 0, 'hung up on the open circuit')
    assert.ok(provider.stats.reset > 0, 'the provider reset the browser\'s Bitswap streams')

    provider.set('none')
    const recovered = await page.evaluate(async () => bcb.webSocketsFinish())
    assert.equal(recovered.received, recovered.total, `failed: ${recovered.failed.join(', ')}`)
    assert.deepEqual(recovered.states.slice(0, 3), [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED])
    assert.equal(recovered.state, CircuitState.CLOSED)
  })
})
