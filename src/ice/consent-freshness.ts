/**
 * Consent freshness (RFC 7675): after a pair is selected, a Binding request on it every
 * ~5 s (randomised 0.8–1.2×); consent is lost when no response has arrived for 30 s. The
 * requests also keep NAT bindings open (RFC 8445 §11).
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js'

/** Options of {@link ConsentFreshness}. */
export interface ConsentFreshnessOptions {
  /**
   * Sends one consent check and resolves with its round-trip time in ms, or rejects when it
   * gets no (valid) response. Must stop when `signal` aborts.
   */
  check: (signal: AbortSignal) => Promise<number>
  /** Called once when consent is lost (the pair must no longer be used). */
  onLost: (info: { sinceLastResponseMs: number }) => void
  /**
   * Called with the round-trip time of each successful check.
   * @default undefined
   */
  onResponse?: (rttMs: number) => void
  /**
   * Mean interval between checks in ms (RFC 7675 §5.1: 5 s), randomised 0.8–1.2×.
   * @default 5000
   */
  interval?: number
  /**
   * Consent expires this many ms after the last response (RFC 7675 §5.1: 30 s).
   * @default 30000
   */
  timeout?: number
  /**
   * Random number source in [0, 1) for the interval's jitter.
   * @default Math.random
   */
  random?: () => number
}

/**
 * Runs consent checks until stopped or consent is lost.
 *
 * @example
 * ```ts
 * const consent = new ConsentFreshness({ check: (signal) => sendCheck(pair, signal), onLost: () => fail() })
 * consent.start()
 * ```
 */
export class ConsentFreshness {
  readonly #options: ConsentFreshnessOptions
  readonly #interval: number
  readonly #timeout: number
  readonly #random: () => number
  #timer: ReturnType<typeof setTimeout> | undefined
  #controller: AbortController | undefined
  #lastResponse = 0
  #running = false
  #lost = false

  constructor(options: ConsentFreshnessOptions) {
    if (options === null || typeof options !== 'object' || typeof options.check !== 'function' || typeof options.onLost !== 'function') {
      throw new InvalidArgumentError('ConsentFreshness needs check and onLost functions')
    }
    const interval = options.interval ?? 5000
    const timeout = options.timeout ?? 30000
    if (!(Number.isFinite(interval) && interval > 0)) throw new InvalidArgumentError('consent interval must be a positive number')
    if (!(Number.isFinite(timeout) && timeout > 0)) throw new InvalidArgumentError('consent timeout must be a positive number')
    this.#options = options
    this.#interval = interval
    this.#timeout = timeout
    this.#random = options.random ?? Math.random
  }

  /** Whether consent checks are running. */
  get running(): boolean {
    return this.#running
  }

  /** Whether consent was lost. */
  get lost(): boolean {
    return this.#lost
  }

  /** Milliseconds since the last response (or since start). */
  get sinceLastResponseMs(): number {
    return performance.now() - this.#lastResponse
  }

  /** Starts the checks; consent counts as fresh at this moment (the pair was just validated). */
  start(): void {
    if (this.#running || this.#lost) return
    this.#running = true
    this.#lastResponse = performance.now()
    this.#controller = new AbortController()
    this.#schedule()
  }

  /** Stops every timer and outstanding check. */
  stop(): void {
    this.#running = false
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#controller?.abort()
    this.#controller = undefined
  }

  /** Records a response that arrived by other means (for example an authenticated check from the peer). */
  refresh(): void {
    if (this.#running) this.#lastResponse = performance.now()
  }

  #schedule(): void {
    // RFC 7675 §5.1: randomise the interval to 0.8–1.2 of the base.
    const jitter = 0.8 + 0.4 * this.#random()
    this.#timer = setTimeout(this.#tick, Math.max(1, Math.round(this.#interval * jitter)))
  }

  readonly #tick = (): void => {
    this.#timer = undefined
    if (!this.#running) return
    const since = performance.now() - this.#lastResponse
    // RFC 7675 §5.1: consent expires after `timeout` without a response.
    if (since >= this.#timeout) {
      this.#lost = true
      this.stop()
      this.#options.onLost({ sinceLastResponseMs: since })
      return
    }
    const signal = (this.#controller as AbortController).signal
    this.#options.check(signal).then(
      (rtt) => {
        if (!this.#running || signal.aborted) return
        this.#lastResponse = performance.now()
        this.#options.onResponse?.(rtt)
      },
      () => {
        // No response: counted by the timeout above.
      },
    )
    this.#schedule()
  }
}
