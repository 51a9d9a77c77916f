/**
 * Resource leak checks for tests: take a snapshot of the event loop's active resources
 * before a scenario, and assert that none are left over after it.
 *
 * They see what Node itself tracks (`process.getActiveResourcesInfo()`: TCP/UDP/pipe
 * handles, timers, pending fs and DNS requests, …). Native add-ons that run their own
 * libuv handles — udx-native does — are invisible to it; for those, run the scenario in
 * a child `node` process and check that it exits by itself (the event loop drained).
 *
 * @example
 * ```ts
 * import { snapshotActiveResources, assertNoNewResources } from 'peerlink/testing'
 *
 * const before = snapshotActiveResources()
 * await runScenario()                    // opens and closes sockets, timers, …
 * await assertNoNewResources(before)     // throws an AssertionError listing leftovers
 * ```
 *
 * @module
 */
import { AssertionError } from 'node:assert'
import { setTimeout as sleep } from 'node:timers/promises'

/** Counts of active resources by type name (e.g. `'UDPWrap'`, `'Timeout'`). */
export interface ResourceSnapshot {
  /** Number of active resources of each type at the time of the snapshot. */
  readonly counts: Readonly<Record<string, number>>
}

/** Options of {@link assertNoNewResources}. */
export interface AssertNoNewResourcesOptions {
  /**
   * Milliseconds to wait for resources to go away (closing a handle takes a turn or two
   * of the event loop) before failing.
   * @default 1_000
   */
  timeout?: number
  /**
   * Resource types never reported as leaks (for example `'TTYWrap'` when the test
   * prints, or `'Timeout'` when the test runner keeps its own timers).
   * @default []
   */
  ignore?: readonly string[]
}

/**
 * Record the active resources right now.
 *
 * @example
 * ```ts
 * import { snapshotActiveResources } from 'peerlink/testing'
 *
 * const before = snapshotActiveResources()
 * console.log(before.counts)   // e.g. { TTYWrap: 2, Timeout: 1 }
 * ```
 */
export function snapshotActiveResources(): ResourceSnapshot {
  const counts: Record<string, number> = {}
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1
  return { counts }
}

/**
 * Resource types of which `after` holds more than `before`, with how many more.
 * An empty object means nothing new.
 *
 * @example
 * ```ts
 * import { diffActiveResources, snapshotActiveResources } from 'peerlink/testing'
 * import dgram from 'node:dgram'
 *
 * const before = snapshotActiveResources()
 * const socket = dgram.createSocket('udp4')
 * console.log(diffActiveResources(before))   // { UDPWrap: 1 }
 * socket.close()
 * ```
 */
export function diffActiveResources(
  before: ResourceSnapshot,
  after: ResourceSnapshot = snapshotActiveResources(),
): Record<string, number> {
  const added: Record<string, number> = {}
  for (const [type, count] of Object.entries(after.counts)) {
    const extra = count - (before.counts[type] ?? 0)
    if (extra > 0) added[type] = extra
  }
  return added
}

/**
 * Wait until no resource types beyond `before` remain active (ignoring `options.ignore`),
 * polling every 10 ms; rejects with an `AssertionError` naming the leftovers after
 * `options.timeout`.
 *
 * @example
 * ```ts
 * import { afterEach, beforeEach } from 'vitest'
 * import { assertNoNewResources, snapshotActiveResources, type ResourceSnapshot } from 'peerlink/testing'
 *
 * let before: ResourceSnapshot
 * beforeEach(() => { before = snapshotActiveResources() })
 * afterEach(() => assertNoNewResources(before, { timeout: 2_000, ignore: ['TTYWrap'] }))   // names what a test left open
 * ```
 */
export async function assertNoNewResources(
  before: ResourceSnapshot,
  options: AssertNoNewResourcesOptions = {},
): Promise<void> {
  const { timeout = 1_000, ignore = [] } = options
  const deadline = Date.now() + timeout
  for (;;) {
    const added = diffActiveResources(before)
    for (const type of ignore) delete added[type]
    if (Object.keys(added).length === 0) return
    if (Date.now() >= deadline) {
      throw new AssertionError({
        message: `Resources still active after ${timeout} ms: ${JSON.stringify(added)}`,
        actual: added,
        expected: {},
        operator: 'assertNoNewResources',
      })
    }
    await sleep(10)
  }
}
