/**
 * The NAT lab: real Linux network namespaces joined by veth links into a small
 * internet, with public servers on it and sites behind NAT boxes whose mapping and
 * filtering follow RFC 4787, firewalls and random packet loss. Code runs inside a node
 * with {@link NatLab.spawn} / {@link NatLab.fork}. See `docs/nat-lab.md`.
 *
 * @module
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { AbortError, InvalidArgumentError, NatLabUnavailableError, throwIfAborted } from '../../errors.js'
import { runLabCommand } from './lab-commands.js'
import {
  checkLoss,
  NAT_LAB_LIMITS,
  resolveLabOptions,
  type NatLabFiltering,
  type NatLabFirewall,
  type NatLabMapping,
  type NatLabOptions,
  type ResolvedLabOptions,
  type ResolvedSite,
} from './lab-options.js'
import { lossSettings, planNatLab, type LabPlan, type NatLabNodeKind, type PlannedNode } from './lab-plan.js'
import { natLabSupport } from './lab-support.js'
import { lossRuleset } from './nft-rules.js'
import {
  deleteNamespaces,
  deleteNamespacesSync,
  killNamespaceProcesses,
  killNamespaceProcessesSync,
  MARKER_DIR,
  removeMarker,
  sweepStaleLabs,
  writeMarker,
} from './stale-labs.js'

/** A node of the lab: the internet itself, a server, a site's box or a host behind it. */
export interface NatLabNode {
  /** Its name in the lab (a site's box has the site's name; the internet is `'internet'`). */
  readonly name: string
  /** What it is. */
  readonly kind: NatLabNodeKind
  /** Its network namespace (`ip netns exec NAMESPACE …`). */
  readonly namespace: string
  /** Its IPv4 addresses, primary first (a box: public address, then its LAN address). */
  readonly addresses: readonly string[]
  /** Its primary address (`addresses[0]`). */
  readonly address: string
  /** The site of a box or host; undefined for the internet and servers. */
  readonly site: string | undefined
}

/** A site as built. */
export interface NatLabSite {
  /** The site's name (also its box's node name). */
  readonly name: string
  /** Namespace of the box. */
  readonly namespace: string
  /** The box's public address (what the internet sees behind a NAT). */
  readonly publicAddress: string
  /** The box's LAN address, the hosts' default gateway. */
  readonly gateway: string
  /** The LAN, e.g. `'10.0.1.0/24'` (public `198.19.N.0/24` with mapping `'none'`). */
  readonly lanSubnet: string
  /** Mapping behaviour. */
  readonly mapping: NatLabMapping
  /** Filtering behaviour. */
  readonly filtering: NatLabFiltering
  /** The firewall (empty if none). */
  readonly firewall: Readonly<NatLabFirewall>
  /** Names of the hosts behind the box. */
  readonly hosts: readonly string[]
}

/** Options of {@link NatLab.fork}. */
export interface NatLabForkOptions {
  /**
   * Node.js options of the child (`process.execArgv` is NOT inherited: test runners put
   * their loaders there). Pass e.g. `['--import', 'tsx']` to run TypeScript.
   * @default []
   */
  execArgv?: readonly string[]
  /**
   * Environment of the child.
   * @default process.env
   */
  env?: NodeJS.ProcessEnv
  /**
   * Working directory of the child.
   * @default process.cwd()
   */
  cwd?: string
  /**
   * stdin/stdout/stderr of the child; the IPC channel is always added.
   * @default 'inherit'
   */
  stdio?: 'inherit' | 'pipe' | 'ignore'
  /**
   * How IPC messages are serialized (see `child_process.fork`).
   * @default 'json'
   */
  serialization?: 'json' | 'advanced'
  /**
   * Kills the child when aborted.
   * @default undefined
   */
  signal?: AbortSignal
}

/** Options of {@link NatLab.exec}. */
export interface NatLabExecOptions {
  /**
   * Written to the command's stdin.
   * @default ''
   */
  input?: string
  /**
   * Milliseconds before the command is killed (it then rejects with `ERR_NAT_LAB_COMMAND_FAILED`).
   * @default 10_000
   */
  timeout?: number
  /**
   * Kills the command and rejects with `AbortError`.
   * @default undefined
   */
  signal?: AbortSignal
}

/**
 * A running lab, from {@link createNatLab}. Close it with {@link NatLab.close} (or
 * `await using`); closing kills every process in it and deletes every namespace, veth,
 * bridge and nftables table it created.
 */
