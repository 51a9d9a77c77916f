/**
 * The devices a tunnel server holds, online or retained: admission (credentials, name,
 * public ports), going offline, the retention time and its expiry. Every change to one
 * device runs after the previous one (a per-device queue), and every change to names
 * and ports goes through the {@link TunnelState}'s atomic claims.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { verifyTunnelChallenge } from '../../tunnel/tunnel-auth.js'
import { TUNNEL_PROTOCOL_VERSION, type TunnelHelloMessage } from '../../tunnel/tunnel-messages.js'
import { randomTunnelName } from '../../tunnel/tunnel-name.js'
import { CONTROL_CLOSE_CODES, ControlReplyError, type ControlSession } from './control-session.js'
import type { PendingConnections } from './pending-connections.js'
import { PublicPort } from './public-port.js'
import { TokenList, hashToken } from './token-list.js'
import { TunnelDevice } from './tunnel-device.js'
import type { ResolvedTunnelServerOptions } from './tunnel-server-options.js'
import type { TunnelServerStats } from './tunnel-server-stats.js'
import type { TunnelState } from './tunnel-state.js'

/** What a {@link DeviceRegistry} works with. */
export interface DeviceRegistryContext {
  /** The server's options. */
  readonly options: ResolvedTunnelServerOptions
  /** Names, ports and device records. */
  readonly state: TunnelState
  /** Counters to keep. */
  readonly stats: TunnelServerStats
  /** Connections waiting for devices (failed when a device goes offline). */
  readonly pending: PendingConnections
  /** The channel binding devices sign (certificate hash, or zeros). */
  readonly binding: Uint8Array
  /** Called for each connection to a public port. */
  readonly onConnection: (socket: Socket, port: PublicPort) => void
}

/** The devices of one server (see the module notes). */
export class DeviceRegistry {
  readonly #options: ResolvedTunnelServerOptions
  readonly #state: TunnelState
  readonly #stats: TunnelServerStats
  readonly #pending: PendingConnections
  readonly #binding: Uint8Array
  readonly #tokens: TokenList
  readonly #onConnection: (socket: Socket, port: PublicPort) => void
  readonly #devices = new Map<string, TunnelDevice>()
  readonly #names = new Map<string, TunnelDevice>()
  readonly #portOwners = new Map<number, TunnelDevice>()
  readonly #queues = new Map<string, Promise<unknown>>()
  /** This server's id. */
  readonly serverId: string
  #closing = false

  constructor(context: DeviceRegistryContext) {
    this.#options = context.options
    this.#state = context.state
    this.#stats = context.stats
    this.#pending = context.pending
    this.#binding = context.binding
    this.#tokens = new TokenList(context.options.tokens)
    this.#onConnection = context.onConnection
    this.serverId = context.options.serverId
  }

  /** The device called `name`, online or retained. */
  byName(name: string): TunnelDevice | undefined {
    return this.#names.get(name)
  }

  /** The device holding public port `port`. */
  byPort(port: number): TunnelDevice | undefined {
    return this.#portOwners.get(port)
  }

