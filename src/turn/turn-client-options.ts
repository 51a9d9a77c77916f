/**
 * Types and option checks of {@link TurnClient}: its states, events and options.
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js'
import { parseTurnSpec, type TurnTransport } from '../server-spec.js'
import type { TransportAddress } from '../stun/address.js'
import { checkRetransmit } from '../stun/transaction.js'
import type { StunRetransmitOptions } from '../stun/transaction.js'
import { checkTurnCredentials, type TurnCredentials } from './credentials.js'
import type { TurnClient } from './turn-client.js'
import type { ConnectTurnServerOptions, TurnServerAddress, TurnServerConnection, TurnTlsOptions } from './turn-transport.js'

/** Where a {@link TurnClient} is in its life. */
export type TurnClientState = 'idle' | 'allocating' | 'allocated' | 'closed'

/** What a refresh was about. */
export type TurnRefreshKind = 'allocation' | 'permission' | 'channel'

/** Payload of the `'refresh'` event. */
export interface TurnRefreshEvent {
  /** What was refreshed. */
  kind: TurnRefreshKind
  /** The granted lifetime in seconds (allocation refreshes). */
  lifetime?: number
  /** The peers whose permission or channel was refreshed. */
  peers?: TransportAddress[]
}

/** Events of {@link TurnClient}. */
export interface TurnClientEvents {
  /** Data from a peer through the relay (a Data indication or ChannelData). */
  data: [data: Uint8Array, peer: TransportAddress]
  /** An allocation, permission or channel refresh succeeded. */
  refresh: [event: TurnRefreshEvent]
  /** An automatic refresh failed (it is retried while time remains). */
  'refresh-error': [error: Error, kind: TurnRefreshKind]
  /** The client closed: `error` is set when the allocation or connection was lost. */
  close: [error: Error | undefined]
}

/** Options of {@link TurnClient}. */
export interface TurnClientOptions extends StunRetransmitOptions {
  /** The link to the server (see `connectTurnServer`); {@link TurnClient.close} closes it. */
  connection: TurnServerConnection
  /** Long-term credentials, or TURN REST API credentials from `turnRestCredentials`. */
  credentials: TurnCredentials
  /**
   * SOFTWARE attribute sent with every request.
   * @default undefined
   */
  software?: string
  /**
   * Add FINGERPRINT to every request.
   * @default false
   */
  fingerprint?: boolean
  /**
   * Refresh the allocation when this fraction of its lifetime has passed.
   * @default 0.8
   */
  refreshRatio?: number
  /**
   * Milliseconds between refreshes of the permissions (they expire after 300 s, RFC 8656 §9).
   * @default 240000
   */
  permissionRefreshInterval?: number
  /**
   * Milliseconds between refreshes of the channel bindings (they expire after 600 s, RFC 8656 §12).
   * @default 480000
   */
  channelRefreshInterval?: number
  /**
   * How long {@link TurnClient.close} waits for the server to confirm the deallocation, in ms.
   * @default 1000
   */
  closeTimeout?: number
  /**
   * Over TCP/TLS, how long a request waits for its response, in ms; requests are not
   * retransmitted there (RFC 8489 §6.2.2: Ti = 39.5 s). Over UDP `rto`, `rc` and `rm` apply.
   * @default 39500
   */
  requestTimeout?: number
}

/** Options of {@link TurnClient.connect}. */
export interface TurnClientConnectOptions
  extends Omit<TurnClientOptions, 'connection'>,
    Omit<ConnectTurnServerOptions, 'host' | 'port'> {
  /**
   * The server: a TURN URI (`turn:HOST:PORT?transport=udp|tcp`, `turns:HOST:PORT`,
   * optionally followed by a `#CERT_HASH` pin for `turns:`) or `{ host, port }` with
   * `transport`. An explicit `transport` option overrides the URI's.
   */
  server: string | TurnServerAddress
}

/** Options of {@link TurnClient.refresh}. */
export interface TurnRefreshOptions {
  /**
   * Cancels the request.
   * @default undefined
   */
  signal?: AbortSignal
  /**
   * Lifetime to ask for, in seconds (> 0; use {@link TurnClient.close} to deallocate).
   * @default the lifetime asked for at allocation, else the one granted
   */
  lifetime?: number
}

/** Options of {@link TurnClient.createPermission} and {@link TurnClient.bindChannel}. */
export interface TurnRequestSignalOptions {
  /**
   * Cancels the request.
   * @default undefined
   */
  signal?: AbortSignal
}

/** Options of {@link TurnClient.close}. */
export interface TurnCloseOptions {
  /**
   * Stops waiting for the deallocation's response.
   * @default undefined
   */
  signal?: AbortSignal
  /**
   * Overrides the client's `closeTimeout` (ms).
   * @default the client's closeTimeout
   */
  timeout?: number
}

function positive(value: number | undefined, name: string): void {
  if (value !== undefined && !(Number.isFinite(value) && value > 0)) throw new InvalidArgumentError(`${name} must be a positive number, got ${String(value)}`)
}

/**
 * Throws `InvalidArgumentError` on invalid client options.
 *
 * @internal
 */
export function checkClientOptions(options: Omit<TurnClientOptions, 'connection'>): void {
  checkTurnCredentials(options.credentials)
  checkRetransmit(options, 'TurnClient')
  positive(options.permissionRefreshInterval, 'permissionRefreshInterval')
  positive(options.channelRefreshInterval, 'channelRefreshInterval')
  positive(options.requestTimeout, 'requestTimeout')
  if (options.closeTimeout !== undefined && !(Number.isFinite(options.closeTimeout) && options.closeTimeout >= 0)) {
    throw new InvalidArgumentError('closeTimeout must be a number ≥ 0')
  }
  const ratio = options.refreshRatio
  if (ratio !== undefined && !(Number.isFinite(ratio) && ratio > 0 && ratio < 1)) throw new InvalidArgumentError('refreshRatio must be between 0 and 1')
  if (options.software !== undefined && typeof options.software !== 'string') throw new InvalidArgumentError('software must be a string')
}

/**
 * The server, transport and TLS settings of {@link TurnClient.connect}'s options.
 *
 * @internal
 */
export function serverTarget(options: TurnClientConnectOptions): { host: string; port: number; transport: TurnTransport; tls: TurnTlsOptions } {
  const { server } = options
  if (typeof server === 'string') {
    const hash = server.indexOf('#')
    const spec = parseTurnSpec(hash < 0 ? server : server.slice(0, hash))
    const pin = hash < 0 ? undefined : server.slice(hash + 1).trim()
    const transport = options.transport ?? spec.transport
    if (pin !== undefined && transport !== 'tls') throw new InvalidArgumentError(`A #CERT_HASH pin needs TLS (turns:), got ${JSON.stringify(server)}`)
    return { host: spec.host, port: spec.port, transport, tls: { ...options.tls, ...(pin === undefined ? {} : { certHash: pin }) } }
  }
  if (server === null || typeof server !== 'object') throw new InvalidArgumentError('TurnClient.connect needs a server')
  return { host: server.host, port: server.port, transport: options.transport ?? 'udp', tls: options.tls ?? {} }
}
