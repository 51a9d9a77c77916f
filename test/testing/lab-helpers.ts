// Shared by the NAT lab tests: skip-or-fail logic, and the drivers of the fixture processes
// the tests run in lab nodes (the net-agent fixture here; the peer fixtures of test/peer/).
import type { ChildProcess } from 'node:child_process'
import { describe } from 'vitest'
import { natLabSupport, type NatLab, type NatLabForkOptions } from '../../src/testing/index.js'

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

/** A fixture of test/peer/fixtures/. */
const peerFixture = (name: string): URL => new URL(`../peer/fixtures/${name}`, import.meta.url)

/** Forks the Beacon fixture (test/peer/fixtures/beacon.mjs) in lab server `node`; resolves with its spec. */
export function forkLabBeacon(lab: NatLab, node = 'beacon'): Promise<string> {
  const server = lab.fork(node, peerFixture('beacon.mjs'), [lab.address(node)])
  return nextMessage(server, (m) => (m as { spec?: string }).spec, 15_000, 'beacon')
}

/** Forks our TURN server (test/peer/fixtures/turn-server.mjs) in lab server `node` with long-term user `user`; resolves with its ICE server entry over UDP. */
export async function forkLabTurn(lab: NatLab, user: { username: string; credential: string }, node = 'turn'): Promise<{ urls: string; username: string; credential: string }> {
  const server = lab.fork(node, peerFixture('turn-server.mjs'), [lab.address(node), user.username, user.credential])
  const port = await nextMessage(server, (m) => (m as { port?: number }).port, 15_000, 'turn server')
  return { urls: `turn:${lab.address(node)}:${port}?transport=udp`, ...user }
}

/** Forks `module` in lab node `node` and waits for its `{ ready: true }`. */
async function forkReady(lab: NatLab, node: string, module: URL, args: readonly string[], options: NatLabForkOptions, timeout: number): Promise<ChildProcess> {
  const child = lab.fork(node, module, args, options)
  await nextMessage(child, (m) => ((m as { ready?: boolean }).ready === true ? true : undefined), timeout, `agent in ${node}`)
  return child
}

/** What a fixture sends on its own (not in answer to a request). */
export interface LabAgentEvent {
  event: string
}

/** Options of {@link LabAgent}. */
export interface LabAgentOptions<E extends LabAgentEvent = LabAgentEvent> {
  /**
   * How long {@link LabAgent.call} waits for an answer when not told.
   * @default 20_000
   */
  callTimeout?: number
  /**
   * How long {@link LabAgent.event} waits when not told.
   * @default 15_000
   */
  eventTimeout?: number
  /**
   * What the error of a timed-out {@link LabAgent.event} shows of the events received.
   * @default each event's `[event, code]`
   */
  describeEvents?: (events: readonly E[]) => unknown
}

type Reply = { id?: number; ok: boolean; code?: string; message?: string; error?: string }

/**
 * A fixture process in one lab node, driven over IPC: a request `{ id, op, ...args }` gets
 * `{ id, ok: true, ... }` or `{ id, ok: false, code, message }` (or `{ id, ok: false, error }`);
 * the other messages that carry an `event` are kept in {@link LabAgent.events}.
 */
export class LabAgent<E extends LabAgentEvent = LabAgentEvent> {
  /** Every event received so far, oldest first. */
  readonly events: E[] = []
  #nextId = 1
  readonly #callTimeout: number
  readonly #eventTimeout: number
  readonly #describeEvents: (events: readonly E[]) => unknown

  constructor(
    readonly node: string,
    readonly child: ChildProcess,
    options: LabAgentOptions<E> = {},
  ) {
    this.#callTimeout = options.callTimeout ?? 20_000
    this.#eventTimeout = options.eventTimeout ?? 15_000
    this.#describeEvents = options.describeEvents ?? ((events) => events.map((e) => [e.event, (e as { code?: unknown }).code]))
    child.on('message', (m: unknown) => {
      if (typeof m === 'object' && m !== null && (m as Partial<LabAgentEvent>).event !== undefined) this.events.push(m as E)
    })
  }

  /**
   * Sends request `op` and resolves with the answer; a failed one rejects with an Error
   * whose message names `op`, the node and the fixture's reason, carrying the answer's other
   * fields (`code`, and e.g. `selectedPath`).
   */
  async call<T = Record<string, unknown>>(op: string, args: Record<string, unknown> = {}, timeout = this.#callTimeout): Promise<T> {
    const id = this.#nextId++
    const reply = nextMessage(this.child, (m) => ((m as Reply).id === id ? (m as Reply) : undefined), timeout, `${op} in ${this.node}`)
    this.child.send({ id, op, ...args })
    const r = await reply
    if (!r.ok) {
      const { id: _id, ok: _ok, message, error, ...fields } = r
      throw Object.assign(new Error(`${op} in ${this.node}: ${error ?? `${r.code} ${message}`}`), fields)
    }
    return r as T
  }