  /** The public ports bound now, with the device holding each. */
  publicPorts(): Array<{ port: number; local: number; name: string; online: boolean }> {
    return [...this.#portOwners].map(([port, device]) => ({ port, local: [...device.ports.values()].find((p) => p.port === port)?.local ?? 0, name: device.name, online: device.online }))
  }

  /** Shutdown begins: no more admissions, and devices that go offline now start no retention timer. */
  beginClose(): void {
    this.#closing = true
  }

  /**
   * Shutdown: stops every timer and public port; online devices' holdings get the
   * retention time in the state (as if they had disconnected).
   */
  async close(): Promise<void> {
    this.#closing = true
    const expiresAt = Date.now() + this.#options.retentionMs
    const writes: Array<Promise<unknown>> = []
    for (const device of this.#devices.values()) {
      clearTimeout(device.expiryTimer)
      for (const port of device.ports.values()) writes.push(port.close())
      if (device.expiresAt === null) writes.push(this.#writeHoldings(device, expiresAt))
    }
    await Promise.allSettled(writes)
  }

  /**
   * Authenticates and admits a device: resolves with it (online, on `session`) and
   * whether its name and ports are those it held before.
   *
   * @throws {@link ControlReplyError} (rejects) when it is refused.
   */
  async admit(session: ControlSession, hello: TunnelHelloMessage, nonce: Uint8Array): Promise<{ device: TunnelDevice; resumed: boolean }> {
    const key = this.#authenticate(hello, nonce)
    return this.#serialize(key, () => this.#admitDevice(session, key, hello))
  }

  #authenticate(hello: TunnelHelloMessage, nonce: Uint8Array): string {
    const refuse = (text: string): never => {
      this.#stats.refusedAuth++
      throw new ControlReplyError('auth', text)
    }
    let tokenOk = false
    if (hello.token !== undefined) {
      if (!this.#tokens.matches(hello.token)) refuse('the token is not valid on this server')
      tokenOk = true
    }
    if (hello.peerId !== undefined) {
      if (!verifyTunnelChallenge(hello.peerId, hello.signature!, TUNNEL_PROTOCOL_VERSION, nonce, this.#binding)) {
        refuse('the signature does not prove the key of this PeerId for this server')
      }
      if (!tokenOk && !this.#options.anyPeerId && !this.#options.allowedPeerIds.has(hello.peerId)) refuse('this PeerId is not allowed on this server')
      return `peer:${hello.peerId}`
    }
    if (!tokenOk) refuse('a token or a signature is required')
    return `token:${hashToken(hello.token!).subarray(0, 18).toString('base64url')}`
  }

  async #admitDevice(session: ControlSession, key: string, hello: TunnelHelloMessage): Promise<{ device: TunnelDevice; resumed: boolean }> {
    const options = this.#options
    const me = this.serverId
    if (this.#closing || session.state === 'closed') throw new ControlReplyError('unavailable', 'the tunnel server is shutting down')
    if (hello.ports.length > options.maxPortsPerDevice) {
      this.#stats.refusedLimit++
      throw new ControlReplyError('limit', `this server allows at most ${options.maxPortsPerDevice} ports per device`)
    }
    let device = this.#devices.get(key)
    if (device?.session !== undefined && device.session !== session) {
      // The same device logged in again (its old socket may be dead without anyone knowing yet).
      const old = device.session
      this.#goOffline(device)
      old.reply('replaced', 'this device logged in on another connection')
      old.close(CONTROL_CLOSE_CODES.replaced, 'replaced')
    } else if (this.#stats.devices >= options.maxDevices) {
      this.#stats.refusedLimit++
      throw new ControlReplyError('limit', 'this server has as many devices as it accepts')
    }
    const known = device !== undefined
    try {
      const previous = device?.name || (await this.#state.getDevice(key))?.name
      const name = await this.#claimName(key, hello.name, previous)
      const resumed = device !== undefined && device.name === name && hello.ports.every((local) => device!.ports.has(local))
      if (device === undefined) {
        device = new TunnelDevice(key)
        this.#devices.set(key, device)
      }
      if (device.name !== '' && device.name !== name) {
        this.#names.delete(device.name)
        await this.#state.releaseName(device.name, key, me)
      }
      device.name = name
      this.#names.set(name, device)
      await this.#assignPorts(device, hello.ports)
      device.http = hello.http ?? hello.ports[0]!
      await this.#state.putDevice({ device: key, server: me, name, ports: device.mappings(), http: device.http, expiresAt: null })
      if ((session.state as string) === 'closed' || this.#closing) throw new ControlReplyError('unavailable', 'the control socket closed')
      return this.#online(device, session, resumed)
    } catch (err) {
      // A device that held something keeps it for the retention time; a new one leaves nothing behind.
      if (device !== undefined && !device.online && device.expiresAt === null) {
        if (known) await this.#retain(device)
        else await this.#expireNow(device)
      }
      throw err
    }
  }

  #online(device: TunnelDevice, session: ControlSession, resumed: boolean): { device: TunnelDevice; resumed: boolean } {
    const key = device.key
    const name = device.name
    if (device.expiresAt !== null) this.#stats.retainedDevices--
    clearTimeout(device.expiryTimer)
    device.expiryTimer = undefined
    device.expiresAt = null
    device.session = session
    session.device = key
    session.secret = new Uint8Array(randomBytes(32))
    this.#stats.devices++
    this.#stats.admissions++
    this.#options.logger.info({ event: 'tunnel-device-online', device: key, name, ports: device.mappings(), resumed, from: session.remoteHost }, 'tunnel device online')
    return { device, resumed }
  }

  async #claimName(key: string, wanted: string | undefined, previous: string | undefined): Promise<string> {
    const me = this.serverId
    if (wanted !== undefined) {
      if (await this.#state.claimName(wanted, key, me, null)) return wanted
      throw new ControlReplyError('name-taken', `the name "${wanted}" is held by another device`)
    }
    if (previous !== undefined && previous !== '' && (await this.#state.claimName(previous, key, me, null))) return previous
    for (let attempt = 0; attempt < 8; attempt++) {
      const name = randomTunnelName()
      if (await this.#state.claimName(name, key, me, null)) return name
    }
    throw new ControlReplyError('unavailable', 'no free name was found')
  }

  /** Gives `device` a public port for each local port: keeps those it has, frees the others, binds new ones. */
  async #assignPorts(device: TunnelDevice, wanted: readonly number[]): Promise<void> {
    const me = this.serverId
    for (const [local, port] of [...device.ports]) {
      if (wanted.includes(local) && (await this.#state.claimPort(me, port.port, device.key, null))) continue
      device.ports.delete(local)
      this.#portOwners.delete(port.port)
      await port.close()
      await this.#state.releasePort(me, port.port, device.key)
    }
    const added: PublicPort[] = []
    for (const local of wanted) {
      if (device.ports.has(local)) continue
      const port = await this.#allocatePort(device, local)
      if (port === undefined) {
        for (const undo of added) {
          device.ports.delete(undo.local)
          this.#portOwners.delete(undo.port)
          await undo.close()
          await this.#state.releasePort(me, undo.port, device.key)
        }
        this.#stats.refusedLimit++
        throw new ControlReplyError('limit', 'no free public port is left on this server')
      }
      added.push(port)
      device.ports.set(local, port)
    }
    // Keep the device's order.
    device.ports = new Map(wanted.map((local) => [local, device.ports.get(local)!]))
  }

  async #allocatePort(device: TunnelDevice, local: number): Promise<PublicPort | undefined> {
    let binds = 0
    for (const candidate of this.#options.allowPorts.candidates()) {
      if (this.#portOwners.has(candidate)) continue
      if (!(await this.#state.claimPort(this.serverId, candidate, device.key, null))) continue
      try {
        const port = await PublicPort.bind(this.#options.listeningIps, candidate, local, this.#onConnection)
        this.#portOwners.set(candidate, device)
        return port
      } catch {
        await this.#state.releasePort(this.serverId, candidate, device.key)
        if (++binds >= 64) return undefined
      }
    }
    return undefined
  }

  // ---------------------------------------------------------------- disconnection and retention

  /** A control socket closed: its device (if it was this socket's) goes offline and its retention time starts. */
  closed(session: ControlSession): void {
    const device = session.device === undefined ? undefined : this.#devices.get(session.device)
    if (device === undefined || device.session !== session) return
    this.#goOffline(device)
    this.#options.logger.info({ event: 'tunnel-device-offline', device: device.key, name: device.name }, 'tunnel device offline')
    if (!this.#closing) void this.#serialize(device.key, () => this.#retain(device))
  }

  #goOffline(device: TunnelDevice): void {
    if (device.session === undefined) return
    device.session.device = undefined
    device.session = undefined
    this.#stats.devices--
    this.#pending.failAll('offline', device.key)
  }

  /** Starts the retention time of an offline device. */
  async #retain(device: TunnelDevice): Promise<void> {
    if (device.online || this.#devices.get(device.key) !== device || device.expiresAt !== null || this.#closing) return
    const expiresAt = Date.now() + this.#options.retentionMs
    device.expiresAt = expiresAt
    this.#stats.retainedDevices++
    device.expiryTimer = setTimeout(() => void this.#serialize(device.key, () => this.#expire(device)), this.#options.retentionMs)
    try {
      await this.#writeHoldings(device, expiresAt)
    } catch (err) {
      this.#options.logger.warn({ event: 'tunnel-state-error', error: (err as Error).message }, 'tunnel state error')
    }
  }

  #writeHoldings(device: TunnelDevice, expiresAt: number | null): Promise<unknown> {
    const me = this.serverId
    return Promise.all([
      this.#state.claimName(device.name, device.key, me, expiresAt),
      ...[...device.ports.values()].map((p) => this.#state.claimPort(me, p.port, device.key, expiresAt)),
      this.#state.putDevice({ device: device.key, server: me, name: device.name, ports: device.mappings(), http: device.http, expiresAt }),
    ])
  }

  /** The retention time of an offline device ran out: free its name and ports. */
  async #expire(device: TunnelDevice): Promise<void> {
    if (device.online || device.expiresAt === null || this.#devices.get(device.key) !== device || this.#closing) return
    this.#stats.retainedDevices--
    await this.#expireNow(device)
    this.#options.logger.info({ event: 'tunnel-device-expired', device: device.key, name: device.name }, 'tunnel device expired')
  }

  async #expireNow(device: TunnelDevice): Promise<void> {
    const me = this.serverId
    this.#devices.delete(device.key)
    if (this.#names.get(device.name) === device) this.#names.delete(device.name)
    clearTimeout(device.expiryTimer)
    const ports = [...device.ports.values()]
    device.ports.clear()
    for (const port of ports) this.#portOwners.delete(port.port)
    await Promise.all(ports.map((port) => port.close()))
    await Promise.allSettled([
      this.#state.releaseName(device.name, device.key, me),
      ...ports.map((port) => this.#state.releasePort(me, port.port, device.key)),
      this.#state.deleteDevice(device.key, me),
    ])
  }

  /** Runs `task` after every earlier task of the same device. */
  #serialize<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(key) ?? Promise.resolve()
    const next = previous.then(task, task)
    const tail = next.catch(() => {})
    this.#queues.set(key, tail)
    void tail.then(() => {
      if (this.#queues.get(key) === tail) this.#queues.delete(key)
    })
    return next
  }
}
