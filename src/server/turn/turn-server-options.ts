/**
 * Options of the TURN server ({@link TurnServerOptions}) and their validation.
 *
 * Names follow coturn's `turnserver.conf` options in camelCase, so the `[turn]` section
 * of `peerlink-server.toml` maps onto them one to one:
 *
 * | coturn option                  | option here                              | default                |
 * |--------------------------------|------------------------------------------|------------------------|
 * | `listening-ip` (repeatable)    | `listeningIps`                           | `['0.0.0.0']`          |
 * | `listening-port`               | `listeningPort`                          | 3478                   |
 * | `tls-listening-port`           | `tlsListeningPort`                       | 5349                   |
 * | (none; e.g. 443)               | `extraTlsListeningPorts`                 | `[]`                   |
 * | `relay-ip` (repeatable)        | `relayIps`                               | the listening IPs      |
 * | `external-ip=PUBLIC[/PRIVATE]` | `externalIp`                             | none                   |
 * | `min-port` / `max-port`        | `minPort` / `maxPort`                    | 49152 / 65535          |
 * | `realm`                        | `realm`                                  | `'peerlink'`           |
 * | `user=name:pass` / `name:0xKEY`| `users`                                  | `[]`                   |
 * | `static-auth-secret` (repeat.) | `staticAuthSecrets`                      | `[]`                   |
 * | `use-auth-secret`              | `useAuthSecret`                          | secrets given          |
 * | `rest-api-separator`           | `restApiSeparator`                       | `':'`                  |
 * | `no-auth`                      | `noAuth`                                 | false                  |
 * | `stun-only`                    | `stunOnly`                               | false                  |
 * | `max-allocate-lifetime`        | `maxAllocateLifetime`                    | 3600                   |
 * | (fixed 600 in coturn)          | `defaultAllocateLifetime`                | 600                    |
 * | `permission-lifetime`          | `permissionLifetime`                     | 300                    |
 * | `channel-lifetime`             | `channelLifetime`                        | 600                    |
 * | `stale-nonce`                  | `nonceLifetime`                          | 600                    |
 * | `user-quota` / `total-quota`   | `userQuota` / `totalQuota`               | 0 (unlimited)          |
 * | `max-bps`                      | `maxBps`                                 | 0 (unlimited)          |
 * | (none)                         | `maxPermissionsPerAllocation`            | 100                    |
 * | `denied-peer-ip` (repeatable)  | `deniedPeerIps`                          | `[]` (+ built-in list) |
 * | `allowed-peer-ip` (repeatable) | `allowedPeerIps`                         | `[]`                   |
 * | `allow-loopback-peers`         | `allowLoopbackPeers`                     | false                  |
 * | `no-udp` / `no-tcp` / `no-tls` | `noUdp` / `noTcp` / `noTls`              | false                  |
 * | `cert` / `pkey` (file names)   | `tls: { cert, key }` (PEM contents)      | none (no TLS)          |
 * | (none)                         | `unauthorizedResponsesPerSecondPerIp`    | 200                    |
 * | (none)                         | `unauthorizedResponsesBurstPerIp`        | 1000                   |
 * | (none)                         | `bindingRequestsPerSecondPerIp`          | 50                     |
 * | (none)                         | `strictChannelNumbers`                   | false                  |
 * | (none)                         | `nonceSecret`                            | random per process     |
 * | `no-software-attribute`        | `software: ''`                           | `'peerlink'`           |
 * | `log-file`, `verbose`          | `logger`                                 | silent                 |
 *
 * @module
 */

import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { InvalidArgumentError } from '../../errors.js'
import { longTermKey } from '../../stun/integrity.js'
import { normalizeIp } from '../../stun/address.js'

/**
 * A long-term credential user: `{ name, password }`, `{ name, key }` (the key
 * MD5(name:realm:password) as 32 hex digits, optionally `0x`-prefixed, or 16 bytes), or a
 * coturn `user=` value: `'name:password'` or `'name:0xKEYHEX'`.
 */
export type TurnUserSpec = string | { name: string; password: string } | { name: string; key: string | Uint8Array }

/** Certificate and private key for TLS listeners (PEM text or buffers). */
export interface TurnServerTlsOptions {
  /** Certificate chain, PEM. */
  cert: string | Uint8Array
  /** Private key, PEM. */
  key: string | Uint8Array
}

/**
 * The logging interface the server writes to: a subset of pino's `Logger`, so a pino
 * logger (or a child of one) can be passed as is. Credentials are never logged.
 */
