/**
 * peerlink: connect to a peer by its public key, through any NAT or firewall, over an
 * encrypted stream that is verified to end at that peer.
 *
 * This release holds the foundation: identities and PeerIds, the STUN codec and client
 * (including RFC 5780 NAT behaviour discovery), and the verified secure connection over
 * one UDP socket. `createPeer` / `peer.connect(peerId)` arrive with the ICE agent.
 *
 * @example
 * ```ts
 * import { loadOrCreateIdentity } from 'peerlink'
 *
 * const identity = await loadOrCreateIdentity('./peer.key')   // created with mode 0600
 * console.log(identity.peerId)                                  // 12D3KooW…
 * ```
 *
 * @packageDocumentation
 */
export * from './errors.js'
export * from './identity/index.js'
export * from './stun/index.js'
export * from './server-spec.js'
export * from './beacon/index.js'
export * from './tunnel/index.js'
