/**
 * `peerlink-server.toml`: parsing, validation, the commented template written on the
 * first run, and the mapping of its sections onto the servers' options. What the
 * options are is defined once, in `config-options.ts`.
 *
 * Every problem is a `ConfigInvalidError` whose message names the file, the
 * section and the key, and suggests the intended key for a near-miss
 * (`[turn] listen-port: unknown key; did you mean listening-port?`).
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import { BlockList, isIP } from 'node:net'
import { homedir } from 'node:os'
import { dirname, resolve } from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { ConfigInvalidError, InvalidArgumentError, PeerlinkError } from '../errors.js'
import {
  BEACON_OPTIONS,
  type BeaconConfig,
  CONFIG_SECTIONS,
  type ConfigSectionName,
  FUTURE_SECTIONS,
  type LogConfig,
  type MetricsConfig,
  type OptionDescriptor,
  type OptionKind,
  type StunConfig,
  TURN_OPTIONS,
  type TurnConfig,
  TUNNEL_OPTIONS,
  type TunnelConfig,
} from './config-options.js'
import { type BeaconServerOptions, resolveBeaconServerOptions } from './beacon/beacon-server.js'
import { LOG_LEVELS } from './logger.js'
import type { StunServerOptions } from './stun/stun-server.js'
import { addAddressRange } from './turn/peer-address-policy.js'
import { type TurnServerOptions, type TurnServerTlsOptions, resolveTurnServerOptions } from './turn/turn-server-options.js'
import { type TunnelServerOptions, resolveTunnelServerOptions } from './tunnel/tunnel-server-options.js'

export type { BeaconConfig, LogConfig, MetricsConfig, StunConfig, TunnelConfig, TurnConfig } from './config-options.js'

/** A loaded, validated `peerlink-server.toml`. */
export interface ServerConfig {
  /** Absolute path of the file; `undefined` for {@link defaultServerConfig}. */
  readonly file: string | undefined
  /** `[beacon]`, paths made absolute. */
  readonly beacon: BeaconConfig
  /** `[stun]`. */
  readonly stun: StunConfig
  /** `[turn]`, paths made absolute. */
  readonly turn: TurnConfig
  /** `[tunnel]`, paths made absolute. */
  readonly tunnel: TunnelConfig
  /** `[log]`. */
  readonly log: LogConfig
  /** `[metrics]`. */
  readonly metrics: MetricsConfig
  /** The options the file sets explicitly, as `section.key` (e.g. `turn.listening-port`). */
  readonly explicit: ReadonlySet<string>
}

const MAX_CONFIG_BYTES = 1024 * 1024
const SECTION_NAMES = Object.keys(CONFIG_SECTIONS) as ConfigSectionName[]

/**
 * Every option at its default, as if the file were empty.
 *
 * @example
 * ```ts
 * import { defaultServerConfig } from 'peerlink/server'
 *
 * const config = defaultServerConfig()
 * config.turn.listeningPort   // 3478
 * config.beacon.listeningPort // 4264
 * ```
 */
export function defaultServerConfig(): ServerConfig {
  return parseServerConfig('', undefined)
}

/**
 * Reads and validates a config file.
 *
 * @throws `ConfigInvalidError` when it cannot be read or is invalid.
 *
 * @example
 * ```ts
 * import { ConfigInvalidError } from 'peerlink'
 * import { loadServerConfig } from 'peerlink/server'
 *
 * try {
 *   const config = await loadServerConfig('/etc/peerlink/peerlink-server.toml')
 *   console.log(config.turn.realm, [...config.explicit])   // e.g. 'example.com', ['turn.realm']
 * } catch (err) {
 *   if (err instanceof ConfigInvalidError) console.error(err.message)   // names the file, section and key
 * }
 * ```
 */
export async function loadServerConfig(file: string): Promise<ServerConfig> {
  const path = resolve(file)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as { code?: string }).code
    throw new ConfigInvalidError(`Config file ${path}: cannot read it (${code ?? (err as Error).message})`, { cause: err })
  }
  return parseServerConfig(text, path)
}

