/**
 * Options, events and reports of the tunnel client ({@link TunnelClient}).
 *
 * @module
 */
import type { BackoffOptions } from '../beacon/backoff.js'
import type { PeerlinkError } from '../errors.js'
import type { Identity } from '../identity/identity.js'
import type { TunnelServerSpec } from '../server-spec.js'
import type { TunnelAddress } from './tunnel-messages.js'

/** A local TCP service to expose: its port, and the host it listens on. */
export interface ExposedPort {
  /** The local port. */
  port: number
  /**
   * The address the service listens on.
   * @default the client's `localHost`
   */
  host?: string
}

/**
 * Options of {@link TunnelClient}.
 *
 * @example
 * ```ts
 * import { TunnelClient, loadOrCreateIdentity } from 'peerlink'
 *
 * const tunnel = new TunnelClient({
 *   servers: ['wss://tunnel-1.example.com:8443', 'wss://tunnel-2.example.com:8443'],   // tried in order
 *   ports: [8080, { port: 5432, host: '10.0.0.12' }],   // a local web app, and a database on the LAN
 *   http: 8080,                                          // NAME.<domain> leads to port 8080
 *   name: 'kitchen',
 *   identity: await loadOrCreateIdentity('./device.key'),   // or token: '…'
 *   maxDelayMs: 60_000,                                  // reconnect backoff
 * })
 * tunnel.start()
 * ```
 */
export interface TunnelClientOptions extends BackoffOptions {
  /**
   * Tunnel servers, `ws://HOST:PORT` or `wss://HOST:PORT[#CERT_HASH]` (or parsed specs),
   * tried in order: after a failure the next one is tried, with backoff and jitter.
   */
  servers: string | TunnelServerSpec | ReadonlyArray<string | TunnelServerSpec>
  /** The local TCP services to expose (distinct port numbers). */
  ports: ReadonlyArray<number | ExposedPort>
  /**
   * The local port of the HTTP service that `NAME.<domain>` leads to (one of `ports`),
   * or `false` for none.
   * @default the first port
   */
  http?: number | false
  /**
   * The name wanted (one DNS label). Without it the server gives back the name this
   * device held, or a random one; either way the client keeps asking for the name it
   * got, so it survives reconnections.
   * @default undefined
   */
  name?: string
  /**
   * A device token from the server's list.
   * @default undefined
   */
  token?: string
  /**
   * An identity to log in with (a signature over the server's challenge). Give a token,
   * an identity, or both.
   * @default undefined
   */
  identity?: Identity
  /**
   * Certificates to trust besides the system's CAs, for `wss://` servers without a pin.
   * @default undefined
   */
  ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array>
  /**
   * The host the local services listen on, for ports given as numbers.
   * @default '127.0.0.1'
   */
  localHost?: string
  /**
   * Milliseconds for TCP, TLS, the WebSocket upgrade and the login of one attempt.
   * @default 10_000
   */
  connectTimeout?: number
  /**
   * Milliseconds to connect to a local service before the connection is refused.
   * @default 5_000
   */
  localConnectTimeout?: number
  /**
   * Milliseconds between the client's heartbeats (WebSocket pings); a control socket
   * silent for twice this is taken for dead and replaced.
   * @default 15_000
   */
  heartbeatMs?: number
  /**
   * Tunnelled connections open at once; more are refused.
   * @default 1_000
   */
  maxConnections?: number
  /**
   * Closes the client when aborted.
   * @default undefined
   */
  signal?: AbortSignal
}

/** One exposed port and where the public reaches it. */
export interface TunnelPortEndpoint {
  /** The local port. */
  local: number
  /** The public TCP port on the server. */
  public: number
  /** `HOST:PORT` the public connects to. */
  address: string
}

/** Where the device's services are reachable (reported on every (re)connection). */
export interface TunnelEndpoints {
  /** The tunnel server (its URL, after redirects). */
  server: string
  /** The device's name. */
  name: string
  /** `http(s)://NAME.<domain>[:PORT]/`, when the device has an HTTP service and the server serves HTTP. */
  httpUrl: string | undefined
  /** The host name of the public TCP ports. */
  host: string
  /** The ports. */
  ports: TunnelPortEndpoint[]
  /** True when the server restored the name and ports the device held before. */
  resumed: boolean
}

/** Where a {@link TunnelClient} is in its life. */
export type TunnelClientState = 'idle' | 'connecting' | 'connected' | 'waiting' | 'closed'

/** An incoming connection the client is about to join to a local service. */
export interface TunnelConnectionInfo {
  /** The local port it goes to. */
  port: number
  /** Who connected to the public side. */
  remote: TunnelAddress
}

/** Events of a {@link TunnelClient}. */
export interface TunnelClientEvents {
  /** Logged in; the endpoints may differ from the previous ones (after the retention time). */
  connected: [endpoints: TunnelEndpoints]
  /** An attempt failed or the control socket was lost; `retryInMs` until the next attempt (absent when closing). */
  disconnected: [error: PeerlinkError | undefined, retryInMs: number | undefined]
  /** A connection arrived. */
  connection: [info: TunnelConnectionInfo]
  /** The client stopped: `close()`, its signal, or a refusal that retrying cannot fix (`error`). */
  close: [error: PeerlinkError | undefined]
}
