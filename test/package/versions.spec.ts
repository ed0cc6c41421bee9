/**
 * The README's "Supported versions" table must say what this checkout really runs on: the "Tested
 * with" column is the installed version, which must satisfy the "Supported" range, and the Node.js row
 * is package.json's `engines` and the `node` devDependency the npm scripts run on.
 */

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'

const root = new URL('../../', import.meta.url)
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { engines: { node: string }, devDependencies: Record<string, string> }

interface Row { name: string, supported: string, tested: string }

function supportedVersions (): Row[] {
  const readme = readFileSync(new URL('README.md', root), 'utf8')
  const start = readme.indexOf('<!-- supported-versions')
  assert.ok(start >= 0, 'README has the supported-versions marker')
  const table = readme.slice(start).split('\n').slice(1)
  const rows: Row[] = []
  for (const line of table.slice(2)) {
    if (!line.startsWith('|')) break
    const [name, supported, tested] = line.split('|').slice(1, -1).map(cell => cell.trim())
    rows.push({ name, supported, tested })
  }
  return rows
}

function installedVersion (name: string): string {
  // read the file: exports maps hide `<name>/package.json` from require()
  return (JSON.parse(readFileSync(new URL(`node_modules/${name}/package.json`, root), 'utf8')) as { version: string }).version
}

function parse (version: string): number[] {
  const parts = version.split('.').map(Number)
  assert.ok(parts.length === 3 && parts.every(Number.isInteger), `${version} is x.y.z`)
  return parts
}

function compare (a: string, b: string): number {
  const [x, y] = [parse(a), parse(b)]
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]
}

/** `^x.y.z` with x > 0, or `>=x.y` / `>=x.y.z`: the only two forms the table uses */
function satisfies (version: string, range: string): boolean {
  if (range.startsWith('^')) {
    const base = range.slice(1)
    return parse(version)[0] === parse(base)[0] && compare(version, base) >= 0
  }
  if (range.startsWith('>=')) {
    const base = range.slice(2).split('.').concat(['0', '0']).slice(0, 3).join('.')
    return compare(version, base) >= 0
  }
  throw new Error(`unsupported range ${range}`)
}

describe('README supported versions', () => {
  const rows = supportedVersions()

  it('lists libp2p, helia, @helia/bitswap and Node.js', () => {
    assert.deepEqual(rows.map(row => row.name), ['libp2p', 'helia', '@helia/bitswap', 'Node.js'])
  })

  for (const row of rows.filter(row => row.name !== 'Node.js')) {
    it(`${row.name}: tested with the installed version, inside the supported range`, () => {
      const installed = installedVersion(row.name)
      assert.equal(row.tested, installed)
      assert.ok(satisfies(installed, row.supported), `${installed} satisfies ${row.supported}`)
    })
  }

  it('Node.js: the supported range is `engines`, tested with the Node the npm scripts run on', () => {
    const node = rows.find(row => row.name === 'Node.js')
    assert.ok(node != null)
    assert.equal(node.supported, pkg.engines.node)
    assert.equal(node.tested, pkg.devDependencies.node)
    assert.equal(node.tested, installedVersion('node'))
    assert.ok(satisfies(node.tested, node.supported))
  })

  it('the range helper is not vacuous', () => {
    assert.equal(satisfies('3.3.10', '^3.3.11'), false)
    assert.equal(satisfies('4.0.0', '^3.3.11'), false)
    assert.equal(satisfies('22.18.9', '>=22.19'), false)
    assert.equal(satisfies('24.21.0', '>=22.19'), true)
  })
})
