/**
 * Transport addresses in STUN attributes: MAPPED-ADDRESS style (RFC 8489 §14.1) and
 * XOR-MAPPED-ADDRESS style (RFC 8489 §14.2), IPv4 and IPv6, plus the IP text ↔ bytes
 * conversions they need.
 *
 * @module
 */

import { InvalidArgumentError, StunMalformedError } from '../errors.js'
import { STUN_MAGIC_COOKIE } from './constants.js'

/** IP address family, spelled as Node spells it in `AddressInfo.family`. */
export type AddressFamily = 'IPv4' | 'IPv6'

/** An IP address and port. */
export interface TransportAddress {
  /** Address family. */
  family: AddressFamily
  /** IP address in text form (IPv6 compressed, lower case, RFC 5952). */
  host: string
  /** UDP/TCP port, 0–65535. */
  port: number
}

/**
 * Family code of an address attribute (RFC 8489 §14.1).
 *
 * @example
 * ```ts
 * import { ADDRESS_FAMILY_CODES } from 'peerlink'
 *
 * ADDRESS_FAMILY_CODES.IPv4   // 0x01
 * ADDRESS_FAMILY_CODES.IPv6   // 0x02
 * ```
 */
export const ADDRESS_FAMILY_CODES: Readonly<Record<AddressFamily, number>> = { IPv4: 0x01, IPv6: 0x02 }

/**
 * Returns the family for a family code, or `undefined`.
 *
 * @example
 * ```ts
 * import { addressFamilyOf } from 'peerlink'
 *
 * addressFamilyOf(0x01)   // 'IPv4'
 * addressFamilyOf(0x02)   // 'IPv6'
 * addressFamilyOf(0x03)   // undefined
 * ```
 */
export function addressFamilyOf(code: number): AddressFamily | undefined {
  return code === 0x01 ? 'IPv4' : code === 0x02 ? 'IPv6' : undefined
}

function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.')
  if (parts.length !== 4) return undefined
  const out = new Uint8Array(4)
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined
    const n = Number(p)
    if (n > 255) return undefined
    out[i] = n
  }
  return out
}

function parseIPv6(text: string): Uint8Array | undefined {
  let s = text
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1)
  const zone = s.indexOf('%')
  if (zone >= 0) s = s.slice(0, zone)
  let tail: Uint8Array | undefined
  const lastColon = s.lastIndexOf(':')
  if (lastColon >= 0 && s.indexOf('.', lastColon) >= 0) {
    tail = parseIPv4(s.slice(lastColon + 1))
    if (tail === undefined) return undefined
    s = s.slice(0, lastColon + 1) + '0:0'
  }
  const halves = s.split('::')
  if (halves.length > 2) return undefined
  const toGroups = (h: string): number[] | undefined => {
    if (h === '') return []
    const groups: number[] = []
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
      groups.push(parseInt(g, 16))
    }
    return groups
  }
  const head = toGroups(halves[0] as string)
  const rest = halves.length === 2 ? toGroups(halves[1] as string) : []
  if (head === undefined || rest === undefined) return undefined
  let groups: number[]
  if (halves.length === 2) {
    const missing = 8 - head.length - rest.length
    if (missing < 1) return undefined
    groups = [...head, ...new Array<number>(missing).fill(0), ...rest]
  } else {
    groups = head
  }
  if (groups.length !== 8) return undefined
  const out = new Uint8Array(16)
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8
    out[2 * i + 1] = g & 0xff
  })
  if (tail !== undefined) out.set(tail, 12)
  return out
}

/** A parsed IP address. */
export interface ParsedIp {
  /** Address family. */
  family: AddressFamily
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array
}

/**
 * Parses an IPv4 or IPv6 literal (an IPv6 zone `%eth0` or brackets are stripped), or
 * returns `undefined` if `text` is not an IP address.
 *
 * @example
 * ```ts
 * import { parseIp } from 'peerlink'
 *
 * parseIp('192.0.2.1')           // { family: 'IPv4', bytes: Uint8Array [192, 0, 2, 1] }
 * parseIp('[fe80::1%eth0]')      // { family: 'IPv6', bytes: … } (zone and brackets dropped)
 * parseIp('example.com')         // undefined
 * ```
 */
export function parseIp(text: string): ParsedIp | undefined {
  const v4 = parseIPv4(text)
  if (v4 !== undefined) return { family: 'IPv4', bytes: v4 }
  if (!text.includes(':')) return undefined
  const v6 = parseIPv6(text)
  return v6 === undefined ? undefined : { family: 'IPv6', bytes: v6 }
}

/**
 * Formats 4 or 16 address bytes as text: dotted quad, or RFC 5952 compressed IPv6 (an
 * IPv4-mapped address is written `::ffff:a.b.c.d`, as Node writes it).
 *
 * @example
 * ```ts
 * import { formatIp } from 'peerlink'
 *
 * formatIp(Uint8Array.of(192, 0, 2, 1))                                 // '192.0.2.1'
 * formatIp(Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1))   // '2001:db8::1'
 * ```
 */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.')
  if (bytes.length !== 16) throw new InvalidArgumentError(`An IP address has 4 or 16 bytes, not ${bytes.length}`)
  const groups: number[] = []
  for (let i = 0; i < 8; i++) groups.push(((bytes[2 * i] as number) << 8) | (bytes[2 * i + 1] as number))
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${Array.from(bytes.subarray(12)).join('.')}`
  }
  // RFC 5952 §4.2: compress the longest run (≥ 2) of zero groups, the first one on a tie.
  let bestStart = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestLen < 2) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`
}

