/**
 * Rekeying of the secure connection's records (Noise §11.3, `REKEY(k)` with the
 * `AESGCM` cipher functions): the next key is the first 32 bytes of the AES-256-GCM
 * encryption of 32 zero bytes under the current key with the nonce 2^64 − 1 (a nonce the
 * record counters never reach). Both sides rekey a direction after every
 * {@link REKEY_INTERVAL} records of it, so no key encrypts more than 64 GiB — within
 * the safety margin RFC 8446 §5.5 gives AES-GCM (2^24.5 records of 16 KiB per key).
 *
 * @module
 */
import { createCipheriv } from 'node:crypto'

/** Records (of at most 64 KiB + 1 KiB) per key and direction: 2^20, so at most 65 GiB. A protocol constant. */
export const REKEY_INTERVAL = 2 ** 20

/**
 * The interval in force: {@link REKEY_INTERVAL}, changed only by tests (both sides of a
 * test connection run in one process, so they change it together).
 *
 * @internal
 */
export const rekeyPolicy = { interval: REKEY_INTERVAL }

const MAX_NONCE = Buffer.from([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
const ZEROS = Buffer.alloc(32)

/**
 * The key that follows `key` (32 bytes).
 *
 * @internal
 * @example
 * ```ts
 * const next = rekey(randomBytes(32)) // 32 bytes, the same on both sides
 * ```
 */
export function rekey(key: Uint8Array): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, MAX_NONCE)
  const next = cipher.update(ZEROS)
  cipher.final()
  return next
}
