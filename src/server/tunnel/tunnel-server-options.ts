/**
 * Options of the tunnel server ({@link TunnelServerOptions}) and their validation.
 *
 * Each field is the camelCase of a `[tunnel]` key of `peerlink-server.toml`, so the
 * section maps onto them one to one (`allow-ports` → `allowPorts`, `retention` →
 * `retention`, …); durations are in seconds, as in the `[turn]` section. The exceptions
 * are `tls` (the `cert` and `pkey` files, read), `state`, `logger` and `signal`.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { InvalidArgumentError } from '../../errors.js'
import { isPeerId } from '../../identity/peer-id.js'
import { TUNNEL_MAX_MESSAGE_BYTES, TUNNEL_MAX_PORTS, TUNNEL_MAX_TOKEN_LENGTH } from '../../tunnel/tunnel-messages.js'
import { PortRange } from './port-range.js'
import type { TunnelState } from './tunnel-state.js'

/** Where a tunnel server logs (a pino logger fits). */
export interface TunnelServerLogger {
  /** Normal events (a device connected, …). */
  info(object: object, message?: string): void
  /** Refusals and recoverable problems. */
  warn(object: object, message?: string): void
  /** Failures. */
  error(object: object, message?: string): void
}

/** Certificate and private key (PEM) of the control port's TLS. */
export interface TunnelServerTlsOptions {
  /** Certificate chain, PEM. Devices pin the SHA-256 of its first certificate. */
  cert: string | Uint8Array
  /** Private key, PEM. */
  key: string | Uint8Array
}

/**
 * Options of {@link TunnelServer.listen}.
 *
 * @example
 * ```ts
 * import { TunnelServer, openDataDir } from 'peerlink/server'
 *
 * const { cert, key, certificateHash } = await openDataDir('./tunnel-data')
 * const tunnel = await TunnelServer.listen({
 *   tls: { cert, key },
 *   domain: 'tunnel.example.com',   // device NAME is served at http://NAME.tunnel.example.com:8080/
 *   allowPorts: '20000-20999',
 *   tokens: [process.env.DEVICE_TOKEN!],
 * })
 * console.log(`${tunnel.url}#${certificateHash}`)   // what devices pass to `peerlink expose --tunnel`
 * ```
 */