/**
 * Normalises an IP literal to the form {@link formatIp} writes, or returns `undefined`.
 *
 * @example
 * ```ts
 * import { normalizeIp } from 'peerlink'
 *
 * normalizeIp('2001:0DB8:0:0:0:0:0:0001')   // '2001:db8::1'
 * normalizeIp('localhost')                  // undefined: not an IP literal
 * ```
 */
export function normalizeIp(text: string): string | undefined {
  const parsed = parseIp(text)
  return parsed === undefined ? undefined : formatIp(parsed.bytes)
}

/**
 * Whether two transport addresses denote the same IP and port (text forms are normalised).
 *
 * @example
 * ```ts
 * import { sameTransportAddress } from 'peerlink'
 *
 * sameTransportAddress({ host: '::1', port: 3478 }, { host: '0:0:0:0:0:0:0:1', port: 3478 })   // true
 * sameTransportAddress({ host: '::1', port: 3478 }, { host: '::1', port: 3479 })               // false
 * ```
 */
export function sameTransportAddress(
  a: { host: string; port: number },
  b: { host: string; port: number },
): boolean {
  return a.port === b.port && (normalizeIp(a.host) ?? a.host) === (normalizeIp(b.host) ?? b.host)
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new InvalidArgumentError(`Invalid port ${String(port)}`)
  }
}

/**
 * Encodes the value of a MAPPED-ADDRESS-style attribute; with `transactionId`, the
 * XOR-MAPPED-ADDRESS-style value (RFC 8489 §14.2: port XOR the cookie's top 16 bits,
 * IPv4 XOR the cookie, IPv6 XOR cookie ‖ transaction ID).
 *
 * @throws InvalidArgumentError if the host is not an IP literal of `family` or the port is out of range.
 *
 * @example
 * ```ts
 * import { createTransactionId, decodeAddressValue, encodeAddressValue } from 'peerlink'
 *
 * const tid = createTransactionId()
 * const value = encodeAddressValue({ family: 'IPv4', host: '192.0.2.1', port: 32853 }, tid)  // XOR-MAPPED-ADDRESS form
 * decodeAddressValue(value, tid)   // { family: 'IPv4', host: '192.0.2.1', port: 32853 }
 * ```
 */
export function encodeAddressValue(address: TransportAddress, transactionId?: Uint8Array): Uint8Array {
  checkPort(address.port)
  const parsed = parseIp(address.host)
  if (parsed === undefined) throw new InvalidArgumentError(`Not an IP address: ${JSON.stringify(address.host)}`)
  if (parsed.family !== address.family) {
    throw new InvalidArgumentError(`Address ${address.host} is not of family ${address.family}`)
  }
  const out = new Uint8Array(4 + parsed.bytes.length)
  const view = new DataView(out.buffer)
  out[1] = ADDRESS_FAMILY_CODES[parsed.family]
  const xor = transactionId === undefined ? undefined : xorPad(transactionId)
  view.setUint16(2, xor === undefined ? address.port : address.port ^ (STUN_MAGIC_COOKIE >>> 16))
  for (let i = 0; i < parsed.bytes.length; i++) {
    out[4 + i] = (parsed.bytes[i] as number) ^ (xor === undefined ? 0 : (xor[i] as number))
  }
  return out
}

/**
 * Decodes the value of a MAPPED-ADDRESS-style attribute; with `transactionId`, of an
 * XOR-MAPPED-ADDRESS-style one.
 *
 * @throws StunMalformedError on a wrong length or an unknown family.
 *
 * @example
 * ```ts
 * import { decodeAddressValue, encodeAddressValue } from 'peerlink'
 *
 * // MAPPED-ADDRESS form (no transaction ID, nothing XORed)
 * const value = encodeAddressValue({ family: 'IPv6', host: '2001:db8::1', port: 3478 })
 * decodeAddressValue(value)   // { family: 'IPv6', host: '2001:db8::1', port: 3478 }
 * ```
 */
export function decodeAddressValue(value: Uint8Array, transactionId?: Uint8Array): TransportAddress {
  if (value.length < 4) throw new StunMalformedError(`Address attribute too short (${value.length} bytes)`)
  const family = addressFamilyOf(value[1] as number)
  if (family === undefined) throw new StunMalformedError(`Unknown address family 0x${(value[1] as number).toString(16)}`)
  const ipLength = family === 'IPv4' ? 4 : 16
  if (value.length !== 4 + ipLength) {
    throw new StunMalformedError(`${family} address attribute has length ${value.length}, expected ${4 + ipLength}`)
  }
  const rawPort = ((value[2] as number) << 8) | (value[3] as number)
  const xor = transactionId === undefined ? undefined : xorPad(transactionId)
  const port = xor === undefined ? rawPort : rawPort ^ (STUN_MAGIC_COOKIE >>> 16)
  const ip = new Uint8Array(ipLength)
  for (let i = 0; i < ipLength; i++) ip[i] = (value[4 + i] as number) ^ (xor === undefined ? 0 : (xor[i] as number))
  return { family, host: formatIp(ip), port }
}

/** The 16-byte XOR pad: magic cookie ‖ transaction ID (RFC 8489 §14.2). */
function xorPad(transactionId: Uint8Array): Uint8Array {
  const pad = new Uint8Array(16)
  new DataView(pad.buffer).setUint32(0, STUN_MAGIC_COOKIE)
  pad.set(transactionId.subarray(0, 12), 4)
  return pad
}
