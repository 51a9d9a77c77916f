/**
 * Racing a promise against an `AbortSignal`.
 *
 * @module
 */
import { AbortError } from './errors.js'

/**
 * Resolves or rejects like `promise`, unless `signal` aborts first: then it rejects with
 * `AbortError` (the signal's reason as `cause`). The promise itself is not cancelled —
 * the caller stops the work behind it. Without a signal, returns `promise` itself.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise
  return race(promise, signal, () => new AbortError(undefined, { cause: signal.reason }))
}

/**
 * `promise`, or a rejection with the signal's *reason* itself when it aborts first: for
 * a connection attempt, whose signal carries the attempt's real error (a peer not found,
 * a close from the peer, …) — unlike {@link abortable}, which rejects with an `AbortError`.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return race(promise, signal, () => signal.reason as unknown)
}

function race<T>(promise: Promise<T>, signal: AbortSignal, abortError: () => unknown): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError())
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(abortError())
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
