/**
 * Per-key token buckets with a bounded table, for limiting what strangers may send.
 *
 * @module
 */

/** Options of {@link RateLimiter}. */
export interface RateLimiterOptions {
  /** Tokens added per second to each key's bucket. */
  ratePerSecond: number
  /** Bucket capacity (the largest burst). */
  burst: number
  /**
   * Keys tracked at most; when full, the least recently refilled key is forgotten
   * (it starts again with a full bucket), so memory stays bounded under a flood of
   * spoofed sources.
   * @default 10_000
   */
  maxKeys?: number
  /**
   * Clock in milliseconds (tests pass their own).
   * @default performance.now
   */
  now?: () => number
}

/**
 * A token bucket per key (e.g. per source IP).
 *
 * @example
 * ```ts
 * import { RateLimiter } from 'peerlink/server'
 *
 * const limiter = new RateLimiter({ ratePerSecond: 10, burst: 20 })
 * socket.on('message', (data, rinfo) => {
 *   if (!limiter.take(rinfo.address)) return   // over 10/s (after a burst of 20): drop
 *   answer(data, rinfo)
 * })
 * ```
 */
export class RateLimiter {
  readonly #rate: number
  readonly #burst: number
  readonly #maxKeys: number
  readonly #now: () => number
  // Map iteration order is insertion order: re-inserting on every take keeps it LRU.
  readonly #buckets = new Map<string, { tokens: number; at: number }>()

  constructor(options: RateLimiterOptions) {
    this.#rate = options.ratePerSecond
    this.#burst = options.burst
    this.#maxKeys = options.maxKeys ?? 10_000
    this.#now = options.now ?? (() => performance.now())
  }

  /** Takes one token from `key`'s bucket; `false` when it is empty (the caller drops the request). */
  take(key: string): boolean {
    const now = this.#now()
    const bucket = this.#buckets.get(key)
    let tokens = this.#burst
    if (bucket !== undefined) {
      tokens = Math.min(this.#burst, bucket.tokens + ((now - bucket.at) / 1000) * this.#rate)
      this.#buckets.delete(key)
    } else if (this.#buckets.size >= this.#maxKeys) {
      this.#buckets.delete(this.#buckets.keys().next().value!)
    }
    const allowed = tokens >= 1
    this.#buckets.set(key, { tokens: allowed ? tokens - 1 : tokens, at: now })
    return allowed
  }

  /** Number of keys currently tracked. */
  get size(): number {
    return this.#buckets.size
  }
}
