/**
 * The one table of `peerlink-server.toml` options: name, type, default and help of each.
 * The parser (`config.ts`), the commented file written on the first run and the
 * documentation are all generated from it, so they cannot drift apart.
 *
 * One section per server: `[beacon]`, `[stun]`, `[turn]`, `[tunnel]`, plus `[log]` and
 * `[metrics]` for the process. `[turn]` uses coturn's option names (kebab-case, as in
 * `turnserver.conf`); options coturn does not have are marked "(peerlink)". `[tunnel]`
 * keys are the kebab-case of the tunnel server's option names (`allow-ports` is
 * `allowPorts`), durations in seconds.
 *
 * @module
 */
import type { LogLevel } from './logger.js'

/** The value kinds an option can have, and the TypeScript type each parses to. */
export interface OptionKinds {
  /** Any string. */
  string: string
  /** A non-empty string holding a secret. */
  secret: string
  /** A string, or an array of strings (repeatable coturn options). */
  'string-list': string[]
  /** Secrets, as a string or an array of strings. */
  'secret-list': string[]
  /** A non-negative safe integer. */
  integer: number
  /** A positive number (a duration in seconds, a rate). */
  positive: number
  /** A number ≥ 0 (a duration in seconds that may be zero). */
  'non-negative': number
  /** A port number 0–65535 (0: let the system pick). */
  port: number
  /** Port numbers, as one number or an array. */
  'port-list': number[]
  /** true or false. */
  boolean: boolean
  /** An IPv4 or IPv6 address. */
  ip: string
  /** IP addresses, as a string or an array of strings. */
  'ip-list': string[]
  /** A file name (relative names are relative to the config file). */
  path: string
  /** A pino log level. */
  'log-level': LogLevel
}

/** Name of a value kind. */
export type OptionKind = keyof OptionKinds

/** One option of the config file. */
export interface OptionDescriptor<K extends OptionKind = OptionKind, D extends OptionKinds[K] | undefined = OptionKinds[K] | undefined> {
  /** Its name in the TOML file (kebab-case). */
  readonly key: string
  /** Its value kind. */
  readonly kind: K
  /** The value when the file does not set it; `undefined` when unset means "not used" or is computed (see `defaultText`). */
  readonly default: D
  /** Help text (one or more sentences; wrapped in the template). */
  readonly help: string
  /** How the default is described when it is computed (e.g. "the listening IPs"). */
  readonly defaultText?: string
  /** A value shown, commented out, in the template when there is no default. */
  readonly example?: OptionKinds[K]
  /** Lowest allowed value (numbers). */
  readonly min?: number
  /** Highest allowed value (numbers). */
  readonly max?: number
  /** Holds a secret: redacted from logs, never printed. */
  readonly secret?: boolean
}

function option<K extends OptionKind, D extends OptionKinds[K] | undefined>(
  key: string,
  kind: K,
  defaultValue: D,
  help: string,
  extra: Omit<OptionDescriptor<K, D>, 'key' | 'kind' | 'default' | 'help'> = {},
): OptionDescriptor<K, D> {
  return { key, kind, default: defaultValue, help, ...extra }
}

/**
 * `[beacon]`: the Beacon rendezvous server (WebSocket over TLS, STUN Binding on UDP at the
 * same port). Durations are in seconds here (milliseconds in `BeaconServerOptions`).
 *
 * @example
 * ```ts
 * import { BEACON_OPTIONS } from 'peerlink/server'
 *
 * BEACON_OPTIONS.listeningPort.key       // 'listening-port' (its name in [beacon])
 * BEACON_OPTIONS.listeningPort.default   // 4264
 * ```
 */
