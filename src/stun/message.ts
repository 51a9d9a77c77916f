/**
 * STUN message encoding and decoding (RFC 8489 §5, §14).
 *
 * Decoding is strict and total: for any input it returns a {@link DecodedStunMessage}
 * or throws `StunMalformedError` (or `StunFingerprintError` when a
 * FINGERPRINT is present and wrong) — never anything else.
 *
 * @module
 */

import { randomBytes } from 'node:crypto'
import { InvalidArgumentError, StunFingerprintError, StunMalformedError } from '../errors.js'
import { decodeAttributeValue, encodeAttributeValue } from './attribute.js'
import type { StunAttribute, StunAttributeOf, StunAttributeType } from './attribute.js'
import { STUN_ATTRIBUTE_CODES, isComprehensionRequired } from './attribute-type.js'
import {
  STUN_HEADER_LENGTH,
  STUN_MAGIC_COOKIE,
  STUN_MAX_ATTRIBUTES,
  STUN_MAX_MESSAGE_LENGTH,
  STUN_TRANSACTION_ID_LENGTH,
} from './constants.js'
import { computeFingerprint } from './fingerprint.js'
import { hmacSha1, hmacSha256 } from './integrity.js'
import { STUN_METHOD_CODES, decodeMessageType, encodeMessageType } from './message-type.js'
import type { StunClass, StunMethod } from './message-type.js'

/** A STUN message as a value. */
export interface StunMessage {
  /** The method (Binding, Allocate, …). */
  method: StunMethod
  /** The class (request, indication, success or error response). */
  class: StunClass
  /** 12-byte transaction ID. */
  transactionId: Uint8Array
  /** Attributes in wire order. */
  attributes: StunAttribute[]
}

/** A message produced by {@link decodeStunMessage}: the value plus what was on the wire. */
export interface DecodedStunMessage extends StunMessage {
  /** A copy of the exact bytes received (what integrity checks run over). */
  raw: Uint8Array
  /**
   * Codes of comprehension-required attributes (0x0000–0x7FFF) the decoder did not
   * understand; a server answers such a request with 420 listing them in
   * UNKNOWN-ATTRIBUTES (RFC 8489 §6.3.1). They are also in `attributes` as `'unknown'`.
   */
  unknownRequired: number[]
  /** Offset in `raw` of the MESSAGE-INTEGRITY attribute header, if present. */
  integrityOffset?: number
  /** Offset in `raw` of the MESSAGE-INTEGRITY-SHA256 attribute header, if present. */
  integritySha256Offset?: number
  /** Offset in `raw` of the FINGERPRINT attribute header, if present. */
  fingerprintOffset?: number
}

/** Options of {@link encodeStunMessage}. */
export interface EncodeStunOptions {
  /**
   * Append MESSAGE-INTEGRITY (HMAC-SHA1) computed with this key (see `integrity.ts`
   * for short-term and long-term keys).
   * @default undefined (none)
   */
  integrity?: Uint8Array
  /**
   * Append MESSAGE-INTEGRITY-SHA256 computed with this key (after MESSAGE-INTEGRITY
   * if both are asked for).
   * @default undefined (none)
   */
  integritySha256?: Uint8Array
  /**
   * Length of the MESSAGE-INTEGRITY-SHA256 value: 16–32, a multiple of 4 (RFC 8489 §14.6).
   * @default 32
   */
  integritySha256Length?: number
  /**
   * Append FINGERPRINT as the last attribute.
   * @default false
   */
  fingerprint?: boolean
  /**
   * Byte value written into attribute padding. RFC 8489 §14 says padding "MUST be ignored"
   * by receivers and senders may use any value; RFC 5769's vectors use 0x20.
   * @default 0
   */
  paddingByte?: number
}

/** Options of {@link decodeStunMessage}. */
export interface DecodeStunOptions {
  /**
   * Check a FINGERPRINT attribute if one is present and throw `StunFingerprintError`
   * on mismatch.
   * @default true
   */
  checkFingerprint?: boolean
}

/**
 * Returns a new random 12-byte transaction ID (RFC 8489 §5: cryptographically random).
 *
 * @example
 * ```ts
 * import { createTransactionId } from 'peerlink'
 *
 * const transactionId = createTransactionId()   // 12 cryptographically random bytes
 * const request = { method: 'binding' as const, class: 'request' as const, transactionId, attributes: [] }
 * ```
 */
