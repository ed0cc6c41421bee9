/**
 * The package as an app developer gets it: `npm pack`, then install the tarball into a scratch
 * strict-TypeScript app beside helia 7, and check what the README promises. Installs from the local
 * tarball and the registry (npm's cache first), with install scripts off. Not part of `npm test`
 * (about a minute of npm install): `npm run test:package`, which .ci/run runs.
 */

import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, posix, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = fileURLToPath(new URL('../../', import.meta.url))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string, engines: { node: string } }

/** What the scratch app depends on besides the tarball: the README's imports, at the versions this checkout tests */
const APP_DEPENDENCIES = [
  'helia', '@helia/libp2p', 'libp2p', '@libp2p/interface', '@libp2p/identify', '@libp2p/noise', '@libp2p/yamux',
  '@libp2p/tcp', '@libp2p/prometheus-metrics', 'prom-client'
]
const APP_DEV_DEPENDENCIES = ['typescript', '@types/node']

/** The lowest Node.js `engines` allows, as the registry's per-platform binary package */
const LOWEST_NODE = pkg.engines.node.replace(/^>=/, '').split('.').concat(['0', '0']).slice(0, 3).join('.')
const NODE_BINARY_PACKAGE = `node-${process.platform}-${process.arch}`
const HAS_NODE_BINARY_PACKAGE = process.platform === 'linux' && process.arch === 'x64'

function version (name: string): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
}