export const BEACON_OPTIONS = {
  listeningIps: option('listening-ip', 'ip-list', ['0.0.0.0', '::'], 'Addresses to listen on, TCP (WebSocket over TLS) and UDP (STUN). "0.0.0.0" is every IPv4 address, "::" every IPv6 address; "::" is skipped, with a log line, on a machine without IPv6.'),
  listeningPort: option('listening-port', 'port', 4264, 'TCP port of the WebSocket-over-TLS server, and UDP port of its STUN Binding responder.'),
  stun: option('stun', 'boolean', true, 'Answer STUN Binding requests on UDP at listening-port, so the Beacon is also its peers\' STUN server.'),
  cert: option('cert', 'path', undefined, 'TLS certificate chain (PEM). Clients then validate it against CAs (HOST:PORT without a pin); several Beacons may share one certificate.', { defaultText: "the data directory's cert.pem, pinned by clients with HOST:PORT#HASH", example: '/etc/letsencrypt/live/beacon.example.com/fullchain.pem' }),
  pkey: option('pkey', 'path', undefined, 'Its private key (PEM); refused when group or others can read it.', { defaultText: "the data directory's key.pem", example: '/etc/letsencrypt/live/beacon.example.com/privkey.pem' }),
  maxMessageBytes: option('max-message-bytes', 'integer', 16384, 'Largest message accepted, in bytes; larger ones get a too-large error.', { min: 1024, max: 16384 }),
  maxTopicsPerConnection: option('max-identifiers-per-connection', 'integer', 16, 'Rendezvous identifiers one connection may announce at once.', { max: 1024 }),
  messagesPerSecond: option('messages-per-second', 'integer', 50, 'Messages per second one connection may send (sustained); excess gets a rate-limited error.', { min: 1 }),
  messageBurst: option('message-burst', 'integer', 100, 'Largest burst of messages from one connection.', { min: 1 }),
  maxConnectionsPerIp: option('max-connections-per-ip', 'integer', 64, 'Open connections from one IP address.', { min: 1 }),
  maxConnections: option('max-connections', 'integer', 100_000, 'Open connections in all.', { min: 1 }),
  maxIntroductions: option('max-introductions', 'integer', 16, 'Peers an announcement is introduced to (the newest announcers of the identifier).', { max: 1024 }),
  heartbeatInterval: option('heartbeat-interval', 'positive', 15, 'Seconds between heartbeats (WebSocket pings); a connection silent for two heartbeats is dropped.'),
  helloTimeout: option('hello-timeout', 'positive', 10, 'Seconds a new connection has to prove its key.'),
  maxBufferedBytes: option('max-buffered-bytes', 'integer', 1_048_576, 'Unsent bytes after which a connection that does not read is dropped.', { min: 65_536 }),
  redis: option('redis', 'string', undefined, 'Fleet: "redis://…" or "rediss://…" shared by several Beacons, which then share registrations and forward signalling through it, so peers on different Beacons meet. A password in the URL is kept out of the logs.', { defaultText: 'none (registrations in memory, one process)', example: 'redis://127.0.0.1:6379' }),
  redisPrefix: option('redis-prefix', 'string', 'peerlink:beacon:', 'Prefix of the Redis keys and channels: one fleet per prefix.'),
  redisExpiry: option('redis-expiry', 'positive', 10, 'Seconds after which the registrations of an instance that stopped (died) vanish from the fleet.'),
  instanceId: option('instance-id', 'string', undefined, "This instance's id in the fleet (1 to 64 characters of A-Z a-z 0-9 _ . -).", { defaultText: 'random per process', example: 'beacon-1' }),
}

/**
 * `[stun]`: the STUN server of `peerlink-server stun` (RFC 8489 Binding, RFC 5780 with two addresses).
 *
 * @example
 * ```ts
 * import { STUN_OPTIONS } from 'peerlink/server'
 *
 * for (const option of Object.values(STUN_OPTIONS)) console.log(`[stun] ${option.key} (${option.kind}): ${option.help}`)
 * ```
 */
