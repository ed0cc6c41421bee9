/**
 * The README's reference tables against the code, read with the TypeScript compiler: every option of
 * `bitswapCircuitBreaker(init)` (and of each nested options object) has a row and no row names an
 * option that does not exist; every service event and every exported error class is listed.
 */

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import ts from 'typescript'

const root = new URL('../../', import.meta.url)
const readme = readFileSync(new URL('README.md', root), 'utf8')

/** The text of a README section, from its heading to the next heading of the same or a higher level */
function section (heading: string): string {
  const lines = readme.split('\n')
  const start = lines.findIndex(line => line === heading)
  assert.ok(start >= 0, `README has "${heading}"`)
  const level = heading.indexOf(' ')
  const end = lines.findIndex((line, i) => i > start && /^#{1,6} /.test(line) && line.indexOf(' ') <= level)
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n')
}

/** The code-formatted names in the first column of a section's table rows */
function firstColumn (text: string): string[] {
  return text.split('\n')
    .filter(line => line.startsWith('| `'))
    .flatMap(line => [...line.split(' | ')[0].matchAll(/`([^`]+)`/g)].map(match => match[1]))
}

let checker: ts.TypeChecker
let index: ts.Symbol

before(function () {
  this.timeout(60_000)
  const file = new URL('src/index.ts', root).pathname
  const program = ts.createProgram([file], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2023,
    strict: true,
    allowImportingTsExtensions: true,
    noEmit: true,
    skipLibCheck: true,
    types: []
  })
  checker = program.getTypeChecker()
  const source = program.getSourceFile(file)
  assert.ok(source != null)
  const symbol = checker.getSymbolAtLocation(source)
  assert.ok(symbol != null)
  index = symbol
})

function exported (name: string): ts.Symbol {
  const symbol = checker.getExportsOfModule(index).find(s => s.name === name)
  assert.ok(symbol != null, `src/index.ts exports ${name}`)
  return symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
}

function propertiesOf (type: ts.Type): ts.Symbol[] {
  return checker.getPropertiesOfType(checker.getNonNullableType(type))
}

function typeOfProperty (property: ts.Symbol): ts.Type {
  const declaration = property.valueDeclaration ?? property.declarations?.[0]
  assert.ok(declaration != null)
  return checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(property, declaration))
}

/** Options whose value is an options object of its own (documented in a `### \`name\`` table) */
function isOptionsObject (property: ts.Symbol): boolean {
  const type = typeOfProperty(property)
  return type.getCallSignatures().length === 0 && !checker.isArrayType(type) && (type.flags & ts.TypeFlags.Object) !== 0 &&
    readme.includes(`### \`${property.name}\``)
}

describe('README reference tables', function () {
  this.timeout(60_000)

  it('Options: the Service table has every option of bitswapCircuitBreaker(init), and only those', () => {
    const init = checker.getDeclaredTypeOfSymbol(exported('BitswapCircuitBreakerInit'))
    const options = propertiesOf(init).map(p => p.name).sort()
    assert.deepEqual(firstColumn(section('### Service')).sort(), options)
  })

  it('Options: every nested options table has every field of its options object, and only those', () => {
    const init = checker.getDeclaredTypeOfSymbol(exported('BitswapCircuitBreakerInit'))
    const nested = propertiesOf(init).filter(isOptionsObject)
    assert.ok(nested.length >= 5, `nested option tables: ${nested.map(p => p.name).join(', ')}`)
    const problems: string[] = []
    for (const property of nested) {
      const fields = propertiesOf(typeOfProperty(property)).map(p => p.name).sort()
      const rows = firstColumn(section(`### \`${property.name}\``)).sort()
      for (const field of fields) if (!rows.includes(field)) problems.push(`${property.name}.${field} has no row`)
      for (const row of rows) if (!fields.includes(row)) problems.push(`${property.name}: row ${row} is no option`)
    }
    assert.deepEqual(problems, [])
  })

  it('Events: every service event is listed', () => {
    const events = propertiesOf(checker.getDeclaredTypeOfSymbol(exported('BitswapCircuitBreakerEvents'))).map(p => p.name).sort()
    assert.ok(events.length >= 5)
    assert.deepEqual(firstColumn(section('## Events')).sort(), events)
  })

  it('Errors: every exported error class is listed', () => {
    const errors = checker.getExportsOfModule(index)
      .filter(symbol => symbol.name.endsWith('Error'))
      .filter(symbol => ((symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol).flags & ts.SymbolFlags.Class) !== 0)
      .map(symbol => symbol.name)
      .sort()
    assert.ok(errors.includes('CircuitOpenError'))
    assert.deepEqual(firstColumn(section('## Errors')).filter(name => name.endsWith('Error')).sort(), errors)
  })

  it('the table readers are not vacuous', () => {
    assert.deepEqual(firstColumn('| `a`, `b` | `c` |\n| x | `d` |\n| `e` | f |'), ['a', 'b', 'e'])
  })
})