export interface TunnelServerOptions {
  /**
   * Addresses to listen on: the control port, the HTTP port and the public TCP ports.
   * `'0.0.0.0'` is every IPv4 address, `'::'` every IPv6 address.
   * @default ['0.0.0.0']
   */
  listeningIps?: string | readonly string[]
  /**
   * Port of the control WebSockets (devices connect here; 0: let the system pick).
   * @default 8443
   */
  controlPort?: number
  /**
   * Port of the HTTP reverse proxy that routes `NAME.<domain>` (0: let the system pick).
   * @default 8080
   */
  httpPort?: number
  /**
   * Do not serve HTTP by name (only the public TCP ports).
   * @default false
   */
  noHttp?: boolean
  /**
   * TLS for the control port (`wss://`); without it the control port speaks plain
   * `ws://` (loopback, tests, or behind a TLS-terminating proxy).
   * @default undefined (plain ws://)
   */
  tls?: TunnelServerTlsOptions
  /**
   * The domain under which devices get names: a request for `NAME.<domain>` goes to
   * device NAME's HTTP service.
   * @default 'localhost'
   */
  domain?: string
  /**
   * Host name devices are told their public TCP ports are at.
   * @default the domain
   */
  publicHost?: string
  /**
   * This server's tunnel URL as devices write it (`wss://tunnel-2.example.com:8443`),
   * for redirects from the other servers of a fleet.
   * @default `ws(s)://<publicHost>:<controlPort>/`
   */
  publicUrl?: string
  /**
   * The port in the HTTP URLs given to devices (e.g. 80 or 443 behind a proxy).
   * @default the HTTP port
   */
  httpPublicPort?: number
  /**
   * The scheme of the HTTP URLs given to devices, and of `X-Forwarded-Proto`
   * (`'https'` when a TLS-terminating proxy sits in front of the HTTP port).
   * @default 'http'
   */
  httpPublicScheme?: 'http' | 'https'
  /**
   * Public TCP ports given to devices, `"20000-20999,21000"` (rathole's and frp's form).
   * @default '20000-29999'
   */
  allowPorts?: string
  /**
   * Ports one device may expose.
   * @default 10
   */
  maxPortsPerDevice?: number
  /**
   * Device tokens accepted (each device its own; compared in constant time).
   * @default []
   */
  tokens?: readonly string[]
  /**
   * PeerIds that may log in with a signature alone (without a token); `'*'` allows any
   * identity (names then go to whoever asks first).
   * @default []
   */
  allowedPeerIds?: readonly string[]
  /**
   * Seconds a disconnected device keeps its name and ports.
   * @default 300
   */
  retention?: number
  /**
   * Seconds an incoming connection waits for the device's transfer socket before it is
   * closed (HTTP: answered 504).
   * @default 10
   */
  connectTimeout?: number
  /**
   * Seconds between heartbeats (WebSocket pings) on control sockets; a device silent for
   * two heartbeats is dropped.
   * @default 10
   */
  heartbeatInterval?: number
  /**
   * Seconds a new control socket has to log in.
   * @default 10
   */
  helloTimeout?: number
  /**
   * Seconds an HTTP client has to send its request headers (slow-loris defence).
   * @default 10
   */
  httpHeadersTimeout?: number
  /**
   * Largest control message accepted, in bytes; larger ones get a `too-large` error (up
   * to 4× this, beyond which the socket is closed with 1009).
   * @default 16384
   */
  maxMessageBytes?: number
  /**
   * Control messages per second one socket may send (sustained).
   * @default 50
   */
  messagesPerSecond?: number
  /**
   * Largest burst of control messages from one socket.
   * @default 100
   */
  messageBurst?: number
  /**
   * Control sockets open at once from one IP address.
   * @default 64
   */
  maxConnectionsPerIp?: number
  /**
   * Devices online at once.
   * @default 10_000
   */
  maxDevices?: number
  /**
   * Tunnelled connections (waiting and open) one device may have at once.
   * @default 1_000
   */
  maxConnectionsPerDevice?: number
  /**
   * Unsent bytes after which a control socket that does not read is dropped.
   * @default 1_048_576
   */
  maxBufferedBytes?: number
  /**
   * Largest frame on a transfer socket, in bytes.
   * @default 1_048_576
   */
  maxFrameBytes?: number
  /**
   * This server's id in a fleet.
   * @default random
   */
  serverId?: string
  /**
   * Where names, ports and the fleet registry live (give this or `redis`, not both).
   * @default a new {@link MemoryTunnelState}, or a `RedisTunnelState` with `redis`
   */
  state?: TunnelState
  /**
   * Redis URL (`redis://[[user]:password@]host[:port][/db]` or `rediss://…`) of the
   * state shared by the servers of a fleet.
   * @default undefined (state in memory: a single server)
   */
  redis?: string
  /**
   * Prefix of this fleet's Redis keys (servers sharing Redis and a prefix form one fleet).
   * @default 'peerlink:tunnel:'
   */
  redisPrefix?: string
  /**
   * Seconds this server's registration in the fleet lasts unless refreshed (it is
   * refreshed every third of it, and when its device count changes). When a server
   * stops without closing (a crash), its online devices' names and ports are freed
   * after this time.
   * @default 15
   */
  registrationTtl?: number
  /**
   * Logger (a pino logger fits).
   * @default undefined (silent)
   */
  logger?: TunnelServerLogger
  /**
   * Cancels a `listen` that is still starting.
   * @default undefined
   */
  signal?: AbortSignal
}