export interface NatLab extends AsyncDisposable {
  /** The lab's random id (6 hex digits). */
  readonly id: string
  /** Prefix of its namespaces, `pl-<id>`. */
  readonly prefix: string
  /** True once {@link NatLab.close} was called. */
  readonly closed: boolean
  /** Every node, the internet first. */
  readonly nodes: readonly NatLabNode[]
  /** Every site. */
  readonly sites: readonly NatLabSite[]
  /** The node called `name`; throws InvalidArgumentError if there is none. */
  node(name: string): NatLabNode
  /** The site called `name`; throws InvalidArgumentError if there is none. */
  site(name: string): NatLabSite
  /** Primary address of node `name`. */
  address(name: string): string
  /**
   * Starts `command args…` inside node `name` (`ip netns exec`), like
   * `child_process.spawn`. The child is killed at {@link NatLab.close}.
   */
  spawn(name: string, command: string, args?: readonly string[], options?: SpawnOptions): ChildProcess
  /**
   * Runs the ES module (or script) `modulePath` with this Node.js inside node `name`,
   * with an IPC channel: `child.send()` / `child.on('message')`, and `process.send` in
   * the child, as with `child_process.fork`. The child is killed at {@link NatLab.close}.
   */
  fork(name: string, modulePath: string | URL, args?: readonly string[], options?: NatLabForkOptions): ChildProcess
  /** Runs `command args…` inside node `name` to completion and resolves with its stdout. */
  exec(name: string, command: string, args?: readonly string[], options?: NatLabExecOptions): Promise<string>
  /**
   * Changes the random loss (percent, each direction) of the internet link of a server or
   * a site's box.
   */
  setLoss(name: string, percent: number): Promise<void>
  /**
   * Takes a link down or up: a server's or box's link to the internet, or a host's link to
   * its box (packets are then dropped, as when a cable is pulled).
   */
  setLinkState(name: string, state: 'up' | 'down'): Promise<void>
  /** Kills every process in the lab and removes everything it created. Idempotent. */
  close(): Promise<void>
}

const CHILD_EXIT_WAIT = 2_000
const openLabs = new Set<LabImpl>()

/** Last resort when the process exits without closing its labs (a crashed test file). */
function onProcessExit(): void {
  for (const lab of openLabs) lab.closeSync()
}

function trackOpen(lab: LabImpl, open: boolean): void {
  if (open) {
    if (openLabs.size === 0) process.on('exit', onProcessExit)
    openLabs.add(lab)
  } else if (openLabs.delete(lab) && openLabs.size === 0) {
    process.off('exit', onProcessExit)
  }
}

function toNode(n: PlannedNode): NatLabNode {
  return Object.freeze({
    name: n.name,
    kind: n.kind,
    namespace: n.namespace,
    addresses: Object.freeze([...n.addresses]),
    address: n.addresses[0] as string,
    site: n.site,
  })
}

function toSite(s: ResolvedSite, box: PlannedNode): NatLabSite {
  const firewall: NatLabFirewall = {}
  if (s.udp === 'blocked') firewall.udp = 'blocked'
  if (s.onlyTcp !== undefined) firewall.onlyTcp = Object.freeze([...s.onlyTcp])
  return Object.freeze({
    name: s.name,
    namespace: box.namespace,
    publicAddress: box.addresses[0] as string,
    gateway: box.addresses[1] as string,
    lanSubnet: `${s.lanPrefix}.0/24`,
    mapping: s.mapping,
    filtering: s.filtering,
    firewall: Object.freeze(firewall),
    hosts: Object.freeze([...s.hosts]),
  })
}

class LabImpl implements NatLab {
  readonly id: string
  readonly prefix: string
  readonly nodes: readonly NatLabNode[]
  readonly sites: readonly NatLabSite[]
  readonly #plan: LabPlan
  readonly #timeout: number
  readonly #nodes = new Map<string, { node: NatLabNode; planned: PlannedNode }>()
  readonly #sites = new Map<string, NatLabSite>()
  readonly #children = new Set<ChildProcess>()
  #closing: Promise<void> | undefined
  #lossUpdate: Promise<void> = Promise.resolve()