/**
 * Validates config text.
 *
 * @param file - absolute path of the file, for messages and relative paths (`undefined`: the working directory).
 * @throws `ConfigInvalidError` when the text is invalid; nothing else, whatever the text.
 *
 * @example
 * ```ts
 * import { parseServerConfig } from 'peerlink/server'
 *
 * const config = parseServerConfig('[turn]\nlistening-port = 3479\nrealm = "example.com"\n', undefined)
 * config.turn.listeningPort   // 3479
 * parseServerConfig('[turn]\nlisten-port = 1\n', undefined)   // throws ConfigInvalidError: did you mean listening-port?
 * ```
 */
export function parseServerConfig(text: string, file: string | undefined): ServerConfig {
  const where = file === undefined ? 'Config' : `Config file ${file}`
  const fail = (message: string, cause?: unknown): never => {
    throw new ConfigInvalidError(`${where}: ${message}`, cause === undefined ? undefined : { cause })
  }
  try {
    if (typeof text !== 'string') fail('the config must be text')
    if (text.length > MAX_CONFIG_BYTES) fail('too large')
    let document: Record<string, unknown> = {}
    try {
      document = parseToml(text) as Record<string, unknown>
    } catch (err) {
      fail(`not valid TOML: ${String((err as Error)?.message ?? err).split('\n')[0]}`, err)
    }
    const base = file === undefined ? process.cwd() : dirname(file)
    const explicit = new Set<string>()
    for (const [name, value] of Object.entries(document)) {
      if (SECTION_NAMES.includes(name as ConfigSectionName)) {
        if (!isTable(value)) fail(`"${name}" must be a section: [${name}]`)
        continue
      }
      if (FUTURE_SECTIONS.includes(name)) fail(`[${name}]: the ${name} server is not in this version of peerlink-server yet; remove the section`)
      const home = SECTION_NAMES.find((section) => Object.values(CONFIG_SECTIONS[section].options).some((o: OptionDescriptor) => o.key === name))
      if (home !== undefined) fail(`"${name}" must be inside a section: put it under [${home}]`)
      fail(`unknown section or key "${name}"${suggest(name, [...SECTION_NAMES])} (sections: ${SECTION_NAMES.map((s) => `[${s}]`).join(', ')})`)
    }
    const sections = {} as Record<ConfigSectionName, Record<string, unknown>>
    for (const section of SECTION_NAMES) {
      const table = (document[section] ?? {}) as Record<string, unknown>
      const options = CONFIG_SECTIONS[section].options as Record<string, OptionDescriptor>
      const byKey = new Map(Object.entries(options).map(([prop, descriptor]) => [descriptor.key, { prop, descriptor }]))
      for (const key of Object.keys(table)) {
        if (byKey.has(key)) continue
        const elsewhere = SECTION_NAMES.filter((s) => s !== section && Object.values(CONFIG_SECTIONS[s].options).some((o: OptionDescriptor) => o.key === key))
        const hint = elsewhere.length > 0 ? ` (it is an option of [${elsewhere.join('], [')}])` : suggest(key, [...byKey.keys()])
        fail(`[${section}] ${key}: unknown key${hint}`)
      }
      const values: Record<string, unknown> = {}
      for (const [key, { prop, descriptor }] of byKey) {
        if (!(key in table)) {
          values[prop] = cloneDefault(descriptor.default)
          continue
        }
        explicit.add(`${section}.${key}`)
        try {
          values[prop] = checkValue(descriptor, table[key], base)
        } catch (err) {
          if (err instanceof InvalidArgumentError) fail(`[${section}] ${key} ${err.message}`)
          throw err
        }
      }
      sections[section] = values
    }
    const config: ServerConfig = {
      file,
      beacon: sections.beacon as BeaconConfig,
      stun: sections.stun as StunConfig,
      turn: sections.turn as TurnConfig,
      tunnel: sections.tunnel as TunnelConfig,
      log: sections.log as LogConfig,
      metrics: sections.metrics as MetricsConfig,
      explicit,
    }
    checkBeacon(config.beacon, fail)
    checkTurn(config.turn, fail)
    checkTunnel(config.tunnel, fail)
    return config
  } catch (err) {
    if (err instanceof ConfigInvalidError) throw err
    // Whatever else went wrong (a parser bug, a stack overflow on absurd nesting) is still the file's fault.
    throw new ConfigInvalidError(`${where}: cannot be read as a peerlink-server config (${err instanceof Error ? err.message : String(err)})`, { cause: err })
  }
}