export interface TurnServerLogger {
  /** Lifecycle events (allocation created/deleted, listening). */
  info(obj: Record<string, unknown>, msg?: string): void
  /** Refused requests worth an operator's attention (authentication failures). */
  warn(obj: Record<string, unknown>, msg?: string): void
  /** Unexpected failures. */
  error(obj: Record<string, unknown>, msg?: string): void
}

/**
 * Options of `TurnServer.listen`. All durations are in seconds.
 *
 * @example
 * ```ts
 * import { TurnServer, openDataDir } from 'peerlink/server'
 *
 * const { cert, key } = await openDataDir('./turn-data')
 * const turn = await TurnServer.listen({
 *   listeningIps: ['0.0.0.0'],
 *   realm: 'example.com',
 *   users: ['alice:change-me'],                         // long-term credentials, coturn's user= form
 *   staticAuthSecrets: [process.env.TURN_SECRET!],      // and TURN REST API credentials
 *   tls: { cert, key },                                 // turns: on 5349
 *   externalIp: '198.51.100.7/10.0.0.5',                // behind a cloud 1:1 NAT
 * })
 * ```
 */
export interface TurnServerOptions {
  /**
   * IP addresses to listen on (UDP and TCP on `listeningPort`, TLS on the TLS ports).
   * `0.0.0.0` / `::` listen on every address of that family. coturn: `listening-ip`.
   * @default ['0.0.0.0']
   */
  listeningIps?: string[]
  /**
   * UDP and TCP port (0: let the system pick one port number free for both). coturn: `listening-port`.
   * @default 3478
   */
  listeningPort?: number
  /**
   * TLS port, used when `tls` is given and `noTls` is not set (0: let the system pick).
   * coturn: `tls-listening-port`.
   * @default 5349
   */
  tlsListeningPort?: number
  /**
   * More TLS ports, e.g. `[443]` for clients behind firewalls that only let HTTPS out.
   * @default []
   */
  extraTlsListeningPorts?: number[]
  /**
   * Local IP addresses relayed transport addresses are allocated on; an IPv6 address here
   * enables IPv6 relayed addresses (REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY).
   * coturn: `relay-ip`.
   * @default the listening IPs; a wildcard stands for the first non-internal address of
   * its family (IPv4: loopback if there is none)
   */
  relayIps?: string[]
  /**
   * Public address(es) to report in XOR-RELAYED-ADDRESS when the relay IP is a private
   * address behind a 1:1 NAT: `'PUBLIC'` (for every relay IP of that family) or
   * `'PUBLIC/PRIVATE'` (for the relay IP PRIVATE). coturn: `external-ip`.
   * @default undefined (report the relay IP itself)
   */
  externalIp?: string | string[]
  /**
   * Lowest relay port. coturn: `min-port`.
   * @default 49152
   */
  minPort?: number
  /**
   * Highest relay port. When every port of the range is taken, Allocate gets 508.
   * coturn: `max-port`.
   * @default 65535
   */
  maxPort?: number
  /**
   * The realm of long-term credentials (sent in 401 answers). coturn: `realm`.
   * @default 'peerlink'
   */
  realm?: string
  /**
   * Long-term credential users. coturn: `user`.
   * @default []
   */
  users?: TurnUserSpec[]
  /**
   * TURN REST API shared secrets: usernames are `EXPIRY` or `EXPIRY:USER` (EXPIRY in Unix
   * seconds) and the password is base64(HMAC-SHA1(secret, username)). Every secret is
   * accepted, so a new one can be rolled out before the old one is removed. Expired
   * usernames get 401. coturn: `static-auth-secret`.
   * @default []
   */
  staticAuthSecrets?: string[]
  /**
   * Whether REST API credentials are accepted. coturn: `use-auth-secret`.
   * @default true when `staticAuthSecrets` is not empty
   */
  useAuthSecret?: boolean
  /**
   * Separator between the expiry time and the user in REST API usernames.
   * coturn: `rest-api-separator`.
   * @default ':'
   */
  restApiSeparator?: string
  /**
   * Serve TURN without authentication (for closed test networks only). coturn: `no-auth`.
   * @default false
   */
  noAuth?: boolean
  /**
   * Answer STUN Binding only; TURN requests get 400. coturn: `stun-only`.
   * @default false
   */
  stunOnly?: boolean
  /**
   * Lifetime of an allocation when the client asks for less or nothing (RFC 8656 §7.2).
   * @default 600
   */
  defaultAllocateLifetime?: number
  /**
   * Longest allocation lifetime granted. coturn: `max-allocate-lifetime`.
   * @default 3600
   */
  maxAllocateLifetime?: number
  /**
   * Permission lifetime (RFC 8656 §9: 300 s). coturn: `permission-lifetime`.
   * @default 300
   */
  permissionLifetime?: number
  /**
   * Channel binding lifetime (RFC 8656 §11: 600 s). coturn: `channel-lifetime`.
   * @default 600
   */
  channelLifetime?: number
  /**
   * How long a NONCE stays valid; older ones get 438 Stale Nonce. coturn: `stale-nonce`.
   * @default 600
   */
  nonceLifetime?: number
  /**
   * Allocations one username may hold at once (0: unlimited); more get 486.
   * coturn: `user-quota`.
   * @default 0
   */
  userQuota?: number
  /**
   * Allocations the server holds at once (0: unlimited); more get 486.
   * coturn: `total-quota`.
   * @default 0
   */
  totalQuota?: number
  /**
   * Bytes per second one allocation may relay in each direction (0: unlimited); excess
   * packets are dropped. coturn: `max-bps`.
   * @default 0
   */
  maxBps?: number
  /**
   * Peer IP addresses one allocation may hold permissions for; more get 508.
   * @default 100
   */
  maxPermissionsPerAllocation?: number
  /**
   * Peer addresses refused (403), on top of the built-in list (loopback, private,
   * link-local, CGN, multicast, reserved, 6to4, Teredo, …): `'IP'`, `'FROM-TO'` or
   * `'IP/PREFIX'`. coturn: `denied-peer-ip`.
   * @default []
   */
  deniedPeerIps?: string[]
  /**
   * Peer addresses allowed even if denied (allow wins over deny), same forms as
   * `deniedPeerIps`. coturn: `allowed-peer-ip`.
   * @default []
   */
  allowedPeerIps?: string[]
  /**
   * Allow peers on 127.0.0.0/8 and ::1 (tests, local setups). coturn: `allow-loopback-peers`.
   * @default false
   */
  allowLoopbackPeers?: boolean
  /**
   * Do not listen on UDP. coturn: `no-udp`.
   * @default false
   */
  noUdp?: boolean
  /**
   * Do not listen on TCP. coturn: `no-tcp`.
   * @default false
   */
  noTcp?: boolean
  /**
   * Do not listen on TLS even if `tls` is given. coturn: `no-tls`.
   * @default false
   */
  noTls?: boolean
  /**
   * Certificate and key for the TLS listeners; without it there is no TLS.
   * coturn: `cert` / `pkey` (file names there, contents here).
   * @default undefined
   */
  tls?: TurnServerTlsOptions
  /**
   * 401 answers per second sent to one source IP (a token bucket); requests beyond it
   * are dropped unanswered, so password guessing and reflection stay slow.
   * @default 200 (many clients may share one NAT address)
   */
  unauthorizedResponsesPerSecondPerIp?: number
  /**
   * Burst of 401 answers per source IP.
   * @default 1000
   */
  unauthorizedResponsesBurstPerIp?: number
  /**
   * STUN Binding requests over UDP answered per second per source IP (a token bucket;
   * excess is dropped, as a reflector must not amplify floods).
   * @default 50
   */
  bindingRequestsPerSecondPerIp?: number
  /**
   * Accept only RFC 8656 channel numbers 0x4000–0x4FFF in ChannelBind. By default the
   * RFC 5766 range 0x4000–0x7FFF is accepted too, as coturn does: its clients
   * (`turnutils_uclient`, older WebRTC stacks) still pick numbers up to 0x7FFF.
   * @default false
   */
  strictChannelNumbers?: boolean
  /**
   * Secret that keys the stateless NONCEs (HMAC of expiry and client IP). Servers of a
   * fleet behind one name may share it so nonces stay valid across them.
   * @default 32 random bytes per server
   */
  nonceSecret?: Uint8Array
  /**
   * SOFTWARE attribute in responses; empty string for none.
   * @default 'peerlink'
   */
  software?: string
  /**
   * Where to log (pino-compatible).
   * @default silent
   */
  logger?: TurnServerLogger
  /**
   * Cancels a `listen` that is still binding.
   * @default undefined
   */
  signal?: AbortSignal
}

