/**
 * Options, events and results of {@link createPeer} and {@link Peer.connect}.
 * @module
 */
import type { BeaconAddress } from '../beacon/beacon-client-options.js'
import type { StunRetransmitOptions } from '../stun/transaction.js'
import type { Identity } from '../identity/identity.js'
import type { StunServerAddress } from '../stun/binding-client.js'
import type { TunnelServerSpec } from '../server-spec.js'
import type { PeerTunnelOptions } from './tunnel-options.js'
import type { PeerTurnServer } from './turn-relays.js'
import type { PathRecoveryOptions } from './path-manager.js'
import type { TurnTransport } from '../server-spec.js'
// Referenced from TSDoc only.
import type { Peer, createPeer } from './peer.js'

/**
 * How a connection reaches the peer: `direct` (a UDP path found by ICE: host,
 * server-reflexive or peer-reflexive candidates), `turn` (through a TURN relay) or
 * `tunnel` (through a WebSocket tunnel server's peer path).
 */
export type ConnectionPath = 'direct' | 'turn' | 'tunnel'

/**
 * Every path, in the order a connection tries them.
 *
 * @example
 * ```ts
 * import { CONNECTION_PATHS, type ConnectionPath } from 'peerlink'
 *
 * // Parse a --paths flag such as "direct,turn".
 * const paths = (flag: string): ConnectionPath[] =>
 *   flag.split(',').filter((p): p is ConnectionPath => (CONNECTION_PATHS as readonly string[]).includes(p))
 * const conn = await peer.connect(remotePeerId, { paths: paths('direct,turn') })
 * ```
 */
export const CONNECTION_PATHS: readonly ConnectionPath[] = Object.freeze(['direct', 'turn', 'tunnel'])

/** Which host candidates a peer offers (see {@link PeerOptions.gather}). */
export interface PeerGatherOptions {
  /**
   * Offer exactly these IP addresses as host candidates instead of enumerating the
   * interfaces (labs, tests, or restricting a multi-homed machine).
   * @default undefined (every non-internal interface address)
   */
  hostAddresses?: readonly string[]
  /**
   * Only these interface names (`eth0`, …) when enumerating.
   * @default undefined (every interface)
   */
  interfaces?: readonly string[]
  /**
   * Address families to offer.
   * @default ['IPv4', 'IPv6'] (as far as the socket is bound for them)
   */
  families?: readonly ('IPv4' | 'IPv6')[]
  /**
   * Offer loopback addresses (127.0.0.0/8, ::1) too.
   * @default false
   */
  includeLoopback?: boolean
  /**
   * Offer link-local addresses (fe80::/10, 169.254.0.0/16) too.
   * @default false
   */
  includeLinkLocal?: boolean
  /**
   * Retransmission of the STUN Binding requests for server-reflexive candidates.
   * @default { rto: 250, rc: 4, rm: 4 }
   */
  stunRetransmit?: StunRetransmitOptions
}

/** ICE timing of a peer (see {@link PeerOptions.ice}); RFC 8445 names in brackets. */
export interface PeerIceOptions {
  /**
   * Minimum milliseconds between two connectivity checks [Ta] (RFC 8445 §14.2: at least 5).
   * @default 5
   */
  ta?: number
  /**
   * Retransmission of each connectivity check: a lost check is sent again after `rto`
   * ms, doubling; a pair without answer fails after about 7.9 s.
   * @default { rto: 100, rc: 7, rm: 16 }
   */
  checkRetransmit?: StunRetransmitOptions
  /**
   * Connecting side: at most this many milliseconds to wait after the first working pair
   * for a better one still unchecked before nominating (checks unanswered for longer than
   * the working pair's round trip, and host candidates of other private networks, are
   * not waited for).
   * @default 20
   */
  nominationDelay?: number
  /**
   * Mean interval of consent checks on the path in use, ms (RFC 7675).
   * @default 5000
   */
  consentInterval?: number
  /**
   * The connection is dropped after this many ms without a consent answer (RFC 7675).
   * @default 30000
   */
  consentTimeout?: number
  /**
   * Most candidate pairs checked.
   * @default 100
   */
  maxPairs?: number
  /**
   * Connecting side: ms after the attempt started before a pair through a TURN relay may
   * be nominated, so a direct pair still being checked can win first. Relay pairs are
   * nominated at once when UDP is known to be blocked or the relay answered over TCP/TLS
   * only.
   * @default 300
   */
  relayDelay?: number
}