/** Validates one value against its descriptor; throws InvalidArgumentError("must …"). */
function checkValue(descriptor: OptionDescriptor, value: unknown, base: string): unknown {
  const bad = (expected: string): never => {
    throw new InvalidArgumentError(`must be ${expected}, got ${describe(value)}`)
  }
  const list = (check: (item: unknown) => unknown, expected: string): unknown[] => {
    const items = Array.isArray(value) ? value : [value]
    return items.map((item) => {
      try {
        return check(item)
      } catch {
        return bad(expected)
      }
    })
  }
  const str = (item: unknown) => (typeof item === 'string' ? item : bad('a string'))
  const nonEmpty = (item: unknown) => (typeof item === 'string' && item.length > 0 ? item : bad('a non-empty string'))
  const ip = (item: unknown) => (typeof item === 'string' && isIP(item) !== 0 ? item : bad('an IP address'))
  const port = (item: unknown) => {
    const min = descriptor.min ?? 0
    return typeof item === 'number' && Number.isInteger(item) && item >= min && item <= 65535 ? item : bad(`a port number (${min}-65535)`)
  }
  const kind: OptionKind = descriptor.kind
  switch (kind) {
    case 'string':
      return str(value)
    case 'secret':
      return nonEmpty(value)
    case 'string-list':
      return list(str, 'a string or an array of strings')
    case 'secret-list':
      return list(nonEmpty, 'a non-empty string or an array of them')
    case 'ip':
      return ip(value)
    case 'ip-list': {
      const items = list(ip, 'an IP address or an array of IP addresses')
      return items.length > 0 ? items : bad('at least one IP address')
    }
    case 'port':
      return port(value)
    case 'port-list':
      return list(port, 'a port number or an array of port numbers')
    case 'boolean':
      return typeof value === 'boolean' ? value : bad('true or false')
    case 'integer': {
      const min = descriptor.min ?? 0
      const max = descriptor.max ?? Number.MAX_SAFE_INTEGER
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max ? value : bad(`an integer from ${min} to ${max}`)
    }
    case 'positive':
      if (descriptor.max !== undefined) return typeof value === 'number' && value > 0 && value <= descriptor.max ? value : bad(`a positive number up to ${descriptor.max}`)
      return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : bad('a positive number')
    case 'non-negative': {
      const max = descriptor.max ?? Number.MAX_VALUE
      return typeof value === 'number' && value >= 0 && value <= max ? value : bad(descriptor.max === undefined ? 'a number from 0' : `a number from 0 to ${descriptor.max}`)
    }
    case 'path': {
      if (typeof value !== 'string' || value.length === 0 || value.includes('\0')) return bad('a file name')
      return resolve(base, value === '~' ? homedir() : value.startsWith('~/') ? resolve(homedir(), value.slice(2)) : value)
    }
    case 'log-level':
      return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value) ? value : bad(`one of ${LOG_LEVELS.join(', ')}`)
  }
}

