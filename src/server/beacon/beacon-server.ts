/**
 * The Beacon rendezvous server: WebSocket over TLS (port 4264 by default, IPv4 and
 * IPv6), with STUN Binding answered on UDP at the same port number, so that a Beacon is
 * also its peers' STUN server. The wire protocol is in `docs/beacon-protocol.md`.
 *
 * Without `redis` it keeps registrations in memory (one process); with
 * `redis: 'redis://…'` several instances share them and forward signalling through
 * Redis pub/sub, so peers connected to different instances still meet.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import https from 'node:https'
import { isIP, type Socket } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'
import { encodeServerMessage } from '../../beacon/beacon-messages.js'
import { certificateDer } from '../../cert-pin.js'
import { AbortError, InvalidArgumentError, SocketBindError, throwIfAborted } from '../../errors.js'
import type { TransportAddress } from '../../stun/address.js'
import { StunServer } from '../stun/stun-server.js'
import { BeaconRouter, type BeaconServerLogger, type BeaconServerStats } from './beacon-router.js'
import { type BeaconRegistry, MemoryRegistry } from './registry.js'
import { BeaconSession, CLOSE_CODES } from './session.js'

/**
 * Options of {@link BeaconServer.listen}.
 *
 * @example
 * ```ts
 * import { BeaconServer, openDataDir } from 'peerlink/server'
 *
 * const { cert, key, certificateHash } = await openDataDir('./beacon-data')
 * const beacon = await BeaconServer.listen({
 *   host: ['0.0.0.0', '::'],
 *   cert, key,                          // clients use HOST:4264#<certificateHash>
 *   redis: 'redis://127.0.0.1:6379',    // optional: a fleet of Beacons sharing registrations
 *   messagesPerSecond: 20,
 * })
 * ```
 */
export interface BeaconServerOptions {
  /**
   * IP address(es) to listen on, TCP (WSS) and UDP (STUN). Give `['0.0.0.0', '::']`
   * for IPv4 and IPv6.
   * @default '0.0.0.0'
   */
  host?: string | readonly string[]
  /**
   * TCP port for WSS and UDP port for STUN (0: let the system pick one number free for both).
   * @default 4264
   */
  port?: number
  /** TLS certificate (chain), PEM. Clients pin the SHA-256 of its first certificate. */
  cert: string | Uint8Array
  /** TLS private key, PEM. */
  key: string | Uint8Array
  /**
   * `redis://…` or `rediss://…`: share registrations with the other instances of a fleet.
   * @default undefined (in memory, one process)
   */
  redis?: string
  /**
   * Prefix of the Redis keys and channels (one fleet per prefix).
   * @default 'peerlink:beacon:'
   */
  redisPrefix?: string
  /**
   * Milliseconds after which the registrations of an instance that stopped (died)
   * vanish from the fleet.
   * @default 10_000
   */
  redisTtlMs?: number
  /**
   * This instance's id in the fleet.
   * @default random
   */
  instanceId?: string
  /**
   * Answer STUN Binding requests on UDP at the same port number.
   * @default true
   */
  stun?: boolean
  /**
   * Largest message accepted, in bytes; larger ones get a `too-large` error (up to 4×
   * this, beyond which the WebSocket is closed with 1009).
   * @default 16384
   */
  maxMessageBytes?: number
  /**
   * Rendezvous identifiers one connection may announce at once.
   * @default 16
   */
  maxTopicsPerConnection?: number
  /**
   * Messages per second one connection may send (sustained); excess gets `rate-limited`.
   * @default 50
   */
  messagesPerSecond?: number
  /**
   * Largest burst of messages from one connection.
   * @default 100
   */
  messageBurst?: number
  /**
   * Open connections from one IP address.
   * @default 64
   */
  maxConnectionsPerIp?: number
  /**
   * Open connections in all.
   * @default 100_000
   */
  maxConnections?: number
  /**
   * Peers an announcement is introduced to (the newest announcers of the identifier).
   * @default 16
   */
  maxIntroductions?: number
  /**
   * Milliseconds between heartbeats (WebSocket pings); a connection silent for two
   * heartbeats is dropped.
   * @default 15_000
   */
  heartbeatMs?: number
  /**
   * Milliseconds a new connection has to prove its key.
   * @default 10_000
   */
  helloTimeoutMs?: number
  /**
   * Unsent bytes after which a connection that does not read is dropped.
   * @default 1_048_576
   */
  maxBufferedBytes?: number
  /**
   * Logger (a pino logger fits).
   * @default undefined (silent)
   */
  logger?: BeaconServerLogger
  /**
   * Cancels a `listen` that is still starting.
   * @default undefined
   */
  signal?: AbortSignal
}

