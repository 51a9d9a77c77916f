/**
 * Parsing of the server spec strings users write on the command line and in config
 * files (ARCHITECTURE.md §5):
 *
 * | server | form | default port |
 * |---|---|---|
 * | Beacon | `HOST[:PORT][#CERT_HASH]` | 4264 |
 * | STUN | `stun:HOST[:PORT]` (RFC 7064) | 3478 |
 * | TURN | `turn:HOST[:PORT][?transport=udp\|tcp]`, `turns:HOST[:PORT]` (RFC 7065) | 3478 / 5349 |
 * | tunnel | `ws://HOST[:PORT][/PATH]`, `wss://HOST[:PORT][/PATH][#CERT_HASH]` | 80 / 443 |
 *
 * HOST is a DNS name, an IPv4 address or an IPv6 address in brackets (`[2001:db8::1]`).
 * CERT_HASH pins the server's TLS certificate: base64url (no padding, 43 characters)
 * of the SHA-256 of its DER encoding, the content of the server's `certificate_hash.txt`;
 * without it, the certificate is validated against the system's CAs.
 *
 * Anything malformed throws {@link InvalidServerSpecError}, whose message names the bad
 * part and shows the expected form. Leading and trailing white space is ignored.
 *
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net'
import { InvalidServerSpecError } from './errors.js'

/**
 * Default Beacon port (TCP WSS and UDP STUN).
 *
 * @example
 * ```ts
 * import { DEFAULT_BEACON_PORT, parseBeaconSpec } from 'peerlink'
 *
 * parseBeaconSpec('beacon.example.com').port === DEFAULT_BEACON_PORT   // true: 4264
 * ```
 */
export const DEFAULT_BEACON_PORT = 4264
/**
 * Default STUN / TURN port over UDP and TCP (RFC 8489 §9, RFC 7065 §3).
 *
 * @example
 * ```ts
 * import { DEFAULT_STUN_PORT, parseStunSpec } from 'peerlink'
 *
 * parseStunSpec('stun:stun.example.com').port === DEFAULT_STUN_PORT   // true: 3478
 * ```
 */
export const DEFAULT_STUN_PORT = 3478
/**
 * Default TURN port over TLS (RFC 7065 §3).
 *
 * @example
 * ```ts
 * import { DEFAULT_TURNS_PORT, parseTurnSpec } from 'peerlink'
 *
 * parseTurnSpec('turns:turn.example.com').port === DEFAULT_TURNS_PORT   // true: 5349
 * ```
 */
export const DEFAULT_TURNS_PORT = 5349

/** How the host of a server spec is written. */
export type HostType = 'dns' | 'ipv4' | 'ipv6'

/** The transport a TURN client uses to reach the server: `turns:` means TLS over TCP. */
export type TurnTransport = 'udp' | 'tcp' | 'tls'

/** Host and port of a server, common to every spec. */
export interface ServerAddress {
  /** DNS name (lower case), IPv4 address, or IPv6 address without brackets. */
  readonly host: string
  /** How {@link ServerAddress.host} is written. */
  readonly hostType: HostType
  /** Port number, 1–65535 (the default of the scheme when the spec has none). */
  readonly port: number
}

/** A Beacon rendezvous server, `HOST[:PORT][#CERT_HASH]`. */
export interface BeaconServerSpec extends ServerAddress {
  /** Discriminant. */
  readonly kind: 'beacon'
  /** base64url SHA-256 of the server's DER certificate; `undefined` means normal CA validation. */
  readonly certHash: string | undefined
}

/** A STUN server, `stun:HOST[:PORT]` (RFC 7064). */
export interface StunServerSpec extends ServerAddress {
  /** Discriminant. */
  readonly kind: 'stun'
}

/** A TURN server, `turn:HOST[:PORT][?transport=udp|tcp]` or `turns:HOST[:PORT]` (RFC 7065). */
export interface TurnServerSpec extends ServerAddress {
  /** Discriminant. */
  readonly kind: 'turn'
  /** True for `turns:` (TLS). */
  readonly secure: boolean
  /** Transport to the server: `udp` (default of `turn:`), `tcp`, or `tls` (`turns:`). */
  readonly transport: TurnTransport
}

