/**
 * Fixed numbers of the STUN wire format (RFC 8489) shared by the codec modules.
 *
 * @module
 */

/**
 * The magic cookie every RFC 5389/8489 STUN message carries at offset 4 (RFC 8489 §5).
 *
 * @example
 * ```ts
 * import { STUN_MAGIC_COOKIE } from 'peerlink'
 *
 * // The cookie sits at byte offset 4 of every RFC 5389/8489 STUN message.
 * const looksLikeStun = (d: Buffer) => d.length >= 20 && d.readUInt32BE(4) === STUN_MAGIC_COOKIE
 * ```
 */
export const STUN_MAGIC_COOKIE = 0x2112a442

/**
 * Length in bytes of the fixed STUN message header (RFC 8489 §5).
 *
 * @example
 * ```ts
 * import { STUN_HEADER_LENGTH, createStunRequest, encodeStunMessage } from 'peerlink'
 *
 * const bytes = encodeStunMessage(createStunRequest('binding'))
 * console.log(bytes.length === STUN_HEADER_LENGTH)   // true: no attributes, header only
 * ```
 */
export const STUN_HEADER_LENGTH = 20

/**
 * Length in bytes of a STUN transaction ID (RFC 8489 §5).
 *
 * @example
 * ```ts
 * import { STUN_TRANSACTION_ID_LENGTH, createTransactionId } from 'peerlink'
 *
 * console.log(createTransactionId().length === STUN_TRANSACTION_ID_LENGTH)   // true: 12
 * ```
 */
export const STUN_TRANSACTION_ID_LENGTH = 12

/**
 * Value XORed into the CRC-32 of a FINGERPRINT attribute (RFC 8489 §14.7).
 *
 * @example
 * ```ts
 * import { STUN_FINGERPRINT_XOR, computeFingerprint, crc32 } from 'peerlink'
 *
 * const prefix = new Uint8Array(20)
 * console.log(computeFingerprint(prefix) === ((crc32(prefix) ^ STUN_FINGERPRINT_XOR) >>> 0))   // true
 * ```
 */
export const STUN_FINGERPRINT_XOR = 0x5354554e

/**
 * Largest STUN message the decoder accepts, in bytes (header included).
 *
 * @example
 * ```ts
 * import { STUN_MAX_MESSAGE_LENGTH, decodeStunMessage } from 'peerlink'
 *
 * // Larger inputs are rejected with StunMalformedError before any parsing.
 * if (datagram.length <= STUN_MAX_MESSAGE_LENGTH) handle(decodeStunMessage(datagram))
 * ```
 */
export const STUN_MAX_MESSAGE_LENGTH = 65536

/**
 * Largest number of attributes the decoder accepts in one message.
 *
 * @example
 * ```ts
 * import { STUN_MAX_ATTRIBUTES, createStunRequest, encodeStunMessage } from 'peerlink'
 *
 * const many = Array.from({ length: STUN_MAX_ATTRIBUTES + 1 }, () => ({ type: 'software' as const, value: 'x' }))
 * const bytes = encodeStunMessage(createStunRequest('binding', many))
 * // decodeStunMessage(bytes) throws StunMalformedError: more than 64 attributes
 * ```
 */
export const STUN_MAX_ATTRIBUTES = 64