const SILENT: BeaconServerLogger = { info() {}, warn() {}, error() {} }

interface Listener {
  server: https.Server
  address: TransportAddress
}

/**
 * A running Beacon. Create it with {@link BeaconServer.listen}, stop it with
 * {@link BeaconServer.close}.
 *
 * @example
 * ```ts
 * import { BeaconServer, createSelfSignedCertificate } from 'peerlink/server'
 *
 * const { cert, key, hash } = createSelfSignedCertificate()
 * const beacon = await BeaconServer.listen({ host: '127.0.0.1', port: 4264, cert, key })
 * console.log(`127.0.0.1:${beacon.port}#${hash}`)      // the spec clients use
 * await beacon.close()
 * ```
 */
export class BeaconServer {
  /** This instance's id (in a fleet, unique among instances). */
  readonly instanceId: string
  /** base64url SHA-256 of the certificate: the `#CERT_HASH` of this Beacon's spec. */
  readonly certificateHash: string
  readonly #router: BeaconRouter
  readonly #registry: BeaconRegistry
  readonly #listeners: Listener[]
  readonly #stun: StunServer[]
  readonly #wss: WebSocketServer
  readonly #perIp = new Map<string, number>()
  readonly #timers: Array<ReturnType<typeof setInterval>>
  readonly #heartbeatSlots: Array<Set<BeaconSession>>
  readonly #options: ResolvedOptions
  #nextSession = 0
  #closing: Promise<void> | undefined

