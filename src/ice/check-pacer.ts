/**
 * Pacing of connectivity checks (RFC 8445 §6.1.4.2, §14.2): at most one new check every
 * Ta milliseconds, the first one at once.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js'

/**
 * Calls `send` at most once every `ta` ms while it reports that it sent something; stops
 * by itself when `send` returns false, and restarts on {@link CheckPacer.kick}.
 */
export class CheckPacer {
  readonly #ta: number
  readonly #send: () => boolean
  #timer: ReturnType<typeof setTimeout> | undefined
  #immediate: ReturnType<typeof setImmediate> | undefined
  #lastSent = -Infinity
  #stopped = false
  #urgent = false

  /**
   * @param ta - minimum interval between two checks in ms (RFC 8445 §14.2 Ta).
   * @param send - sends the next check; returns false when there was none to send.
   */
  constructor(ta: number, send: () => boolean) {
    if (!(Number.isFinite(ta) && ta >= 0)) throw new InvalidArgumentError('Ta must be a number ≥ 0')
    this.#ta = ta
    this.#send = send
  }

  /** There may be a check to send: send it now if Ta has passed, else when it has. */
  kick(): void {
    if (this.#stopped || this.#timer !== undefined || this.#immediate !== undefined) return
    const delay = this.#lastSent + this.#ta - performance.now()
    // Due now: on the next turn of the event loop (a 0 ms timer waits at least 1 ms).
    if (delay <= 0) this.#immediate = setImmediate(this.#tick)
    else this.#timer = setTimeout(this.#tick, delay)
  }

  /**
   * A triggered check answers the peer's check (RFC 8445 §7.3.1.4): send the next check
   * right after the current task, without waiting for Ta. In a hole punch the peer's
   * check is what opened the path our earlier check may have been dropped on; waiting
   * for Ta there would hold the pair up by Ta.
   */
  kickNow(): void {
    if (this.#stopped || this.#urgent) return
    this.#urgent = true
    queueMicrotask(() => {
      this.#urgent = false
      if (this.#stopped) return
      if (this.#timer !== undefined) clearTimeout(this.#timer)
      if (this.#immediate !== undefined) clearImmediate(this.#immediate)
      this.#tick()
    })
  }

  /** Stops for good (clears the timer). */
  stop(): void {
    this.#stopped = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    if (this.#immediate !== undefined) clearImmediate(this.#immediate)
    this.#timer = undefined
    this.#immediate = undefined
  }

  readonly #tick = (): void => {
    this.#timer = undefined
    this.#immediate = undefined
    if (this.#stopped) return
    if (this.#send()) {
      this.#lastSent = performance.now()
      this.kick()
    }
  }
}
