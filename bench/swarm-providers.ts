/**
 * Where the swarm bench's providers live. By default in a process of their own (`bench/swarm-host.ts`),
 * so that a fetch's time is the consumer's work alone: in one process, every provider's encoding and
 * encryption of the duplicate blocks it sends runs on the consumer's event loop, and a swarm of five
 * answering providers costs the consumer their CPU as well as its own (what `--swarm-providers
 * in-process` still measures). Real providers are other machines.
 */

import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { TestNet, createSwarm, makeBlocks } from '../fixtures/index.ts'
import { settleHeap } from './stats.ts'
import type { Swarm, SwarmRole } from '../fixtures/index.ts'
import type { ChildProcessByStdio } from 'node:child_process'
import type { Readable, Writable } from 'node:stream'

export type ProviderPlacement = 'process' | 'in-process'

/** What a cell asks for: these members, in this order, each holding the same `blocks` blocks */
export interface ProviderOrder {
  roles: readonly SwarmRole[]
  blocks: number
  seed: number
}

export interface BuiltMember {
  role: SwarmRole
  /** What the consumer dials (the proxy's address for a blackhole member) */
  addr: string
}

export interface ProviderHost {
  /** Builds the members (after `teardown()` of the previous ones) */
  build(order: ProviderOrder): Promise<BuiltMember[]>
  /** Blackholes and starts flapping, once the consumer has identified every member */
  arm(): Promise<void>
  /** Stops the members and collects the host's heap */
  teardown(): Promise<void>
  close(): Promise<void>
}

export function providerHost (placement: ProviderPlacement): ProviderHost {
  return placement === 'in-process' ? new LocalHost() : new ChildHost()
}

/** The members in this process */
export class LocalHost implements ProviderHost {
  private net: TestNet | undefined
  private swarm: Swarm | undefined

  async build (order: ProviderOrder): Promise<BuiltMember[]> {
    await this.teardown()
    this.net = new TestNet()
    const blocks = await makeBlocks(order.blocks, 4096, { seed: order.seed })
    this.swarm = await createSwarm(this.net, blocks, { roles: order.roles })
    return this.swarm.members.map(m => ({ role: m.role, addr: m.provider.multiaddrs[0].toString() }))
  }

  async arm (): Promise<void> {
    this.swarm?.arm()
  }

  async teardown (): Promise<void> {
    const net = this.net
    this.net = undefined
    this.swarm = undefined
    await net?.stop()
  }

  async close (): Promise<void> {
    await this.teardown()
  }
}

/** Give up on a host that does not answer an order within this, ms */
const HOST_TIMEOUT = 60_000

/** The members in `bench/swarm-host.ts`, driven by one JSON line per order on its stdin */
class ChildHost implements ProviderHost {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>
  private readonly replies: AsyncIterator<string>

  constructor () {
    this.child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/swarm-host.ts'], { stdio: ['pipe', 'pipe', 'inherit'] })
    this.replies = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]()
  }

  async build (order: ProviderOrder): Promise<BuiltMember[]> {
    return (await this.ask({ op: 'build', ...order })).members as BuiltMember[]
  }

  async arm (): Promise<void> {
    await this.ask({ op: 'arm' })
  }

  async teardown (): Promise<void> {
    await this.ask({ op: 'teardown' })
  }

  async close (): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      return // it died already: no exit event will come
    }
    const exited = new Promise(resolve => this.child.once('exit', resolve))
    this.child.stdin.end()
    const killer = setTimeout(() => { this.child.kill('SIGKILL') }, 10_000)
    await exited
    clearTimeout(killer)
  }

  private async ask (order: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.child.stdin.write(JSON.stringify(order) + '\n')
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`swarm host: no reply to ${String(order.op)} in ${HOST_TIMEOUT} ms`)) }, HOST_TIMEOUT)
    })
    try {
      const line = await Promise.race([this.replies.next(), timeout])
      if (line.done === true) {
        throw new Error(`swarm host exited before answering ${String(order.op)}`)
      }
      const reply = JSON.parse(line.value) as Record<string, unknown>
      if (typeof reply.error === 'string') {
        throw new Error(`swarm host: ${reply.error}`)
      }
      return reply
    } finally {
      clearTimeout(timer)
    }
  }
}

/** The host side: serves orders from stdin until it ends */
export async function serveOrders (): Promise<void> {
  const host = new LocalHost()
  for await (const line of createInterface({ input: process.stdin })) {
    const order = JSON.parse(line) as { op: string } & ProviderOrder
    let reply: Record<string, unknown>
    try {
      if (order.op === 'build') {
        reply = { members: await host.build(order) }
      } else if (order.op === 'arm') {
        await host.arm()
        reply = { ok: true }
      } else if (order.op === 'teardown') {
        await host.teardown()
        settleHeap()
        reply = { ok: true }
      } else {
        reply = { error: `unknown op '${order.op}'` }
      }
    } catch (err) {
      reply = { error: String(err) }
    }
    process.stdout.write(JSON.stringify(reply) + '\n')
  }
  await host.close()
}