export function createTransactionId(): Uint8Array {
  return new Uint8Array(randomBytes(STUN_TRANSACTION_ID_LENGTH))
}

/**
 * Returns the first attribute of `type`, or `undefined`.
 *
 * @example
 * ```ts
 * import { decodeStunMessage, getAttribute } from 'peerlink'
 *
 * const message = decodeStunMessage(datagram)
 * const mapped = getAttribute(message, 'xor-mapped-address')?.value   // TransportAddress | undefined
 * const software = getAttribute(message, 'software')?.value           // string | undefined
 * ```
 */
export function getAttribute<T extends StunAttributeType>(
  message: Pick<StunMessage, 'attributes'>,
  type: T,
): StunAttributeOf<T> | undefined {
  return message.attributes.find((a): a is StunAttributeOf<T> => a.type === type)
}

/**
 * Returns every attribute of `type`, in order.
 *
 * @example
 * ```ts
 * import { decodeStunMessage, getAttributes } from 'peerlink'
 *
 * const response = decodeStunMessage(datagram)
 * // An Allocate with ADDITIONAL-ADDRESS-FAMILY answers with one XOR-RELAYED-ADDRESS per family.
 * const relayed = getAttributes(response, 'xor-relayed-address').map((a) => a.value)
 * ```
 */
export function getAttributes<T extends StunAttributeType>(
  message: Pick<StunMessage, 'attributes'>,
  type: T,
): StunAttributeOf<T>[] {
  return message.attributes.filter((a): a is StunAttributeOf<T> => a.type === type)
}

function padded(n: number): number {
  return (n + 3) & ~3
}

function checkMessageShape(message: StunMessage): void {
  if (message === null || typeof message !== 'object') throw new InvalidArgumentError('A STUN message must be an object')
  if (!Object.hasOwn(STUN_METHOD_CODES, message.method)) {
    throw new InvalidArgumentError(`Unknown STUN method ${JSON.stringify(message.method)}`)
  }
  if (!['request', 'indication', 'success', 'error'].includes(message.class)) {
    throw new InvalidArgumentError(`Unknown STUN class ${JSON.stringify(message.class)}`)
  }
  if (!(message.transactionId instanceof Uint8Array) || message.transactionId.length !== STUN_TRANSACTION_ID_LENGTH) {
    throw new InvalidArgumentError('A STUN transaction ID is 12 bytes')
  }
  if (!Array.isArray(message.attributes)) throw new InvalidArgumentError('attributes must be an array')
}

/**
 * Encodes a STUN message. MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are
 * appended in that order when asked for (RFC 8489 §14.5–§14.7); if `attributes` already
 * holds one of them it is written as given (useful for tests), unless the matching option
 * is also set, which is an error.
 *
 * @throws InvalidArgumentError on a value that cannot be encoded or a message over 64 KiB.
 *
 * @example
 * ```ts
 * import { createStunRequest, encodeStunMessage, shortTermKey } from 'peerlink'
 *
 * const request = createStunRequest('binding', [
 *   { type: 'username', value: 'remoteUfrag:localUfrag' },
 *   { type: 'priority', value: 0x6e0001ff },
 * ])
 * const bytes = encodeStunMessage(request, { integrity: shortTermKey('remotePassword'), fingerprint: true })
 * socket.send(bytes, 3478, '192.0.2.1')
 * ```
 */
