/**
 * Typed STUN attribute values and their wire encoding (the value part of the TLV;
 * the type/length header and padding are written by `message.ts`).
 *
 * @module
 */

import { InvalidArgumentError, StunMalformedError } from '../errors.js'
import {
  ADDRESS_FAMILY_CODES,
  addressFamilyOf,
  decodeAddressValue,
  encodeAddressValue,
} from './address.js'
import type { AddressFamily, TransportAddress } from './address.js'
import { STUN_ATTRIBUTE_CODES, attributeNameOf } from './attribute-type.js'
import type { KnownStunAttributeType } from './attribute-type.js'

/** ERROR-CODE value (RFC 8489 §14.8). */
export interface StunErrorCodeValue {
  /** 300–699. */
  code: number
  /** UTF-8 reason phrase, fewer than 128 characters. */
  reason: string
}

/** A password algorithm entry of PASSWORD-ALGORITHM(S) (RFC 8489 §14.11–§14.12). */
export interface StunPasswordAlgorithm {
  /** `'md5'` (0x0001), `'sha256'` (0x0002), or another registered number. */
  algorithm: 'md5' | 'sha256' | number
  /** Algorithm parameters (empty for MD5 and SHA-256). */
  parameters: Uint8Array
}

/** ADDRESS-ERROR-CODE value (RFC 8656 §18.14). */
export interface StunAddressErrorCodeValue {
  /** The family the error is about. */
  family: AddressFamily
  /** 300–699 (e.g. 440 Address Family not Supported). */
  code: number
  /** Reason phrase. */
  reason: string
}

/** ICMP value (RFC 8656 §18.13). */
export interface StunIcmpValue {
  /** ICMP type, 0–127. */
  type: number
  /** ICMP code, 0–511. */
  code: number
  /** Error data (e.g. the MTU for "packet too big"), 32 bits. */
  data: number
}

/** CHANGE-REQUEST value (RFC 5780 §7.2). */
export interface StunChangeRequestValue {
  /** Ask the server to answer from its alternate IP address. */
  changeIp: boolean
  /** Ask the server to answer from its alternate port. */
  changePort: boolean
}

/**
 * A STUN attribute: a discriminated union on `type`. Attributes peerlink does not know
 * are kept as `{ type: 'unknown', code, value }` with the raw value bytes.
 */
export type StunAttribute =
  | { type: 'mapped-address'; value: TransportAddress }
  | { type: 'xor-mapped-address'; value: TransportAddress }
  | { type: 'alternate-server'; value: TransportAddress }
  | { type: 'xor-peer-address'; value: TransportAddress }
  | { type: 'xor-relayed-address'; value: TransportAddress }
  | { type: 'response-origin'; value: TransportAddress }
  | { type: 'other-address'; value: TransportAddress }
  | { type: 'username'; value: string }
  | { type: 'realm'; value: string }
  | { type: 'nonce'; value: string }
  | { type: 'software'; value: string }
  | { type: 'alternate-domain'; value: string }
  | { type: 'userhash'; value: Uint8Array }
  | { type: 'message-integrity'; value: Uint8Array }
  | { type: 'message-integrity-sha256'; value: Uint8Array }
  | { type: 'fingerprint'; value: number }
  | { type: 'error-code'; value: StunErrorCodeValue }
  | { type: 'unknown-attributes'; value: number[] }
  | { type: 'password-algorithm'; value: StunPasswordAlgorithm }
  | { type: 'password-algorithms'; value: StunPasswordAlgorithm[] }
  | { type: 'priority'; value: number }
  | { type: 'use-candidate' }
  | { type: 'ice-controlled'; value: bigint }
  | { type: 'ice-controlling'; value: bigint }
  | { type: 'channel-number'; value: number }
  | { type: 'lifetime'; value: number }
  | { type: 'data'; value: Uint8Array }
  | { type: 'requested-address-family'; value: AddressFamily }
  | { type: 'additional-address-family'; value: AddressFamily }
  | { type: 'even-port'; value: { reserve: boolean } }
  | { type: 'requested-transport'; value: number }
  | { type: 'dont-fragment' }
  | { type: 'reservation-token'; value: Uint8Array }
  | { type: 'address-error-code'; value: StunAddressErrorCodeValue }
  | { type: 'icmp'; value: StunIcmpValue }
  | { type: 'change-request'; value: StunChangeRequestValue }
  | { type: 'padding'; value: Uint8Array }
  | { type: 'response-port'; value: number }
  | { type: 'unknown'; code: number; value: Uint8Array }

