/**
 * The Beacon client and the wire messages shared with the server (see
 * `docs/beacon-protocol.md`).
 *
 * @module
 */
export * from './beacon-messages.js'
export {
  BEACON_TOKEN_DOMAIN,
  beaconToken,
  beaconAuthPayload,
  signBeaconChallenge,
  verifyBeaconHello,
  beaconPeerKey,
  beaconTopicKey,
} from './beacon-auth.js'
export { type BeaconConnectOptions, type BeaconConnection, connectBeacon, beaconSecureContext, formatBeaconAddress, errorFromReply } from './beacon-connect.js'
export { randomId } from './random-id.js'
export {
  type BeaconAddress,
  type BeaconClientOptions,
  type BeaconClientState,
  type BeaconClientEvents,
  type BeaconRequestOptions,
  type IncomingSignal,
  type Introduction,
  type OutgoingSignal,
  type SignalResult,
  BeaconClient,
} from './beacon-client.js'
export { type BeaconSetOptions, type BeaconSetEvents, BeaconSet } from './beacon-set.js'
export { type BackoffOptions, reconnectDelay, checkBackoffOptions } from './backoff.js'
export { RecentSet } from './recent-set.js'
