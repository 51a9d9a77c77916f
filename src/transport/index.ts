/**
 * The transport layer: the one UDP socket and its demultiplexer, and the verified
 * secure connection that runs over it.
 *
 * @module
 */
export { classifyDatagram, STUN_MAGIC_COOKIE, STUN_HEADER_LENGTH, CHANNEL_DATA_HEADER_LENGTH } from './packet-demux.js'
export type { DatagramKind } from './packet-demux.js'
export { PeerSocket, MAX_DELIVERABLE_DATAGRAM } from './peer-socket.js'
export type { PeerSocketOptions, PeerSocketStats, DatagramAddress, DatagramListener } from './peer-socket.js'
export { SecureConnection, openSecureConnection } from './secure-connection.js'
export { SecureHandshake } from './secure-handshake.js'
export type {
  OpenSecureConnectionOptions,
  SecureConnectionCloseOptions,
  TransportKeyPair,
  RemoteEndpoint,
} from './secure-connection.js'
export { peerSocketEndpoint } from './peer-socket-endpoint.js'