export const STUN_OPTIONS = {
  listeningIps: option('listening-ip', 'ip-list', ['0.0.0.0'], 'Addresses to listen on (UDP). Give a second IP address of this machine to enable RFC 5780 NAT behaviour discovery (as coturn does with two listening IPs); "0.0.0.0" is every IPv4 address.'),
  listeningPort: option('listening-port', 'port', 3478, 'UDP port.'),
  altListeningPort: option('alt-listening-port', 'port', undefined, 'The second port for RFC 5780 (only used with two listening IPs).', { defaultText: 'listening-port + 1', example: 3479 }),
  requestsPerSecondPerIp: option('requests-per-second-per-ip', 'positive', 50, '(peerlink) Requests answered per second from one source IP; excess is dropped, as a reflector must not amplify floods.'),
  burstPerIp: option('burst-per-ip', 'positive', 100, '(peerlink) Burst size of the per-IP limit.'),
  noSoftwareAttribute: option('no-software-attribute', 'boolean', false, 'Do not send the SOFTWARE attribute.'),
}

/**
 * `[turn]`: the TURN server (RFC 8656), with coturn's option names.
 *
 * @example
 * ```ts
 * import { TURN_OPTIONS } from 'peerlink/server'
 *
 * TURN_OPTIONS.staticAuthSecrets.key      // 'static-auth-secret', as in coturn's turnserver.conf
 * TURN_OPTIONS.staticAuthSecrets.secret   // true: never logged
 * ```
 */
