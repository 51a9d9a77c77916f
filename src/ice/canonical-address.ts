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
  const normal = normalizeIp(host)
  if (normal === undefined) return undefined
  if (normal.startsWith('::ffff:') && normal.includes('.')) return normal.slice(7)
  return normal
}

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
