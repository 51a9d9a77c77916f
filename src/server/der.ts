/**
 * A minimal DER (ITU-T X.690 Distinguished Encoding Rules) encoder, and a reader for
 * walking what it wrote: just enough ASN.1 to build an X.509 certificate
 * ({@link createSelfSignedCertificate} in `tls.ts`) without a dependency.
 *
 * Every `der*` function returns the complete encoding (tag, length, contents) of one
 * value as a `Buffer`; constructed values take already-encoded children.
 *
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net'
import { InvalidArgumentError } from '../errors.js'

/** Universal tag numbers used here (X.680 §8.4), with the constructed bit where it applies. */
export const DER_TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const

/** Encodes a definite length (X.690 §8.1.3): short form below 128, long form above. */
export function derLength(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) throw new InvalidArgumentError(`DER length must be a non-negative integer, got ${length}`)
  if (length < 0x80) return Buffer.from([length])
  const bytes: number[] = []
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

/** Encodes one value: `tag`, then the length of `contents`, then `contents`. */
export function derTlv(tag: number, contents: Uint8Array): Buffer {
  if (!Number.isInteger(tag) || tag < 0 || tag > 0xfe || (tag & 0x1f) === 0x1f) {
    throw new InvalidArgumentError(`only single-byte DER tags are supported, got ${tag}`)
  }
  return Buffer.concat([Buffer.from([tag]), derLength(contents.byteLength), contents])
}

/** SEQUENCE of already-encoded values, in order. */
export function derSequence(...items: Uint8Array[]): Buffer {
  return derTlv(DER_TAG.sequence, Buffer.concat(items))
}

/** SET OF already-encoded values; DER sorts the encodings (X.690 §11.6). */
export function derSet(...items: Uint8Array[]): Buffer {
  const sorted = [...items].map((item) => Buffer.from(item)).sort(Buffer.compare)
  return derTlv(DER_TAG.set, Buffer.concat(sorted))
}

/**
 * INTEGER. A `bigint` or safe integer is encoded in minimal two's complement; a byte
 * array is read as an unsigned big-endian number (a 0x00 is prepended when its top bit
 * is set, and leading zeros are removed, as X.690 §8.3.2 requires).
 */
export function derInteger(value: bigint | number | Uint8Array): Buffer {
  if (value instanceof Uint8Array) {
    let start = 0
    while (start < value.byteLength - 1 && value[start] === 0) start++
    const bytes = value.byteLength === 0 ? Buffer.from([0]) : Buffer.from(value.subarray(start))
    return derTlv(DER_TAG.integer, bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes)
  }
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new InvalidArgumentError(`DER INTEGER must be a safe integer, got ${value}`)
  let n = BigInt(value)
  const bytes: number[] = []
  // Minimal two's complement: stop once the remaining value is the sign extension of the top byte.
  for (;;) {
    const byte = Number(n & 0xffn)
    bytes.unshift(byte)
    n >>= 8n
    if ((n === 0n && (byte & 0x80) === 0) || (n === -1n && (byte & 0x80) !== 0)) break
  }
  return derTlv(DER_TAG.integer, Buffer.from(bytes))
}

/** OBJECT IDENTIFIER from its dotted form, e.g. `'1.2.840.10045.4.3.2'` (X.690 §8.19). */
export function derOid(dotted: string): Buffer {
  if (!/^[0-2](\.(0|[1-9]\d*))+$/.test(dotted)) throw new InvalidArgumentError(`not a dotted OID: ${JSON.stringify(dotted)}`)
  const arcs = dotted.split('.').map((arc) => BigInt(arc))
  if (arcs[0]! < 2n && arcs[1]! > 39n) throw new InvalidArgumentError(`OID ${dotted}: the second arc must be below 40`)
  const subidentifiers = [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)]
  const bytes: number[] = []
  for (const sub of subidentifiers) {
    const group: number[] = [Number(sub & 0x7fn)]
    for (let rest = sub >> 7n; rest > 0n; rest >>= 7n) group.unshift(Number(rest & 0x7fn) | 0x80)
    bytes.push(...group)
  }
  return derTlv(DER_TAG.oid, Buffer.from(bytes))
}

/** UTF8String. */
export function derUtf8String(text: string): Buffer {
  return derTlv(DER_TAG.utf8String, Buffer.from(text, 'utf8'))
}

/** PrintableString (X.680 §41.4: letters, digits, space and `'()+,-./:=?`). */
export function derPrintableString(text: string): Buffer {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) throw new InvalidArgumentError(`not a PrintableString: ${JSON.stringify(text)}`)
  return derTlv(DER_TAG.printableString, Buffer.from(text, 'latin1'))
}

/** IA5String (ASCII), as used by DNS names in subjectAltName. */
export function derIa5String(text: string): Buffer {
  if (!/^[\x00-\x7f]*$/.test(text)) throw new InvalidArgumentError(`not an IA5String (ASCII): ${JSON.stringify(text)}`)
  return derTlv(DER_TAG.ia5String, Buffer.from(text, 'latin1'))
}

/** OCTET STRING. */
export function derOctetString(bytes: Uint8Array): Buffer {
  return derTlv(DER_TAG.octetString, bytes)
}

/** BIT STRING holding whole bytes (no unused bits), e.g. a signature or a public key. */
export function derBitString(bytes: Uint8Array): Buffer {
  return derTlv(DER_TAG.bitString, Buffer.concat([Buffer.from([0]), bytes]))
}