export const TURN_OPTIONS = {
  listeningIps: option('listening-ip', 'ip-list', ['0.0.0.0'], 'Addresses to listen on (UDP, TCP and TLS). "0.0.0.0" is every IPv4 address, "::" every IPv6 address.'),
  listeningPort: option('listening-port', 'port', 3478, 'UDP and TCP port (TURN and STUN Binding).'),
  tlsListeningPort: option('tls-listening-port', 'port', 5349, 'TLS port (turns:).'),
  extraTlsListeningPorts: option('extra-tls-listening-port', 'port-list', [], '(peerlink) More TLS ports, e.g. [443] for clients behind firewalls that only let HTTPS out.'),
  relayIps: option('relay-ip', 'ip-list', undefined, 'Local addresses relayed addresses are allocated on; an IPv6 address enables IPv6 relaying.', { defaultText: 'the listening IPs (for a wildcard: the first non-internal address)', example: ['203.0.113.5'] }),
  externalIp: option('external-ip', 'string-list', undefined, 'Public address reported to clients when the relay IP is private behind a 1:1 NAT (cloud VMs): "PUBLIC" or "PUBLIC/PRIVATE" (one per relay IP).', { example: ['198.51.100.7/10.0.0.5'] }),
  minPort: option('min-port', 'port', 49152, 'Lowest relay port.', { min: 1 }),
  maxPort: option('max-port', 'port', 65535, 'Highest relay port.', { min: 1 }),
  realm: option('realm', 'string', 'peerlink', 'Realm of long-term credentials.'),
  users: option('user', 'string-list', [], 'Long-term credential users, "name:password" or "name:0xKEY" (KEY = MD5(name:realm:password) in hex).', { secret: true, example: ['alice:change-me'] }),
  useAuthSecret: option('use-auth-secret', 'boolean', undefined, 'Accept TURN REST API credentials (username "EXPIRY[:USER]", password base64(HMAC-SHA1(secret, username))).', { defaultText: 'true when static-auth-secret is set', example: true }),
  staticAuthSecrets: option('static-auth-secret', 'secret-list', [], 'REST API shared secrets. Give several to rotate: every one is accepted, so add the new one, update the clients, then remove the old one.', { secret: true, example: ['a-long-random-shared-secret'] }),
  restApiSeparator: option('rest-api-separator', 'string', ':', 'Separator between expiry and user in REST API usernames.'),
  noAuth: option('no-auth', 'boolean', false, 'Serve TURN WITHOUT authentication: an open relay. Only for closed test networks.'),
  stunOnly: option('stun-only', 'boolean', false, 'Answer STUN Binding only; TURN requests get 400.'),
  defaultAllocateLifetime: option('default-allocate-lifetime', 'positive', 600, '(peerlink) Allocation lifetime in seconds when the client asks for less or nothing.'),
  maxAllocateLifetime: option('max-allocate-lifetime', 'positive', 3600, 'Longest allocation lifetime granted, seconds.'),
  permissionLifetime: option('permission-lifetime', 'positive', 300, 'Permission lifetime, seconds (RFC 8656: 300).'),
  channelLifetime: option('channel-lifetime', 'positive', 600, 'Channel binding lifetime, seconds (RFC 8656: 600).'),
  nonceLifetime: option('stale-nonce', 'positive', 600, 'Seconds a NONCE stays valid; older ones get 438 Stale Nonce.'),
  nonceSecret: option('nonce-secret', 'secret', undefined, '(peerlink) Secret keying the NONCEs; servers of a fleet behind one name share it so nonces stay valid across them.', { secret: true, defaultText: 'random per process', example: 'at-least-16-characters-shared-by-the-fleet' }),
  userQuota: option('user-quota', 'integer', 0, 'Allocations one username may hold at once (0: unlimited).'),
  totalQuota: option('total-quota', 'integer', 0, 'Allocations the server holds at once (0: unlimited).'),
  maxBps: option('max-bps', 'integer', 0, 'Bytes per second one allocation may relay in each direction (0: unlimited).'),
  maxPermissionsPerAllocation: option('max-permissions-per-allocation', 'integer', 100, '(peerlink) Peer IP addresses one allocation may hold permissions for.'),
  deniedPeerIps: option('denied-peer-ip', 'string-list', [], 'Peer addresses refused, on top of the built-in list (loopback, private, link-local, multicast, reserved…): "IP", "FROM-TO" or "IP/PREFIX".', { example: ['203.0.113.0/24'] }),
  allowedPeerIps: option('allowed-peer-ip', 'string-list', [], 'Peer addresses allowed even if denied (allow wins), same forms as denied-peer-ip.', { example: ['10.1.2.0/24'] }),
  allowLoopbackPeers: option('allow-loopback-peers', 'boolean', false, 'Allow relaying to 127.0.0.0/8 and ::1 (tests, local setups; --loopback sets it).'),
  noUdp: option('no-udp', 'boolean', false, 'Do not listen on UDP.'),
  noTcp: option('no-tcp', 'boolean', false, 'Do not listen on TCP.'),
  noTls: option('no-tls', 'boolean', false, 'Do not listen on TLS.'),
  cert: option('cert', 'path', undefined, 'TLS certificate chain (PEM) for the TLS ports.', { defaultText: "the data directory's cert.pem", example: '/etc/letsencrypt/live/turn.example.com/fullchain.pem' }),
  pkey: option('pkey', 'path', undefined, 'Its private key (PEM); refused when group or others can read it.', { defaultText: "the data directory's key.pem", example: '/etc/letsencrypt/live/turn.example.com/privkey.pem' }),
  unauthorizedResponsesPerSecondPerIp: option('unauthorized-responses-per-second-per-ip', 'positive', 200, '(peerlink) 401 answers per second to one source IP; beyond it requests are dropped, so password guessing stays slow.'),
  unauthorizedResponsesBurstPerIp: option('unauthorized-responses-burst-per-ip', 'positive', 1000, '(peerlink) Burst of 401 answers per source IP.'),
  bindingRequestsPerSecondPerIp: option('binding-requests-per-second-per-ip', 'positive', 50, '(peerlink) STUN Binding requests over UDP answered per second per source IP.'),
  strictChannelNumbers: option('strict-channel-numbers', 'boolean', false, '(peerlink) Accept only RFC 8656 channel numbers 0x4000-0x4FFF (by default 0x4000-0x7FFF, as coturn).'),
  noSoftwareAttribute: option('no-software-attribute', 'boolean', false, 'Do not send the SOFTWARE attribute.'),
}