/** A WebSocket tunnel server, `ws://HOST[:PORT][/PATH]` or `wss://HOST[:PORT][/PATH][#CERT_HASH]`. */
export interface TunnelServerSpec extends ServerAddress {
  /** Discriminant. */
  readonly kind: 'tunnel'
  /** True for `wss://`. */
  readonly secure: boolean
  /** The request path, `/` when the spec has none. */
  readonly path: string
  /** base64url SHA-256 of the server's DER certificate (`wss://` only); `undefined` means CA validation. */
  readonly certHash: string | undefined
  /** The WebSocket URL to open (explicit port, no fragment). */
  readonly url: string
}

/** Any parsed server spec. */
export type ServerSpec = BeaconServerSpec | StunServerSpec | TurnServerSpec | TunnelServerSpec

/** The kinds of server spec, as in {@link ServerSpec}'s `kind`. */
export type ServerKind = ServerSpec['kind']

const EXAMPLES: Record<ServerKind, string> = {
  beacon: 'beacon.example.com:4264#weOsoMPwj976xqxRvLElsbb-gijWWn0netOtgPflZnk (the hash is optional)',
  stun: 'stun:stun.example.com:3478',
  turn: 'turn:turn.example.com:3478?transport=udp, turn:turn.example.com:3478?transport=tcp or turns:turn.example.com:5349',
  tunnel: 'wss://tunnel.example.com:8443 (optionally #CERT_HASH)',
}
const NAMES: Record<ServerKind, string> = { beacon: 'Beacon', stun: 'STUN', turn: 'TURN', tunnel: 'tunnel' }

