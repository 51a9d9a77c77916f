/**
 * The WebSocket reverse-tunnel server. Devices behind NATs and firewalls that let only
 * outgoing HTTP(S) through keep one control WebSocket open to it; the server gives each
 * of their local TCP ports a public port, and routes `NAME.<domain>` on its HTTP port to
 * their HTTP service. Every incoming connection is announced on the control socket and
 * travels in a transfer WebSocket of its own, opened by the device. The wire protocol
 * is in `docs/tunnel-protocol.md`.
 *
 * A device that disconnects keeps its name and ports for the retention time; coming back
 * within it with the same credentials (same token, or same identity) restores them.
 * Names, ports and the fleet registry live in a {@link TunnelState} (in memory by
 * default); a control upgrade may be redirected (HTTP 302) to a less loaded server of
 * the fleet, or to the one holding the name the device asks for.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { certificateDer } from '../../cert-pin.js'
import { throwIfAborted } from '../../errors.js'
import { NO_CHANNEL_BINDING } from '../../tunnel/tunnel-auth.js'
import { joinStreams } from '../../tunnel/join-streams.js'
import {
  CONTROL_PATH,
  TRANSFER_PATH,
  TUNNEL_CONNECTION_ID_BYTES,
  TUNNEL_PROTOCOL_VERSION,
  type TunnelHelloMessage,
  type TunnelAddress,
  type TunnelRejectReason,
  type TunnelWelcomeMessage,
} from '../../tunnel/tunnel-messages.js'
import { isTunnelName } from '../../tunnel/tunnel-name.js'
import { PEER_CONNECT_PATH, PEER_LISTEN_PATH } from '../../tunnel/tunnel-peer-messages.js'
import { acceptWebSocketUpgrade } from '../../tunnel/transfer-handshake.js'
import { type TransferStream, WebSocketStream } from '../../tunnel/websocket-stream.js'
import { CONTROL_CLOSE_CODES, ControlReplyError, ControlSession, type ControlSessionHost } from './control-session.js'
import { DeviceRegistry } from './device-registry.js'
import { FleetHop, FleetHttp } from './fleet-http.js'
import { type BoundListener, closeAll, listenAll } from './http-listen.js'
import { TunnelOpenError, type TunnelHttpRoute, createTunnelHttpServer, remoteOf } from './http-proxy.js'
import { MemoryTunnelState } from './memory-tunnel-state.js'
import { RedisTunnelState } from './redis-tunnel-state.js'
import { PeerRelay } from './peer-relay.js'
import { PendingConnections } from './pending-connections.js'
import type { PublicPort } from './public-port.js'
import type { TunnelDevice } from './tunnel-device.js'
import { type ResolvedTunnelServerOptions, type TunnelServerOptions, resolveTunnelServerOptions } from './tunnel-server-options.js'
import { type TunnelServerStats, createTunnelServerStats } from './tunnel-server-stats.js'
import type { TunnelServerRecord, TunnelState } from './tunnel-state.js'

/** How often the server checks whether its device count changed (then it re-registers at once). */
const REGISTRY_CHECK_MS = 1_000

/**
 * A running tunnel server. Start it with {@link TunnelServer.listen}, stop it with
 * {@link TunnelServer.close}.
 *
 * @example
 * ```ts
 * import { TunnelServer, createSelfSignedCertificate } from 'peerlink/server'
 *
 * const { cert, key, hash } = createSelfSignedCertificate()
 * const tunnel = await TunnelServer.listen({ tls: { cert, key }, domain: 'tunnel.example.com', tokens: ['a-long-device-token'] })
 * console.log(`${tunnel.url}#${hash}`)      // what devices pass to `peerlink expose --tunnel`
 * ```
 */