/**
 * `[tunnel]`: the WebSocket reverse-tunnel server (`peerlink-server tunnel`). Each key is
 * the kebab-case of a `TunnelServerOptions` field (`listening-ip` is `listeningIps`, as
 * in the other sections); durations are in seconds, as there.
 *
 * @example
 * ```ts
 * import { TUNNEL_OPTIONS } from 'peerlink/server'
 *
 * TUNNEL_OPTIONS.allowPorts.key       // 'allow-ports'
 * TUNNEL_OPTIONS.allowPorts.default   // '20000-29999'
 * ```
 */
export const TUNNEL_OPTIONS = {
  listeningIps: option('listening-ip', 'ip-list', ['0.0.0.0'], 'Addresses to listen on: the control port, the HTTP port and the public TCP ports. "0.0.0.0" is every IPv4 address, "::" every IPv6 address.'),
  controlPort: option('control-port', 'port', 8443, 'TCP port of the control WebSockets devices keep open (wss://, or ws:// with no-tls).'),
  httpPort: option('http-port', 'port', 8080, 'TCP port of the HTTP reverse proxy that routes NAME.<domain> (the Host header) to device NAME\'s HTTP service.'),
  noHttp: option('no-http', 'boolean', false, 'Do not serve HTTP by name (only the public TCP ports).'),
  allowPorts: option('allow-ports', 'string', '20000-29999', 'Public TCP ports given to devices, one per exposed port: "20000-20999,21000" (rathole\'s and frp\'s form). Open them in the firewall.'),
  maxPortsPerDevice: option('max-ports-per-device', 'integer', 10, 'Ports one device may expose.', { min: 1, max: 64 }),
  domain: option('domain', 'string', 'localhost', 'Devices get names under this domain: a request for NAME.<domain> goes to device NAME. Point a wildcard DNS record (*.<domain>) at this server.'),
  publicHost: option('public-host', 'string', undefined, 'Host name (or IP address) devices are told their public TCP ports are at.', { defaultText: 'the domain (127.0.0.1 with --loopback)', example: 'tunnel.example.com' }),
  publicUrl: option('public-url', 'string', undefined, 'This server\'s tunnel URL as devices write it, for redirects from the other servers of a fleet.', { defaultText: 'ws(s)://<public-host>:<control-port>/', example: 'wss://tunnel-1.example.com:8443' }),
  httpPublicPort: option('http-public-port', 'port', undefined, 'The port in the HTTP URLs given to devices (e.g. 80 or 443 behind a proxy).', { min: 1, defaultText: 'http-port', example: 80 }),
  httpPublicScheme: option('http-public-scheme', 'string', 'http', 'The scheme of the HTTP URLs given to devices and of X-Forwarded-Proto: "http", or "https" behind a TLS-terminating proxy.'),
  tokens: option('tokens', 'secret-list', [], 'Device tokens accepted (8 to 512 characters; give each device its own; compared in constant time). Without tokens and allowed-peer-ids, a token is generated into tunnel_token.txt in the data directory.', { secret: true, example: ['a-long-random-device-token'] }),
  allowedPeerIds: option('allowed-peer-ids', 'string-list', [], 'PeerIds (12D3KooW…) that may log in with a signature of their identity alone, without a token; "*" allows any identity (names then go to whoever asks first).', { example: ['12D3KooWEiS4UHPkyhrEkX2UxPQ2BxVF8urXAVhX6QXv8ApagX4D'] }),
  retention: option('retention', 'non-negative', 300, 'Seconds a disconnected device keeps its name and ports; a device that comes back within it gets them again.', { max: 7 * 24 * 3600 }),
  connectTimeout: option('connect-timeout', 'positive', 10, 'Seconds an incoming connection waits for the device to take it before it is closed (HTTP: 504).', { max: 600 }),
  heartbeatInterval: option('heartbeat-interval', 'positive', 10, 'Seconds between heartbeats (WebSocket pings) on control sockets; a device silent for two heartbeats is dropped.', { max: 3600 }),
  helloTimeout: option('hello-timeout', 'positive', 10, 'Seconds a new control socket has to log in.', { max: 600 }),
  httpHeadersTimeout: option('http-headers-timeout', 'positive', 10, 'Seconds an HTTP client has to send its request headers (slow-loris defence).', { max: 600 }),
  maxMessageBytes: option('max-message-bytes', 'integer', 16384, 'Largest control message accepted, in bytes.', { min: 1024, max: 16384 }),
  messagesPerSecond: option('messages-per-second', 'integer', 50, 'Control messages per second one socket may send (sustained).', { min: 1 }),
  messageBurst: option('message-burst', 'integer', 100, 'Largest burst of control messages from one socket.', { min: 1 }),
  maxConnectionsPerIp: option('max-connections-per-ip', 'integer', 64, 'Control sockets open at once from one IP address.', { min: 1 }),
  maxDevices: option('max-devices', 'integer', 10_000, 'Devices online at once; a fleet redirects devices to servers below it.', { min: 1 }),
  maxConnectionsPerDevice: option('max-connections-per-device', 'integer', 1_000, 'Tunnelled connections (waiting and open) one device may have at once.', { min: 1 }),
  maxBufferedBytes: option('max-buffered-bytes', 'integer', 1_048_576, 'Unsent bytes after which a control socket that does not read is dropped.', { min: 65_536 }),
  maxFrameBytes: option('max-frame-bytes', 'integer', 1_048_576, 'Largest WebSocket frame accepted on a transfer socket, in bytes.', { min: 65_536 }),
  redis: option('redis', 'string', undefined, 'Fleet: "redis://…" or "rediss://…" shared by several tunnel servers, which then share names, ports and device counts, and redirect devices (HTTP 302) to the least loaded one. A password in the URL is kept out of the logs.', { defaultText: 'none (names and ports in memory, one server)', example: 'redis://127.0.0.1:6379' }),
  redisPrefix: option('redis-prefix', 'string', 'peerlink:tunnel:', 'Prefix of the Redis keys: servers sharing Redis and a prefix form one fleet.'),
  registrationTtl: option('registration-ttl', 'positive', 15, "Seconds this server's registration in the fleet lasts unless refreshed; after a crash, its devices' names and ports are freed after this time.", { max: 3600 }),
  serverId: option('server-id', 'string', undefined, "This server's id in a fleet (1 to 64 characters of A-Z a-z 0-9 _ . -).", { defaultText: 'random per process', example: 'tunnel-1' }),
  cert: option('cert', 'path', undefined, 'TLS certificate chain (PEM) of the control port. Devices then validate it against CAs (a URL without a pin).', { defaultText: "the data directory's cert.pem, pinned by devices with wss://HOST:PORT#HASH", example: '/etc/letsencrypt/live/tunnel.example.com/fullchain.pem' }),
  pkey: option('pkey', 'path', undefined, 'Its private key (PEM); refused when group or others can read it.', { defaultText: "the data directory's key.pem", example: '/etc/letsencrypt/live/tunnel.example.com/privkey.pem' }),
  noTls: option('no-tls', 'boolean', false, 'Serve plain ws:// on the control port (behind a TLS-terminating proxy, or on a closed network).'),
}