/** One `external-ip` mapping. */
export interface ExternalIpMapping {
  /** The address reported to clients. */
  public: string
  /** The relay IP it stands for; undefined: every relay IP of the same family. */
  private?: string
}

/** {@link TurnServerOptions} checked, defaulted and converted (durations in milliseconds). */
export interface ResolvedTurnServerOptions {
  /** Listening IPs. */
  listeningIps: string[]
  /** UDP/TCP port. */
  listeningPort: number
  /** TLS ports (empty without TLS). */
  tlsPorts: number[]
  /** Relay IPs (concrete addresses). */
  relayIps: string[]
  /** external-ip mappings. */
  externalIps: ExternalIpMapping[]
  /** Relay port range start. */
  minPort: number
  /** Relay port range end. */
  maxPort: number
  /** Realm. */
  realm: string
  /** Long-term keys by username. */
  users: Map<string, Uint8Array>
  /** REST API secrets (empty when REST is off). */
  staticAuthSecrets: string[]
  /** REST username separator. */
  restApiSeparator: string
  /** No authentication. */
  noAuth: boolean
  /** Binding only. */
  stunOnly: boolean
  /** Default allocation lifetime, ms. */
  defaultLifetimeMs: number
  /** Maximum allocation lifetime, ms. */
  maxLifetimeMs: number
  /** Permission lifetime, ms. */
  permissionLifetimeMs: number
  /** Channel lifetime, ms. */
  channelLifetimeMs: number
  /** Nonce lifetime, ms. */
  nonceLifetimeMs: number
  /** Per-user allocation quota (0: none). */
  userQuota: number
  /** Total allocation quota (0: none). */
  totalQuota: number
  /** Bytes per second per allocation and direction (0: none). */
  maxBps: number
  /** Permission cap per allocation. */
  maxPermissionsPerAllocation: number
  /** Extra denied peer ranges. */
  deniedPeerIps: string[]
  /** Allowed peer ranges. */
  allowedPeerIps: string[]
  /** Loopback peers allowed. */
  allowLoopbackPeers: boolean
  /** Listen on UDP. */
  udp: boolean
  /** Listen on TCP. */
  tcp: boolean
  /** TLS material, when TLS listeners are on. */
  tls: TurnServerTlsOptions | undefined
  /** 401 rate per IP. */
  unauthorizedPerSecond: number
  /** 401 burst per IP. */
  unauthorizedBurst: number
  /** Binding rate per IP. */
  bindingPerSecond: number
  /** Highest channel number accepted. */
  maxChannelNumber: number
  /** Nonce HMAC secret (undefined: random). */
  nonceSecret: Uint8Array | undefined
  /** SOFTWARE value. */
  software: string
  /** Logger (never undefined). */
  logger: TurnServerLogger
}

