/**
 * STUN credentials and message integrity: short-term and long-term keys (RFC 8489 §9),
 * MESSAGE-INTEGRITY (HMAC-SHA1, §14.5) and MESSAGE-INTEGRITY-SHA256 (§14.6), verified over
 * the message exactly as it was received.
 *
 * Strings are used as UTF-8 without SASLprep/OpaqueString processing: callers that need
 * it pass already-prepared strings (e.g. RFC 5769 §2.4's password "The\u00ADM\u00AAtr\u2168"
 * becomes "TheMatrIX").
 *
 * @module
 */

import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { InvalidArgumentError, StunIntegrityError } from '../errors.js'
import { STUN_HEADER_LENGTH } from './constants.js'
import type { DecodedStunMessage } from './message.js'

/** Password algorithms of RFC 8489 §18.5. */
export type StunPasswordAlgorithmName = 'md5' | 'sha256'

const utf8 = new TextEncoder()

function text(value: string, name: string): Uint8Array {
  if (typeof value !== 'string') throw new InvalidArgumentError(`${name} must be a string`)
  return utf8.encode(value)
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array)) throw new InvalidArgumentError('An integrity key must be a Uint8Array')
}

/**
 * HMAC-SHA1 of `data` (20 bytes).
 *
 * @example
 * ```ts
 * import { hmacSha1 } from 'peerlink'
 *
 * const mac = hmacSha1(new TextEncoder().encode('key'), new TextEncoder().encode('data'))   // 20 bytes
 * ```
 */
export function hmacSha1(key: Uint8Array, data: Uint8Array): Uint8Array {
  checkKey(key)
  return new Uint8Array(createHmac('sha1', key).update(data).digest())
}

/**
 * HMAC-SHA256 of `data` (32 bytes).
 *
 * @example
 * ```ts
 * import { hmacSha256 } from 'peerlink'
 *
 * const mac = hmacSha256(new TextEncoder().encode('key'), new TextEncoder().encode('data'))   // 32 bytes
 * ```
 */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  checkKey(key)
  return new Uint8Array(createHmac('sha256', key).update(data).digest())
}

/**
 * Short-term credential key: the password's UTF-8 bytes (RFC 8489 §9.1.1, without OpaqueString).
 *
 * @example
 * ```ts
 * import { createStunRequest, encodeStunMessage, shortTermKey } from 'peerlink'
 *
 * // ICE connectivity checks are signed with the remote side's password (RFC 8445 §7.1.2).
 * const key = shortTermKey(remoteIcePassword)
 * const bytes = encodeStunMessage(createStunRequest('binding'), { integrity: key, fingerprint: true })
 * ```
 */
export function shortTermKey(password: string): Uint8Array {
  return text(password, 'password')
}

/**
 * Long-term credential key (RFC 8489 §9.2.2): MD5 or SHA-256 of
 * `username ":" realm ":" password` (UTF-8). MD5 is the key for MESSAGE-INTEGRITY of
 * RFC 5389 servers such as coturn.
 *
 * @example
 * ```ts
 * import { longTermKey, verifyMessageIntegrity } from 'peerlink'
 *
 * // TURN long-term credentials (RFC 8489 §9.2.2): the realm comes from the server's 401.
 * const key = longTermKey('alice', 'example.org', 's3cret')          // MD5, what coturn uses
 * const sha256Key = longTermKey('alice', 'example.org', 's3cret', 'sha256')
 * if (!verifyMessageIntegrity(response, key)) throw new Error('forged response')
 * ```
 */
export function longTermKey(
  username: string,
  realm: string,
  password: string,
  algorithm: StunPasswordAlgorithmName = 'md5',
): Uint8Array {
  if (algorithm !== 'md5' && algorithm !== 'sha256') throw new InvalidArgumentError(`Unknown password algorithm ${String(algorithm)}`)
  const input = Buffer.concat([text(username, 'username'), utf8.encode(':'), text(realm, 'realm'), utf8.encode(':'), text(password, 'password')])
  return new Uint8Array(createHash(algorithm).update(input).digest())
}

/**
 * USERHASH value (RFC 8489 §14.4): SHA-256 of `username ":" realm`.
 *
 * @example
 * ```ts
 * import { userHash } from 'peerlink'
 *
 * // USERHASH hides the user name on the wire (RFC 8489 §14.4).
 * const attribute = { type: 'userhash' as const, value: userHash('alice', 'example.org') }
 * ```
 */
