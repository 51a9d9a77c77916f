/**
 * Reconnection delays: exponential backoff with jitter, so that the clients of a Beacon
 * that restarts do not all come back in the same instant.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js'

/** Options of {@link reconnectDelay}. */
export interface BackoffOptions {
  /**
   * Delay before the first retry, in milliseconds.
   * @default 250
   */
  minDelayMs?: number
  /**
   * Largest delay, in milliseconds.
   * @default 30_000
   */
  maxDelayMs?: number
  /**
   * Fraction of the delay that is random: the delay is `base × (1 − jitter × r)` with
   * `r` uniform in [0, 1). 0 disables jitter, 1 is "full jitter".
   * @default 0.5
   */
  jitter?: number
}

/**
 * The delay before retry number `failures + 1`: `min(maxDelayMs, minDelayMs × 2^failures)`,
 * less a random part of up to `jitter` of it.
 *
 * @param failures - consecutive failed attempts so far (0 for the first retry).
 * @param random - a source of numbers in [0, 1) (tests pass their own).
 * @throws {@link InvalidArgumentError} for negative or non-finite options.
 *
 * @example
 * ```ts
 * import { reconnectDelay } from 'peerlink'
 *
 * async function connectWithRetries(): Promise<WebSocket> {
 *   for (let failures = 0; ; failures++) {
 *     try { return await connectSomewhere() } catch {}
 *     // 250 ms, 500 ms, 1 s, … up to 30 s, each less up to half at random
 *     await new Promise((r) => setTimeout(r, reconnectDelay(failures, { maxDelayMs: 30_000 })))
 *   }
 * }
 * ```
 */
export function reconnectDelay(failures: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const { minDelayMs, maxDelayMs, jitter } = checkBackoffOptions(options)
  const base = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(Math.max(0, failures), 52))
  return Math.round(base * (1 - jitter * random()))
}

/**
 * Checks backoff options and fills in the defaults.
 *
 * @throws {@link InvalidArgumentError} for negative or non-finite values, or `minDelayMs > maxDelayMs`.
 *
 * @example
 * ```ts
 * import { checkBackoffOptions } from 'peerlink'
 *
 * checkBackoffOptions({ minDelayMs: 100 })   // { minDelayMs: 100, maxDelayMs: 30000, jitter: 0.5 }
 * checkBackoffOptions({ jitter: 2 })         // throws InvalidArgumentError
 * ```
 */
export function checkBackoffOptions(options: BackoffOptions): Required<BackoffOptions> {
  const minDelayMs = options.minDelayMs ?? 250
  const maxDelayMs = options.maxDelayMs ?? 30_000
  const jitter = options.jitter ?? 0.5
  if (!(Number.isFinite(minDelayMs) && minDelayMs >= 0)) throw new InvalidArgumentError('minDelayMs must be a number >= 0')
  if (!(Number.isFinite(maxDelayMs) && maxDelayMs >= minDelayMs)) throw new InvalidArgumentError('maxDelayMs must be a number >= minDelayMs')
  if (!(Number.isFinite(jitter) && jitter >= 0 && jitter <= 1)) throw new InvalidArgumentError('jitter must be a number from 0 to 1')
  return { minDelayMs, maxDelayMs, jitter }
}