export class TunnelServer {
  /** This server's id in the fleet. */
  readonly serverId: string
  /** base64url SHA-256 of the control port's certificate (`#CERT_HASH`), `undefined` without TLS. */
  readonly certificateHash: string | undefined
  /** Counters (live). */
  readonly stats: TunnelServerStats = createTunnelServerStats()
  /** @internal Limits of a control socket. */
  readonly limits: ControlSessionHost['limits']
  readonly #options: ResolvedTunnelServerOptions
  readonly #state: TunnelState
  readonly #ownsState: boolean
  readonly #binding: Uint8Array
  readonly #control: Array<BoundListener<http.Server>>
  readonly #http: Array<BoundListener<http.Server>>
  readonly #controlWss: WebSocketServer
  readonly #sessions = new Map<ControlSession, Promise<void>>()
  readonly #perIp = new Map<string, number>()
  readonly #registry: DeviceRegistry
  readonly #pending: PendingConnections
  readonly #streams = new Set<TransferStream>()
  readonly #timers: Array<ReturnType<typeof setInterval>>
  readonly #hop: FleetHop
  readonly #fleet: FleetHttp
  readonly #peers: PeerRelay
  #registered = { at: 0, devices: -1 }
  #nextSession = 0
  #closing: Promise<void> | undefined