/** {@link TunnelServerOptions} checked, with defaults filled in and durations in milliseconds. */
export interface ResolvedTunnelServerOptions {
  listeningIps: string[]
  controlPort: number
  httpPort: number
  noHttp: boolean
  tls: { cert: string | Buffer; key: string | Buffer } | undefined
  domain: string
  publicHost: string
  publicUrl: string | undefined
  httpPublicPort: number | undefined
  httpPublicScheme: 'http' | 'https'
  allowPorts: PortRange
  maxPortsPerDevice: number
  tokens: string[]
  allowedPeerIds: Set<string>
  anyPeerId: boolean
  retentionMs: number
  connectTimeoutMs: number
  heartbeatMs: number
  helloTimeoutMs: number
  httpHeadersTimeoutMs: number
  maxMessageBytes: number
  messagesPerSecond: number
  messageBurst: number
  maxConnectionsPerIp: number
  maxDevices: number
  maxConnectionsPerDevice: number
  maxBufferedBytes: number
  maxFrameBytes: number
  serverId: string
  state: TunnelState | undefined
  redis: string | undefined
  redisPrefix: string
  registrationTtlMs: number
  logger: TunnelServerLogger
  signal: AbortSignal | undefined
}

const SILENT: TunnelServerLogger = { info() {}, warn() {}, error() {} }
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/

/**
 * Checks options and fills in the defaults.
 *
 * @throws {@link InvalidArgumentError} for any bad option.
 */
