/**
 * The public types of {@link BeaconClient}: options, events, and what signals and
 * introductions carry.
 *
 * @module
 */
import type { Identity } from '../identity/identity.js'
import type { BeaconServerSpec } from '../server-spec.js'
import type { TransportAddress } from '../stun/address.js'
import type { BeaconClient } from './beacon-client.js'
import type { BeaconSignalKind } from './beacon-messages.js'
import type { BackoffOptions } from './backoff.js'

/** A Beacon: a spec string `HOST[:PORT][#CERT_HASH]` or a parsed spec. */
export type BeaconAddress = string | BeaconServerSpec

/** Options of {@link BeaconClient}. */
export interface BeaconClientOptions extends BackoffOptions {
  /** The identity this client proves to the Beacon. */
  identity: Identity
  /** The Beacon, or alternative addresses of one Beacon fleet (tried in turn after failures). */
  server: BeaconAddress | readonly BeaconAddress[]
  /**
   * Certificates to trust besides the system's CAs, for Beacons without a `#CERT_HASH` pin.
   * @default undefined
   */
  ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array>
  /**
   * Milliseconds for one connection attempt (TCP, TLS, WebSocket, proof of key).
   * @default 10_000
   */
  connectTimeout?: number
  /**
   * Milliseconds to wait for the answer to a request.
   * @default 10_000
   */
  requestTimeout?: number
  /**
   * Milliseconds of silence after which the client pings the Beacon; a Beacon silent for
   * two of them is considered gone and the client reconnects. (The Beacon's own
   * heartbeat pings, every `limits.heartbeatMs`, count as signs of life.)
   * @default 20_000
   */
  heartbeatMs?: number
  /**
   * Closes the client when aborted.
   * @default undefined
   */
  signal?: AbortSignal
}

/** Where a {@link BeaconClient} is. */
export type BeaconClientState = 'idle' | 'connecting' | 'connected' | 'waiting' | 'closed'

/** A signal from another peer, whose PeerId the Beacon authenticated. */
export interface IncomingSignal {
  /** The sender. */
  from: string
  /** Offer, answer, candidate or close. */
  kind: BeaconSignalKind
  /** The connection attempt (16 bytes, chosen by the offerer). */
  session: Uint8Array
  /** The sender's id of this signal (the same through every Beacon). */
  mid: Uint8Array
  /** The opaque signalling data. */
  payload: Uint8Array
  /** The sender's addresses as its Beacon saw them. */
  observed: TransportAddress[]
  /** The Beacon it came through (`HOST:PORT`). */
  server: string
}

/** Another peer announced an identifier this client announced (symmetric mode). */
export interface Introduction {
  /** The identifier. */
  topic: Uint8Array
  /** The other peer (authenticated by the Beacon). */
  peerId: string
  /** The other peer's addresses as its Beacon saw them. */
  observed: TransportAddress[]
  /** The other peer's announcement payload, if any. */
  payload: Uint8Array | undefined
  /** The other peer's announcement id (the same through every Beacon). */
  mid: Uint8Array
  /** The Beacon it came through (`HOST:PORT`). */
  server: string
}

/** A signal to send with {@link BeaconClient.signal}. */
export interface OutgoingSignal {
  /** Offer, answer, candidate or close. */
  kind: BeaconSignalKind
  /** The connection attempt (16 bytes). */
  session: Uint8Array
  /** The opaque signalling data (at most 8 KiB). */
  payload: Uint8Array
  /**
   * Id of this signal; send the same through every Beacon so the receiver drops duplicates.
   * @default 16 random bytes
   */
  mid?: Uint8Array
}

/** The Beacon's answer to a signal. */
export interface SignalResult {
  /** The target's addresses as its Beacon saw them. */
  observed: TransportAddress[]
  /** The Beacon that delivered it (`HOST:PORT`). */
  server: string
}

/** Options of requests that can be cancelled. */
export interface BeaconRequestOptions {
  /**
   * Cancels the request (rejects with `AbortError`).
   * @default undefined
   */
  signal?: AbortSignal
}

/** Events of a {@link BeaconClient}. */
export interface BeaconClientEvents {
  /** Connected and authenticated; registrations and announcements are being restored. */
  connected: [info: { server: string; observed: TransportAddress }]
  /** The connection failed or was lost (`error` says why; undefined after a clean close); a reconnection follows unless closed. */
  disconnected: [error: Error | undefined]
  /** Restoring the registration or an announcement after a reconnection failed. */
  'sync-error': [error: Error]
  /** A signal from another peer. */
  signal: [signal: IncomingSignal]
  /** An introduction to a peer that announced the same identifier. */
  introduction: [introduction: Introduction]
  /** The client closed for good. */
  close: []
}