const SILENT: TurnServerLogger = { info() {}, warn() {}, error() {} }

function fail(message: string): never {
  throw new InvalidArgumentError(`TurnServer: ${message}`)
}

function port(value: number | undefined, fallback: number, name: string, min = 0): number {
  const p = value ?? fallback
  if (!Number.isInteger(p) || p < min || p > 65535) fail(`${name} must be an integer from ${min} to 65535, got ${String(p)}`)
  return p
}

function seconds(value: number | undefined, fallback: number, name: string): number {
  const s = value ?? fallback
  if (typeof s !== 'number' || !Number.isFinite(s) || s <= 0) fail(`${name} must be a positive number of seconds, got ${String(s)}`)
  return s * 1000
}

function count(value: number | undefined, fallback: number, name: string): number {
  const n = value ?? fallback
  if (!Number.isInteger(n) || n < 0) fail(`${name} must be a non-negative integer, got ${String(n)}`)
  return n
}

function rate(value: number | undefined, fallback: number, name: string): number {
  const n = value ?? fallback
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) fail(`${name} must be a positive number, got ${String(n)}`)
  return n
}

function ip(text: unknown, name: string): string {
  if (typeof text !== 'string' || isIP(text) === 0) fail(`${name} must be an IP address, got ${JSON.stringify(text)}`)
  return normalizeIp(text) ?? text
}

function strings(value: unknown, name: string): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) fail(`${name} must be an array of strings`)
  return [...(value as string[])]
}

/** The first non-internal address of a family (IPv6: not link-local), if any. */
function interfaceAddress(family: 'IPv4' | 'IPv6'): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family === family && !a.internal && !(family === 'IPv6' && a.address.toLowerCase().startsWith('fe80'))) return a.address
    }
  }
  return undefined
}

