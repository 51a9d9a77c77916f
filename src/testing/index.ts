/**
 * Test helpers for applications built on peerlink: the NAT lab ({@link createNatLab}:
 * real Linux network namespaces with kernel NAT boxes described by RFC 4787, firewalls
 * and packet loss; see `docs/nat-lab.md`) and the resource leak checks peerlink's own
 * tests use.
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
export {
  createNatLab,
  type NatLab,
  type NatLabNode,
  type NatLabSite,
  type NatLabForkOptions,
  type NatLabExecOptions,
} from './nat-lab/nat-lab.js'
export {
  NAT_LAB_LIMITS,
  type NatLabOptions,
  type NatLabServerOptions,
  type NatLabSiteOptions,
  type NatLabMapping,
  type NatLabFiltering,
  type NatLabFirewall,
} from './nat-lab/lab-options.js'
export { type NatLabNodeKind } from './nat-lab/lab-plan.js'
export { natLabSupport, type NatLabSupport } from './nat-lab/lab-support.js'
export { sweepStaleLabs, type SweepStaleLabsOptions, type SweepStaleLabsResult } from './nat-lab/stale-labs.js'