/** Cross-checks `[beacon]` with the Beacon server's own validation, naming keys as the file does. */
function checkBeacon(beacon: BeaconConfig, fail: (message: string) => never): void {
  if ((beacon.cert === undefined) !== (beacon.pkey === undefined)) fail('[beacon] cert and pkey: give both, or neither (to use the data directory\'s certificate)')
  if (beacon.redis !== undefined && !/^rediss?:\/\/[^\s]+$/.test(beacon.redis)) fail(`[beacon] redis must be a "redis://…" or "rediss://…" URL, got ${describe(redactUrl(beacon.redis))}`)
  for (const prop of ['heartbeatInterval', 'helloTimeout', 'redisExpiry'] as const) {
    // Node's timers take at most 2^31-1 ms.
    if (beacon[prop] * 1000 > 2 ** 31 - 1) fail(`[beacon] ${BEACON_OPTIONS[prop].key} must be at most ${Math.floor((2 ** 31 - 1) / 1000)} seconds`)
  }
  try {
    resolveBeaconServerOptions(beaconServerOptions(beacon, { cert: '', key: '' }))
  } catch (err) {
    if (!(err instanceof PeerlinkError)) throw err
    // The server's own names (and units) are mapped to the file's.
    const seconds: Record<string, string> = { heartbeatMs: 'heartbeat-interval', helloTimeoutMs: 'hello-timeout', redisTtlMs: 'redis-expiry' }
    const names: Record<string, string> = { host: 'listening-ip', port: 'listening-port', ...seconds }
    for (const [prop, descriptor] of Object.entries(BEACON_OPTIONS)) names[prop] ??= descriptor.key
    const [, prop = '', rest = ''] = /^(\w+) (.*)$/.exec(err.message) ?? []
    const min = /from (\d+)/.exec(rest)?.[1]
    if (prop in seconds && min !== undefined) fail(`[beacon] ${seconds[prop]} must be at least ${Number(min) / 1000} seconds`)
    fail(`[beacon] ${names[prop] ?? prop} ${rest}`)
  }
}

/**
 * `[beacon]` as Beacon server options. `tls` is the certificate and key to serve (read
 * from `cert`/`pkey`, or the data directory's).
 *
 * @example
 * ```ts
 * import { BeaconServer, beaconServerOptions, loadServerConfig, openDataDir } from 'peerlink/server'
 *
 * const config = await loadServerConfig('./data/peerlink-server.toml')
 * const { cert, key } = await openDataDir('./data')
 * const beacon = await BeaconServer.listen(beaconServerOptions(config.beacon, { cert, key }))
 * ```
 */
export function beaconServerOptions(beacon: BeaconConfig, tls: { readonly cert: string; readonly key: string }): BeaconServerOptions {
  const options: BeaconServerOptions = {
    host: [...beacon.listeningIps],
    port: beacon.listeningPort,
    cert: tls.cert,
    key: tls.key,
    stun: beacon.stun,
    maxMessageBytes: beacon.maxMessageBytes,
    maxTopicsPerConnection: beacon.maxTopicsPerConnection,
    messagesPerSecond: beacon.messagesPerSecond,
    messageBurst: beacon.messageBurst,
    maxConnectionsPerIp: beacon.maxConnectionsPerIp,
    maxConnections: beacon.maxConnections,
    maxIntroductions: beacon.maxIntroductions,
    heartbeatMs: Math.round(beacon.heartbeatInterval * 1000),
    helloTimeoutMs: Math.round(beacon.helloTimeout * 1000),
    maxBufferedBytes: beacon.maxBufferedBytes,
    redisPrefix: beacon.redisPrefix,
    redisTtlMs: Math.round(beacon.redisExpiry * 1000),
  }
  if (beacon.redis !== undefined) options.redis = beacon.redis
  if (beacon.instanceId !== undefined) options.instanceId = beacon.instanceId
  return options
}

/** A URL with its password replaced by `***` (for messages). */
function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^/@:]*:)[^/@]*@/i, '$1***@')
}

/** Cross-checks `[turn]` with the TURN server's own validation, naming keys as the file does. */
function checkTurn(turn: TurnConfig, fail: (message: string) => never): void {
  if ((turn.cert === undefined) !== (turn.pkey === undefined)) fail('[turn] cert and pkey: give both, or neither (to use the data directory\'s certificate)')
  for (const key of ['deniedPeerIps', 'allowedPeerIps'] as const) {
    for (const range of turn[key]) {
      try {
        addAddressRange(new BlockList(), range)
      } catch {
        fail(`[turn] ${TURN_OPTIONS[key].key} must be "IP", "FROM-TO" or "IP/PREFIX", got ${describe(range)}`)
      }
    }
  }
  try {
    resolveTurnServerOptions(turnServerOptions(turn, undefined))
  } catch (err) {
    if (!(err instanceof PeerlinkError)) throw err
    let message = err.message.replace(/^TurnServer: /, '')
    for (const [prop, descriptor] of Object.entries(TURN_OPTIONS)) message = message.replace(new RegExp(`\\b${prop}\\b`, 'g'), descriptor.key)
    fail(`[turn] ${message}`)
  }
}

