/**
 * The FINGERPRINT attribute: CRC-32 of the message XOR 0x5354554e (RFC 8489 §14.7).
 *
 * @module
 */

import { STUN_FINGERPRINT_XOR, STUN_HEADER_LENGTH } from './constants.js'
import type { DecodedStunMessage } from './message.js'

const CRC_TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

/**
 * CRC-32 (ISO-HDLC, the one of zlib and Ethernet) of `data`.
 *
 * @example
 * ```ts
 * import { crc32 } from 'peerlink'
 *
 * crc32(new TextEncoder().encode('123456789')).toString(16)   // 'cbf43926', the standard check value
 * ```
 */
export function crc32(data: Uint8Array): number {
  let crc = 0xffffffff
  for (let i = 0; i < data.length; i++) {
    crc = (CRC_TABLE[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8)
  }
  return (crc ^ 0xffffffff) >>> 0
}

/**
 * The FINGERPRINT value for the message bytes preceding the attribute (whose header
 * length must already count the FINGERPRINT attribute). RFC 8489 §14.7.
 *
 * @example
 * ```ts
 * import { computeFingerprint, createStunRequest, decodeStunMessage, encodeStunMessage, getAttribute } from 'peerlink'
 *
 * const bytes = encodeStunMessage(createStunRequest('binding'), { fingerprint: true })
 * const message = decodeStunMessage(bytes)
 * const prefix = bytes.slice(0, message.fingerprintOffset)   // its length field already counts FINGERPRINT
 * console.log(computeFingerprint(prefix) === getAttribute(message, 'fingerprint')?.value)   // true
 * ```
 */
export function computeFingerprint(messagePrefix: Uint8Array): number {
  return (crc32(messagePrefix) ^ STUN_FINGERPRINT_XOR) >>> 0
}

/**
 * Whether a decoded message has a FINGERPRINT attribute and it matches the bytes as
 * received. (`decodeStunMessage` already checks it unless told not to.)
 *
 * @example
 * ```ts
 * import { decodeStunMessage, verifyFingerprint } from 'peerlink'
 *
 * // ICE requires FINGERPRINT: decode without throwing, then insist on a matching one.
 * const message = decodeStunMessage(datagram, { checkFingerprint: false })
 * if (!verifyFingerprint(message)) throw new Error('not an ICE connectivity check')
 * ```
 */
export function verifyFingerprint(message: DecodedStunMessage): boolean {
  const at = message.fingerprintOffset
  if (at === undefined || at + 8 > message.raw.length) return false
  const prefix = message.raw.slice(0, at)
  new DataView(prefix.buffer).setUint16(2, at + 8 - STUN_HEADER_LENGTH)
  const stored = new DataView(message.raw.buffer, message.raw.byteOffset).getUint32(at + 4)
  return computeFingerprint(prefix) === stored
}