function run (cmd: string, args: string[], cwd: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string, stderr?: string }
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}\n${stdout ?? ''}\n${stderr ?? ''}`, { cause: err })
  }
}

/** Every `package.json` of `name` anywhere under `dir`'s node_modules */
function copiesOf (dir: string, name: string): string[] {
  const found: string[] = []
  const visit = (modules: string): void => {
    if (!existsSync(modules)) return
    for (const entry of readdirSync(modules)) {
      if (entry.startsWith('.')) continue
      const names = entry.startsWith('@') ? readdirSync(join(modules, entry)).map(sub => `${entry}/${sub}`) : [entry]
      for (const child of names) {
        const path = join(modules, child)
        if (child === name && existsSync(join(path, 'package.json'))) found.push(relative(dir, path))
        visit(join(path, 'node_modules'))
      }
    }
  }
  visit(join(dir, 'node_modules'))
  return found
}

/** The code of every ```ts block */
function tsBlocks (markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```/gm)].map(match => match[1])
}

/** GitHub's heading anchors */
function anchors (markdown: string): Set<string> {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '')
  return new Set([...prose.matchAll(/^#{1,6}\s+(.+)$/gm)].map(([, title]) =>
    title.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')))
}

/** Link targets outside code: `[text](target)`, `![alt](target)` and `<https://…>` */
function links (markdown: string): string[] {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '')
  return [
    ...[...prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map(match => match[1]),
    ...[...prose.matchAll(/<(https?:\/\/[^>\s]+)>/g)].map(match => match[1])
  ]
}

describe('the packed tarball in a scratch app beside helia 7', function () {
  this.timeout(300_000)

  let scratch: string
  let app: string
  let installed: string
  let files: string[]

  before(function () {
    scratch = mkdtempSync(join(tmpdir(), 'bcb-package-'))
    // prepack builds dist/ first
    const [packed] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', scratch], root)) as Array<{ filename: string, files: Array<{ path: string }> }>
    files = packed.files.map(file => file.path)

    app = join(scratch, 'app')
    mkdirSync(app)
    const dependencies: Record<string, string> = { [pkg.name]: `file:${join(scratch, packed.filename)}` }
    for (const name of APP_DEPENDENCIES) dependencies[name] = version(name)
    const devDependencies: Record<string, string> = {}
    for (const name of APP_DEV_DEPENDENCIES) devDependencies[name] = version(name)
    if (HAS_NODE_BINARY_PACKAGE) devDependencies[NODE_BINARY_PACKAGE] = LOWEST_NODE
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module', dependencies, devDependencies }, null, 2))
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2024',
        lib: ['ES2024', 'DOM'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node']
      },
      include: ['src']
    }, null, 2))
    run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], app)
    installed = join(app, 'node_modules', pkg.name)
  })

  after(() => {
    if (scratch != null) rmSync(scratch, { recursive: true, force: true })
  })

  it('ships the build, the sources, the docs, the changelog and both licenses, and no tests', () => {
    for (const file of ['package.json', 'README.md', 'CHANGELOG.md', 'LICENSE-APACHE', 'LICENSE-MIT', 'dist/src/index.js', 'dist/src/index.d.ts', 'src/index.ts', 'docs/how-it-works.md', 'docs/design.md', 'docs/benchmarks.md']) {
      assert.ok(files.includes(file), `${file} is in the tarball`)
    }
    const stray = files.filter(file => /^(test|fixtures|bench|demo|examples|node_modules)\//.test(file) || file.includes('.spec.'))
    assert.deepEqual(stray, [])
  })

  it('leaves one copy of @libp2p/interface and @libp2p/interface-internal', () => {
    assert.deepEqual(copiesOf(app, '@libp2p/interface'), [join('node_modules', '@libp2p', 'interface')])
    assert.deepEqual(copiesOf(app, '@libp2p/interface-internal'), [join('node_modules', '@libp2p', 'interface-internal')])
    // the walk finds nested copies: helia's own dependencies nest some packages
    assert.ok(copiesOf(app, 'uint8arraylist').length >= 1)
  })

  it('typechecks every TypeScript example of the README in a strict app, with no cast', () => {
    const blocks = tsBlocks(readFileSync(join(installed, 'README.md'), 'utf8'))
    assert.ok(blocks.length >= 3, 'the README has its libp2p, Helia and other examples')
    assert.ok(blocks.some(code => code.includes("from 'libp2p'") && code.includes('node.services.bitswapCircuitBreaker')), 'libp2p quick start')
    assert.ok(blocks.some(code => code.includes("from 'helia'") && code.includes('helia.libp2p.services.bitswapCircuitBreaker')), 'Helia quick start')
    mkdirSync(join(app, 'src'))
    blocks.forEach((code, i) => {
      const withoutComments = code.replace(/\/\/.*$/gm, '')
      assert.doesNotMatch(withoutComments, /\bas\s+(?!const\b)[\w{[]/, `README example ${i} has no cast`)
      writeFileSync(join(app, 'src', `readme-${i}.ts`), code.includes('import ') || code.includes('export ') ? code : `${code}\nexport {}\n`)
    })
    run(join(app, 'node_modules', '.bin', 'tsc'), ['-p', '.'], app)
  })

  it(`require() works on Node.js ${LOWEST_NODE} (the lowest supported)`, function () {
    if (!HAS_NODE_BINARY_PACKAGE) this.skip()
    const script = `const m = require('${pkg.name}'); process.stdout.write(JSON.stringify([process.version, typeof m.bitswapCircuitBreaker, typeof m.CircuitBreaker]))`
    const out = JSON.parse(run(join(app, 'node_modules', NODE_BINARY_PACKAGE, 'bin', 'node'), ['-e', script], app)) as string[]
    assert.deepEqual(out, [`v${LOWEST_NODE}`, 'function', 'function'])
  })

  it(`require() works on the Node.js running this test (${process.version})`, () => {
    const script = `const m = require('${pkg.name}'); process.stdout.write(JSON.stringify([typeof m.addBitswapCircuitBreaker, typeof m.BitswapProtectionManager]))`
    assert.deepEqual(JSON.parse(run(process.execPath, ['-e', script], app)), ['function', 'function'])
  })

  it('is tree-shakable: importing only CircuitBreaker bundles a small fraction of the package', async () => {
    const bundle = async (names: string): Promise<number> => {
      const result = await build({
        stdin: { contents: `export { ${names} } from '${pkg.name}'`, resolveDir: app },
        bundle: true, minify: true, write: false, format: 'esm', platform: 'browser', logLevel: 'silent'
      })
      return result.outputFiles[0].contents.byteLength
    }
    const breakerOnly = await bundle('CircuitBreaker')
    const service = await bundle('bitswapCircuitBreaker, CircuitBreaker')
    assert.ok(breakerOnly < 40_000, `CircuitBreaker alone bundles ${breakerOnly} B`)
    assert.ok(breakerOnly * 2 < service, `CircuitBreaker alone (${breakerOnly} B) is well under the service (${service} B)`)
  })

  it('resolves every link of the README and of docs/ inside the package, or is an absolute URL', () => {
    const markdown = files.filter(file => file === 'README.md' || file === 'CHANGELOG.md' || /^docs\/.*\.md$/.test(file))
    const broken: string[] = []
    for (const file of markdown) {
      const text = readFileSync(join(installed, file), 'utf8')
      for (const target of links(text)) {
        if (/^(https?:|mailto:)/.test(target)) continue
        const [path, anchor] = target.split('#')
        const resolved = path === '' ? file : posix.normalize(posix.join(posix.dirname(file), path))
        if (!files.includes(resolved) && !files.some(f => f.startsWith(`${resolved.replace(/\/$/, '')}/`))) {
          broken.push(`${file}: ${target} (${resolved} is not in the package)`)
        } else if (anchor != null && resolved.endsWith('.md') && !anchors(readFileSync(join(installed, resolved), 'utf8')).has(anchor)) {
          broken.push(`${file}: ${target} (no heading #${anchor} in ${resolved})`)
        }
      }
    }
    assert.deepEqual(broken, [])
  })

  it('the link check is not vacuous', () => {
    assert.deepEqual(links('see [a](docs/x.md#y), `[b](c)`, <https://e.org/f>\n```\n[g](h)\n```'), ['docs/x.md#y', 'https://e.org/f'])
    assert.ok(anchors('## Quick start: Helia\n## `observe`').has('quick-start-helia'))
    assert.ok(anchors('## `observe`').has('observe'))
    assert.ok(dirname(installed).endsWith('node_modules'))
  })
})
