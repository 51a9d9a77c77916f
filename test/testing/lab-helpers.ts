// Shared by the NAT lab tests: skip-or-fail logic, and a driver for the net-agent fixture.
import type { ChildProcess } from 'node:child_process'
import { describe } from 'vitest'
import { natLabSupport, type NatLab } from '../../src/testing/index.js'

/** Whether this machine can build labs, and why not. */
export const support = await natLabSupport()

/** In CI the lab must run: a missing capability fails the tests (createNatLab rejects with ERR_NAT_LAB_UNAVAILABLE). */
export const labRequired = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false'

/** `describe` that skips, saying why, when the lab cannot run here and CI does not require it. */
export function describeLab(name: string, fn: () => void): void {
  const skip = !support.available && !labRequired
  describe.skipIf(skip)(skip ? `${name} (skipped: ${support.reason})` : name, fn)
}

export const fixture = (name: string): URL => new URL(`./fixtures/${name}`, import.meta.url)

/** Resolves with the first IPC message of `child` that `accept` returns non-undefined for. */
export function nextMessage<T>(child: ChildProcess, accept: (m: unknown) => T | undefined, timeout: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (m: unknown): void => {
      const value = accept(m)
      if (value === undefined) return
      cleanup()
      resolve(value)
    }
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup()
      reject(new Error(`${what}: the child exited (code ${code}, signal ${signal}) before answering`))
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`${what}: no answer within ${timeout} ms`))
    }, timeout)
    const cleanup = (): void => {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

/** The net-agent fixture running in one lab node. */
export class Agent {
  readonly node: string
  readonly child: ChildProcess
  #nextId = 1

  private constructor(node: string, child: ChildProcess) {
    this.node = node
    this.child = child
  }

  static async start(lab: NatLab, node: string): Promise<Agent> {
    const child = lab.fork(node, fixture('net-agent.mjs'))
    await nextMessage(child, (m) => ((m as { ready?: boolean }).ready === true ? true : undefined), 10_000, `agent in ${node}`)
    return new Agent(node, child)
  }

  async call<T = Record<string, unknown>>(op: string, args: Record<string, unknown> = {}, timeout = 10_000): Promise<T> {
    const id = this.#nextId++
    const reply = nextMessage(this.child, (m) => ((m as { id?: number }).id === id ? (m as { ok: boolean; error?: string }) : undefined), timeout, `${op} in ${this.node}`)
    this.child.send({ id, op, ...args })
    const r = await reply
    if (!r.ok) throw new Error(`${op} in ${this.node}: ${r.error}`)
    return r as T
  }

  /** Binds socket `name` and asks the echo server at host:port for our address as it sees it. */
  async publicAddress(name: string, host: string, port: number): Promise<string | null> {
    const { reply } = await this.call<{ reply: string | null }>('request', { name, host, port, timeout: 1500 })
    return reply
  }
}