  /** The first event (already received or coming) that `match` accepts. */
  async event(match: (e: E) => boolean, timeout = this.#eventTimeout): Promise<E> {
    const deadline = Date.now() + timeout
    for (;;) {
      const found = this.events.find(match)
      if (found !== undefined) return found
      if (Date.now() > deadline) throw new Error(`${this.node}: no matching event within ${timeout} ms; got ${JSON.stringify(this.#describeEvents(this.events))}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
}

/** The net-agent fixture running in one lab node. */
export class Agent extends LabAgent {
  static async start(lab: NatLab, node: string): Promise<Agent> {
    return new Agent(node, await forkReady(lab, node, fixture('net-agent.mjs'), [], {}, 10_000), { callTimeout: 10_000 })
  }

  /** Binds socket `name` and asks the echo server at host:port for our address as it sees it. */
  async publicAddress(name: string, host: string, port: number): Promise<string | null> {
    const { reply } = await this.call<{ reply: string | null }>('request', { name, host, port, timeout: 1500 })
    return reply
  }
}

/** Options of {@link PeerAgent.fork}. */
export interface PeerAgentOptions<E extends LabAgentEvent = LabAgentEvent> extends LabAgentOptions<E> {
  /**
   * The fixture's argv (e.g. the Beacon spec).
   * @default []
   */
  args?: readonly string[]
  /**
   * How the fixture is forked (e.g. its `env`).
   * @default {}
   */
  fork?: NatLabForkOptions
}

/** Options of {@link PeerAgent.connect}. */
export interface PeerConnectOptions {
  /**
   * The fixture's peer that connects.
   * @default 'main'
   */
  name?: string
  /**
   * Bytes each way on the main stream.
   * @default SMALL (16 KiB)
   */
  bytes?: number
  /**
   * Whether to open a second stream and check its echo.
   * @default false
   */
  secondStream?: boolean
  /**
   * The connect timeout (the answer is awaited 20 s longer).
   * @default 15_000
   */
  timeout?: number
  /**
   * The paths the connect may take.
   * @default every path
   */
  paths?: string[]
}

/** A candidate of a connection, as the peer fixtures report it. */
export interface LabEndpoint {
  address: string
  port: number
  type: string
}

/** A connection's `info`, as the peer fixtures report it. */
export interface LabConnectionInfo {
  path: string
  local: LabEndpoint
  remote: LabEndpoint
  ms: number
}

/** What a stream carried: its sha256 and length. */
export interface Hashed {
  hash: string
  bytes: number
}

/** The answer of the peer fixtures' `connect` (agent-common.mjs's exchange): `I` is the connection info. */
export interface ExchangeResult<I extends LabConnectionInfo = LabConnectionInfo> {
  info: I
  remotePeerId: string
  connectMs: number
  sent: string
  received: Hashed
  echo?: string
}

/** The events of the peer fixtures' listeners (connection, exchanged, incoming-error, …): `I` is the connection info. */
export interface ExchangeEvent<I extends LabConnectionInfo = LabConnectionInfo> extends LabAgentEvent {
  name: string
  remotePeerId?: string
  peerId?: string
  code?: string
  info?: I
  sent?: string
  received?: Hashed
}

/** Bytes each way of the small exchanges that prove a connection carries data ({@link PeerAgent}'s default). */
export const SMALL = 16 * 1024

/**
 * A peer fixture (test/peer/fixtures/peer-agent.mjs, tunnel-agent.mjs, recovery-agent.mjs)
 * in one lab host: requests `start { name, ... } → { peerId }`, `listen { name, bytes }`,
 * `connect { name, target, ... } → R`; the PeerIds of the peers started are kept.
 * `E`: its events; `R`: its answer to `connect`; `S`: the options of its `start`.
 */
export class PeerAgent<E extends LabAgentEvent = ExchangeEvent, R = ExchangeResult, S extends object = Record<string, unknown>> extends LabAgent<E> {
  /** The PeerId of each peer this agent started, by name. */
  readonly peerIds = new Map<string, string>()

  /** Forks `module` in lab host `host`, with `options.args`, and waits until it is ready. */
  static async fork<E extends LabAgentEvent = ExchangeEvent, R = ExchangeResult, S extends object = Record<string, unknown>>(
    lab: NatLab,
    host: string,
    module: URL,
    options: PeerAgentOptions<E> = {},
  ): Promise<PeerAgent<E, R, S>> {
    const { args = [], fork = {}, ...agentOptions } = options
    return new PeerAgent<E, R, S>(host, await forkReady(lab, host, module, args, fork, 20_000), agentOptions)
  }

  /** Starts peer `name` with `options` (the fixture's start options); returns its PeerId. */
  async start(name: string, options: S = {} as S): Promise<string> {
    const { peerId } = await this.call<{ peerId: string }>('start', { ...options, name })
    this.peerIds.set(name, peerId)
    return peerId
  }

  /** Starts peer `name` and makes it listen, sending `bytes` ({@link SMALL} by default) on each connection; returns its PeerId. */
  async listen(name = 'main', options: S & { bytes?: number } = {} as S): Promise<string> {
    const { bytes = SMALL, ...startOptions } = options
    const peerId = await this.start(name, startOptions as unknown as S)
    await this.call('listen', { name, bytes })
    return peerId
  }

  /** The PeerId of peer `name`, which must have been started. */
  peerId(name = 'main'): string {
    const id = this.peerIds.get(name)
    if (id === undefined) throw new Error(`no peer ${name} in ${this.node}`)
    return id
  }

  /** Connects peer `options.name` to `target` and exchanges `bytes` each way. */
  connect(target: string, options: PeerConnectOptions = {}): Promise<R> {
    const { name = 'main', bytes = SMALL, secondStream = false, timeout = 15_000, paths } = options
    return this.call<R>('connect', { name, target, bytes, secondStream, timeout, ...(paths ? { paths } : {}) }, timeout + 20_000)
  }
}