const MAX_SPEC_LENGTH = 1024
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/
/** `host:port[#hash]`, a Beacon spec: no URL of ours has only digits after its scheme. */
const HOST_AND_PORT = /^[A-Za-z0-9.-]+:[0-9]+(?:#.*)?$/
const CERT_HASH = /^[A-Za-z0-9_-]{43}$/
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
const PATH = /^\/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$/

/**
 * Parses a Beacon spec, `HOST[:PORT][#CERT_HASH]`.
 *
 * @throws {@link InvalidServerSpecError} when `text` is malformed.
 * @example
 * ```ts
 * import { parseBeaconSpec } from 'peerlink'
 *
 * parseBeaconSpec('beacon.example.com:4264#weOsoMPwj976xqxRvLElsbb-gijWWn0netOtgPflZnk')
 * // { kind: 'beacon', host: 'beacon.example.com', hostType: 'dns', port: 4264, certHash: 'weOs…' }
 * ```
 */
export function parseBeaconSpec(text: string): BeaconServerSpec {
  const spec = prepare(text, 'beacon')
  const scheme = SCHEME.exec(spec)?.[1]?.toLowerCase()
  if (scheme !== undefined && spec.slice(scheme.length + 1).startsWith('//')) {
    fail('beacon', text, `a Beacon is written HOST:PORT, without "${scheme}://"`)
  }
  const hash = spec.indexOf('#')
  const certHash = hash < 0 ? undefined : parseCertHash(spec.slice(hash + 1), 'beacon', text)
  const address = parseAddress(hash < 0 ? spec : spec.slice(0, hash), DEFAULT_BEACON_PORT, 'beacon', text)
  return { kind: 'beacon', ...address, certHash }
}

/**
 * Parses a STUN URI, `stun:HOST[:PORT]` (RFC 7064; `stuns:` is not supported).
 *
 * @throws {@link InvalidServerSpecError} when `text` is malformed.
 *
 * @example
 * ```ts
 * import { parseStunSpec } from 'peerlink'
 *
 * parseStunSpec('stun:[2001:db8::1]:3479')   // { kind: 'stun', host: '2001:db8::1', hostType: 'ipv6', port: 3479 }
 * parseStunSpec('stun://example.com')        // throws InvalidServerSpecError
 * ```
 */
export function parseStunSpec(text: string): StunServerSpec {
  const spec = prepare(text, 'stun')
  const rest = splitScheme(spec, ['stun'], 'stun', text)
  // RFC 7064 §3.1: stunURI = scheme ":" host [ ":" port ] — no "//", no path, no query.
  if (rest.includes('?')) fail('stun', text, 'a STUN URI has no "?" query')
  return { kind: 'stun', ...parseAddress(rest, DEFAULT_STUN_PORT, 'stun', text) }
}

/**
 * Parses a TURN URI, `turn:HOST[:PORT][?transport=udp|tcp]` or `turns:HOST[:PORT]`
 * (RFC 7065). Credentials are given separately.
 *
 * @throws {@link InvalidServerSpecError} when `text` is malformed.
 *
 * @example
 * ```ts
 * import { parseTurnSpec } from 'peerlink'
 *
 * parseTurnSpec('turn:turn.example.com?transport=tcp')   // { kind: 'turn', port: 3478, transport: 'tcp', secure: false, … }
 * parseTurnSpec('turns:turn.example.com')                // { kind: 'turn', port: 5349, transport: 'tls', secure: true, … }
 * ```
 */
export function parseTurnSpec(text: string): TurnServerSpec {
  const spec = prepare(text, 'turn')
  const scheme = SCHEME.exec(spec)?.[1]?.toLowerCase()
  const rest = splitScheme(spec, ['turn', 'turns'], 'turn', text)
  const secure = scheme === 'turns'
  // RFC 7065 §3: turnURI = scheme ":" host [ ":" port ] [ "?transport=" transport ]
  const question = rest.indexOf('?')
  let transport: TurnTransport = secure ? 'tls' : 'udp'
  if (question >= 0) {
    const query = rest.slice(question + 1)
    const match = /^transport=(udp|tcp)$/i.exec(query)
    if (match === null) {
      fail('turn', text, `query ${quote(`?${query}`)} is not ?transport=udp or ?transport=tcp`)
    }
    const requested = match[1]!.toLowerCase()
    if (secure && requested === 'udp') fail('turn', text, 'turns: over UDP (DTLS) is not supported; use turns: (TLS over TCP) or turn:…?transport=udp')
    if (!secure) transport = requested as TurnTransport
  }
  const address = parseAddress(question < 0 ? rest : rest.slice(0, question), secure ? DEFAULT_TURNS_PORT : DEFAULT_STUN_PORT, 'turn', text)
  return { kind: 'turn', ...address, secure, transport }
}

/**
 * Parses a tunnel server URL, `ws://HOST[:PORT][/PATH]` or `wss://HOST[:PORT][/PATH][#CERT_HASH]`.
 *
 * @throws {@link InvalidServerSpecError} when `text` is malformed.
 *
 * @example
 * ```ts
 * import { parseTunnelSpec } from 'peerlink'
 *
 * const spec = parseTunnelSpec('wss://tunnel.example.com:8443')
 * spec.url      // 'wss://tunnel.example.com:8443/'
 * spec.secure   // true; spec.certHash is undefined (CA validation)
 * ```
 */
export function parseTunnelSpec(text: string): TunnelServerSpec {
  const spec = prepare(text, 'tunnel')
  const scheme = SCHEME.exec(spec)?.[1]?.toLowerCase()
  const rest = splitScheme(spec, ['ws', 'wss'], 'tunnel', text)
  const secure = scheme === 'wss'
  if (!rest.startsWith('//')) fail('tunnel', text, `expected "//" after "${scheme}:"`)
  const hash = rest.indexOf('#')
  const certHash = hash < 0 ? undefined : parseCertHash(rest.slice(hash + 1), 'tunnel', text)
  if (certHash !== undefined && !secure) fail('tunnel', text, 'a certificate hash needs wss:// (ws:// has no TLS)')
  const body = (hash < 0 ? rest : rest.slice(0, hash)).slice(2)
  if (body.includes('?')) fail('tunnel', text, 'a tunnel URL has no "?" query')
  const slash = body.indexOf('/')
  const path = slash < 0 ? '/' : body.slice(slash)
  if (!PATH.test(path)) fail('tunnel', text, `path ${quote(path)} contains characters that must be %-encoded`)
  const authority = slash < 0 ? body : body.slice(0, slash)
  if (authority.includes('@')) fail('tunnel', text, 'user information ("…@") is not allowed; pass tokens with --token')
  const address = parseAddress(authority, secure ? 443 : 80, 'tunnel', text)
  const url = `${secure ? 'wss' : 'ws'}://${formatHost(address)}:${address.port}${path}`
  return { kind: 'tunnel', ...address, secure, path, certHash, url }
}

/**
 * Parses any server spec, choosing the kind by its scheme: `stun:` → STUN, `turn:`/`turns:` →
 * TURN, `ws://`/`wss://` → tunnel, anything else → Beacon. `NAME:PORT` is always a Beacon,
 * even for a host named `stun`, `turn` or `ws`.
 *
 * @throws {@link InvalidServerSpecError} when `text` is malformed.
 *
 * @example
 * ```ts
 * import { parseServerSpec } from 'peerlink'
 *
 * for (const text of ['beacon.example.com:4264', 'stun:stun.example.com', 'turns:turn.example.com', 'wss://t.example.com']) {
 *   console.log(parseServerSpec(text).kind)   // 'beacon', 'stun', 'turn', 'tunnel'
 * }
 * ```
 */
export function parseServerSpec(text: string): ServerSpec {
  // `name:4264` is a Beacon's host and port even when the name is `ws`, `stun` or `turn`
  // (a Beacon's canonical form, formatServerSpec's output, must parse back to a Beacon).
  const scheme = typeof text === 'string' && !HOST_AND_PORT.test(text.trim()) ? SCHEME.exec(text.trim())?.[1]?.toLowerCase() : undefined
  switch (scheme) {
    case 'stun':
    case 'stuns':
      return parseStunSpec(text)
    case 'turn':
    case 'turns':
      return parseTurnSpec(text)
    case 'ws':
    case 'wss':
      return parseTunnelSpec(text)
    default:
      return parseBeaconSpec(text)
  }
}

/**
 * Writes a spec back in its canonical text form (which parses to an equal spec).
 *
 * @example
 * ```ts
 * import { formatServerSpec, parseServerSpec } from 'peerlink'
 *
 * formatServerSpec(parseServerSpec('  TURN:Turn.Example.com  '))   // 'turn:turn.example.com:3478?transport=udp'
 * formatServerSpec(parseServerSpec('[::1]'))                      // '[::1]:4264'
 * ```
 */
export function formatServerSpec(spec: ServerSpec): string {
  const hostPort = `${formatHost(spec)}:${spec.port}`
  switch (spec.kind) {
    case 'beacon':
      return spec.certHash === undefined ? hostPort : `${hostPort}#${spec.certHash}`
    case 'stun':
      return `stun:${hostPort}`
    case 'turn':
      return spec.secure ? `turns:${hostPort}` : `turn:${hostPort}?transport=${spec.transport}`
    case 'tunnel':
      return spec.certHash === undefined ? spec.url : `${spec.url}#${spec.certHash}`
  }
}

/** The host as written in a URI: IPv6 addresses in brackets. */
function formatHost(address: ServerAddress): string {
  return address.hostType === 'ipv6' ? `[${address.host}]` : address.host
}

function prepare(text: string, kind: ServerKind): string {
  if (typeof text !== 'string') fail(kind, String(text), `expected a string, got ${text === null ? 'null' : typeof text}`)
  const spec = text.trim()
  if (spec.length === 0) fail(kind, text, 'it is empty')
  if (spec.length > MAX_SPEC_LENGTH) fail(kind, text, `it is longer than ${MAX_SPEC_LENGTH} characters`)
  // eslint-disable-next-line no-control-regex
  const bad = /[\s\u0000-\u001f\u007f]/.exec(spec)
  if (bad !== null) fail(kind, text, `it contains ${quote(bad[0])} (white space or a control character)`)
  return spec
}

/** Checks the scheme and returns what follows "scheme:". */
function splitScheme(spec: string, allowed: readonly string[], kind: ServerKind, text: string): string {
  const scheme = SCHEME.exec(spec)?.[1]?.toLowerCase()
  if (scheme === undefined || !allowed.includes(scheme)) {
    const wanted = allowed.map((s) => `"${s}:"`).join(' or ')
    if (scheme === 'stuns') fail(kind, text, 'stuns: (STUN over TLS) is not supported; use stun: or a turns: server')
    // "host.example:3478" or "localhost:3478" is a HOST:PORT that lacks its scheme.
    const looksLikeHost = scheme === undefined || scheme.includes('.') || /^[0-9]/.test(spec.slice(scheme.length + 1))
    fail(kind, text, looksLikeHost ? `it must start with ${wanted}` : `scheme "${scheme}:" is not ${wanted}`)
  }
  const rest = spec.slice(scheme.length + 1)
  if ((kind === 'stun' || kind === 'turn') && rest.startsWith('//')) {
    fail(kind, text, `there is no "//" after "${scheme}:" (RFC ${kind === 'stun' ? 7064 : 7065})`)
  }
  return rest
}

function parseCertHash(hash: string, kind: ServerKind, text: string): string {
  if (hash.length === 0) fail(kind, text, 'the certificate hash after "#" is empty')
  // 43 base64url characters carry 258 bits: the last one must leave the 2 spare bits zero.
  if (!CERT_HASH.test(hash) || Buffer.from(hash, 'base64url').toString('base64url') !== hash) {
    fail(kind, text, `certificate hash ${quote(hash)} is not a base64url SHA-256 (43 characters of A–Z a–z 0–9 - _, no padding)`)
  }
  return hash
}

function parseAddress(authority: string, defaultPort: number, kind: ServerKind, text: string): ServerAddress {
  if (authority.length === 0) fail(kind, text, 'the host is missing')
  let hostText: string
  let portText: string | undefined
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']')
    if (close < 0) fail(kind, text, 'the IPv6 address has no closing "]"')
    hostText = authority.slice(1, close)
    const after = authority.slice(close + 1)
    if (after.length > 0 && !after.startsWith(':')) fail(kind, text, `unexpected ${quote(after)} after the IPv6 address`)
    portText = after.length > 0 ? after.slice(1) : undefined
    if (hostText.includes('%')) fail(kind, text, `IPv6 zone identifiers (${quote(hostText)}) are not supported`)
    if (!isIPv6(hostText)) fail(kind, text, `${quote(hostText)} is not a valid IPv6 address`)
    return { host: hostText.toLowerCase(), hostType: 'ipv6', port: parsePort(portText, defaultPort, kind, text) }
  }
  const colon = authority.indexOf(':')
  if (colon >= 0 && authority.indexOf(':', colon + 1) >= 0) {
    const hint = isIPv6(authority.replace(/%.*$/, '')) ? 'an IPv6 address goes in brackets, e.g. [2001:db8::1]:3478' : 'too many ":"'
    fail(kind, text, `host ${quote(authority)} is ambiguous: ${hint}`)
  }
  hostText = colon < 0 ? authority : authority.slice(0, colon)
  portText = colon < 0 ? undefined : authority.slice(colon + 1)
  const port = parsePort(portText, defaultPort, kind, text)
  if (hostText.length === 0) fail(kind, text, 'the host is missing')
  if (/^[0-9.]+$/.test(hostText)) {
    if (!isIPv4(hostText)) fail(kind, text, `${quote(hostText)} is not a valid IPv4 address`)
    return { host: hostText, hostType: 'ipv4', port }
  }
  return { host: checkDnsName(hostText, kind, text), hostType: 'dns', port }
}

