/**
 * TURN client (RFC 8656): allocations, refreshes, permissions, channel bindings and
 * data through the relay, over UDP (from the peer's one socket), TCP and TLS, with
 * long-term or TURN REST API credentials.
 *
 * @module
 */

export { TurnClient } from './turn-client.js'
export type {
  TurnClientConnectOptions,
  TurnClientEvents,
  TurnClientOptions,
  TurnClientState,
  TurnCloseOptions,
  TurnRefreshEvent,
  TurnRefreshKind,
  TurnRefreshOptions,
  TurnRequestSignalOptions,
} from './turn-client-options.js'
export {
  DEFAULT_ALLOCATION_LIFETIME,
  REQUESTED_TRANSPORT_UDP,
} from './allocation.js'
export type { TurnAllocateOptions, TurnAllocation } from './allocation.js'
export { turnRestCredentials } from './credentials.js'
export type { TurnCredentials, TurnRestCredentials, TurnRestCredentialsOptions } from './credentials.js'
export type { TurnPeerAddress } from './permissions.js'
export { connectTurnServer, peerSocketTurnConnection, udpTurnConnection } from './turn-transport.js'
export type {
  ConnectTurnServerOptions,
  TurnConnectionCloseListener,
  TurnFrameListener,
  TurnServerAddress,
  TurnServerConnection,
  TurnTlsOptions,
  UdpTurnConnectionOptions,
} from './turn-transport.js'
export { MAX_HELD_DATAGRAMS, TurnRelayEndpoint } from './turn-relay-endpoint.js'
export type { TurnRelayEndpointOptions } from './turn-relay-endpoint.js'
export { relayTransports } from './turn-relay-allocator.js'
export type { TurnRelayServer } from './turn-relay-allocator.js'
