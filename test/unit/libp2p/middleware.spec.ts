/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import { installMiddleware } from '../../../src/libp2p/middleware.ts'
import type { StreamMiddleware } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'

const BITSWAP_120 = '/ipfs/bitswap/1.2.0'
const BITSWAP_110 = '/ipfs/bitswap/1.1.0'
const IDENTIFY = '/ipfs/id/1.0.0'

/** The middleware part of libp2p 3.3.11's Registrar, with its exact semantics */
class FakeRegistrar {
  readonly middleware = new Map<string, StreamMiddleware[]>()

  /** Replaces the protocol's list (keeps the very array given) */
  use (protocol: string, middleware: StreamMiddleware[]): void {
    this.middleware.set(protocol, middleware)
  }

  unuse (protocol: string): void {
    this.middleware.delete(protocol)
  }

  getMiddleware (protocol: string): StreamMiddleware[] {
    return this.middleware.get(protocol) ?? []
  }
}

function named (name: string): StreamMiddleware {
  const mw: StreamMiddleware = (stream, connection, next) => { next(stream, connection) }
  Object.defineProperty(mw, 'name', { value: name })
  return mw
}

describe('installMiddleware', () => {
  let registrar: FakeRegistrar
  let ours: StreamMiddleware
  let theirs: StreamMiddleware
  let later: StreamMiddleware

  beforeEach(() => {
    registrar = new FakeRegistrar()
    ours = named('ours')
    theirs = named('theirs')
    later = named('later')
  })

  function install (protocols: string[]): () => void {
    return installMiddleware(registrar as unknown as Registrar, protocols, ours)
  }

  it('installs on a protocol with no middleware yet', () => {
    install([BITSWAP_120])
    assert.deepEqual(registrar.getMiddleware(BITSWAP_120), [ours])
  })

  it('keeps what others installed and appends ours last', () => {
    const first = named('first')
    registrar.use(BITSWAP_120, [first, theirs])
    install([BITSWAP_120])
    assert.deepEqual(registrar.getMiddleware(BITSWAP_120), [first, theirs, ours])
  })

  it('does not mutate the list another service handed to the registrar', () => {
    const list = [theirs]
    registrar.use(BITSWAP_120, list)
    install([BITSWAP_120])
    assert.deepEqual(list, [theirs])
  })

  it('installs on every protocol given, and only those', () => {
    registrar.use(BITSWAP_110, [theirs])
    registrar.use(IDENTIFY, [theirs])
    install([BITSWAP_120, BITSWAP_110])
    assert.deepEqual(registrar.getMiddleware(BITSWAP_120), [ours])
    assert.deepEqual(registrar.getMiddleware(BITSWAP_110), [theirs, ours])
    assert.deepEqual(registrar.getMiddleware(IDENTIFY), [theirs])
  })

  it('uninstall unuses a protocol that is left with nothing', () => {
    const uninstall = install([BITSWAP_120, BITSWAP_110])
    uninstall()
    assert.equal(registrar.middleware.has(BITSWAP_120), false)
    assert.equal(registrar.middleware.has(BITSWAP_110), false)
    assert.equal(registrar.middleware.size, 0)
  })

  it('uninstall removes only ours: others\' entries stay, in order, even ones added after ours', () => {
    registrar.use(BITSWAP_120, [theirs])
    const uninstall = install([BITSWAP_120, BITSWAP_110])
    // another service appends after us, the same way we do
    registrar.use(BITSWAP_120, [...registrar.getMiddleware(BITSWAP_120), later])
    registrar.use(BITSWAP_110, [...registrar.getMiddleware(BITSWAP_110), later])
    uninstall()
    assert.deepEqual(registrar.getMiddleware(BITSWAP_120), [theirs, later])
    assert.deepEqual(registrar.getMiddleware(BITSWAP_110), [later])
    assert.equal(registrar.middleware.has(BITSWAP_110), true)
  })

  it('uninstall leaves alone what another service did to the list meanwhile', () => {
    registrar.use(BITSWAP_120, [theirs])
    const uninstall = install([BITSWAP_120, BITSWAP_110])
    // someone else removed everything of theirs (and ours) from one protocol and replaced another's list
    registrar.unuse(BITSWAP_120)
    registrar.use(BITSWAP_110, [later, ours])
    uninstall()
    assert.equal(registrar.middleware.has(BITSWAP_120), false)
    assert.deepEqual(registrar.getMiddleware(BITSWAP_110), [later])
  })

  it('two installs of different middleware undo independently', () => {
    const uninstallOurs = install([BITSWAP_120])
    const uninstallTheirs = installMiddleware(registrar as unknown as Registrar, [BITSWAP_120], theirs)
    assert.deepEqual(registrar.getMiddleware(BITSWAP_120), [ours, theirs])
    uninstallOurs()
    assert.deepEqual(registrar.getMiddleware(BITSWAP_120), [theirs])
    uninstallTheirs()
    assert.equal(registrar.middleware.has(BITSWAP_120), false)
  })

  it('works on the real libp2p Registrar semantics: only use, unuse and getMiddleware are called', () => {
    const calls: string[] = []
    const spy = {
      use: (protocol: string, list: StreamMiddleware[]) => { calls.push(`use ${protocol} ${list.map(mw => mw.name).join(',')}`); registrar.use(protocol, list) },
      unuse: (protocol: string) => { calls.push(`unuse ${protocol}`); registrar.unuse(protocol) },
      getMiddleware: (protocol: string) => registrar.getMiddleware(protocol)
    }
    registrar.use(BITSWAP_110, [theirs])
    const uninstall = installMiddleware(spy as unknown as Registrar, [BITSWAP_120, BITSWAP_110], ours)
    uninstall()
    assert.deepEqual(calls, [
      `use ${BITSWAP_120} ours`,
      `use ${BITSWAP_110} theirs,ours`,
      `unuse ${BITSWAP_120}`,
      `use ${BITSWAP_110} theirs`
    ])
  })
})