/**
 * `[turn]` as TURN server options. `tls` is the certificate and key to serve TLS with
 * (read from `cert`/`pkey`, or the data directory's); without it there is no TLS.
 *
 * @example
 * ```ts
 * import { TurnServer, loadServerConfig, openDataDir, turnServerOptions } from 'peerlink/server'
 *
 * const config = await loadServerConfig('./data/peerlink-server.toml')
 * const { cert, key } = await openDataDir('./data')
 * const turn = await TurnServer.listen(turnServerOptions(config.turn, { cert, key }))   // undefined instead: no TLS
 * ```
 */
export function turnServerOptions(turn: TurnConfig, tls: TurnServerTlsOptions | undefined): TurnServerOptions {
  const options: TurnServerOptions = {
    listeningIps: [...turn.listeningIps],
    listeningPort: turn.listeningPort,
    tlsListeningPort: turn.tlsListeningPort,
    extraTlsListeningPorts: [...turn.extraTlsListeningPorts],
    minPort: turn.minPort,
    maxPort: turn.maxPort,
    realm: turn.realm,
    users: [...turn.users],
    staticAuthSecrets: [...turn.staticAuthSecrets],
    restApiSeparator: turn.restApiSeparator,
    noAuth: turn.noAuth,
    stunOnly: turn.stunOnly,
    defaultAllocateLifetime: turn.defaultAllocateLifetime,
    maxAllocateLifetime: turn.maxAllocateLifetime,
    permissionLifetime: turn.permissionLifetime,
    channelLifetime: turn.channelLifetime,
    nonceLifetime: turn.nonceLifetime,
    userQuota: turn.userQuota,
    totalQuota: turn.totalQuota,
    maxBps: turn.maxBps,
    maxPermissionsPerAllocation: turn.maxPermissionsPerAllocation,
    deniedPeerIps: [...turn.deniedPeerIps],
    allowedPeerIps: [...turn.allowedPeerIps],
    allowLoopbackPeers: turn.allowLoopbackPeers,
    noUdp: turn.noUdp,
    noTcp: turn.noTcp,
    noTls: turn.noTls,
    unauthorizedResponsesPerSecondPerIp: turn.unauthorizedResponsesPerSecondPerIp,
    unauthorizedResponsesBurstPerIp: turn.unauthorizedResponsesBurstPerIp,
    bindingRequestsPerSecondPerIp: turn.bindingRequestsPerSecondPerIp,
    strictChannelNumbers: turn.strictChannelNumbers,
    software: turn.noSoftwareAttribute ? '' : 'peerlink',
  }
  if (turn.relayIps !== undefined) options.relayIps = [...turn.relayIps]
  if (turn.externalIp !== undefined) options.externalIp = [...turn.externalIp]
  if (turn.useAuthSecret !== undefined) options.useAuthSecret = turn.useAuthSecret
  if (turn.nonceSecret !== undefined) options.nonceSecret = new Uint8Array(Buffer.from(turn.nonceSecret, 'utf8'))
  if (tls !== undefined) options.tls = tls
  return options
}

/** Cross-checks `[tunnel]` with the tunnel server's own validation, naming keys as the file does. */
function checkTunnel(tunnel: TunnelConfig, fail: (message: string) => never): void {
  if ((tunnel.cert === undefined) !== (tunnel.pkey === undefined)) fail('[tunnel] cert and pkey: give both, or neither (to use the data directory\'s certificate)')
  if (tunnel.httpPublicScheme !== 'http' && tunnel.httpPublicScheme !== 'https') fail(`[tunnel] http-public-scheme must be "http" or "https", got ${describe(tunnel.httpPublicScheme)}`)
  try {
    resolveTunnelServerOptions(tunnelServerOptions(tunnel))
  } catch (err) {
    if (!(err instanceof PeerlinkError)) throw err
    let message = err.message
    for (const [prop, descriptor] of Object.entries(TUNNEL_OPTIONS)) message = message.replace(new RegExp(`\\b${prop}\\b`, 'g'), descriptor.key)
    fail(`[tunnel] ${message}`)
  }
}

