/**
 * The API docs build clean: typedoc (typedoc.json, `treatWarningsAsErrors`) finds every export of
 * src/index.ts documented and every type in a public signature exported or marked `@internal`.
 * Validation only (`--emit none`): `npm run docs` writes the HTML.
 */

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))

describe('API docs (typedoc)', function () {
  this.timeout(120_000)

  it('build with no warnings', () => {
    // the package's exports map hides its bin from require.resolve
    const bin = join(root, 'node_modules', 'typedoc', 'bin', 'typedoc')
    const run = spawnSync(process.execPath, [bin, '--emit', 'none'], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
    assert.equal(run.error, undefined)
    assert.equal(run.status, 0, `typedoc failed:\n${run.stdout}${run.stderr}`)
  })
})