/**
 * Options of {@link createPeer}.
 *
 * @example
 * ```ts
 * import { createPeer, loadOrCreateIdentity } from 'peerlink'
 *
 * const peer = await createPeer({
 *   identity: await loadOrCreateIdentity('./peer.key'),
 *   beacons: ['beacon.example.com:4264#weOsoMPwj976xqxRvLElsbb-gijWWn0netOtgPflZnk'],
 *   stun: ['stun:stun.example.com:3478'],
 *   turn: [{ urls: 'turn:turn.example.com:3478?transport=udp', username: 'alice', credential: 's3cret' }],
 *   tunnels: ['wss://tunnel.example.com:8443'],
 *   connectTimeout: 20_000,
 * })
 * ```
 */
export interface PeerOptions {
  /**
   * The peer's identity (its key pair and PeerId).
   * @default a fresh identity (see `loadOrCreateIdentity` to keep one in a file)
   */
  identity?: Identity
  /**
   * Beacons: `HOST:PORT#CERT_HASH` (or without `#…` for CA validation). A Beacon also
   * answers STUN on its UDP port, so it gives server-reflexive candidates too.
   * @default []
   */
  beacons?: ReadonlyArray<BeaconAddress | readonly BeaconAddress[]>
  /**
   * More STUN servers, `stun:HOST:PORT` or `{ host, port }`.
   * @default []
   */
  stun?: ReadonlyArray<string | StunServerAddress>
  /**
   * Whether the Beacons' UDP ports are used as STUN servers.
   * @default true
   */
  beaconStun?: boolean
  /**
   * Local address of the peer's UDP socket.
   * @default '0.0.0.0'
   */
  host?: string
  /**
   * Local UDP port.
   * @default 0 (any free port)
   */
  port?: number
  /**
   * Which host candidates to offer (tests pass exact `hostAddresses`).
   * @default {} (every non-internal interface)
   */
  gather?: PeerGatherOptions
  /**
   * ICE timing (Ta, retransmissions, nomination delay, consent intervals); each field
   * given replaces the peer's default for it.
   * @default { ta: 5, nominationDelay: 20, checkRetransmit: { rto: 100, rc: 7, rm: 16 } } and the ICE agent's defaults for the rest
   */
  ice?: PeerIceOptions
  /**
   * Path recovery of UDP connections (docs/relay-path.md, "Recovery and upgrade"): when
   * the selected pair stops answering for `failoverAfter` ms the connection moves to
   * another working pair (a relay), and from a relay back to a direct pair when one
   * works again, emitting `path`. `false` turns it off (consent loss then ends the
   * connection, and the attempt's unused relays are released at once).
   * @default { probeInterval: 1000, failoverAfter: 2500, upgradeInterval: 2000 }
   */
  recovery?: PathRecoveryOptions | false
  /**
   * TURN servers for relay candidates: `{ urls: 'turn:HOST:PORT?transport=udp', username,
   * credential }`, `{ urls: 'turns:HOST:PORT', … }` or `{ urls, secret }` (TURN REST API).
   * Each attempt that may use the `turn` path leases an allocation on every server (UDP
   * from the peer's socket; TCP alongside when UDP has not answered within 300 ms;
   * `turns:` is TLS).
   * @default []
   */
  turn?: ReadonlyArray<PeerTurnServer>
  /**
   * WebSocket tunnel servers (`ws://HOST:PORT` or `wss://HOST:PORT[#CERT_HASH]`, or
   * parsed): the last step of the ladder. A listening peer also registers on them under
   * its PeerId; `connect()` tries them when UDP is blocked or gives no path in time.
   * @default []
   */
  tunnels?: ReadonlyArray<string | TunnelServerSpec>
  /**
   * How the tunnel servers are used (token, CA, fallback delay).
   * @default {}
   */
  tunnel?: PeerTunnelOptions
  /**
   * Milliseconds a connection attempt may take, signalling included.
   * @default 30000
   */
  connectTimeout?: number
  /**
   * Milliseconds the encrypted handshake may take once a path is found.
   * @default 10000
   */
  handshakeTimeout?: number
  /**
   * Closes the peer when aborted.
   * @default undefined
   */
  signal?: AbortSignal
}