export function userHash(username: string, realm: string): Uint8Array {
  const input = Buffer.concat([text(username, 'username'), utf8.encode(':'), text(realm, 'realm')])
  return new Uint8Array(createHash('sha256').update(input).digest())
}

/** HMAC input for the integrity attribute at `offset` with a value of `valueLength` bytes. */
function macInput(raw: Uint8Array, offset: number, valueLength: number): Uint8Array {
  const prefix = raw.slice(0, offset)
  // RFC 8489 §14.5/§14.6: the length field is set to point at the end of the integrity
  // attribute, as if nothing (e.g. FINGERPRINT) followed it.
  new DataView(prefix.buffer).setUint16(2, offset + 4 + valueLength - STUN_HEADER_LENGTH)
  return prefix
}

function storedValue(message: DecodedStunMessage, offset: number): Uint8Array {
  const length = new DataView(message.raw.buffer, message.raw.byteOffset).getUint16(offset + 2)
  return message.raw.subarray(offset + 4, offset + 4 + length)
}

/**
 * Whether the message's MESSAGE-INTEGRITY (HMAC-SHA1) verifies with `key`. False when
 * the attribute is absent.
 *
 * @example
 * ```ts
 * import { decodeStunMessage, shortTermKey, verifyMessageIntegrity } from 'peerlink'
 *
 * const request = decodeStunMessage(datagram)
 * if (!verifyMessageIntegrity(request, shortTermKey(localIcePassword))) {
 *   // RFC 8445 §7.3: a check that does not verify is answered 401 or dropped
 * }
 * ```
 */
export function verifyMessageIntegrity(message: DecodedStunMessage, key: Uint8Array): boolean {
  const at = message.integrityOffset
  if (at === undefined) return false
  const stored = storedValue(message, at)
  const mac = hmacSha1(key, macInput(message.raw, at, stored.length))
  return stored.length === mac.length && timingSafeEqual(stored, mac)
}

/**
 * Whether the message's MESSAGE-INTEGRITY-SHA256 verifies with `key` (the value may be
 * truncated to 16–32 bytes). False when the attribute is absent.
 *
 * @example
 * ```ts
 * import { decodeStunMessage, longTermKey, verifyMessageIntegritySha256 } from 'peerlink'
 *
 * const message = decodeStunMessage(datagram)
 * const ok = verifyMessageIntegritySha256(message, longTermKey('alice', 'example.org', 's3cret', 'sha256'))
 * ```
 */
export function verifyMessageIntegritySha256(message: DecodedStunMessage, key: Uint8Array): boolean {
  const at = message.integritySha256Offset
  if (at === undefined) return false
  const stored = storedValue(message, at)
  const mac = hmacSha256(key, macInput(message.raw, at, stored.length)).subarray(0, stored.length)
  return stored.length >= 16 && timingSafeEqual(stored, mac)
}

/**
 * Verifies the strongest integrity attribute present: MESSAGE-INTEGRITY-SHA256 if the
 * message has one, else MESSAGE-INTEGRITY (RFC 8489 §9.1.4, §9.2.5). False when neither
 * is present.
 *
 * @example
 * ```ts
 * import { decodeStunMessage, shortTermKey, verifyIntegrity } from 'peerlink'
 *
 * const message = decodeStunMessage(datagram)
 * // Checks MESSAGE-INTEGRITY-SHA256 when present, else MESSAGE-INTEGRITY.
 * const authentic = verifyIntegrity(message, shortTermKey('password'))
 * ```
 */
export function verifyIntegrity(message: DecodedStunMessage, key: Uint8Array): boolean {
  if (message.integritySha256Offset !== undefined) return verifyMessageIntegritySha256(message, key)
  return verifyMessageIntegrity(message, key)
}

/**
 * Like {@link verifyIntegrity} but throws.
 *
 * @throws StunIntegrityError if no integrity attribute is present or it does not verify.
 *
 * @example
 * ```ts
 * import { assertIntegrity, decodeStunMessage, shortTermKey } from 'peerlink'
 *
 * const message = decodeStunMessage(datagram)
 * assertIntegrity(message, shortTermKey('password'))   // throws StunIntegrityError (ERR_STUN_INTEGRITY)
 * ```
 */
export function assertIntegrity(message: DecodedStunMessage, key: Uint8Array): void {
  if (message.integrityOffset === undefined && message.integritySha256Offset === undefined) {
    throw new StunIntegrityError('STUN message has no MESSAGE-INTEGRITY attribute')
  }
  if (!verifyIntegrity(message, key)) throw new StunIntegrityError()
}