/**
 * `[log]`: the log file and console.
 *
 * @example
 * ```ts
 * import { LOG_OPTIONS } from 'peerlink/server'
 *
 * LOG_OPTIONS.level.default          // 'info'
 * LOG_OPTIONS.maxFiles.max           // 100
 * ```
 */
export const LOG_OPTIONS = {
  level: option('level', 'log-level', 'info', 'Minimum level logged: fatal, error, warn, info, debug, trace or silent.'),
  maxFileBytes: option('max-file-bytes', 'integer', 10 * 1024 * 1024, 'Size at which logs/peerlink-server.log is rotated (to .1, .2, …).', { min: 1024 }),
  maxFiles: option('max-files', 'integer', 5, 'Rotated log files kept.', { max: 100 }),
}

/**
 * `[metrics]`: the Prometheus endpoint.
 *
 * @example
 * ```ts
 * import { METRICS_OPTIONS } from 'peerlink/server'
 *
 * METRICS_OPTIONS.host.default   // '127.0.0.1': metrics stay on loopback unless configured
 * METRICS_OPTIONS.port.default   // 9641
 * ```
 */
export const METRICS_OPTIONS = {
  enabled: option('enabled', 'boolean', false, 'Serve Prometheus metrics at http://HOST:PORT/metrics.'),
  host: option('host', 'ip', '127.0.0.1', 'Address of the metrics endpoint. Loopback only by default: metrics reveal load and usage, so exposing them (e.g. "0.0.0.0") should be a deliberate choice.'),
  port: option('port', 'port', 9641, 'TCP port of the metrics endpoint (coturn uses 9641 too).'),
  defaultMetrics: option('default-metrics', 'boolean', true, 'Include the process metrics (CPU, memory, event loop lag).'),
}

