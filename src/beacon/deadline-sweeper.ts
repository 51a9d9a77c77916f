/**
 * One timer for the request deadlines of every Beacon client in the process, instead of
 * a `setTimeout` per request: a client with requests in flight joins the sweep, and is
 * asked every {@link SWEEP_INTERVAL_MS} to fail those past their deadline; it leaves when
 * it has none left. A request times out up to one interval late.
 *
 * @module
 */

/** Milliseconds between sweeps. */
export const SWEEP_INTERVAL_MS = 50

/** Something with deadlines to enforce. */
export interface DeadlineOwner {
  /** Fails what is past its deadline at `now` (`performance.now()`); returns true while anything is left. */
  sweep(now: number): boolean
}

const owners = new Set<DeadlineOwner>()
let timer: ReturnType<typeof setInterval> | undefined

function tick(): void {
  const now = performance.now()
  for (const owner of owners) {
    if (!owner.sweep(now)) owners.delete(owner)
  }
  if (owners.size === 0) {
    clearInterval(timer)
    timer = undefined
  }
}

/**
 * Puts `owner` in the sweep (no-op when it is in already). The timer does not keep the
 * process alive (the connections a request waits on do).
 */
export function watchDeadlines(owner: DeadlineOwner): void {
  owners.add(owner)
  if (timer === undefined) {
    timer = setInterval(tick, SWEEP_INTERVAL_MS)
    timer.unref()
  }
}