function parseKey(key: string | Uint8Array, name: string): Uint8Array {
  if (key instanceof Uint8Array) {
    if (key.length !== 16) fail(`the key of user ${JSON.stringify(name)} must be 16 bytes`)
    return new Uint8Array(key)
  }
  const hex = key.startsWith('0x') || key.startsWith('0X') ? key.slice(2) : key
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) fail(`the key of user ${JSON.stringify(name)} must be 32 hex digits`)
  return new Uint8Array(Buffer.from(hex, 'hex'))
}

function parseUsers(specs: unknown, realm: string): Map<string, Uint8Array> {
  const users = new Map<string, Uint8Array>()
  if (specs === undefined) return users
  if (!Array.isArray(specs)) fail('users must be an array')
  for (const spec of specs as unknown[]) {
    let name: string
    let key: Uint8Array
    if (typeof spec === 'string') {
      // coturn: user=name:password or user=name:0xKEY (names cannot contain ':').
      const colon = spec.indexOf(':')
      if (colon <= 0) fail('a user string must be "name:password" or "name:0xKEY"')
      name = spec.slice(0, colon)
      const secret = spec.slice(colon + 1)
      key = /^0x[0-9a-fA-F]{32}$/i.test(secret) ? parseKey(secret, name) : longTermKey(name, realm, secret)
    } else if (spec !== null && typeof spec === 'object' && typeof (spec as { name?: unknown }).name === 'string') {
      const s = spec as { name: string; password?: unknown; key?: unknown }
      name = s.name
      if (typeof s.password === 'string') key = longTermKey(name, realm, s.password)
      else if (typeof s.key === 'string' || s.key instanceof Uint8Array) key = parseKey(s.key, name)
      else fail(`user ${JSON.stringify(name)} needs a password or a key`)
    } else {
      fail('each user must be "name:password", { name, password } or { name, key }')
    }
    if (name.length === 0) fail('a user name cannot be empty')
    users.set(name, key)
  }
  return users
}

function parseExternalIps(value: unknown): ExternalIpMapping[] {
  if (value === undefined) return []
  const list = typeof value === 'string' ? [value] : strings(value, 'externalIp')
  return list.map((entry) => {
    const [pub, priv, extra] = entry.split('/')
    if (extra !== undefined || pub === undefined) fail(`externalIp must be "PUBLIC" or "PUBLIC/PRIVATE", got ${JSON.stringify(entry)}`)
    const mapping: ExternalIpMapping = { public: ip(pub, 'externalIp') }
    if (priv !== undefined) {
      mapping.private = ip(priv, 'externalIp')
      if (isIP(mapping.private) !== isIP(mapping.public)) fail(`externalIp ${entry} mixes address families`)
    }
    return mapping
  })
}

/**
 * Checks and defaults {@link TurnServerOptions}.
 *
 * @throws InvalidArgumentError on an impossible option (with the option's name).
 */