/**
 * `[tunnel]` as tunnel server options, without TLS (`cert`, `pkey` and `no-tls` decide
 * it: `peerlink-server` reads the files, or uses the data directory's certificate).
 * Each key maps onto the field of the same name; durations stay in seconds.
 */
export function tunnelServerOptions(tunnel: TunnelConfig): TunnelServerOptions {
  const options: TunnelServerOptions = {
    listeningIps: [...tunnel.listeningIps],
    controlPort: tunnel.controlPort,
    httpPort: tunnel.httpPort,
    noHttp: tunnel.noHttp,
    domain: tunnel.domain,
    httpPublicScheme: tunnel.httpPublicScheme as 'http' | 'https',
    allowPorts: tunnel.allowPorts,
    maxPortsPerDevice: tunnel.maxPortsPerDevice,
    tokens: [...tunnel.tokens],
    allowedPeerIds: [...tunnel.allowedPeerIds],
    retention: tunnel.retention,
    connectTimeout: tunnel.connectTimeout,
    heartbeatInterval: tunnel.heartbeatInterval,
    helloTimeout: tunnel.helloTimeout,
    httpHeadersTimeout: tunnel.httpHeadersTimeout,
    maxMessageBytes: tunnel.maxMessageBytes,
    messagesPerSecond: tunnel.messagesPerSecond,
    messageBurst: tunnel.messageBurst,
    maxConnectionsPerIp: tunnel.maxConnectionsPerIp,
    maxDevices: tunnel.maxDevices,
    maxConnectionsPerDevice: tunnel.maxConnectionsPerDevice,
    maxBufferedBytes: tunnel.maxBufferedBytes,
    maxFrameBytes: tunnel.maxFrameBytes,
  }
  if (tunnel.publicHost !== undefined) options.publicHost = tunnel.publicHost
  if (tunnel.publicUrl !== undefined) options.publicUrl = tunnel.publicUrl
  if (tunnel.httpPublicPort !== undefined) options.httpPublicPort = tunnel.httpPublicPort
  if (tunnel.serverId !== undefined) options.serverId = tunnel.serverId
  if (tunnel.redis !== undefined) options.redis = tunnel.redis
  options.redisPrefix = tunnel.redisPrefix
  options.registrationTtl = tunnel.registrationTtl
  return options
}

/**
 * `[stun]` as STUN server options (the second listening IP enables RFC 5780).
 *
 * @example
 * ```ts
 * import { StunServer, defaultServerConfig, stunServerOptions } from 'peerlink/server'
 *
 * const options = stunServerOptions(defaultServerConfig().stun)   // { host: '0.0.0.0', port: 3478, … }
 * const stun = await StunServer.listen(options)
 * ```
 */
export function stunServerOptions(stun: StunConfig): StunServerOptions {
  const [host, alternateHost] = stun.listeningIps
  const options: StunServerOptions = {
    host: host ?? '0.0.0.0',
    port: stun.listeningPort,
    software: stun.noSoftwareAttribute ? '' : 'peerlink',
    requestsPerSecondPerIp: stun.requestsPerSecondPerIp,
    burstPerIp: stun.burstPerIp,
  }
  if (alternateHost !== undefined) options.alternateHost = alternateHost
  if (stun.altListeningPort !== undefined) options.alternatePort = stun.altListeningPort
  return options
}

/** The secret values in a config (passwords, shared secrets), to scrub from logs. */
export function configSecrets(config: ServerConfig): string[] {
  const secrets = [...config.turn.staticAuthSecrets]
  for (const user of config.turn.users) {
    const colon = user.indexOf(':')
    if (colon > 0) secrets.push(user.slice(colon + 1))
  }
  if (config.turn.nonceSecret !== undefined) secrets.push(config.turn.nonceSecret)
  if (config.beacon.redis !== undefined) secrets.push(...urlPasswords(config.beacon.redis))
  secrets.push(...config.tunnel.tokens)
  if (config.tunnel.redis !== undefined) secrets.push(...urlPasswords(config.tunnel.redis))
  return secrets
}