/**
 * Every section the config file may have, in file order, with a one-line description.
 *
 * @example
 * ```ts
 * import { CONFIG_SECTIONS } from 'peerlink/server'
 *
 * // Print a table of every option of peerlink-server.toml.
 * for (const [section, { title, options }] of Object.entries(CONFIG_SECTIONS)) {
 *   console.log(`[${section}] ${title}`)
 *   for (const option of Object.values(options)) console.log(`  ${option.key} = ${JSON.stringify(option.default)}`)
 * }
 * ```
 */
export const CONFIG_SECTIONS = {
  beacon: { title: 'Beacon rendezvous server (peerlink-server beacon): WebSocket over TLS, STUN on the same UDP port.', options: BEACON_OPTIONS },
  stun: { title: 'STUN server (peerlink-server stun): RFC 8489 Binding, RFC 5780 with two listening IPs.', options: STUN_OPTIONS },
  turn: { title: "TURN server (peerlink-server turn), coturn's option names.", options: TURN_OPTIONS },
  tunnel: { title: 'WebSocket reverse-tunnel server (peerlink-server tunnel): control WebSockets, HTTP by name, public TCP ports.', options: TUNNEL_OPTIONS },
  log: { title: 'Logs: the console, and logs/peerlink-server.log in the data directory.', options: LOG_OPTIONS },
  metrics: { title: 'Prometheus metrics.', options: METRICS_OPTIONS },
} as const

/** Names of the config file's sections. */
export type ConfigSectionName = keyof typeof CONFIG_SECTIONS

/**
 * Sections recognised but refused: their servers are not in this version yet (none now).
 *
 * @example
 * ```ts
 * import { FUTURE_SECTIONS, parseServerConfig } from 'peerlink/server'
 *
 * // A section listed here is refused with a ConfigInvalidError that says so (none in this version).
 * console.log(FUTURE_SECTIONS)   // []
 * parseServerConfig('[turn]\nlistening-port = 3478\n', undefined)
 * ```
 */
export const FUTURE_SECTIONS: readonly string[] = []

/** The parsed values of one section's options table. */
export type SectionValues<T> = {
  readonly [P in keyof T]: T[P] extends OptionDescriptor<infer K, infer D> ? OptionKinds[K] | (undefined extends D ? undefined : never) : never
}

/** `[beacon]`, parsed (paths absolute). */
export type BeaconConfig = SectionValues<typeof BEACON_OPTIONS>
/** `[stun]`, parsed. */
export type StunConfig = SectionValues<typeof STUN_OPTIONS>
/** `[turn]`, parsed (paths absolute). */
export type TurnConfig = SectionValues<typeof TURN_OPTIONS>
/** `[tunnel]`, parsed (paths absolute). */
export type TunnelConfig = SectionValues<typeof TUNNEL_OPTIONS>
/** `[log]`, parsed. */
export type LogConfig = SectionValues<typeof LOG_OPTIONS>
/** `[metrics]`, parsed. */
export type MetricsConfig = SectionValues<typeof METRICS_OPTIONS>
