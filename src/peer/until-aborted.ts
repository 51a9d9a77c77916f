/**
 * Waiting on a promise for as long as a connection attempt runs ({@link untilAborted}).
 *
 * @module
 */

/**
 * `promise`, or a rejection with the attempt signal's *reason* (the attempt's real error:
 * a peer not found, a close from the peer, …) when it aborts first — unlike
 * `abortable()` (`src/abortable.ts`), which rejects with an `AbortError`.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}