  constructor(plan: LabPlan, options: ResolvedLabOptions) {
    this.id = plan.id
    this.prefix = plan.prefix
    this.#plan = plan
    this.#timeout = options.commandTimeout
    for (const planned of plan.nodes) this.#nodes.set(planned.name, { node: toNode(planned), planned })
    for (const s of options.sites) this.#sites.set(s.name, toSite(s, (this.#nodes.get(s.name) as { planned: PlannedNode }).planned))
    this.nodes = Object.freeze([...this.#nodes.values()].map((n) => n.node))
    this.sites = Object.freeze([...this.#sites.values()])
  }

  get closed(): boolean {
    return this.#closing !== undefined
  }

  #entry(name: string): { node: NatLabNode; planned: PlannedNode } {
    const entry = typeof name === 'string' ? this.#nodes.get(name) : undefined
    if (entry === undefined) {
      throw new InvalidArgumentError(`The lab has no node ${JSON.stringify(name)} (it has ${[...this.#nodes.keys()].join(', ')})`)
    }
    return entry
  }

  #checkOpen(what: string): void {
    if (this.#closing !== undefined) throw new InvalidArgumentError(`${what}: the lab is closed`)
  }

  node(name: string): NatLabNode {
    return this.#entry(name).node
  }

  site(name: string): NatLabSite {
    const site = this.#sites.get(name)
    if (site === undefined) throw new InvalidArgumentError(`The lab has no site ${JSON.stringify(name)}`)
    return site
  }

  address(name: string): string {
    return this.#entry(name).node.address
  }

  #track(child: ChildProcess): ChildProcess {
    this.#children.add(child)
    child.once('exit', () => this.#children.delete(child))
    child.once('error', () => this.#children.delete(child))
    return child
  }

  #checkChildren(what: string): void {
    this.#checkOpen(what)
    if (this.#children.size >= NAT_LAB_LIMITS.children) {
      throw new InvalidArgumentError(`${what}: at most ${NAT_LAB_LIMITS.children} children may run in one lab`)
    }
  }

  spawn(name: string, command: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
    this.#checkChildren('spawn')
    const { namespace } = this.#entry(name).node
    if (typeof command !== 'string' || command === '') throw new InvalidArgumentError('spawn needs a command')
    return this.#track(spawn('ip', ['netns', 'exec', namespace, command, ...args], options))
  }

  fork(name: string, modulePath: string | URL, args: readonly string[] = [], options: NatLabForkOptions = {}): ChildProcess {
    this.#checkChildren('fork')
    const { namespace } = this.#entry(name).node
    const path = modulePath instanceof URL ? fileURLToPath(modulePath) : modulePath
    if (typeof path !== 'string' || path === '') throw new InvalidArgumentError('fork needs a module path')
    const stdio = options.stdio ?? 'inherit'
    const spawnOptions: SpawnOptions = {
      stdio: [stdio, stdio, stdio, 'ipc'],
      serialization: options.serialization ?? 'json',
    }
    if (options.env !== undefined) spawnOptions.env = options.env
    if (options.cwd !== undefined) spawnOptions.cwd = options.cwd
    if (options.signal !== undefined) spawnOptions.signal = options.signal
    // `ip netns exec` execs the command in place: the child's pid is Node's pid, and the
    // IPC channel's file descriptor (NODE_CHANNEL_FD) passes through unchanged.
    const argv = ['netns', 'exec', namespace, process.execPath, ...(options.execArgv ?? []), path, ...args]
    return this.#track(spawn('ip', argv, spawnOptions))
  }

  exec(name: string, command: string, args: readonly string[] = [], options: NatLabExecOptions = {}): Promise<string> {
    this.#checkOpen('exec')
    const { namespace } = this.#entry(name).node
    return runLabCommand('ip', ['netns', 'exec', namespace, command, ...args], {
      timeout: options.timeout ?? this.#timeout,
      ...(options.input === undefined ? {} : { input: options.input }),
      signal: options.signal,
    })
  }

  setLoss(name: string, percent: number): Promise<void> {
    this.#checkOpen('setLoss')
    const { planned } = this.#entry(name)
    if (planned.internetPort === undefined) {
      throw new InvalidArgumentError(`setLoss: ${name} is a ${planned.kind}; loss applies to the internet links of servers and sites`)
    }
    planned.loss = checkLoss(percent, `setLoss(${name})`)
    const ruleset = lossRuleset(lossSettings(this.#plan.nodes))
    const internet = this.#entry('internet').node.namespace
    const update = this.#lossUpdate.then(() => runLabCommand('ip', ['netns', 'exec', internet, 'nft', '-f', '-'], { input: ruleset, timeout: this.#timeout }))
    this.#lossUpdate = update.then(
      () => {},
      () => {},
    )
    return update.then(() => {})
  }

  setLinkState(name: string, state: 'up' | 'down'): Promise<void> {
    this.#checkOpen('setLinkState')
    if (state !== 'up' && state !== 'down') throw new InvalidArgumentError(`setLinkState: state must be 'up' or 'down'`)
    const { planned } = this.#entry(name)
    let namespace: string
    let port: string
    if (planned.internetPort !== undefined) {
      namespace = this.#entry('internet').node.namespace
      port = planned.internetPort
    } else if (planned.kind === 'host' && planned.site !== undefined) {
      namespace = this.#entry(planned.site).node.namespace
      port = `h${this.site(planned.site).hosts.indexOf(name)}`
    } else {
      throw new InvalidArgumentError(`setLinkState: the internet has no link of its own`)
    }
    return runLabCommand('ip', ['-n', namespace, 'link', 'set', port, state], { timeout: this.#timeout }).then(() => {})
  }

  #namespaces(): string[] {
    return this.#plan.nodes.map((n) => n.namespace)
  }

  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    const children = [...this.#children]
    const exited = children.map((child) => waitForExit(child, CHILD_EXIT_WAIT))
    for (const child of children) {
      child.kill('SIGKILL')
      // Nobody may read them any more; destroying them lets the handles close.
      child.stdin?.destroy()
      child.stdout?.destroy()
      child.stderr?.destroy()
    }
    const namespaces = this.#namespaces()
    try {
      await killNamespaceProcesses(namespaces)
      await Promise.all(exited)
      await deleteNamespaces(namespaces, this.#timeout)
    } finally {
      removeMarker(this.id)
      trackOpen(this, false)
    }
  }

  /** Synchronous best effort for `process.on('exit')`. */
  closeSync(): void {
    for (const child of this.#children) child.kill('SIGKILL')
    const namespaces = this.#namespaces()
    killNamespaceProcessesSync(namespaces)
    deleteNamespacesSync(namespaces)
    removeMarker(this.id)
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}

function waitForExit(child: ChildProcess, timeout: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      child.off('exit', done)
      child.off('error', done)
      resolve()
    }
    const timer = setTimeout(done, timeout)
    child.once('exit', done)
    child.once('error', done)
  })
}

function newLabId(): string {
  for (;;) {
    const id = randomBytes(3).toString('hex')
    if (!existsSync(`${MARKER_DIR}/${id}.json`)) return id
  }
}

/** Each node's sysctls, then its nftables ruleset, in one `sh` run inside its namespace. */
function configureScript(node: PlannedNode): string {
  const writes = node.sysctls.map(([key, value]) => `echo ${value} > /proc/sys/${key}`)
  return ['set -e', ...writes, ...(node.nftRuleset === undefined ? [] : ['exec nft -f -'])].join('\n')
}

/**
 * Builds a NAT lab: an internet (a bridge in its own namespace, 198.18.0.1/16), the
 * servers on it (198.18.1.x), and each site's box (public 198.18.2.x) with its hosts on
 * a LAN behind it. Requires Linux, root, iproute2 and nftables; rejects with
 * `NatLabUnavailableError` (`ERR_NAT_LAB_UNAVAILABLE`) otherwise, and with
 * `NatLabCommandError` if a command fails — having removed whatever it built.
 *
 * @example
 * ```ts
 * import { afterAll, beforeAll, it } from 'vitest'
 * import { createNatLab, type NatLab } from 'peerlink/testing'
 *
 * let lab: NatLab
 * beforeAll(async () => {
 *   lab = await createNatLab({
 *     servers: { stun: { addresses: 2 } },
 *     sites: {
 *       home: { mapping: 'endpoint-independent', filtering: 'address-dependent', hosts: ['alice'] },
 *       office: { mapping: 'endpoint-dependent', hosts: ['bob'] },
 *     },
 *   })
 * })
 * afterAll(() => lab?.close())     // runs even when a test fails
 *
 * it('runs code behind the NAT', async () => {
 *   const child = lab.fork('alice', new URL('./my-peer.mjs', import.meta.url), [lab.address('stun')])
 *   // child.send(…), child.on('message', …)
 * })
 * ```
 */
export function createNatLab(options: NatLabOptions = {}): Promise<NatLab> {
  // Misuse throws at once, before anything is built.
  return buildLab(resolveLabOptions(options))
}

async function buildLab(resolved: ResolvedLabOptions): Promise<NatLab> {
  const { signal, commandTimeout: timeout } = resolved
  throwIfAborted(signal)
  const support = await natLabSupport()
  if (!support.available) throw new NatLabUnavailableError(support.reason ?? 'unknown reason')
  throwIfAborted(signal)
  if (resolved.sweep) await sweepStaleLabs({ timeout, ...(signal === undefined ? {} : { signal }) })
  const id = newLabId()
  const plan = planNatLab(id, resolved)
  writeMarker(id)
  const lab = new LabImpl(plan, resolved)
  trackOpen(lab, true)
  const run = (file: string, args: string[], input: string): Promise<string> => runLabCommand(file, args, { input, timeout, signal })
  try {
    await run('ip', ['-batch', '-'], plan.nodes.map((n) => `netns add ${n.namespace}\n`).join(''))
    await Promise.all(plan.nodes.map((n) => run('ip', ['netns', 'exec', n.namespace, 'sh', '-c', configureScript(n)], n.nftRuleset ?? '')))
    await run('ip', ['-batch', '-'], plan.vethCommands.map((line) => `${line}\n`).join(''))
    await Promise.all(plan.nodes.map((n) => run('ip', ['-n', n.namespace, '-batch', '-'], n.ipCommands.map((line) => `${line}\n`).join(''))))
  } catch (err) {
    await lab.close().catch(() => {})
    if (signal?.aborted === true && !(err instanceof AbortError)) throw new AbortError(undefined, { cause: signal.reason })
    throw err
  }
  return lab
}