/** The `type` of every {@link StunAttribute}. */
export type StunAttributeType = StunAttribute['type']

/** The attribute of a given type. */
export type StunAttributeOf<T extends StunAttributeType> = Extract<StunAttribute, { type: T }>

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const utf8Encoder = new TextEncoder()
const LONE_SURROGATE = /\p{Surrogate}/u

/** Byte limits on text attributes (RFC 8489 §14.3–§14.10 and RFC 8656). */
const TEXT_LIMITS: Readonly<Record<string, number>> = {
  username: 512, // RFC 8489 §14.3: < 513 bytes
  realm: 763, // RFC 8489 §14.9: < 128 characters, ≤ 763 bytes
  nonce: 763, // RFC 8489 §14.10
  software: 763, // RFC 8489 §14.14
  'alternate-domain': 255, // RFC 8489 §14.16: a DNS name
  'reason phrase': 763, // RFC 8489 §14.8
}

function decodeText(value: Uint8Array, name: string): string {
  try {
    return utf8Decoder.decode(value)
  } catch (err) {
    throw new StunMalformedError(`${name.toUpperCase()} is not valid UTF-8`, { cause: err })
  }
}

function encodeText(text: string, name: string): Uint8Array {
  if (typeof text !== 'string' || LONE_SURROGATE.test(text)) {
    throw new InvalidArgumentError(`${name.toUpperCase()} must be a well-formed string`)
  }
  const bytes = utf8Encoder.encode(text)
  const limit = TEXT_LIMITS[name] ?? 0xffff
  if (bytes.length > limit) throw new InvalidArgumentError(`${name.toUpperCase()} is longer than ${limit} bytes`)
  return bytes
}

function expectLength(value: Uint8Array, length: number, name: string): void {
  if (value.length !== length) {
    throw new StunMalformedError(`${name.toUpperCase()} has length ${value.length}, expected ${length}`)
  }
}

function uint(n: number, max: number, name: string): number {
  if (!Number.isInteger(n) || n < 0 || n > max) throw new InvalidArgumentError(`${name} out of range: ${String(n)}`)
  return n
}

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, n)
  return out
}

function u64(n: bigint, name: string): Uint8Array {
  if (typeof n !== 'bigint' || n < 0n || n > 0xffffffffffffffffn) throw new InvalidArgumentError(`${name} must be a 64-bit unsigned bigint`)
  const out = new Uint8Array(8)
  new DataView(out.buffer).setBigUint64(0, n)
  return out
}

function bytes(value: Uint8Array, name: string, check?: (n: number) => boolean): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidArgumentError(`${name} must be a Uint8Array`)
  if (check !== undefined && !check(value.length)) throw new InvalidArgumentError(`${name} has invalid length ${value.length}`)
  return value
}

const ALGORITHM_CODES = { md5: 0x0001, sha256: 0x0002 } as const

function encodeAlgorithm(a: StunPasswordAlgorithm): Uint8Array {
  const code = typeof a.algorithm === 'number' ? uint(a.algorithm, 0xffff, 'password algorithm') : ALGORITHM_CODES[a.algorithm]
  if (code === undefined) throw new InvalidArgumentError(`Unknown password algorithm ${String(a.algorithm)}`)
  const params = bytes(a.parameters, 'password algorithm parameters', (n) => n <= 0xffff)
  const padded = (params.length + 3) & ~3
  const out = new Uint8Array(4 + padded)
  const view = new DataView(out.buffer)
  view.setUint16(0, code)
  view.setUint16(2, params.length)
  out.set(params, 4)
  return out
}