/**
 * BIT STRING of named bits (X.690 §11.2.2: trailing zero bits are removed), bit 0 being
 * the most significant bit of the first byte — the form of X.509 KeyUsage.
 */
export function derNamedBits(bits: readonly number[]): Buffer {
  if (bits.length === 0) return derTlv(DER_TAG.bitString, Buffer.from([0]))
  for (const bit of bits) if (!Number.isInteger(bit) || bit < 0 || bit > 255) throw new InvalidArgumentError(`bad named bit ${bit}`)
  const highest = Math.max(...bits)
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1)
  for (const bit of bits) bytes[bit >> 3]! |= 0x80 >> (bit & 7)
  const unused = 7 - (highest % 8)
  return derTlv(DER_TAG.bitString, Buffer.concat([Buffer.from([unused]), bytes]))
}

/** BOOLEAN (DER: 0xff for true). */
export function derBoolean(value: boolean): Buffer {
  return derTlv(DER_TAG.boolean, Buffer.from([value ? 0xff : 0]))
}

/** NULL. */
export function derNull(): Buffer {
  return derTlv(DER_TAG.null, Buffer.alloc(0))
}

/**
 * A time as X.509 wants it (RFC 5280 §4.1.2.5): UTCTime (`YYMMDDHHMMSSZ`) for the years
 * 1950–2049, GeneralizedTime (`YYYYMMDDHHMMSSZ`) otherwise; whole seconds, UTC.
 */
export function derTime(date: Date): Buffer {
  const time = date.getTime()
  if (!Number.isFinite(time)) throw new InvalidArgumentError('invalid date')
  const year = date.getUTCFullYear()
  if (year < 0 || year > 9999) throw new InvalidArgumentError(`year ${year} cannot be encoded`)
  const two = (n: number) => String(n).padStart(2, '0')
  const rest = `${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`
  if (year >= 1950 && year < 2050) return derTlv(DER_TAG.utcTime, Buffer.from(`${two(year % 100)}${rest}`, 'latin1'))
  return derTlv(DER_TAG.generalizedTime, Buffer.from(`${String(year).padStart(4, '0')}${rest}`, 'latin1'))
}

/** `[n] EXPLICIT` context-specific tag around one encoded value. */
export function derExplicit(n: number, encoded: Uint8Array): Buffer {
  return derTlv(contextTag(n, true), encoded)
}

/**
 * `[n] IMPLICIT` context-specific tag with raw `contents` (primitive unless
 * `constructed`), e.g. a subjectAltName `dNSName` (`[2]`) or `iPAddress` (`[7]`).
 */
export function derImplicit(n: number, contents: Uint8Array, constructed = false): Buffer {
  return derTlv(contextTag(n, constructed), contents)
}

function contextTag(n: number, constructed: boolean): number {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new InvalidArgumentError(`context tag must be 0-30, got ${n}`)
  return 0x80 | (constructed ? 0x20 : 0) | n
}

/** The bytes of an IPv4 (4) or IPv6 (16) address, as in a subjectAltName `iPAddress`. */
export function ipAddressBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number))
  if (!isIPv6(address)) throw new InvalidArgumentError(`not an IP address: ${JSON.stringify(address)}`)
  let text = address.split('%')[0]!
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (v4 !== null) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number]
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined]
  const headGroups = head === '' ? [] : head!.split(':')
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':')
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups]
  const bytes = Buffer.alloc(16)
  groups.forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2))
  return bytes
}

/** One decoded value of {@link readDer}. */
export interface DerElement {
  /** The tag byte. */
  readonly tag: number
  /** The contents (without tag and length). */
  readonly contents: Buffer
  /** The whole encoding (tag, length, contents). */
  readonly encoded: Buffer
}

/**
 * Reads the DER value at `offset` of `bytes` (definite lengths only).
 *
 * @throws `InvalidArgumentError` when the bytes are truncated or not DER.
 */
export function readDer(bytes: Uint8Array, offset = 0): DerElement {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const bad = (why: string): never => {
    throw new InvalidArgumentError(`malformed DER at offset ${offset}: ${why}`)
  }
  if (offset + 2 > data.byteLength) bad('truncated')
  const tag = data[offset]!
  if ((tag & 0x1f) === 0x1f) bad('multi-byte tags are not supported')
  let length = data[offset + 1]!
  let headerLength = 2
  if (length === 0x80) bad('indefinite length is not DER')
  if (length > 0x80) {
    const count = length & 0x7f
    if (count > 4) bad('length too large')
    if (offset + 2 + count > data.byteLength) bad('truncated length')
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + data[offset + 2 + i]!
    if (length < 0x80 || data[offset + 2] === 0) bad('length not minimally encoded')
    headerLength += count
  }
  const end = offset + headerLength + length
  if (end > data.byteLength) bad('truncated contents')
  return { tag, contents: data.subarray(offset + headerLength, end), encoded: data.subarray(offset, end) }
}

/**
 * Reads every value inside `contents` (the children of a SEQUENCE, SET or explicit tag).
 *
 * @throws `InvalidArgumentError` when the bytes are truncated or not DER.
 */
export function readDerChildren(contents: Uint8Array): DerElement[] {
  const children: DerElement[] = []
  for (let offset = 0; offset < contents.byteLength; ) {
    const child = readDer(contents, offset)
    children.push(child)
    offset += child.encoded.byteLength
  }
  return children
}
