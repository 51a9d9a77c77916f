/**
 * One text form per IP address, so that candidates, STUN sources and socket addresses
 * compare equal when they denote the same transport address: IPv6 in RFC 5952 form, and
 * IPv4-mapped IPv6 (`::ffff:192.0.2.1`, what a dual-stack socket reports for IPv4 peers)
 * as plain IPv4.
 *
 * @module
 */
import { normalizeIp, parseIp } from '../stun/address.js'

/** An IP address family as ICE candidates use it. */
export type IpFamily = 'IPv4' | 'IPv6'

/** An IP address (canonical text) and a UDP port. */
export interface IceAddress {
  /** IP literal in canonical form (see {@link canonicalHost}). */
  address: string
  /** UDP port. */
  port: number
}

/**
 * The canonical text of an IP literal (IPv4-mapped IPv6 becomes IPv4, IPv6 is RFC 5952
 * compressed and lower case, a zone `%eth0` is dropped), or `undefined` if `host` is not
 * an IP literal.
 */
export function canonicalHost(host: string): string | undefined {
  if (typeof host !== 'string') return undefined
  // Every check, answer and candidate goes through here with the same few addresses.
  const cached = canonicalCache.get(host)
  if (cached !== undefined) return cached
  const normal = normalizeIp(host)
  if (normal === undefined) return undefined
  const canonical = normal.startsWith('::ffff:') && normal.includes('.') ? normal.slice(7) : normal
  if (canonicalCache.size >= CANONICAL_CACHE_SIZE) canonicalCache.clear()
  canonicalCache.set(host, canonical)
  return canonical
}

/** Recently canonicalised IP literals (a pure function's results; bounded). */
const canonicalCache = new Map<string, string>()
const CANONICAL_CACHE_SIZE = 512

/** The family of an IP literal, or `undefined` if it is not one. */
export function ipFamily(host: string): IpFamily | undefined {
  const canonical = canonicalHost(host)
  if (canonical === undefined) return undefined
  return canonical.includes(':') ? 'IPv6' : 'IPv4'
}

/** A map key for a transport address: `host:port` with the canonical host (`[v6]:port`). */
export function addressKey(host: string, port: number): string {
  const canonical = canonicalHost(host) ?? host
  return canonical.includes(':') ? `[${canonical}]:${port}` : `${canonical}:${port}`
}

/** Whether an IP literal is a loopback address (127.0.0.0/8, ::1). */
export function isLoopbackAddress(host: string): boolean {
  const parsed = parseIp(canonicalHost(host) ?? '')
  if (parsed === undefined) return false
  if (parsed.family === 'IPv4') return parsed.bytes[0] === 127
  return parsed.bytes.every((b, i) => (i === 15 ? b === 1 : b === 0))
}

/** Whether an IP literal is link-local (169.254.0.0/16, fe80::/10). */
export function isLinkLocalAddress(host: string): boolean {
  const parsed = parseIp(canonicalHost(host) ?? '')
  if (parsed === undefined) return false
  if (parsed.family === 'IPv4') return parsed.bytes[0] === 169 && parsed.bytes[1] === 254
  return parsed.bytes[0] === 0xfe && ((parsed.bytes[1] as number) & 0xc0) === 0x80
}

/** Whether an IP literal is an unspecified (wildcard) address: `0.0.0.0` or `::`. */
export function isUnspecifiedAddress(host: string): boolean {
  const canonical = canonicalHost(host)
  return canonical === '0.0.0.0' || canonical === '::'
}

/**
 * Whether `remote`, a private address (RFC 1918 10/8, 172.16/12, 192.168/16; RFC 6598
 * 100.64/10; RFC 4193 fc00::/7), lies outside the network of each of `locals` (same /24
 * for IPv4, same /64 for IPv6): a host candidate of another private network, which
 * usually cannot be reached (its packets leave by the default route and die).
 */
export function isForeignPrivateAddress(remote: string, locals: readonly string[]): boolean {
  const r = parseIp(canonicalHost(remote) ?? '')
  if (r === undefined) return false
  const b = r.bytes
  const isPrivate =
    r.family === 'IPv4'
      ? b[0] === 10 || (b[0] === 172 && ((b[1] as number) & 0xf0) === 16) || (b[0] === 192 && b[1] === 168) || (b[0] === 100 && ((b[1] as number) & 0xc0) === 64)
      : ((b[0] as number) & 0xfe) === 0xfc
  if (!isPrivate) return false
  const prefix = r.family === 'IPv4' ? 3 : 8
  return !locals.some((local) => {
    const l = parseIp(canonicalHost(local) ?? '')
    return l !== undefined && l.family === r.family && l.bytes.subarray(0, prefix).every((x, i) => x === b[i])
  })
}