/**
 * Options of {@link Peer.connect}.
 *
 * @example
 * ```ts
 * import { PeerIdentityMismatchError } from 'peerlink'
 *
 * const conn = await peer.connect(remotePeerId, {
 *   signal: AbortSignal.timeout(15_000),   // rejects with AbortError when it fires
 *   paths: ['direct', 'turn'],             // never use the WebSocket tunnel
 * })
 * console.log(conn.path)                   // 'direct' or 'turn'
 * ```
 */
export interface ConnectOptions {
  /**
   * Aborting rejects with `AbortError` and abandons the attempt.
   * @default undefined
   */
  signal?: AbortSignal
  /**
   * Milliseconds until the attempt fails with `ConnectFailedError`.
   * @default the peer's `connectTimeout`
   */
  timeout?: number
  /**
   * Paths the connection may use: `['direct']` never relays; `['turn']` offers relayed
   * candidates only (relay-only policy; needs `PeerOptions.turn`); without `tunnel` the
   * tunnel servers are never used, `['tunnel']` uses only them (needs `PeerOptions.tunnels`).
   * @default ['direct', 'turn', 'tunnel']
   */
  paths?: readonly ConnectionPath[]
}

/**
 * Options of {@link Peer.listen}.
 *
 * @example
 * ```ts
 * const controller = new AbortController()
 * setTimeout(() => controller.abort(), 10_000)
 * await peer.listen({ signal: controller.signal })   // rejects with AbortError if no Beacon took us in 10 s
 * ```
 */
export interface ListenOptions {
  /**
   * Aborting rejects with `AbortError`.
   * @default undefined
   */
  signal?: AbortSignal
}

/** How a connection was made (also given in `attempt` events). */
export interface ConnectionInfo {
  /** The remote's PeerId (proved). */
  remotePeerId: string
  /** Whether we connected (true) or accepted (false). */
  initiator: boolean
  /** The path in use. */
  path: ConnectionPath
  /** Our address on the path (`HOST:PORT`) and its candidate type. */
  local: { address: string; port: number; type: string }
  /** The remote's address on the path and its candidate type. */
  remote: { address: string; port: number; type: string }
  /** Round-trip time of the ICE check that validated the path, ms. */
  rttMs: number | undefined
  /** Milliseconds from the start of the attempt to the verified connection. */
  ms: number
  /** Milliseconds spent finding the path (signalling and ICE), then in the handshake. */
  phases: { iceMs: number; handshakeMs: number }
  /** On the tunnel path: the tunnel server's URL. */
  server?: string
  /**
   * When our own candidate is relayed (`path` is `turn`): the TURN server (its URI as
   * configured), the transport to it and our relayed address. Unset when only the
   * remote's candidate is relayed (its server is the remote's business).
   */
  relay?: { server: string; transport: TurnTransport; relayed: { address: string; port: number } }
}

/** One step of a connection attempt (diagnostics, `--json` events of the CLI). */
export interface AttemptEvent {
  /** The other peer. */
  peerId: string
  /** Whether we are the connecting side. */
  initiator: boolean
  /**
   * What happened. `relay`: a relayed candidate was gathered (`detail`: server, transport,
   * relayed address, allocationMs); `relay-failed`: a TURN server gave none (`detail`:
   * server, code, message); `selected`'s `detail.path` says whether the pair is relayed.
   */
  step: 'offer' | 'answer' | 'candidate' | 'relay' | 'relay-failed' | 'selected' | 'tunnel' | 'verified' | 'failed'
  /** Milliseconds since the attempt started. */
  ms: number
  /** Details: the selected pair, the error code, … */
  detail?: Record<string, unknown>
}

/** Events of a {@link Peer}. */
export interface PeerEvents {
  /** A verified incoming connection. */
  connection: [connection: import('./peer-connection.js').PeerConnection]
  /** A step of a connection attempt (both directions). */
  attempt: [event: AttemptEvent]
  /** An incoming attempt failed (outgoing ones reject `connect()`). */
  'incoming-error': [error: Error, peerId: string]
  /** The peer closed. */
  close: []
}
