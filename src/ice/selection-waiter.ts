/**
 * The promise {@link IceAgent.connect} returns: settled by the agent through its set of
 * waiters (selection, failure, close), by a timeout, or by an abort signal.
 *
 * @module
 */
import { AbortError } from '../errors.js'
import type { IceSelection } from './ice-agent-options.js'
// Referenced from TSDoc only.
import type { IceAgent } from './ice-agent.js'

/** One pending `connect()`: the agent resolves or rejects it. */
export interface SelectionWaiter {
  /** A pair was selected. */
  resolve(selection: IceSelection): void
  /** The agent failed or closed. */
  reject(error: unknown): void
}

/**
 * Adds a waiter to `waiters` and returns its promise. After `timeout` ms `onTimeout` is
 * called (the agent then fails, rejecting the waiter); when `signal` aborts, the promise
 * rejects with `AbortError` and `onAbort` is called.
 */
export function waitForSelection(
  waiters: Set<SelectionWaiter>,
  options: { timeout: number; signal?: AbortSignal | undefined; onTimeout: () => void; onAbort: () => void },
): Promise<IceSelection> {
  const { signal } = options
  return new Promise<IceSelection>((resolve, reject) => {
    const timer = setTimeout(options.onTimeout, options.timeout)
    const onAbort = (): void => {
      cleanup()
      reject(new AbortError(undefined, { cause: signal?.reason }))
      options.onAbort()
    }
    const cleanup = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      waiters.delete(waiter)
    }
    const waiter: SelectionWaiter = {
      resolve: (selection) => {
        cleanup()
        resolve(selection)
      },
      reject: (error) => {
        cleanup()
        reject(error)
      },
    }
    waiters.add(waiter)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