export function resolveTunnelServerOptions(options: TunnelServerOptions): ResolvedTunnelServerOptions {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('TunnelServer.listen needs options')
  const ips = typeof options.listeningIps === 'string' ? [options.listeningIps] : [...(options.listeningIps ?? ['0.0.0.0'])]
  if (ips.length === 0 || ips.some((ip) => typeof ip !== 'string' || isIP(ip) === 0)) {
    throw new InvalidArgumentError('listeningIps must be an IP address or a non-empty list of IP addresses')
  }
  if (new Set(ips).size !== ips.length) throw new InvalidArgumentError('listeningIps lists an address twice')
  const integer = (name: keyof TunnelServerOptions, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const value = options[name] ?? fallback
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`)
    }
    return value
  }
  const seconds = (name: keyof TunnelServerOptions, fallback: number, min: number, max: number): number => {
    const value = options[name] ?? fallback
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      throw new InvalidArgumentError(`${name} must be a number of seconds from ${min} to ${max}`)
    }
    return Math.round(value * 1000)
  }
  const flag = (name: keyof TunnelServerOptions): boolean => {
    const value = options[name] ?? false
    if (typeof value !== 'boolean') throw new InvalidArgumentError(`${name} must be true or false`)
    return value
  }
  let tls: ResolvedTunnelServerOptions['tls']
  if (options.tls !== undefined) {
    const isPem = (value: unknown) => typeof value === 'string' || value instanceof Uint8Array
    if (options.tls === null || typeof options.tls !== 'object' || !isPem(options.tls.cert) || !isPem(options.tls.key)) {
      throw new InvalidArgumentError('tls must be { cert, key } in PEM')
    }
    tls = { cert: pem(options.tls.cert), key: pem(options.tls.key) }
  }
  const domain = (options.domain ?? 'localhost').toLowerCase().replace(/\.$/, '')
  if (!DNS_NAME.test(domain)) throw new InvalidArgumentError(`domain ${JSON.stringify(options.domain)} is not a DNS name`)
  const publicHost = options.publicHost ?? domain
  if (typeof publicHost !== 'string' || (isIP(publicHost) === 0 && !DNS_NAME.test(publicHost.toLowerCase()))) {
    throw new InvalidArgumentError('publicHost must be a host name or an IP address')
  }
  if (options.publicUrl !== undefined && (typeof options.publicUrl !== 'string' || !/^wss?:\/\/[^\s#?]+$/.test(options.publicUrl))) {
    throw new InvalidArgumentError('publicUrl must be a ws:// or wss:// URL without query or fragment')
  }
  const scheme = options.httpPublicScheme ?? 'http'
  if (scheme !== 'http' && scheme !== 'https') throw new InvalidArgumentError("httpPublicScheme must be 'http' or 'https'")
  const tokens = [...(options.tokens ?? [])]
  for (const token of tokens) {
    if (typeof token !== 'string' || token.length < 8 || token.length > TUNNEL_MAX_TOKEN_LENGTH) {
      throw new InvalidArgumentError(`tokens must be strings of 8 to ${TUNNEL_MAX_TOKEN_LENGTH} characters`)
    }
  }
  const peerIds = [...(options.allowedPeerIds ?? [])]
  for (const peerId of peerIds) {
    if (peerId !== '*' && !isPeerId(peerId)) throw new InvalidArgumentError(`allowedPeerIds: ${JSON.stringify(peerId)} is neither a PeerId nor "*"`)
  }
  const serverId = options.serverId ?? randomBytes(9).toString('base64url')
  if (typeof serverId !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(serverId)) {
    throw new InvalidArgumentError('serverId must be 1 to 64 characters of A-Z a-z 0-9 _ . -')
  }
  const logger = options.logger ?? SILENT
  for (const level of ['info', 'warn', 'error'] as const) {
    if (typeof logger[level] !== 'function') throw new InvalidArgumentError(`logger.${level} must be a function`)
  }
  const state = options.state
  if (state !== undefined && (state === null || typeof state !== 'object' || typeof state.claimName !== 'function')) {
    throw new InvalidArgumentError('state must be a TunnelState')
  }
  if (options.redis !== undefined) {
    if (typeof options.redis !== 'string' || !/^rediss?:\/\/\S+$/.test(options.redis)) throw new InvalidArgumentError('redis must be a redis:// or rediss:// URL')
    if (state !== undefined) throw new InvalidArgumentError('give state or redis, not both')
  }
  const redisPrefix = options.redisPrefix ?? 'peerlink:tunnel:'
  if (typeof redisPrefix !== 'string' || redisPrefix.length > 200 || /\s/.test(redisPrefix)) {
    throw new InvalidArgumentError('redisPrefix must be a string of at most 200 characters without spaces')
  }
  return {
    listeningIps: ips,
    controlPort: integer('controlPort', 8443, 0, 65535),
    httpPort: integer('httpPort', 8080, 0, 65535),
    noHttp: flag('noHttp'),
    tls,
    domain,
    publicHost: publicHost.toLowerCase(),
    publicUrl: options.publicUrl,
    httpPublicPort: options.httpPublicPort === undefined ? undefined : integer('httpPublicPort', 0, 1, 65535),
    httpPublicScheme: scheme,
    allowPorts: PortRange.parse(options.allowPorts ?? '20000-29999'),
    maxPortsPerDevice: integer('maxPortsPerDevice', 10, 1, TUNNEL_MAX_PORTS),
    tokens,
    allowedPeerIds: new Set(peerIds.filter((p) => p !== '*')),
    anyPeerId: peerIds.includes('*'),
    retentionMs: seconds('retention', 300, 0, 7 * 24 * 3600),
    connectTimeoutMs: seconds('connectTimeout', 10, 0.05, 600),
    heartbeatMs: seconds('heartbeatInterval', 10, 0.05, 3600),
    helloTimeoutMs: seconds('helloTimeout', 10, 0.05, 600),
    httpHeadersTimeoutMs: seconds('httpHeadersTimeout', 10, 0.1, 600),
    maxMessageBytes: integer('maxMessageBytes', 16384, 1024, TUNNEL_MAX_MESSAGE_BYTES),
    messagesPerSecond: integer('messagesPerSecond', 50, 1),
    messageBurst: integer('messageBurst', 100, 1),
    maxConnectionsPerIp: integer('maxConnectionsPerIp', 64, 1),
    maxDevices: integer('maxDevices', 10_000, 1),
    maxConnectionsPerDevice: integer('maxConnectionsPerDevice', 1_000, 1),
    maxBufferedBytes: integer('maxBufferedBytes', 1_048_576, 65_536),
    maxFrameBytes: integer('maxFrameBytes', 1_048_576, 65_536),
    serverId,
    state,
    redis: options.redis,
    redisPrefix,
    registrationTtlMs: seconds('registrationTtl', 15, 0.3, 3600),
    logger,
    signal: options.signal,
  }
}

function pem(value: string | Uint8Array): string | Buffer {
  return typeof value === 'string' ? value : Buffer.from(value)
}
