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
  if (signal.aborted) return Promise.reject(new AbortError(undefined, { cause: signal.reason }))
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(new AbortError(undefined, { cause: signal.reason }))
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
