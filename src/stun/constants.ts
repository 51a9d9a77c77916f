/**
 * Fixed numbers of the STUN wire format (RFC 8489) shared by the codec modules.
 *
 * @module
 */

/** The magic cookie every RFC 5389/8489 STUN message carries at offset 4 (RFC 8489 §5). */
export const STUN_MAGIC_COOKIE = 0x2112a442

/** Length in bytes of the fixed STUN message header (RFC 8489 §5). */
export const STUN_HEADER_LENGTH = 20

/** Length in bytes of a STUN transaction ID (RFC 8489 §5). */
export const STUN_TRANSACTION_ID_LENGTH = 12

/** Value XORed into the CRC-32 of a FINGERPRINT attribute (RFC 8489 §14.7). */
export const STUN_FINGERPRINT_XOR = 0x5354554e

/** Largest STUN message the decoder accepts, in bytes (header included). */
export const STUN_MAX_MESSAGE_LENGTH = 65536

/** Largest number of attributes the decoder accepts in one message. */
export const STUN_MAX_ATTRIBUTES = 64