export function encodeStunMessage(message: StunMessage, options: EncodeStunOptions = {}): Uint8Array {
  checkMessageShape(message)
  const paddingByte = options.paddingByte ?? 0
  if (!Number.isInteger(paddingByte) || paddingByte < 0 || paddingByte > 0xff) {
    throw new InvalidArgumentError('paddingByte must be 0–255')
  }
  const sha256Length = options.integritySha256Length ?? 32
  if (!Number.isInteger(sha256Length) || sha256Length < 16 || sha256Length > 32 || sha256Length % 4 !== 0) {
    throw new InvalidArgumentError('integritySha256Length must be 16–32 and a multiple of 4')
  }
  for (const [opt, type] of [
    [options.integrity, 'message-integrity'],
    [options.integritySha256, 'message-integrity-sha256'],
    [options.fingerprint === true ? true : undefined, 'fingerprint'],
  ] as const) {
    if (opt !== undefined && message.attributes.some((a) => a.type === type)) {
      throw new InvalidArgumentError(`attributes already contain ${type} and the option asks to add one`)
    }
  }
  for (const key of [options.integrity, options.integritySha256]) {
    if (key !== undefined && !(key instanceof Uint8Array)) throw new InvalidArgumentError('An integrity key must be a Uint8Array')
  }

  const tid = message.transactionId
  const encoded = message.attributes.map((a) => encodeAttributeValue(a, tid))
  let total = STUN_HEADER_LENGTH + encoded.reduce((n, e) => n + 4 + padded(e.value.length), 0)
  if (options.integrity !== undefined) total += 24
  if (options.integritySha256 !== undefined) total += 4 + sha256Length
  if (options.fingerprint === true) total += 8
  if (total - STUN_HEADER_LENGTH > 0xffff) throw new InvalidArgumentError(`STUN message too large (${total} bytes)`)

  const out = new Uint8Array(total)
  const view = new DataView(out.buffer)
  view.setUint16(0, encodeMessageType(message.method, message.class))
  view.setUint32(4, STUN_MAGIC_COOKIE)
  out.set(tid, 8)
  let at = STUN_HEADER_LENGTH
  const writeAttribute = (code: number, value: Uint8Array): void => {
    view.setUint16(at, code)
    view.setUint16(at + 2, value.length)
    out.set(value, at + 4)
    out.fill(paddingByte, at + 4 + value.length, at + 4 + padded(value.length))
    at += 4 + padded(value.length)
  }
  for (const { code, value } of encoded) writeAttribute(code, value)

  // RFC 8489 §14.5: the HMAC covers the message up to the attribute, with the header
  // length already counting the MESSAGE-INTEGRITY attribute itself.
  if (options.integrity !== undefined) {
    view.setUint16(2, at + 24 - STUN_HEADER_LENGTH)
    writeAttribute(STUN_ATTRIBUTE_CODES['message-integrity'], hmacSha1(options.integrity, out.subarray(0, at)))
  }
  // RFC 8489 §14.6: same rule for MESSAGE-INTEGRITY-SHA256, truncated to its length.
  if (options.integritySha256 !== undefined) {
    view.setUint16(2, at + 4 + sha256Length - STUN_HEADER_LENGTH)
    const mac = hmacSha256(options.integritySha256, out.subarray(0, at)).subarray(0, sha256Length)
    writeAttribute(STUN_ATTRIBUTE_CODES['message-integrity-sha256'], mac)
  }
  // RFC 8489 §14.7: CRC-32 of everything before FINGERPRINT, length counting it, XOR 0x5354554e.
  view.setUint16(2, total - STUN_HEADER_LENGTH)
  if (options.fingerprint === true) {
    const fp = new Uint8Array(4)
    new DataView(fp.buffer).setUint32(0, computeFingerprint(out.subarray(0, at)))
    writeAttribute(STUN_ATTRIBUTE_CODES.fingerprint, fp)
  }
  return out
}

/**
 * Decodes one STUN message that fills `data` exactly (a UDP datagram, or a frame cut
 * out of a TCP stream with `streamFrameLength`).
 *
 * Checks every length and the padding of every attribute, the magic cookie, the
 * attribute count (≤ 64) and size (≤ 64 KiB). Attributes after MESSAGE-INTEGRITY other
 * than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, after MESSAGE-INTEGRITY-SHA256 other than
 * FINGERPRINT, and after FINGERPRINT are ignored (RFC 8489 §14.5–§14.7): framed, but
 * not decoded or returned.
 *
 * @throws StunMalformedError if `data` is not a well-formed STUN message.
 * @throws StunFingerprintError if FINGERPRINT is present and does not match.
 *
 * @example
 * ```ts
 * import { decodeStunMessage, getAttribute, isStunMessage } from 'peerlink'
 *
 * socket.on('message', (datagram) => {
 *   if (!isStunMessage(datagram)) return
 *   const message = decodeStunMessage(datagram)   // throws StunMalformedError / StunFingerprintError
 *   console.log(message.method, message.class, getAttribute(message, 'xor-mapped-address')?.value)
 * })
 * ```
 */
