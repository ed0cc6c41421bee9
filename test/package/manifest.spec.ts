/**
 * package.json against what src/ really imports, and the lock file against browser downloads: caret
 * ranges on exactly the packages the shipped code imports, and no install script that could fetch a
 * browser (playwright-core drives Debian's Chromium).
 */

import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))

interface Manifest {
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
  peerDependencies?: Record<string, string>
  sideEffects: boolean
  exports: Record<string, Record<string, string>>
  files: string[]
}

interface Lock { packages: Record<string, { hasInstallScript?: boolean, dev?: boolean }> }

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as Lock

/** Install scripts we accept: the `node` binary package the npm scripts run on, and esbuild's binary check */
const ALLOWED_INSTALL_SCRIPTS = new Set(['node', 'esbuild'])

function sourceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [])
}

/** The package name of a bare specifier: `@scope/name/sub` → `@scope/name`, `name/sub` → `name` */
function packageName (specifier: string): string {
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
}

/** Packages imported by src/ (type-only imports too: they are in the shipped .d.ts files) */
function importedPackages (): Map<string, string[]> {
  const found = new Map<string, string[]>()
  for (const file of sourceFiles(join(root, 'src'))) {
    const code = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
    for (const [, from, bare, dynamic] of code.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|(?:^|\n)\s*import\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)) {
      const specifier = from ?? bare ?? dynamic
      if (specifier == null || specifier.startsWith('.')) continue
      const name = packageName(specifier)
      found.set(name, [...found.get(name) ?? [], file.slice(root.length)])
    }
  }
  return found
}

describe('package.json and the lock file', () => {
  const imported = importedPackages()

  it('src/ imports packages (the scan is not vacuous)', () => {
    assert.ok(imported.has('@libp2p/interface'), [...imported.keys()].join(', '))
    assert.equal(packageName('@scope/name/sub/path'), '@scope/name')
    assert.equal(packageName('name/sub'), 'name')
  })

  it('every package src/ imports is a runtime dependency', () => {
    const missing = [...imported.keys()].filter(name => pkg.dependencies[name] == null && pkg.peerDependencies?.[name] == null)
    assert.deepEqual(missing.map(name => `${name} (${imported.get(name)?.join(', ')})`), [])
  })

  it('every runtime dependency is imported by src/', () => {
    assert.deepEqual(Object.keys(pkg.dependencies).filter(name => !imported.has(name)), [])
  })

  it('every runtime dependency has a caret range', () => {
    assert.deepEqual(Object.entries(pkg.dependencies).filter(([, range]) => !/^\^\d+\.\d+\.\d+$/.test(range)), [])
  })

  it('is tree-shakable and require()-able: sideEffects false and a module-sync export', () => {
    assert.equal(pkg.sideEffects, false)
    assert.equal(pkg.exports['.']['module-sync'], pkg.exports['.'].import)
    assert.ok(pkg.files.includes('LICENSE-APACHE') && pkg.files.includes('LICENSE-MIT'))
  })

  it('no package in the lock runs an install script except the allowed ones, and none is a browser download', () => {
    const scripted = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== '' && entry.hasInstallScript === true)
      .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length))
      .filter(name => !ALLOWED_INSTALL_SCRIPTS.has(name))
    assert.deepEqual(scripted, [])
    // packages that download a browser when installed or first run
    const browsers = Object.keys(lock.packages).filter(path => /node_modules\/(playwright|puppeteer|@playwright\/[^/]+|@puppeteer\/browsers|chromium|electron)$/.test(path))
    assert.deepEqual(browsers, [])
    assert.ok(lock.packages['node_modules/playwright-core'] != null, 'playwright-core drives the browser')
  })
})