function checkDnsName(name: string, kind: ServerKind, text: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[^\u0000-\u007f]/.test(name)) fail(kind, text, `host ${quote(name)} is not ASCII; write international names in their xn-- (punycode) form`)
  const host = name.toLowerCase()
  const labels = host.split('.')
  if (host.length > 253 || !labels.every((label) => DNS_LABEL.test(label))) {
    fail(kind, text, `host ${quote(name)} is not a valid host name (labels of letters, digits and inner "-", joined by ".")`)
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) fail(kind, text, `host ${quote(name)} is neither an IPv4 address nor a host name`)
  return host
}

function parsePort(portText: string | undefined, defaultPort: number, kind: ServerKind, text: string): number {
  if (portText === undefined) return defaultPort
  if (portText.length === 0) fail(kind, text, 'the port after ":" is missing')
  if (!/^[0-9]{1,5}$/.test(portText)) fail(kind, text, `port ${quote(portText)} is not a number`)
  const port = Number(portText)
  if (port < 1 || port > 65535) fail(kind, text, `port ${portText} is not between 1 and 65535`)
  return port
}

function fail(kind: ServerKind, text: string, problem: string): never {
  throw new InvalidServerSpecError(`Invalid ${NAMES[kind]} server ${quote(text)}: ${problem}. Expected e.g. ${EXAMPLES[kind]}`)
}

function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text)
}
