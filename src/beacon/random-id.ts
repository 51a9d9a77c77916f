/**
 * Random 16-byte ids (signal and announcement ids, signalling sessions), cut from a pool
 * refilled 4 KiB at a time: one `randomFillSync` per 256 ids instead of one per id
 * (each costs tens of microseconds on some virtual machines).
 *
 * @module
 */
import { randomFillSync } from 'node:crypto'

const POOL_BYTES = 4096
let pool = new Uint8Array(0)
let offset = 0

/**
 * Returns `bytes` (at most 4096) fresh random bytes: a view of the pool, which is replaced, never overwritten.
 *
 * @example
 * ```ts
 * import { randomId } from 'peerlink'
 *
 * const mid = randomId()       // 16 random bytes
 * const nonce = randomId(32)   // up to 4096 bytes, from a pool refilled 4 KiB at a time
 * ```
 */
export function randomId(bytes = 16): Uint8Array {
  if (offset + bytes > pool.byteLength) {
    pool = randomFillSync(new Uint8Array(POOL_BYTES))
    offset = 0
  }
  const id = pool.subarray(offset, offset + bytes)
  offset += bytes
  return id
}
