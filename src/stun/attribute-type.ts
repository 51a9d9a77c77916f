/**
 * STUN attribute type codes (IANA "STUN Attributes" registry) for the attributes of
 * STUN (RFC 8489), ICE (RFC 8445), TURN (RFC 8656) and NAT behaviour discovery (RFC 5780).
 *
 * @module
 */

/**
 * Attribute type codes by name.
 *
 * @example
 * ```ts
 * import { STUN_ATTRIBUTE_CODES } from 'peerlink'
 *
 * console.log(STUN_ATTRIBUTE_CODES['xor-mapped-address'].toString(16))   // '20'
 * console.log(STUN_ATTRIBUTE_CODES.fingerprint.toString(16))             // '8028'
 * ```
 */
export const STUN_ATTRIBUTE_CODES = {
  'mapped-address': 0x0001,
  'change-request': 0x0003,
  username: 0x0006,
  'message-integrity': 0x0008,
  'error-code': 0x0009,
  'unknown-attributes': 0x000a,
  'channel-number': 0x000c,
  lifetime: 0x000d,
  'xor-peer-address': 0x0012,
  data: 0x0013,
  realm: 0x0014,
  nonce: 0x0015,
  'xor-relayed-address': 0x0016,
  'requested-address-family': 0x0017,
  'even-port': 0x0018,
  'requested-transport': 0x0019,
  'dont-fragment': 0x001a,
  'message-integrity-sha256': 0x001c,
  'password-algorithm': 0x001d,
  userhash: 0x001e,
  'xor-mapped-address': 0x0020,
  'reservation-token': 0x0022,
  priority: 0x0024,
  'use-candidate': 0x0025,
  padding: 0x0026,
  'response-port': 0x0027,
  'additional-address-family': 0x8000,
  'address-error-code': 0x8001,
  'password-algorithms': 0x8002,
  'alternate-domain': 0x8003,
  icmp: 0x8004,
  software: 0x8022,
  'alternate-server': 0x8023,
  fingerprint: 0x8028,
  'ice-controlled': 0x8029,
  'ice-controlling': 0x802a,
  'response-origin': 0x802b,
  'other-address': 0x802c,
} as const

/** Names of the attributes the codec understands. */
export type KnownStunAttributeType = keyof typeof STUN_ATTRIBUTE_CODES

const NAME_BY_CODE = new Map<number, KnownStunAttributeType>(
  (Object.entries(STUN_ATTRIBUTE_CODES) as [KnownStunAttributeType, number][]).map(([name, code]) => [
    code,
    name,
  ]),
)

/**
 * Returns the attribute name for a type code, or `undefined` if peerlink does not know it.
 *
 * @example
 * ```ts
 * import { attributeNameOf } from 'peerlink'
 *
 * attributeNameOf(0x0020)   // 'xor-mapped-address'
 * attributeNameOf(0x7fff)   // undefined
 * ```
 */
export function attributeNameOf(code: number): KnownStunAttributeType | undefined {
  return NAME_BY_CODE.get(code)
}

/**
 * Whether an attribute type is comprehension-required: codes 0x0000–0x7FFF
 * (RFC 8489 §14). A message with an unknown comprehension-required attribute cannot
 * be processed (a server answers 420 Unknown Attribute).
 *
 * @example
 * ```ts
 * import { isComprehensionRequired } from 'peerlink'
 *
 * isComprehensionRequired(0x0024)   // true: PRIORITY, a receiver must understand it
 * isComprehensionRequired(0x8022)   // false: SOFTWARE may be ignored
 * ```
 */
export function isComprehensionRequired(code: number): boolean {
  return code >= 0 && code < 0x8000
}