/** The password of a `redis://user:password@host` URL, as written and decoded (either may reach a log). */
function urlPasswords(url: string): string[] {
  try {
    const password = new URL(url).password
    if (password === '') return []
    const decoded = decodeURIComponent(password)
    return decoded === password ? [password] : [password, decoded]
  } catch {
    return []
  }
}

/**
 * The text of the `peerlink-server.toml` written on the first run: every section, and
 * every option commented out at its default (or an example, when it has none), with
 * its help. Parsing it gives {@link defaultServerConfig}.
 *
 * @example
 * ```ts
 * import { writeFile } from 'node:fs/promises'
 * import { serverConfigTemplate } from 'peerlink/server'
 *
 * // Every option, commented out at its default: what the first run of peerlink-server writes.
 * await writeFile('peerlink-server.toml', serverConfigTemplate(), { mode: 0o600, flag: 'wx' })
 * ```
 */
export function serverConfigTemplate(): string {
  const lines = [
    '# peerlink-server configuration',
    '#',
    '# Written on the first run with every option commented out at its default: uncomment',
    '# a line and change it. Command-line options (--loopback, --beacon-port, ...) take',
    '# precedence over this file. Unknown sections and keys are errors, so a typo never',
    '# goes unnoticed. Relative file names are relative to this file.',
    '#',
    '# The TLS certificate is cert.pem / key.pem next to this file; clients pin it with',
    '# the hash in certificate_hash.txt (HOST:PORT#HASH). Back up this directory.',
  ]
  for (const section of SECTION_NAMES) {
    const { title, options } = CONFIG_SECTIONS[section]
    lines.push('', `# ${title}`, `[${section}]`)
    for (const descriptor of Object.values(options) as OptionDescriptor[]) {
      lines.push('')
      // An example says more than an empty default; the help line then states the default.
      const shown = descriptor.example ?? descriptor.default
      const defaultNote =
        descriptor.default === undefined
          ? ` Default: ${descriptor.defaultText ?? 'not set'}.`
          : shown !== descriptor.default
            ? ` Default: ${isEmptyList(descriptor.default) ? 'none' : tomlValue(descriptor.default)}.`
            : ''
      lines.push(...wrap(`${descriptor.help}${defaultNote}`, 86).map((line) => `# ${line}`))
      lines.push(`# ${descriptor.key} = ${shown === undefined ? '""' : tomlValue(shown)}`)
    }
  }
  return `${lines.join('\n')}\n`
}

function isEmptyList(value: unknown): boolean {
  return Array.isArray(value) && value.length === 0
}

function tomlValue(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(', ')}]`
  if (typeof value === 'string') return JSON.stringify(value)
  return String(value)
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/\s+/)) {
    if (line.length > 0 && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line.length > 0 ? `${line} ${word}` : word
    }
  }
  if (line.length > 0) lines.push(line)
  return lines
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
}

function cloneDefault(value: unknown): unknown {
  return Array.isArray(value) ? [...value] : value
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value} (too large)`
  if (value instanceof Date) return 'a date'
  if (isTable(value)) return 'a table'
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

/** `; did you mean X?` for the closest candidate, when it is close enough. */
function suggest(name: string, candidates: readonly string[]): string {
  const normal = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '')
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const distance = normal(candidate) === normal(name) ? 0 : editDistance(name.toLowerCase(), candidate)
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  const limit = Math.max(2, Math.floor(name.length / 3))
  return best !== undefined && bestDistance <= limit ? `; did you mean ${best}?` : ''
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 10) return Infinity
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i])
  for (let j = 0; j <= b.length; j++) d[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let value = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, d[i - 2]![j - 2]! + 1)
      d[i]![j] = value
    }
  }
  return d[a.length]![b.length]!
}