/** Decodes one algorithm entry at `offset`, returning it and the offset after its padding. */
function decodeAlgorithm(value: Uint8Array, offset: number): [StunPasswordAlgorithm, number] {
  if (offset + 4 > value.length) throw new StunMalformedError('Truncated password algorithm')
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength)
  const code = view.getUint16(offset)
  const length = view.getUint16(offset + 2)
  if (offset + 4 + length > value.length) throw new StunMalformedError('Password algorithm parameters overrun')
  const algorithm = code === 0x0001 ? 'md5' : code === 0x0002 ? 'sha256' : code
  const parameters = new Uint8Array(value.subarray(offset + 4, offset + 4 + length))
  return [{ algorithm, parameters }, Math.min(value.length, offset + 4 + ((length + 3) & ~3))]
}

function encodeErrorCode(code: number, reason: string, first: number): Uint8Array {
  uint(code, 699, 'error code')
  if (code < 300) throw new InvalidArgumentError(`Error code must be 300–699, not ${code}`)
  const text = encodeText(reason, 'reason phrase')
  const out = new Uint8Array(4 + text.length)
  out[0] = first
  out[2] = Math.floor(code / 100)
  out[3] = code % 100
  out.set(text, 4)
  return out
}

function decodeErrorCode(value: Uint8Array, name: string): StunErrorCodeValue {
  if (value.length < 4) throw new StunMalformedError(`${name.toUpperCase()} too short`)
  const cls = (value[2] as number) & 0x07
  const number = value[3] as number
  // RFC 8489 §14.8: class 3–6, number 0–99.
  if (cls < 3 || cls > 6 || number > 99) throw new StunMalformedError(`${name.toUpperCase()} has invalid code ${cls}/${number}`)
  return { code: cls * 100 + number, reason: decodeText(value.subarray(4), name) }
}

function familyByte(family: AddressFamily): number {
  const code = ADDRESS_FAMILY_CODES[family]
  if (code === undefined) throw new InvalidArgumentError(`Unknown address family ${String(family)}`)
  return code
}

function decodeFamily(value: Uint8Array, name: string): AddressFamily {
  expectLength(value, 4, name)
  const family = addressFamilyOf(value[0] as number)
  if (family === undefined) throw new StunMalformedError(`${name.toUpperCase()} has unknown family ${value[0] as number}`)
  return family
}

/**
 * Encodes an attribute's value (without the TLV header or padding).
 *
 * @param transactionId - needed for the XOR-address attributes.
 * @throws InvalidArgumentError if the value cannot be encoded.
 *
 * @example
 * ```ts
 * import { createTransactionId, encodeAttributeValue } from 'peerlink'
 *
 * const { code, value } = encodeAttributeValue({ type: 'priority', value: 0x6e0001ff }, createTransactionId())
 * // code === 0x0024, value = the 4 big-endian bytes of the priority
 * ```
 */
export function encodeAttributeValue(attr: StunAttribute, transactionId: Uint8Array): { code: number; value: Uint8Array } {
  if (attr.type === 'unknown') {
    return { code: uint(attr.code, 0xffff, 'attribute code'), value: bytes(attr.value, 'attribute value', (n) => n <= 0xffff) }
  }
  const code = STUN_ATTRIBUTE_CODES[attr.type]
  if (code === undefined) throw new InvalidArgumentError(`Unknown attribute type ${JSON.stringify((attr as { type: unknown }).type)}`)
  return { code, value: encodeKnownValue(attr, transactionId) }
}