  private constructor(options: ResolvedTunnelServerOptions, state: TunnelState, ownsState: boolean, control: Array<BoundListener<http.Server>>, fleetKey: Uint8Array) {
    this.#options = options
    this.#state = state
    this.#ownsState = ownsState
    this.serverId = options.serverId
    this.#control = control
    this.#http = []
    this.limits = {
      maxMessageBytes: options.maxMessageBytes,
      messagesPerSecond: options.messagesPerSecond,
      messageBurst: options.messageBurst,
      maxBufferedBytes: options.maxBufferedBytes,
    }
    const der = options.tls === undefined ? undefined : certificateDer(typeof options.tls.cert === 'string' ? options.tls.cert : new Uint8Array(options.tls.cert))
    this.#binding = der === undefined ? NO_CHANNEL_BINDING : new Uint8Array(createHash('sha256').update(der).digest())
    this.certificateHash = der === undefined ? undefined : Buffer.from(this.#binding).toString('base64url')
    this.#pending = new PendingConnections(options.connectTimeoutMs)
    this.#hop = new FleetHop(fleetKey, options.serverId)
    this.#fleet = new FleetHttp(state, options.serverId)
    this.#registry = new DeviceRegistry({
      options,
      state,
      stats: this.stats,
      pending: this.#pending,
      binding: this.#binding,
      onConnection: (socket, port) => this.#onPublicConnection(socket, port),
    })
    this.#peers = new PeerRelay({ options, state, stats: this.stats, pending: this.#pending, binding: this.#binding })
    this.#controlWss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: options.maxMessageBytes * 4 })
    for (const { server } of control) {
      server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.#onUpgrade(req, socket, head))
    }
    this.#timers = [
      setInterval(() => this.#heartbeat(), options.heartbeatMs),
      setInterval(() => this.#expireHellos(), Math.max(50, Math.min(1_000, options.helloTimeoutMs / 2))),
      setInterval(() => void this.#register(false), Math.min(REGISTRY_CHECK_MS, Math.floor(options.registrationTtlMs / 3))),
    ]
  }

  /**
   * Starts a tunnel server: binds the control port, the HTTP port and registers in the
   * state's fleet registry. Public TCP ports are bound as devices ask for them.
   *
   * @throws `InvalidArgumentError` at once for bad options.
   * @throws `SocketBindError` (rejects) when a port is taken or an address is not local.
   * @throws `AbortError` (rejects) when `signal` fires first.
   */
  static async listen(options: TunnelServerOptions): Promise<TunnelServer> {
    const resolved = resolveTunnelServerOptions(options)
    throwIfAborted(resolved.signal)
    const onError = (err: Error) => resolved.logger.warn({ event: 'tunnel-state-error', error: err.message }, 'tunnel state error')
    const state =
      resolved.state ??
      (resolved.redis === undefined
        ? new MemoryTunnelState()
        : await RedisTunnelState.connect({ url: resolved.redis, prefix: resolved.redisPrefix, onError, ...(resolved.signal === undefined ? {} : { signal: resolved.signal }) }))
    const { tls } = resolved
    let control: Array<BoundListener<http.Server>> = []
    let server: TunnelServer | undefined
    try {
      const fleetKey = await state.fleetKey()
      control = await listenAll(
        resolved.listeningIps,
        resolved.controlPort,
        () => {
          const timeouts = {
            headersTimeout: resolved.httpHeadersTimeoutMs,
            requestTimeout: Math.max(30_000, resolved.httpHeadersTimeoutMs),
            connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(resolved.httpHeadersTimeoutMs / 2))),
          }
          const made = tls === undefined ? http.createServer(timeouts, upgradeRequired) : https.createServer({ ...timeouts, cert: tls.cert, key: tls.key, handshakeTimeout: 10_000 }, upgradeRequired)
          made.on('tlsClientError', () => {})
          return made
        },
        resolved.signal,
      )
      server = new TunnelServer(resolved, state, resolved.state === undefined, control, fleetKey)
      if (!resolved.noHttp) {
        const host = server.#httpHost()
        server.#http.push(...(await listenAll(resolved.listeningIps, resolved.httpPort, () => createTunnelHttpServer(host, { headersTimeoutMs: resolved.httpHeadersTimeoutMs }), resolved.signal)))
      }
      await server.#register(true)
      resolved.logger.info({ event: 'tunnel-listening', url: server.url, http: server.httpPort, ports: resolved.allowPorts.toString(), state: state.kind, server: resolved.serverId }, 'tunnel server listening')
      return server
    } catch (err) {
      if (server !== undefined) await server.close()
      else {
        await closeAll(control)
        if (resolved.state === undefined) await state.close()
      }
      throw err
    }
  }

  /** The control port. */
  get controlPort(): number {
    return this.#control[0]!.port
  }

  /** The HTTP port (0 with `noHttp`). */
  get httpPort(): number {
    return this.#http[0]?.port ?? 0
  }

  /** This server's tunnel URL as devices write it (`publicUrl`, else `ws(s)://<publicHost>:<controlPort>/`), without pin. */
  get url(): string {
    return this.#options.publicUrl ?? `${this.#options.tls === undefined ? 'ws' : 'wss'}://${hostForUrl(this.#options.publicHost)}:${this.controlPort}/`
  }

  /** The state store. */
  get state(): TunnelState {
    return this.#state
  }

  /** The public ports bound now, with the name of the device holding each. */
  get publicPorts(): Array<{ port: number; local: number; name: string; online: boolean }> {
    return this.#registry.publicPorts()
  }

  /**
   * Cuts the control socket of the device called `name` (no closing handshake), as a
   * network failure would; the device keeps its name and ports for the retention time.
   *
   * @returns false when no device of that name is online.
   */
  dropDevice(name: string): boolean {
    const session = this.#registry.byName(name)?.session
    session?.terminate()
    return session !== undefined
  }

  /**
   * Stops: refuses new connections, tells devices (close 1001), closes every tunnelled
   * connection and public port; devices' names keep their retention time in the state.
   * Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer)
    this.#registry.beginClose()
    const listeners = [...this.#control, ...this.#http]
    const closed = closeAll(listeners)
    for (const session of this.#sessions.keys()) {
      session.reply('unavailable', 'the tunnel server is shutting down')
      session.close(CONTROL_CLOSE_CODES.goingAway, 'server shutting down', 1_000)
    }
    this.#pending.failAll('closing')
    const peersClosed = this.#peers.close()
    for (const stream of this.#streams) stream.terminate()
    await Promise.all(this.#sessions.values())
    await peersClosed
    await closed
    await this.#registry.close()
    await this.#state.unregisterServer(this.serverId).catch(() => {})
    if (this.#ownsState) await this.#state.close()
    this.#options.logger.info({ event: 'tunnel-closed', server: this.serverId }, 'tunnel server closed')
  }

  // ---------------------------------------------------------------- upgrades

  #onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', ignore)
    if (this.#closing !== undefined) {
      socket.destroy()
      return
    }
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://tunnel.invalid')
    } catch {
      return refuseUpgrade(socket, 400, 'protocol')
    }
    if (url.pathname.endsWith(`/${CONTROL_PATH}`)) {
      this.#redirectFor(url).then(
        (location) => {
          if (location !== undefined) {
            this.stats.redirects++
            socket.end(`HTTP/1.1 302 Found\r\nlocation: ${location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`)
            return
          }
          if (this.#closing !== undefined) return void socket.destroy()
          this.#controlWss.handleUpgrade(req, socket, head, (ws) => this.#acceptControl(ws, remoteOf(socket).host))
        },
        () => refuseUpgrade(socket, 503, 'unavailable'),
      )
      return
    }
    if (url.pathname.endsWith(`/${TRANSFER_PATH}`)) return this.#acceptTransfer(req, socket, head, url)
    if (url.pathname.endsWith(`/${PEER_LISTEN_PATH}`)) return this.#peers.upgradeListen(req, socket, head)
    if (url.pathname.endsWith(`/${PEER_CONNECT_PATH}`)) return this.#peers.upgradeConnect(req, socket, head, url)
    refuseUpgrade(socket, 404, 'protocol')
  }

  /** Where to send a device instead (fleet), or `undefined` to serve it here. */
  async #redirectFor(url: URL): Promise<string | undefined> {
    if (url.searchParams.has('redirected')) return undefined
    const servers = (await this.#state.listServers()).filter((s) => s.id !== this.serverId && s.devices < s.maxDevices)
    if (servers.length === 0) return undefined
    const name = url.searchParams.get('name') ?? ''
    let target = undefined as (typeof servers)[number] | undefined
    if (isTunnelName(name)) {
      const holder = await this.#state.getName(name)
      if (holder?.server === this.serverId) return undefined
      target = servers.find((s) => s.id === holder?.server)
    }
    if (target === undefined) {
      const least = servers.reduce((a, b) => (b.devices < a.devices ? b : a))
      if (least.devices < this.stats.devices) target = least
    }
    if (target === undefined) return undefined
    const base = target.url.endsWith('/') ? target.url : `${target.url}/`
    return `${base}${CONTROL_PATH}?redirected=1${isTunnelName(name) ? `&name=${name}` : ''}`
  }

  #acceptControl(ws: WebSocket, host: string): void {
    const count = this.#perIp.get(host) ?? 0
    const session = new ControlSession(this, ++this.#nextSession, ws, host)
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()))
    if (count >= this.#options.maxConnectionsPerIp || this.#closing !== undefined) {
      this.stats.refusedLimit++
      ws.on('error', ignore)
      session.reply(this.#closing === undefined ? 'limit' : 'unavailable', `more than ${this.#options.maxConnectionsPerIp} control sockets from ${host}`)
      session.close(CONTROL_CLOSE_CODES.policy, 'limit', 1_000)
      return
    }
    this.#perIp.set(host, count + 1)
    this.stats.controlSockets++
    this.#sessions.set(session, closed)
    ws.once('close', () => {
      this.#sessions.delete(session)
      this.stats.controlSockets--
      const left = (this.#perIp.get(host) ?? 1) - 1
      if (left <= 0) this.#perIp.delete(host)
      else this.#perIp.set(host, left)
    })
    session.start()
  }

  #acceptTransfer(req: IncomingMessage, socket: Socket, head: Buffer, url: URL): void {
    const id = decodeParam(url.searchParams.get('id'), TUNNEL_CONNECTION_ID_BYTES)
    const proof = decodeParam(url.searchParams.get('proof'), 32)
    if (id === undefined || proof === undefined) {
      this.stats.refusedTransfers++
      return refuseUpgrade(socket, 400, 'protocol')
    }
    const outcome = this.#pending.claim(id, proof)
    if (!outcome.ok) {
      this.stats.refusedTransfers++
      return refuseUpgrade(socket, outcome.why === 'unknown' ? 404 : 403, outcome.why === 'unknown' ? 'unknown-connection' : 'auth')
    }
    const { pending } = outcome
    // The transfer socket is framed by WebSocketStream itself (the data path), not by ws.
    const refused = socket.destroyed ? 400 : acceptWebSocketUpgrade(req, socket)
    if (refused !== undefined) {
      socket.once('close', () => pending.onFail('unreachable'))
      return refuseUpgrade(socket, refused, 'protocol')
    }
    const stream = new WebSocketStream(socket, {
      role: 'server',
      head,
      maxFrameBytes: this.#options.maxFrameBytes,
      onReceived: (bytes) => (this.stats.bytesFromDevices += bytes),
      onSent: (bytes) => (this.stats.bytesToDevices += bytes),
    })
    stream.on('error', ignore)
    pending.onClaim(stream)
  }

  // ---------------------------------------------------------------- ControlSessionHost

  /** @internal Admits a device (see {@link ControlSessionHost.admit}). */
  async admit(session: ControlSession, hello: TunnelHelloMessage, nonce: Uint8Array): Promise<TunnelWelcomeMessage> {
    if (this.#closing !== undefined) throw new ControlReplyError('unavailable', 'the tunnel server is shutting down')
    const { device, resumed } = await this.#registry.admit(session, hello, nonce)
    const options = this.#options
    const httpUrl = this.#httpUrl(device)
    return {
      type: 'welcome',
      version: TUNNEL_PROTOCOL_VERSION,
      name: device.name,
      ...(httpUrl === undefined ? {} : { httpUrl }),
      host: options.publicHost,
      ports: device.mappings(),
      secret: session.secret!,
      resumed,
      limits: {
        maxMessageBytes: options.maxMessageBytes,
        messagesPerSecond: options.messagesPerSecond,
        heartbeatMs: options.heartbeatMs,
        connectTimeoutMs: options.connectTimeoutMs,
        retentionMs: options.retentionMs,
      },
    }
  }

  /** @internal The control socket closed. */
  closed(session: ControlSession): void {
    this.#registry.closed(session)
  }

  // ---------------------------------------------------------------- connections

  #onPublicConnection(socket: Socket, port: PublicPort): void {
    socket.on('error', ignore)
    socket.setNoDelay(true)
    const device = this.#registry.byPort(port.port)
    if (device === undefined || !device.online || this.#closing !== undefined) {
      this.stats.offlineConnections++
      socket.destroy()
      return
    }
    const controller = new AbortController()
    const onClose = () => controller.abort()
    socket.once('close', onClose)
    this.#openToDevice(device, port.local, remoteOf(socket), controller.signal).then(
      (stream) => {
        socket.off('close', onClose)
        joinStreams(socket, stream)
      },
      () => socket.destroy(),
    )
  }

  /** Announces a connection to `device` and resolves with its transfer stream. */
  #openToDevice(device: TunnelDevice, local: number, remote: TunnelAddress, signal: AbortSignal): Promise<TransferStream> {
    const session = device.session
    if (session === undefined || session.secret === undefined) return Promise.reject(new TunnelOpenError('offline'))
    if (device.connections >= this.#options.maxConnectionsPerDevice) {
      this.stats.refusedLimit++
      return Promise.reject(new TunnelOpenError('limit'))
    }
    device.connections++
    this.stats.pendingConnections++
    return new Promise<TransferStream>((resolve, reject) => {
      const { id, cancel } = this.#pending.add(
        device.key,
        session.secret!,
        (stream) => {
          signal.removeEventListener('abort', cancel)
          this.stats.pendingConnections--
          this.stats.activeConnections++
          this.stats.connections++
          this.#streams.add(stream)
          stream.once('close', () => {
            this.#streams.delete(stream)
            this.stats.activeConnections--
            device.connections--
          })
          resolve(stream)
        },
        (reason) => {
          signal.removeEventListener('abort', cancel)
          this.stats.pendingConnections--
          device.connections--
          if (reason === 'timeout') this.stats.unclaimedConnections++
          else if (reason === 'refused' || reason === 'unreachable' || reason === 'limit') this.stats.rejectedConnections++
          reject(new TunnelOpenError(reason))
        },
      )
      if (signal.aborted) return cancel()
      signal.addEventListener('abort', cancel, { once: true })
      session.send({ type: 'connection', id, port: local, remote })
    })
  }

  /** @internal The device refused an announced connection. */
  rejected(session: ControlSession, id: Uint8Array, reason: TunnelRejectReason): void {
    if (session.device !== undefined) this.#pending.reject(session.device, id, reason)
  }

  /** @internal A control message was refused. */
  refused(_session: ControlSession, reason: string): void {
    if (reason === 'rate-limited') this.stats.refusedRateLimited++
    else if (reason === 'protocol' || reason === 'too-large' || reason === 'version') this.stats.refusedProtocol++
  }

  #httpHost() {
    const server = this
    const remote = new Map<string, TunnelServerRecord>()
    return {
      domain: this.#options.domain,
      scheme: this.#options.httpPublicScheme,
      stats: this.stats,
      hop: this.#hop,
      async route(name: string, forward: boolean): Promise<TunnelHttpRoute> {
        const device = server.#registry.byName(name)
        if (device !== undefined) {
          if (!device.online) return 'offline'
          return device.http === 0 ? 'no-http' : 'online'
        }
        // Not here: perhaps on another server of the fleet.
        const location = await server.#fleet.locate(name)
        if (location.kind !== 'remote') return location.kind
        if (!forward) return 'offline'
        remote.set(name, location.server)
        return 'remote'
      },
      open(name: string, client: TunnelAddress, signal: AbortSignal): Promise<Duplex> {
        const device = server.#registry.byName(name)
        if (device === undefined) {
          const holder = remote.get(name)
          return holder === undefined ? Promise.reject(new TunnelOpenError('offline')) : server.#fleet.connect(holder, signal)
        }
        if (!device.online || device.http === 0) return Promise.reject(new TunnelOpenError('offline'))
        return server.#openToDevice(device, device.http, client, signal)
      },
    }
  }

  #httpUrl(device: TunnelDevice): string | undefined {
    if (this.#options.noHttp || device.http === 0) return undefined
    const scheme = this.#options.httpPublicScheme
    const port = this.#options.httpPublicPort ?? this.httpPort
    const suffix = (scheme === 'http' && port === 80) || (scheme === 'https' && port === 443) ? '' : `:${port}`
    return `${scheme}://${device.name}.${this.#options.domain}${suffix}/`
  }

  // ---------------------------------------------------------------- timers

  #heartbeat(): void {
    for (const session of this.#sessions.keys()) {
      if (!session.alive) {
        session.terminate()
        continue
      }
      session.alive = false
      session.ping()
    }
  }

  #expireHellos(): void {
    const deadline = performance.now() - this.#options.helloTimeoutMs
    for (const session of this.#sessions.keys()) {
      if (session.state !== 'challenged' || session.createdAt > deadline) continue
      this.stats.refusedAuth++
      session.reply('auth', 'no hello in time')
      session.close(CONTROL_CLOSE_CODES.policy, 'no hello in time', 1_000)
    }
  }

  /** Registers (refreshes) this server in the fleet: when `force`, when a third of the TTL has passed, or when its device count changed. */
  async #register(force: boolean): Promise<void> {
    const now = Date.now()
    const ttl = this.#options.registrationTtlMs
    const devices = this.stats.devices
    if (!force && devices === this.#registered.devices && now - this.#registered.at < ttl / 3) return
    this.#registered = { at: now, devices }
    const httpPort = this.httpPort
    try {
      await this.#state.registerServer({
        id: this.serverId,
        url: this.url,
        devices,
        maxDevices: this.#options.maxDevices,
        expiresAt: now + ttl,
        ...(httpPort === 0 ? {} : { http: `${hostForUrl(this.#options.publicHost)}:${httpPort}` }),
      })
    } catch (err) {
      this.#registered.at = 0
      this.#options.logger.warn({ event: 'tunnel-state-error', error: (err as Error).message }, 'tunnel state error')
    }
  }
}

function decodeParam(value: string | null, bytes: number): Uint8Array | undefined {
  if (value === null || !/^[A-Za-z0-9_-]+$/.test(value)) return undefined
  const decoded = Buffer.from(value, 'base64url')
  return decoded.byteLength === bytes ? new Uint8Array(decoded) : undefined
}

function refuseUpgrade(socket: Socket, status: number, code: string): void {
  if (!socket.writable) return void socket.destroy()
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\nx-peerlink-error: ${code}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`)
}

function upgradeRequired(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket', connection: 'close' })
  res.end('peerlink tunnel: connect with a WebSocket (see docs/tunnel-protocol.md)\n')
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

function ignore(): void {}

