/**
 * The WebSocket tunnel client: expose local TCP services through a tunnel server
 * (`peerlink expose`), and the wire protocol shared with the server
 * (`docs/tunnel-protocol.md`).
 *
 * @module
 */
export { TunnelClient, exposeServices } from './tunnel-client.js'
export type {
  ExposedPort,
  TunnelClientOptions,
  TunnelClientEvents,
  TunnelClientState,
  TunnelConnectionInfo,
  TunnelEndpoints,
  TunnelPortEndpoint,
} from './tunnel-client-options.js'
export {
  TUNNEL_PROTOCOL_VERSION,
  TUNNEL_ERROR_REASONS,
  TUNNEL_REJECT_REASONS,
  TUNNEL_MAX_MESSAGE_BYTES,
  type TunnelErrorReason,
  type TunnelRejectReason,
  type TunnelPortMapping,
  type TunnelLimits,
  type TunnelAddress,
  type TunnelClientMessage,
  type TunnelServerMessage,
  type TunnelHelloMessage,
  type TunnelRejectMessage,
  type TunnelPingMessage,
  type TunnelPongMessage,
  type TunnelChallengeMessage,
  type TunnelWelcomeMessage,
  type TunnelConnectionMessage,
  type TunnelErrorMessage,
  encodeTunnelClientMessage,
  encodeTunnelServerMessage,
  decodeTunnelClientMessage,
  decodeTunnelServerMessage,
} from './tunnel-messages.js'
export { isTunnelName, normalizeTunnelName, TUNNEL_NAME_MAX_LENGTH } from './tunnel-name.js'
export { TunnelPeerListener, listenTunnelPeer } from './tunnel-peer-listener.js'
export type { TunnelPeerRequest, TunnelPeerListenerOptions, TunnelPeerListenerState, TunnelPeerListenerEvents } from './tunnel-peer-listener.js'
export { TunnelPeerConnector, openTunnelPeerStream } from './tunnel-peer-connector.js'
export type { OpenTunnelPeerStreamOptions, TunnelPeerConnectorOptions, ConnectTunnelPeerOptions } from './tunnel-peer-connector.js'
export { TunnelSecureConnection, secureTunnelStream } from './tunnel-secure-connection.js'
export type { SecureTunnelStreamOptions, TunnelSecureConnectionCloseOptions } from './tunnel-secure-connection.js'
export type { WebSocketDuplex } from './websocket-duplex.js'
