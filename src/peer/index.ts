/**
 * Connecting to peers by PeerId: {@link createPeer}, {@link Peer}, {@link PeerConnection}.
 * @module
 */
export { Peer, createPeer } from './peer.js'
export { MAIN_STREAM_LABEL, PeerConnection } from './peer-connection.js'
export type { PeerConnectionEventMap } from './peer-connection.js'
export type { PeerTurnServer } from './turn-relays.js'
export type { PathChange, PathChangeReason, PathRecoveryOptions } from './path-manager.js'
export { RELAY_SAFE_MTU } from './stream-splice.js'
export { CONNECTION_PATHS } from './peer-options.js'
export { MAX_RENDEZVOUS_IDENTIFIER_BYTES, RENDEZVOUS_TAG, rendezvousTopic } from './rendezvous.js'
export type { AttemptEvent, ConnectOptions, ConnectionInfo, ConnectionPath, ListenOptions, PeerEvents, PeerGatherOptions, PeerIceOptions, PeerOptions } from './peer-options.js'
export { DEFAULT_TUNNEL_FALLBACK_DELAY } from './tunnel-options.js'
export type { PeerTunnelOptions } from './tunnel-options.js'
export type { TunnelStartReason } from './tunnel-path.js'