  private constructor(options: ResolvedOptions, registry: BeaconRegistry, certHash: Buffer, listeners: Listener[], stun: StunServer[], wss: WebSocketServer) {
    this.#options = options
    this.#registry = registry
    this.instanceId = registry.instanceId
    this.certificateHash = certHash.toString('base64url')
    this.#listeners = listeners
    this.#stun = stun
    this.#wss = wss
    this.#router = new BeaconRouter({
      registry,
      certHash: new Uint8Array(certHash),
      maxIntroductions: options.maxIntroductions,
      logger: options.logger,
      limits: {
        maxMessageBytes: options.maxMessageBytes,
        maxTopics: options.maxTopicsPerConnection,
        messagesPerSecond: options.messagesPerSecond,
        messageBurst: options.messageBurst,
        heartbeatMs: options.heartbeatMs,
        maxBufferedBytes: options.maxBufferedBytes,
      },
    })
    for (const { server } of listeners) {
      server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.#onUpgrade(req, socket, head))
    }
    // Heartbeats are spread over the interval: sessions are split into groups by id and
    // one group is visited every ~50 ms, so that 20,000 pings never leave at once.
    const slots = Math.max(1, Math.floor(options.heartbeatMs / 50))
    this.#heartbeatSlots = Array.from({ length: slots }, () => new Set<BeaconSession>())
    let tick = 0
    this.#timers = [
      setInterval(() => this.#heartbeat(this.#heartbeatSlots[tick++ % slots]!), options.heartbeatMs / slots),
      setInterval(() => this.#expireHellos(), Math.max(50, Math.min(1_000, options.helloTimeoutMs / 2))),
    ]
  }

  /**
   * Starts a Beacon: connects to Redis when configured, then listens.
   *
   * @throws `InvalidArgumentError` at once for bad options.
   * @throws `SocketBindError` (rejects) when a port is taken or an address is not local.
   * @throws `Error` (rejects) when Redis cannot be reached.
   * @throws `AbortError` (rejects) when `signal` fires first.
   */
  static async listen(options: BeaconServerOptions): Promise<BeaconServer> {
    const resolved = resolveOptions(options)
    throwIfAborted(resolved.signal)
    const certHash = createHash('sha256').update(certificateDer(resolved.cert)).digest()
    const instanceId = resolved.instanceId
    let registry: BeaconRegistry
    if (resolved.redis === undefined) {
      registry = new MemoryRegistry(instanceId)
    } else {
      const { RedisRegistry } = await import('./redis-registry.js')
      registry = await RedisRegistry.connect({
        url: resolved.redis,
        instanceId,
        prefix: resolved.redisPrefix,
        ttlMs: resolved.redisTtlMs,
        onError: (error) => resolved.logger.error({ event: 'beacon-redis-error', error: error.message }, 'Redis error'),
      })
    }
    const wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      clientTracking: false,
      maxPayload: resolved.maxMessageBytes * 4,
    })
    try {
      throwIfAborted(resolved.signal)
      const { listeners, stun } = await bindAll(resolved)
      const server = new BeaconServer(resolved, registry, certHash, listeners, stun, wss)
      resolved.logger.info({ event: 'beacon-listening', addresses: server.addresses, registry: registry.kind, instance: instanceId }, 'Beacon listening')
      return server
    } catch (err) {
      await registry.close()
      throw err
    }
  }

  /** The TCP (WSS) addresses; the UDP (STUN) ones have the same hosts and port. */
  get addresses(): TransportAddress[] {
    return this.#listeners.map((listener) => ({ ...listener.address }))
  }

  /** The port number (TCP and UDP). */
  get port(): number {
    return this.#listeners[0]!.address.port
  }

  /** Counters. */
  get stats(): Readonly<BeaconServerStats> {
    return this.#router.stats
  }

  /** The STUN responders on the UDP port (empty when `stun: false`). */
  get stunServers(): readonly StunServer[] {
    return this.#stun
  }

  /**
   * Stops: refuses new connections, closes every session (code 1001) and removes its
   * registrations, then closes Redis and the sockets. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer)
    const closed = this.#listeners.map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve())))
    for (const { server } of this.#listeners) server.closeIdleConnections()
    for (const session of this.#router.sessions.values()) session.close(CLOSE_CODES.goingAway, 'Beacon shutting down', 1_000)
    await this.#router.drain()
    // Connections still in their TLS handshake or HTTP request (not WebSockets yet).
    for (const { server } of this.#listeners) server.closeAllConnections()
    await Promise.all(closed)
    await this.#router.drain()
    await this.#registry.close()
    await Promise.all(this.#stun.map((stun) => stun.close()))
    this.#options.logger.info({ event: 'beacon-closed', instance: this.instanceId }, 'Beacon closed')
  }

  #onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    if (this.#closing !== undefined) {
      socket.destroy()
      return
    }
    // Module-level listeners and no `req` in the closure below: a closure created here
    // would keep the upgrade request (and its headers) alive as long as the connection.
    socket.on('error', ignore)
    const observed = remoteAddress(socket)
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, socket, observed))
  }

  #accept(ws: WebSocket, socket: Socket, observed: TransportAddress): void {
    const count = this.#perIp.get(observed.host) ?? 0
    const { maxConnections, maxConnectionsPerIp } = this.#options
    if (this.#closing !== undefined || this.#router.stats.connections >= maxConnections || count >= maxConnectionsPerIp) {
      const why = count >= maxConnectionsPerIp ? `more than ${maxConnectionsPerIp} connections from ${observed.host}` : 'the Beacon is full'
      this.#router.stats.refused.limit++
      ws.on('error', ignore)
      ws.send(encodeServerMessage({ type: 'error', code: this.#closing === undefined ? 'limit' : 'unavailable', message: why }))
      ws.close(CLOSE_CODES.policy, 'limit')
      const timer = setTimeout(() => ws.terminate(), 1_000)
      ws.once('close', () => clearTimeout(timer))
      return
    }
    this.#perIp.set(observed.host, count + 1)
    const session = new BeaconSession(this.#router, ++this.#nextSession, ws, socket, observed)
    const slot = this.#heartbeatSlots[session.id % this.#heartbeatSlots.length]!
    slot.add(session)
    ws.once('close', () => {
      slot.delete(session)
      const left = (this.#perIp.get(observed.host) ?? 1) - 1
      if (left <= 0) this.#perIp.delete(observed.host)
      else this.#perIp.set(observed.host, left)
    })
    this.#router.add(session)
    session.start()
  }

  #heartbeat(slot: Set<BeaconSession>): void {
    for (const session of slot) {
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
    for (const session of this.#router.unauthenticated) {
      if (session.createdAt > deadline || session.state === 'closed') continue
      this.#router.unauthenticated.delete(session)
      this.#router.stats.refused.auth++
      session.reply('auth', 'no hello in time')
      session.close(CLOSE_CODES.policy, 'no hello in time')
    }
  }
}

/** {@link BeaconServerOptions} checked, with every default filled in. */
export type ResolvedBeaconServerOptions = Required<Omit<BeaconServerOptions, 'host' | 'redis' | 'signal'>> & {
  hosts: string[]
  redis: string | undefined
  signal: AbortSignal | undefined
}

