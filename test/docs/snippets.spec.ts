/**
 * Every TypeScript example in README.md and docs/*.md typechecks against src/ (strict, no cast), so
 * the docs cannot drift from the API. The examples import from 'bitswap-circuit-breaker', which is
 * pointed at src/index.ts here; `npm run test:package` checks the README's against the packed tarball.
 */

import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = fileURLToPath(new URL('../../', import.meta.url))
const index = join(root, 'src', 'index.ts')

/** The code of every ```ts block, with the file it came from */
function snippets (): Array<{ from: string, code: string }> {
  const files = ['README.md', ...readdirSync(join(root, 'docs')).filter(name => name.endsWith('.md')).map(name => `docs/${name}`)]
  return files.flatMap(from => [...readFileSync(join(root, from), 'utf8').matchAll(/^```ts\n([\s\S]*?)^```/gm)]
    .map(match => ({ from, code: match[1] })))
}

describe('TypeScript examples in README.md and docs/', function () {
  this.timeout(60_000)

  const all = snippets()

  it('there are examples in the README and in docs/how-it-works.md', () => {
    assert.ok(all.filter(s => s.from === 'README.md').length >= 4)
    assert.ok(all.filter(s => s.from === 'docs/how-it-works.md').length >= 4)
  })

  it('use no cast', () => {
    const casts = all.filter(({ code }) => /\bas\s+(?!const\b)[\w{[]/.test(code.replace(/\/\/.*$/gm, '')))
    assert.deepEqual(casts.map(s => `${s.from}: ${s.code.split('\n')[0]}`), [])
  })

  it('typecheck in strict mode against src/', () => {
    const virtual = new Map<string, string>()
    all.forEach(({ code }, i) => {
      // each example is a module of its own, next to the package so its imports resolve from node_modules
      const source = code.replaceAll("from 'bitswap-circuit-breaker'", `from '${index}'`)
      virtual.set(join(root, `__doc_example_${i}.ts`), source.includes('import ') || source.includes('export ') ? source : `${source}\nexport {}\n`)
    })
    const options: ts.CompilerOptions = {
      target: ts.ScriptTarget.ES2023,
      lib: ['lib.es2024.d.ts', 'lib.dom.d.ts'],
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      allowImportingTsExtensions: true,
      types: ['node']
    }
    const host = ts.createCompilerHost(options)
    const { getSourceFile, fileExists, readFile } = host
    host.fileExists = (file) => virtual.has(file) || fileExists(file)
    host.readFile = (file) => virtual.get(file) ?? readFile(file)
    host.getSourceFile = (file, language, ...rest) => {
      const text = virtual.get(file)
      return text == null ? getSourceFile(file, language, ...rest) : ts.createSourceFile(file, text, language, true)
    }
    const program = ts.createProgram([...virtual.keys()], options, host)
    const problems = ts.getPreEmitDiagnostics(program)
      .filter(d => d.file == null || virtual.has(d.file.fileName))
      .map(d => {
        const i = d.file == null ? -1 : Number(d.file.fileName.match(/__doc_example_(\d+)\.ts$/)?.[1])
        const where = d.file != null && d.start != null ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0
        return `${all[i]?.from ?? '?'} example starting "${all[i]?.code.split('\n')[0] ?? ''}", line ${where}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
      })
    assert.deepEqual(problems, [])
  })
})