function encodeKnownValue(attr: Exclude<StunAttribute, { type: 'unknown' }>, tid: Uint8Array): Uint8Array {
  switch (attr.type) {
    case 'mapped-address':
    case 'alternate-server':
    case 'response-origin':
    case 'other-address':
      return encodeAddressValue(attr.value)
    case 'xor-mapped-address':
    case 'xor-peer-address':
    case 'xor-relayed-address':
      return encodeAddressValue(attr.value, tid)
    case 'username':
    case 'realm':
    case 'nonce':
    case 'software':
    case 'alternate-domain':
      return encodeText(attr.value, attr.type)
    case 'userhash':
      return bytes(attr.value, 'USERHASH', (n) => n === 32)
    case 'message-integrity':
      return bytes(attr.value, 'MESSAGE-INTEGRITY', (n) => n === 20)
    case 'message-integrity-sha256':
      return bytes(attr.value, 'MESSAGE-INTEGRITY-SHA256', (n) => n >= 16 && n <= 32 && n % 4 === 0)
    case 'fingerprint':
      return u32(uint(attr.value, 0xffffffff, 'FINGERPRINT'))
    case 'error-code':
      return encodeErrorCode(attr.value.code, attr.value.reason, 0)
    case 'address-error-code':
      return encodeErrorCode(attr.value.code, attr.value.reason, familyByte(attr.value.family))
    case 'unknown-attributes': {
      const out = new Uint8Array(2 * attr.value.length)
      attr.value.forEach((c, i) => new DataView(out.buffer).setUint16(2 * i, uint(c, 0xffff, 'attribute code')))
      return out
    }
    case 'password-algorithm':
      return encodeAlgorithm(attr.value)
    case 'password-algorithms': {
      const parts = attr.value.map(encodeAlgorithm)
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
      let at = 0
      for (const p of parts) {
        out.set(p, at)
        at += p.length
      }
      return out
    }
    case 'priority':
    case 'lifetime':
      return u32(uint(attr.value, 0xffffffff, attr.type))
    case 'use-candidate':
    case 'dont-fragment':
      return new Uint8Array(0)
    case 'ice-controlled':
    case 'ice-controlling':
      return u64(attr.value, attr.type)
    case 'channel-number': {
      // RFC 8656 §18.1: 16-bit channel number then 16 bits RFFU.
      const out = new Uint8Array(4)
      new DataView(out.buffer).setUint16(0, uint(attr.value, 0xffff, 'channel number'))
      return out
    }
    case 'data':
    case 'padding':
      return bytes(attr.value, attr.type, (n) => n <= 0xffff)
    case 'requested-address-family':
    case 'additional-address-family':
      return Uint8Array.of(familyByte(attr.value), 0, 0, 0)
    case 'even-port':
      return Uint8Array.of(attr.value.reserve ? 0x80 : 0)
    case 'requested-transport':
      return Uint8Array.of(uint(attr.value, 0xff, 'protocol'), 0, 0, 0)
    case 'reservation-token':
      return bytes(attr.value, 'RESERVATION-TOKEN', (n) => n === 8)
    case 'icmp': {
      // RFC 8656 §18.13: 16 reserved bits, 7-bit type, 9-bit code, 32-bit error data.
      const out = new Uint8Array(8)
      const view = new DataView(out.buffer)
      view.setUint16(2, (uint(attr.value.type, 0x7f, 'ICMP type') << 9) | uint(attr.value.code, 0x1ff, 'ICMP code'))
      view.setUint32(4, uint(attr.value.data, 0xffffffff, 'ICMP data'))
      return out
    }
    case 'change-request':
      // RFC 5780 §7.2: flag A (change IP) = 0x4, flag B (change port) = 0x2.
      return u32((attr.value.changeIp ? 0x4 : 0) | (attr.value.changePort ? 0x2 : 0))
    case 'response-port': {
      const out = new Uint8Array(4)
      new DataView(out.buffer).setUint16(0, uint(attr.value, 0xffff, 'RESPONSE-PORT'))
      return out
    }
  }
}

/**
 * Decodes an attribute value. Unknown codes give `{ type: 'unknown' }`.
 *
 * @throws StunMalformedError if a known attribute's value is malformed.
 *
 * @example
 * ```ts
 * import { createTransactionId, decodeAttributeValue } from 'peerlink'
 *
 * const tid = createTransactionId()
 * decodeAttributeValue(0x8022, new TextEncoder().encode('peerlink'), tid)   // { type: 'software', value: 'peerlink' }
 * decodeAttributeValue(0xc001, Uint8Array.of(1), tid)                       // { type: 'unknown', code: 0xc001, value: … }
 * ```
 */
export function decodeAttributeValue(code: number, value: Uint8Array, transactionId: Uint8Array): StunAttribute {
  const name = attributeNameOf(code)
  if (name === undefined) return { type: 'unknown', code, value: new Uint8Array(value) }
  return decodeKnownValue(name, value, transactionId)
}

