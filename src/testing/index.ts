/**
 * Test helpers for applications built on peerlink. The NAT lab (network namespaces with
 * kernel NAT) arrives with the direct-connection release; today this module exports the
 * resource leak checks peerlink's own tests use.
 *
 * @packageDocumentation
 */
export {}