export function resolveTurnServerOptions(options: TurnServerOptions = {}): ResolvedTurnServerOptions {
  if (options === null || typeof options !== 'object') fail('options must be an object')
  const listeningIps = (options.listeningIps ?? ['0.0.0.0']).map((a) => ip(a, 'listeningIps'))
  if (listeningIps.length === 0) fail('listeningIps cannot be empty')
  const realm = options.realm ?? 'peerlink'
  if (typeof realm !== 'string' || realm.length === 0 || Buffer.byteLength(realm) > 763) fail('realm must be a non-empty string (≤ 763 bytes)')
  const minPort = port(options.minPort, 49152, 'minPort', 1)
  const maxPort = port(options.maxPort, 65535, 'maxPort', 1)
  if (minPort > maxPort) fail(`minPort (${minPort}) is above maxPort (${maxPort})`)

  let relayIps: string[]
  if (options.relayIps !== undefined) {
    relayIps = strings(options.relayIps, 'relayIps').map((a) => ip(a, 'relayIps'))
    if (relayIps.some((a) => a === '0.0.0.0' || a === '::')) fail('relayIps must be concrete addresses, not wildcards')
  } else {
    relayIps = []
    for (const a of listeningIps) {
      const concrete = a === '0.0.0.0' ? (interfaceAddress('IPv4') ?? '127.0.0.1') : a === '::' ? interfaceAddress('IPv6') : a
      if (concrete !== undefined && !relayIps.includes(concrete)) relayIps.push(concrete)
    }
  }
  if (relayIps.length === 0 && options.stunOnly !== true) fail('no relay IP address: set relayIps')

  const secrets = strings(options.staticAuthSecrets, 'staticAuthSecrets')
  if (secrets.some((s) => s.length === 0)) fail('staticAuthSecrets cannot contain an empty secret')
  const useAuthSecret = options.useAuthSecret ?? secrets.length > 0
  if (useAuthSecret && secrets.length === 0) fail('useAuthSecret needs at least one of staticAuthSecrets')
  const separator = options.restApiSeparator ?? ':'
  if (typeof separator !== 'string' || separator.length !== 1) fail('restApiSeparator must be one character')

  const tlsPorts: number[] = []
  const noTls = options.noTls === true
  if (options.tls !== undefined && !noTls) {
    const { cert, key } = options.tls
    const pem = (v: unknown) => typeof v === 'string' || v instanceof Uint8Array
    if (!pem(cert) || !pem(key)) fail('tls.cert and tls.key must be PEM strings or buffers')
    tlsPorts.push(port(options.tlsListeningPort, 5349, 'tlsListeningPort'))
    for (const p of options.extraTlsListeningPorts ?? []) tlsPorts.push(port(p, 0, 'extraTlsListeningPorts'))
  }
  const defaultLifetimeMs = seconds(options.defaultAllocateLifetime, 600, 'defaultAllocateLifetime')
  const maxLifetimeMs = seconds(options.maxAllocateLifetime, 3600, 'maxAllocateLifetime')
  if (maxLifetimeMs < defaultLifetimeMs) fail('maxAllocateLifetime is below defaultAllocateLifetime')
  const software = options.software ?? 'peerlink'
  if (typeof software !== 'string') fail('software must be a string')
  if (options.nonceSecret !== undefined && (!(options.nonceSecret instanceof Uint8Array) || options.nonceSecret.length < 16)) {
    fail('nonceSecret must be at least 16 bytes')
  }
  const logger = options.logger ?? SILENT
  for (const level of ['info', 'warn', 'error'] as const) {
    if (typeof logger[level] !== 'function') fail(`logger.${level} must be a function`)
  }
  return {
    listeningIps,
    listeningPort: port(options.listeningPort, 3478, 'listeningPort'),
    tlsPorts,
    relayIps,
    externalIps: parseExternalIps(options.externalIp),
    minPort,
    maxPort,
    realm,
    users: parseUsers(options.users, realm),
    staticAuthSecrets: useAuthSecret ? secrets : [],
    restApiSeparator: separator,
    noAuth: options.noAuth === true,
    stunOnly: options.stunOnly === true,
    defaultLifetimeMs,
    maxLifetimeMs,
    permissionLifetimeMs: seconds(options.permissionLifetime, 300, 'permissionLifetime'),
    channelLifetimeMs: seconds(options.channelLifetime, 600, 'channelLifetime'),
    nonceLifetimeMs: seconds(options.nonceLifetime, 600, 'nonceLifetime'),
    userQuota: count(options.userQuota, 0, 'userQuota'),
    totalQuota: count(options.totalQuota, 0, 'totalQuota'),
    maxBps: count(options.maxBps, 0, 'maxBps'),
    maxPermissionsPerAllocation: count(options.maxPermissionsPerAllocation, 100, 'maxPermissionsPerAllocation'),
    deniedPeerIps: strings(options.deniedPeerIps, 'deniedPeerIps'),
    allowedPeerIps: strings(options.allowedPeerIps, 'allowedPeerIps'),
    allowLoopbackPeers: options.allowLoopbackPeers === true,
    udp: options.noUdp !== true,
    tcp: options.noTcp !== true,
    tls: tlsPorts.length > 0 ? options.tls : undefined,
    unauthorizedPerSecond: rate(options.unauthorizedResponsesPerSecondPerIp, 200, 'unauthorizedResponsesPerSecondPerIp'),
    unauthorizedBurst: rate(options.unauthorizedResponsesBurstPerIp, 1000, 'unauthorizedResponsesBurstPerIp'),
    bindingPerSecond: rate(options.bindingRequestsPerSecondPerIp, 50, 'bindingRequestsPerSecondPerIp'),
    maxChannelNumber: options.strictChannelNumbers === true ? 0x4fff : 0x7fff,
    nonceSecret: options.nonceSecret,
    software,
    logger,
  }
}