function decodeKnownValue(name: KnownStunAttributeType, value: Uint8Array, tid: Uint8Array): StunAttribute {
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength)
  switch (name) {
    case 'mapped-address':
    case 'alternate-server':
    case 'response-origin':
    case 'other-address':
      return { type: name, value: decodeAddressValue(value) }
    case 'xor-mapped-address':
    case 'xor-peer-address':
    case 'xor-relayed-address':
      return { type: name, value: decodeAddressValue(value, tid) }
    case 'username':
    case 'realm':
    case 'nonce':
    case 'software':
    case 'alternate-domain':
      return { type: name, value: decodeText(value, name) }
    case 'userhash':
      expectLength(value, 32, name)
      return { type: name, value: new Uint8Array(value) }
    case 'message-integrity':
      expectLength(value, 20, name)
      return { type: name, value: new Uint8Array(value) }
    case 'message-integrity-sha256':
      // RFC 8489 §14.6: 16 to 32 bytes, a multiple of 4.
      if (value.length < 16 || value.length > 32 || value.length % 4 !== 0) {
        throw new StunMalformedError(`MESSAGE-INTEGRITY-SHA256 has invalid length ${value.length}`)
      }
      return { type: name, value: new Uint8Array(value) }
    case 'fingerprint':
      expectLength(value, 4, name)
      return { type: name, value: view.getUint32(0) }
    case 'error-code':
      return { type: name, value: decodeErrorCode(value, name) }
    case 'address-error-code': {
      const { code, reason } = decodeErrorCode(value, name)
      const family = addressFamilyOf(value[0] as number)
      if (family === undefined) throw new StunMalformedError(`ADDRESS-ERROR-CODE has unknown family ${value[0] as number}`)
      return { type: name, value: { family, code, reason } }
    }
    case 'unknown-attributes': {
      if (value.length % 2 !== 0) throw new StunMalformedError('UNKNOWN-ATTRIBUTES has an odd length')
      const codes: number[] = []
      for (let i = 0; i < value.length; i += 2) codes.push(view.getUint16(i))
      return { type: name, value: codes }
    }
    case 'password-algorithm': {
      const [algorithm, end] = decodeAlgorithm(value, 0)
      if (end !== value.length) throw new StunMalformedError('PASSWORD-ALGORITHM has trailing bytes')
      return { type: name, value: algorithm }
    }
    case 'password-algorithms': {
      const list: StunPasswordAlgorithm[] = []
      for (let at = 0; at < value.length; ) {
        const [algorithm, end] = decodeAlgorithm(value, at)
        list.push(algorithm)
        at = end
      }
      return { type: name, value: list }
    }
    case 'priority':
    case 'lifetime':
      expectLength(value, 4, name)
      return { type: name, value: view.getUint32(0) }
    case 'use-candidate':
    case 'dont-fragment':
      expectLength(value, 0, name)
      return { type: name }
    case 'ice-controlled':
    case 'ice-controlling':
      expectLength(value, 8, name)
      return { type: name, value: view.getBigUint64(0) }
    case 'channel-number':
      expectLength(value, 4, name)
      return { type: name, value: view.getUint16(0) }
    case 'data':
    case 'padding':
      return { type: name, value: new Uint8Array(value) }
    case 'requested-address-family':
    case 'additional-address-family':
      return { type: name, value: decodeFamily(value, name) }
    case 'even-port':
      expectLength(value, 1, name)
      return { type: name, value: { reserve: ((value[0] as number) & 0x80) !== 0 } }
    case 'requested-transport':
      expectLength(value, 4, name)
      return { type: name, value: value[0] as number }
    case 'reservation-token':
      expectLength(value, 8, name)
      return { type: name, value: new Uint8Array(value) }
    case 'icmp': {
      expectLength(value, 8, name)
      const tc = view.getUint16(2)
      return { type: name, value: { type: tc >> 9, code: tc & 0x1ff, data: view.getUint32(4) } }
    }
    case 'change-request': {
      expectLength(value, 4, name)
      const flags = view.getUint32(0)
      return { type: name, value: { changeIp: (flags & 0x4) !== 0, changePort: (flags & 0x2) !== 0 } }
    }
    case 'response-port':
      expectLength(value, 4, name)
      return { type: name, value: view.getUint16(0) }
  }
}
