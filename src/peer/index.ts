/**
 * Connecting to peers by PeerId: {@link createPeer}, {@link Peer}, {@link PeerConnection}.
 * @module
 */
export { Peer, createPeer } from './peer.js'
export { MAIN_STREAM_LABEL, PeerConnection } from './peer-connection.js'
export type { PeerConnectionEventMap } from './peer-connection.js'
export { CONNECTION_PATHS } from './peer-options.js'
export type { AttemptEvent, ConnectOptions, ConnectionInfo, ConnectionPath, ListenOptions, PeerEvents, PeerGatherOptions, PeerIceOptions, PeerOptions } from './peer-options.js'