export function decodeStunMessage(data: Uint8Array, options: DecodeStunOptions = {}): DecodedStunMessage {
  if (!(data instanceof Uint8Array)) throw new StunMalformedError('STUN input must be a Uint8Array')
  if (data.length < STUN_HEADER_LENGTH) throw new StunMalformedError(`STUN message too short (${data.length} bytes)`)
  if (data.length > STUN_MAX_MESSAGE_LENGTH) throw new StunMalformedError(`STUN message too long (${data.length} bytes)`)
  const raw = new Uint8Array(data) // a copy, and a plain Uint8Array even if `data` is a Buffer
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
  const typeField = view.getUint16(0)
  const length = view.getUint16(2)
  // RFC 8489 §6.3: top two bits zero, magic cookie, length a multiple of 4 that matches.
  if ((typeField & 0xc000) !== 0) throw new StunMalformedError('Not a STUN message (top bits set)')
  if (view.getUint32(4) !== STUN_MAGIC_COOKIE) throw new StunMalformedError('Not a STUN message (no magic cookie)')
  if (length % 4 !== 0) throw new StunMalformedError(`STUN length ${length} is not a multiple of 4`)
  if (STUN_HEADER_LENGTH + length !== raw.length) {
    throw new StunMalformedError(`STUN length ${length} does not match ${raw.length - STUN_HEADER_LENGTH} bytes of attributes`)
  }
  const type = decodeMessageType(typeField)
  if (type === undefined) throw new StunMalformedError(`Unknown STUN method in type 0x${typeField.toString(16).padStart(4, '0')}`)
  const transactionId = raw.slice(8, STUN_HEADER_LENGTH)

  const attributes: StunAttribute[] = []
  const unknownRequired: number[] = []
  const result: DecodedStunMessage = { ...type, transactionId, attributes, raw, unknownRequired }
  // 0 = anything allowed, 1 = after MESSAGE-INTEGRITY, 2 = after …-SHA256, 3 = after FINGERPRINT
  let stage = 0
  let count = 0
  for (let at = STUN_HEADER_LENGTH; at < raw.length; ) {
    if (++count > STUN_MAX_ATTRIBUTES) throw new StunMalformedError(`More than ${STUN_MAX_ATTRIBUTES} attributes`)
    if (at + 4 > raw.length) throw new StunMalformedError('Truncated attribute header')
    const code = view.getUint16(at)
    const valueLength = view.getUint16(at + 2)
    if (at + 4 + padded(valueLength) > raw.length) {
      throw new StunMalformedError(`Attribute 0x${code.toString(16)} of length ${valueLength} overruns the message`)
    }
    const value = raw.subarray(at + 4, at + 4 + valueLength)
    const ignore =
      stage === 3 ||
      (stage === 2 && code !== STUN_ATTRIBUTE_CODES.fingerprint) ||
      (stage === 1 &&
        code !== STUN_ATTRIBUTE_CODES.fingerprint &&
        code !== STUN_ATTRIBUTE_CODES['message-integrity-sha256'])
    if (!ignore) {
      const attr = decodeAttributeValue(code, value, transactionId)
      attributes.push(attr)
      if (attr.type === 'unknown' && isComprehensionRequired(code)) unknownRequired.push(code)
      if (attr.type === 'message-integrity') {
        result.integrityOffset = at
        stage = 1
      } else if (attr.type === 'message-integrity-sha256') {
        result.integritySha256Offset = at
        stage = 2
      } else if (attr.type === 'fingerprint') {
        result.fingerprintOffset = at
        stage = 3
        if (options.checkFingerprint !== false) {
          const prefix = raw.slice(0, at)
          new DataView(prefix.buffer).setUint16(2, at + 8 - STUN_HEADER_LENGTH)
          if (computeFingerprint(prefix) !== attr.value) throw new StunFingerprintError()
        }
      }
    }
    at += 4 + padded(valueLength)
  }
  return result
}

/**
 * A request message with a fresh random transaction ID.
 *
 * @example
 * ```ts
 * import { createStunRequest, encodeStunMessage } from 'peerlink'
 *
 * const request = createStunRequest('binding', [{ type: 'software', value: 'myapp 1.0' }])
 * const bytes = encodeStunMessage(request, { fingerprint: true })
 * ```
 */
export function createStunRequest(method: StunMethod, attributes: StunAttribute[] = []): StunMessage {
  return { method, class: 'request', transactionId: createTransactionId(), attributes }
}
