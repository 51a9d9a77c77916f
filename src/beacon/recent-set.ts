/**
 * A bounded set of recently seen keys, for dropping the duplicates that arrive when the
 * same message travels through several Beacons.
 *
 * @module
 */

/**
 * Remembers keys for `ttlMs` (at most `maxKeys` of them, the oldest forgotten first).
 *
 * @example
 * ```ts
 * import { RecentSet } from 'peerlink'
 *
 * const seen = new RecentSet(60_000)   // remember ids for a minute
 * function onSignal(mid: Uint8Array): void {
 *   if (!seen.add(Buffer.from(mid).toString('base64'))) return   // the same signal via another Beacon
 *   // … handle it once
 * }
 * ```
 */
export class RecentSet {
  readonly #ttlMs: number
  readonly #maxKeys: number
  readonly #now: () => number
  // Insertion order is expiry order: every key lives exactly ttlMs.
  readonly #keys = new Map<string, number>()

  /**
   * @param ttlMs - how long a key is remembered.
   * @param maxKeys - the most keys remembered at once.
   * @param now - clock in milliseconds (tests pass their own).
   */
  constructor(ttlMs: number, maxKeys = 10_000, now: () => number = () => performance.now()) {
    this.#ttlMs = ttlMs
    this.#maxKeys = maxKeys
    this.#now = now
  }

  /** Records `key`; returns false when it was already there (a duplicate). */
  add(key: string): boolean {
    const now = this.#now()
    for (const [oldest, expires] of this.#keys) {
      if (expires > now && this.#keys.size < this.#maxKeys) break
      this.#keys.delete(oldest)
    }
    if (this.#keys.has(key)) return false
    this.#keys.set(key, now + this.#ttlMs)
    return true
  }

  /** Number of keys remembered. */
  get size(): number {
    return this.#keys.size
  }
}
