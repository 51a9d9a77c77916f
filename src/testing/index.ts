/**
 * Test helpers for applications built on peerlink. The NAT lab (network namespaces with
 * kernel NAT) arrives with the direct-connection release; today this module exports the
 * resource leak checks peerlink's own tests use.
 *
 * @example
 * ```ts
 * import { snapshotActiveResources, assertNoNewResources } from 'peerlink/testing'
 *
 * const before = snapshotActiveResources()
 * await runMyScenario()
 * await assertNoNewResources(before)   // throws, naming any socket or timer left open
 * ```
 *
 * @packageDocumentation
 */
export {
  type ResourceSnapshot,
  type AssertNoNewResourcesOptions,
  snapshotActiveResources,
  diffActiveResources,
  assertNoNewResources,
} from './leak-check.js'