type ResolvedOptions = ResolvedBeaconServerOptions

/**
 * Checks `options` and fills in the defaults, as {@link BeaconServer.listen} does first
 * (used by `peerlink-server` to validate its config file before listening).
 *
 * @throws `InvalidArgumentError` for a bad option, naming the field.
 */
export function resolveBeaconServerOptions(options: BeaconServerOptions): ResolvedBeaconServerOptions {
  return resolveOptions(options)
}

function resolveOptions(options: BeaconServerOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('BeaconServer.listen needs options')
  const hosts = typeof options.host === 'string' ? [options.host] : [...(options.host ?? ['0.0.0.0'])]
  if (hosts.length === 0 || hosts.some((host) => typeof host !== 'string' || isIP(host) === 0)) {
    throw new InvalidArgumentError('host must be an IP address or a non-empty list of IP addresses')
  }
  if (new Set(hosts).size !== hosts.length) throw new InvalidArgumentError('host lists an address twice')
  const isPem = (value: unknown) => typeof value === 'string' || value instanceof Uint8Array
  if (!isPem(options.cert) || !isPem(options.key)) throw new InvalidArgumentError('cert and key (PEM) are required')
  const integer = (name: keyof BeaconServerOptions, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const value = options[name] ?? fallback
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`)
    }
    return value
  }
  if (options.redis !== undefined && (typeof options.redis !== 'string' || !/^rediss?:\/\//.test(options.redis))) {
    throw new InvalidArgumentError('redis must be a redis:// or rediss:// URL')
  }
  const instanceId = options.instanceId ?? randomBytes(9).toString('base64url')
  if (typeof instanceId !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(instanceId)) {
    throw new InvalidArgumentError('instanceId must be 1 to 64 characters of A-Z a-z 0-9 _ . -')
  }
  const logger = options.logger ?? SILENT
  for (const level of ['info', 'warn', 'error'] as const) {
    if (typeof logger[level] !== 'function') throw new InvalidArgumentError(`logger.${level} must be a function`)
  }
  return {
    hosts,
    port: integer('port', 4264, 0, 65535),
    cert: options.cert,
    key: options.key,
    redis: options.redis,
    redisPrefix: options.redisPrefix ?? 'peerlink:beacon:',
    redisTtlMs: integer('redisTtlMs', 10_000, 300),
    instanceId,
    stun: options.stun ?? true,
    maxMessageBytes: integer('maxMessageBytes', 16384, 1024, 16384),
    maxTopicsPerConnection: integer('maxTopicsPerConnection', 16, 0, 1024),
    messagesPerSecond: integer('messagesPerSecond', 50, 1),
    messageBurst: integer('messageBurst', 100, 1),
    maxConnectionsPerIp: integer('maxConnectionsPerIp', 64, 1),
    maxConnections: integer('maxConnections', 100_000, 1),
    maxIntroductions: integer('maxIntroductions', 16, 0, 1024),
    heartbeatMs: integer('heartbeatMs', 15_000, 100),
    helloTimeoutMs: integer('helloTimeoutMs', 10_000, 100),
    maxBufferedBytes: integer('maxBufferedBytes', 1_048_576, 65_536),
    logger,
    signal: options.signal,
  }
}

/** Binds TCP on every host, then UDP at the same port number; retries when port 0 lands on a taken UDP port. */
async function bindAll(options: ResolvedOptions): Promise<{ listeners: Listener[]; stun: StunServer[] }> {
  for (let attempt = 0; ; attempt++) {
    const listeners: Listener[] = []
    const stun: StunServer[] = []
    try {
      let port = options.port
      for (const host of options.hosts) {
        const listener = await listenTls(options, host, port)
        listeners.push(listener)
        port = listener.address.port
      }
      if (options.stun) {
        for (const host of options.hosts) stun.push(await StunServer.listen({ host, port, ...(options.signal ? { signal: options.signal } : {}) }))
      }
      return { listeners, stun }
    } catch (err) {
      await Promise.all([...listeners.map(({ server }) => new Promise((resolve) => server.close(resolve))), ...stun.map((s) => s.close())])
      const inUse = (err as { cause?: { code?: unknown } }).cause?.code === 'EADDRINUSE'
      if (options.port !== 0 || !inUse || attempt >= 8) throw err
    }
  }
}

function listenTls(options: ResolvedOptions, host: string, port: number): Promise<Listener> {
  const signal = options.signal
  const server = https.createServer({ cert: asPem(options.cert), key: asPem(options.key), handshakeTimeout: 10_000 }, upgradeRequired)
  server.on('tlsClientError', () => {})
  server.headersTimeout = 10_000
  server.requestTimeout = 10_000
  return new Promise<Listener>((resolve, reject) => {
    const onAbort = () => {
      server.close()
      reject(new AbortError(undefined, { cause: signal?.reason }))
    }
    const onError = (err: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', onAbort)
      const why = err.code === 'EADDRINUSE' ? 'the port is in use' : err.code === 'EADDRNOTAVAIL' ? 'the address is not local' : err.message
      reject(new SocketBindError(`Cannot listen on TCP ${host}:${port}: ${why}`, { cause: err }))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    server.once('error', onError)
    server.listen({ host, port, ipv6Only: isIP(host) === 6 }, () => {
      server.off('error', onError)
      signal?.removeEventListener('abort', onAbort)
      const bound = server.address() as { address: string; port: number; family: string }
      resolve({ server, address: { family: isIP(bound.address) === 6 ? 'IPv6' : 'IPv4', host: bound.address, port: bound.port } })
    })
  })
}

function ignore(): void {}

function upgradeRequired(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket', connection: 'close' })
  res.end('peerlink Beacon: connect with a WebSocket (see docs/beacon-protocol.md)\n')
}

function asPem(value: string | Uint8Array): string | Buffer {
  return typeof value === 'string' ? value : Buffer.from(value)
}

/** The client's address, with IPv4-mapped IPv6 (`::ffff:a.b.c.d`) written as IPv4. */
function remoteAddress(socket: Socket): TransportAddress {
  let host = socket.remoteAddress ?? '0.0.0.0'
  if (host.toLowerCase().startsWith('::ffff:') && isIP(host.slice(7)) === 4) host = host.slice(7)
  return { family: isIP(host) === 6 ? 'IPv6' : 'IPv4', host, port: socket.remotePort ?? 0 }
}
