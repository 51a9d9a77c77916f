/**
 * Every error peerlink raises is a {@link PeerlinkError} with a stable `code`.
 * Codes never change meaning; they are listed, with what to do about each, in
 * `docs/errors.md`. Misuse (a wrong argument type, an impossible option) throws at
 * once; network failures reject with a code.
 *
 * The example of handling them, by class or by code, is on {@link PeerlinkError}.
 *
 * @module
 */

/** All stable error codes. Keep in sync with `docs/errors.md`. */
export type ErrorCode =
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_ABORTED'
  | 'ERR_INVALID_PEER_ID'
  | 'ERR_INVALID_KEY'
  | 'ERR_KEY_FILE_PERMISSIONS'
  | 'ERR_KEY_FILE_INVALID'
  | 'ERR_KEY_FILE_ACCESS'
  | 'ERR_INVALID_SIGNATURE'
  | 'ERR_STUN_MALFORMED'
  | 'ERR_STUN_INTEGRITY'
  | 'ERR_STUN_FINGERPRINT'
  | 'ERR_STUN_TIMEOUT'
  | 'ERR_STUN_ERROR_RESPONSE'
  | 'ERR_NAT_DISCOVERY_UNSUPPORTED'
  | 'ERR_INVALID_SERVER_SPEC'
  | 'ERR_HOST_UNRESOLVED'
  | 'ERR_SOCKET_CLOSED'
  | 'ERR_SOCKET_BIND'
  | 'ERR_HANDSHAKE_FAILED'
  | 'ERR_HANDSHAKE_TIMEOUT'
  | 'ERR_PEER_IDENTITY_MISMATCH'
  | 'ERR_CONNECTION_CLOSED'
  | 'ERR_CLI_USAGE'
  | 'ERR_CONFIG_INVALID'
  | 'ERR_TURN_AUTH'
  | 'ERR_TURN_ALLOCATION_FAILED'
  | 'ERR_CONNECT_FAILED'
  | 'ERR_PEER_NOT_FOUND'
  | 'ERR_CERT_PIN_MISMATCH'
  | 'ERR_DATA_DIR'
  | 'ERR_BEACON_CERT_MISMATCH'
  | 'ERR_BEACON_PROTOCOL'
  | 'ERR_BEACON_AUTH'
  | 'ERR_BEACON_RATE_LIMITED'
  | 'ERR_BEACON_LIMIT'
  | 'ERR_BEACON_PEER_NOT_FOUND'
  | 'ERR_BEACON_UNAVAILABLE'
  | 'ERR_NAT_LAB_UNAVAILABLE'
  | 'ERR_NAT_LAB_COMMAND_FAILED'
  | 'ERR_TUNNEL_PROTOCOL'
  | 'ERR_TUNNEL_AUTH'
  | 'ERR_TUNNEL_NAME_TAKEN'
  | 'ERR_TUNNEL_LIMIT'
  | 'ERR_TUNNEL_UNAVAILABLE'
  | 'ERR_TUNNEL_PEER_NOT_FOUND'
  | 'ERR_MUX_PROTOCOL'
  | 'ERR_MUX_STREAM_REFUSED'
  | 'ERR_MUX_STREAM_RESET'
  | 'ERR_ICE_FAILED'
  | 'ERR_ICE_SIGNAL_INVALID'

/** Options common to every {@link PeerlinkError}. */
export interface PeerlinkErrorOptions {
  /** The lower-level error that caused this one, if any. */
  cause?: unknown
}

/**
 * Base class of every error peerlink throws or rejects with. Test for a particular
 * error either by class (`instanceof`) or by its stable `code` (listed, with what to do
 * about each, in `docs/errors.md`); every error class below names its code.
 *
 * @example
 * ```ts
 * import { PeerIdentityMismatchError, PeerlinkError, createPeer } from 'peerlink'
 *
 * const peer = await createPeer({ beacons: ['beacon.example.com:4264'] })
 * try {
 *   const conn = await peer.connect(remotePeerId, { signal: AbortSignal.timeout(20_000) })
 *   conn.end('hello')
 * } catch (err) {
 *   if (err instanceof PeerIdentityMismatchError) console.error('someone else answered')     // by class
 *   else if (err instanceof PeerlinkError && err.code === 'ERR_PEER_NOT_FOUND') console.error('peer offline')  // by code
 *   else throw err
 * }
 * ```
 */
export class PeerlinkError extends Error {
  /** Stable, documented error code. */
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options: PeerlinkErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.name = new.target.name
  }
}

/**
 * A function was called with an argument it cannot accept (programmer error; thrown synchronously).
 *
 * Its `code` is `'ERR_INVALID_ARGUMENT'`; see {@link PeerlinkError} for an example of handling it.
 */
export class InvalidArgumentError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_INVALID_ARGUMENT', message, options)
  }
}

/**
 * The operation was cancelled through its `AbortSignal`.
 *
 * Its `code` is `'ERR_ABORTED'`; see {@link PeerlinkError} for an example of handling it.
 */
export class AbortError extends PeerlinkError {
  constructor(message = 'The operation was aborted', options?: PeerlinkErrorOptions) {
    super('ERR_ABORTED', message, options)
  }
}

/**
 * A PeerId string or byte form could not be parsed, or is not an Ed25519 PeerId.
 *
 * Its `code` is `'ERR_INVALID_PEER_ID'`; see {@link PeerlinkError} for an example of handling it.
 */
export class InvalidPeerIdError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_INVALID_PEER_ID', message, options)
  }
}

/**
 * A key (public or secret) has the wrong length or form.
 *
 * Its `code` is `'ERR_INVALID_KEY'`; see {@link PeerlinkError} for an example of handling it.
 */
export class InvalidKeyError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_INVALID_KEY', message, options)
  }
}

/**
 * A key file can be read by users other than its owner; peerlink refuses to use it.
 *
 * Its `code` is `'ERR_KEY_FILE_PERMISSIONS'`; see {@link PeerlinkError} for an example of handling it.
 */
export class KeyFilePermissionsError extends PeerlinkError {
  /** The offending file. */
  readonly path: string
  constructor(path: string, mode: number) {
    super(
      'ERR_KEY_FILE_PERMISSIONS',
      `Key file ${path} has mode ${(mode & 0o777).toString(8).padStart(3, '0')}, readable by others. ` +
        `Fix it with: chmod 600 ${JSON.stringify(path)}`,
    )
    this.path = path
  }
}

/**
 * A key file exists but its contents are not a peerlink key.
 *
 * Its `code` is `'ERR_KEY_FILE_INVALID'`; see {@link PeerlinkError} for an example of handling it.
 */
export class KeyFileInvalidError extends PeerlinkError {
  /** The offending file. */
  readonly path: string
  constructor(path: string, message: string, options?: PeerlinkErrorOptions) {
    super('ERR_KEY_FILE_INVALID', `Key file ${path}: ${message}`, options)
    this.path = path
  }
}

/**
 * A key file could not be read or created: it (or its directory) is missing, the
 * operating system denied access, the disk is full, … `cause` holds the system error.
 *
 * Its `code` is `'ERR_KEY_FILE_ACCESS'`; see {@link PeerlinkError} for an example of handling it.
 */
export class KeyFileAccessError extends PeerlinkError {
  /** The key file. */
  readonly path: string
  constructor(path: string, message: string, options?: PeerlinkErrorOptions) {
    super('ERR_KEY_FILE_ACCESS', `Key file ${path}: ${message}`, options)
    this.path = path
  }
}

/**
 * A signature did not verify for the given key, tag and message.
 *
 * Its `code` is `'ERR_INVALID_SIGNATURE'`; see {@link PeerlinkError} for an example of handling it.
 */
export class InvalidSignatureError extends PeerlinkError {
  constructor(message = 'Signature does not verify', options?: PeerlinkErrorOptions) {
    super('ERR_INVALID_SIGNATURE', message, options)
  }
}

/**
 * A datagram is not a well-formed STUN message (or TURN ChannelData).
 *
 * Its `code` is `'ERR_STUN_MALFORMED'`; see {@link PeerlinkError} for an example of handling it.
 */
export class StunMalformedError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_STUN_MALFORMED', message, options)
  }
}

/**
 * MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 did not match the key.
 *
 * Its `code` is `'ERR_STUN_INTEGRITY'`; see {@link PeerlinkError} for an example of handling it.
 */
export class StunIntegrityError extends PeerlinkError {
  constructor(message = 'STUN message integrity check failed', options?: PeerlinkErrorOptions) {
    super('ERR_STUN_INTEGRITY', message, options)
  }
}

/**
 * The FINGERPRINT attribute did not match the message.
 *
 * Its `code` is `'ERR_STUN_FINGERPRINT'`; see {@link PeerlinkError} for an example of handling it.
 */
export class StunFingerprintError extends PeerlinkError {
  constructor(message = 'STUN fingerprint mismatch', options?: PeerlinkErrorOptions) {
    super('ERR_STUN_FINGERPRINT', message, options)
  }
}

/**
 * A STUN transaction got no response after all retransmissions (RFC 8489 §6.2.1).
 *
 * Its `code` is `'ERR_STUN_TIMEOUT'`; see {@link PeerlinkError} for an example of handling it.
 */
export class StunTimeoutError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_STUN_TIMEOUT', message, options)
  }
}

/**
 * The server answered a STUN request with an error response.
 *
 * Its `code` is `'ERR_STUN_ERROR_RESPONSE'`; see {@link PeerlinkError} for an example of handling it.
 */
export class StunErrorResponseError extends PeerlinkError {
  /** The STUN error code (e.g. 401, 438). */
  readonly errorCode: number
  /** The server's reason phrase. */
  readonly reason: string
  constructor(errorCode: number, reason: string, options?: PeerlinkErrorOptions) {
    super('ERR_STUN_ERROR_RESPONSE', `STUN error response ${errorCode} ${reason}`, options)
    this.errorCode = errorCode
    this.reason = reason
  }
}

/**
 * The STUN server does not support RFC 5780 behaviour discovery (no OTHER-ADDRESS).
 *
 * Its `code` is `'ERR_NAT_DISCOVERY_UNSUPPORTED'`; see {@link PeerlinkError} for an example of handling it.
 */
export class NatDiscoveryUnsupportedError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_NAT_DISCOVERY_UNSUPPORTED', message, options)
  }
}

/**
 * A server spec string (`stun:HOST:PORT`, `HOST:PORT#HASH`, …) could not be parsed.
 *
 * Its `code` is `'ERR_INVALID_SERVER_SPEC'`; see {@link PeerlinkError} for an example of handling it.
 */
export class InvalidServerSpecError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_INVALID_SERVER_SPEC', message, options)
  }
}

/**
 * A server's host name could not be resolved (DNS).
 *
 * Its `code` is `'ERR_HOST_UNRESOLVED'`; see {@link PeerlinkError} for an example of handling it.
 */
export class HostUnresolvedError extends PeerlinkError {
  /** The name that did not resolve. */
  readonly host: string
  constructor(host: string, cause: unknown) {
    const why = (cause as { code?: unknown } | null)?.code
    super('ERR_HOST_UNRESOLVED', `Cannot resolve host ${JSON.stringify(host)}${typeof why === 'string' ? ` (${why})` : ''}`, { cause })
    this.host = host
  }
}

/**
 * The socket was closed while an operation was in progress.
 *
 * Its `code` is `'ERR_SOCKET_CLOSED'`; see {@link PeerlinkError} for an example of handling it.
 */
export class SocketClosedError extends PeerlinkError {
  constructor(message = 'Socket closed', options?: PeerlinkErrorOptions) {
    super('ERR_SOCKET_CLOSED', message, options)
  }
}

/**
 * A UDP socket could not be bound (address in use, address not available, permission denied).
 *
 * Its `code` is `'ERR_SOCKET_BIND'`; see {@link PeerlinkError} for an example of handling it.
 */
export class SocketBindError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_SOCKET_BIND', message, options)
  }
}

/**
 * The Noise handshake failed (corrupt or hostile handshake data).
 *
 * Its `code` is `'ERR_HANDSHAKE_FAILED'`; see {@link PeerlinkError} for an example of handling it.
 */
export class HandshakeFailedError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_HANDSHAKE_FAILED', message, options)
  }
}

/**
 * The Noise handshake did not complete in time.
 *
 * Its `code` is `'ERR_HANDSHAKE_TIMEOUT'`; see {@link PeerlinkError} for an example of handling it.
 */
export class HandshakeTimeoutError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_HANDSHAKE_TIMEOUT', message, options)
  }
}

/**
 * The remote completed the handshake with a key other than the expected PeerId.
 *
 * Its `code` is `'ERR_PEER_IDENTITY_MISMATCH'`; see {@link PeerlinkError} for an example of handling it.
 */
export class PeerIdentityMismatchError extends PeerlinkError {
  /** The PeerId we expected. */
  readonly expected: string
  /** The PeerId the remote proved. */
  readonly actual: string
  constructor(expected: string, actual: string) {
    super('ERR_PEER_IDENTITY_MISMATCH', `Expected peer ${expected} but the remote proved ${actual}`)
    this.expected = expected
    this.actual = actual
  }
}

/**
 * The connection closed before the operation finished.
 *
 * Its `code` is `'ERR_CONNECTION_CLOSED'`; see {@link PeerlinkError} for an example of handling it.
 */
export class ConnectionClosedError extends PeerlinkError {
  constructor(message = 'Connection closed', options?: PeerlinkErrorOptions) {
    super('ERR_CONNECTION_CLOSED', message, options)
  }
}

/**
 * Command-line arguments could not be understood.
 *
 * Its `code` is `'ERR_CLI_USAGE'`; see {@link PeerlinkError} for an example of handling it.
 */
export class CliUsageError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_CLI_USAGE', message, options)
  }
}

/**
 * A configuration file or value is invalid.
 *
 * Its `code` is `'ERR_CONFIG_INVALID'`; see {@link PeerlinkError} for an example of handling it.
 */
export class ConfigInvalidError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_CONFIG_INVALID', message, options)
  }
}

/**
 * The TURN server rejected our credentials: 401 Unauthenticated although the request
 * carried them, or 441 Wrong Credentials (RFC 8656 §7.2, RFC 8489 §9.2.5).
 *
 * Its `code` is `'ERR_TURN_AUTH'`; see {@link PeerlinkError} for an example of handling it.
 */
export class TurnAuthError extends PeerlinkError {
  /** The STUN error code (401 or 441). */
  readonly errorCode: number
  constructor(errorCode: number, message: string, options?: PeerlinkErrorOptions) {
    super('ERR_TURN_AUTH', message, options)
    this.errorCode = errorCode
  }
}

/**
 * The TURN server refused an Allocate request (RFC 8656 §7.2), e.g. 486 Allocation Quota Reached.
 *
 * Its `code` is `'ERR_TURN_ALLOCATION_FAILED'`; see {@link PeerlinkError} for an example of handling it.
 */
export class TurnAllocationError extends PeerlinkError {
  /** The STUN error code of the response (e.g. 437, 440, 486, 508), 0 if it had none. */
  readonly errorCode: number
  constructor(errorCode: number, message: string, options?: PeerlinkErrorOptions) {
    super('ERR_TURN_ALLOCATION_FAILED', message, options)
    this.errorCode = errorCode
  }
}

/**
 * A TCP or TLS connection to a server could not be established (refused, timed out, TLS handshake failed).
 *
 * Its `code` is `'ERR_CONNECT_FAILED'`; see {@link PeerlinkError} for an example of handling it.
 */
export class ConnectFailedError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_CONNECT_FAILED', message, options)
  }
}

/**
 * `peer.connect(peerId)`: no Beacon knows a peer listening under that PeerId (it is not
 * running `listen()`, or uses other Beacons). `cause` is the Beacon's refusal.
 *
 * Its `code` is `'ERR_PEER_NOT_FOUND'`; see {@link PeerlinkError} for an example of handling it.
 */
export class PeerNotFoundError extends PeerlinkError {
  /** The PeerId nobody listens for. */
  readonly peerId: string
  constructor(peerId: string, options?: PeerlinkErrorOptions) {
    super('ERR_PEER_NOT_FOUND', `No peer listens as ${peerId} at the configured Beacons`, options)
    this.peerId = peerId
  }
}

/**
 * A server's TLS certificate does not match the pinned `#CERT_HASH` (base64url SHA-256 of its DER form).
 *
 * Its `code` is `'ERR_CERT_PIN_MISMATCH'`; see {@link PeerlinkError} for an example of handling it.
 */
export class CertificatePinMismatchError extends PeerlinkError {
  /** The pinned hash. */
  readonly expected: string
  /** The hash of the certificate the server presented. */
  readonly actual: string
  constructor(expected: string, actual: string) {
    super('ERR_CERT_PIN_MISMATCH', `Server certificate hash ${actual} does not match the pinned ${expected}`)
    this.expected = expected
    this.actual = actual
  }
}

/**
 * The server's data directory (`peerlink-server --data-dir`) or a file in it cannot be
 * created or read, or its files disagree (a certificate without its key, a
 * `certificate_hash.txt` that does not match `cert.pem`). `path` names the file.
 *
 * Its `code` is `'ERR_DATA_DIR'`; see {@link PeerlinkError} for an example of handling it.
 */
export class DataDirError extends PeerlinkError {
  /** The offending file or directory. */
  readonly path: string
  constructor(path: string, message: string, options?: PeerlinkErrorOptions) {
    super('ERR_DATA_DIR', `${path}: ${message}`, options)
    this.path = path
  }
}

/**
 * A Beacon's TLS certificate does not match the pinned `#CERT_HASH` of its spec
 * (`HOST:PORT#CERT_HASH`). `cause` is the {@link CertificatePinMismatchError}.
 *
 * Its `code` is `'ERR_BEACON_CERT_MISMATCH'`; see {@link PeerlinkError} for an example of handling it.
 */
export class BeaconCertMismatchError extends PeerlinkError {
  /** The pinned hash. */
  readonly expected: string
  /** The hash of the certificate the Beacon presented. */
  readonly actual: string
  constructor(server: string, pinError: CertificatePinMismatchError) {
    super('ERR_BEACON_CERT_MISMATCH', `Beacon ${server}: certificate hash ${pinError.actual} does not match the pinned ${pinError.expected}`, {
      cause: pinError,
    })
    this.expected = pinError.expected
    this.actual = pinError.actual
  }
}

/**
 * A Beacon message was malformed, too large, of an unknown type or protocol version
 * (raised by the decoder, and by the client when the Beacon replies so).
 *
 * Its `code` is `'ERR_BEACON_PROTOCOL'`; see {@link PeerlinkError} for an example of handling it.
 */
export class BeaconProtocolError extends PeerlinkError {
  /** The request id of the offending message, when it could be read. */
  readonly requestId: number | undefined
  constructor(message: string, options?: PeerlinkErrorOptions & { requestId?: number | undefined }) {
    super('ERR_BEACON_PROTOCOL', message, options)
    this.requestId = options?.requestId
  }
}

/**
 * The Beacon refused the peer's proof of its key (bad signature, another peer's PeerId, or no hello).
 *
 * Its `code` is `'ERR_BEACON_AUTH'`; see {@link PeerlinkError} for an example of handling it.
 */
export class BeaconAuthError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_BEACON_AUTH', message, options)
  }
}

/**
 * The Beacon dropped a message: this connection sent more messages per second than it allows.
 *
 * Its `code` is `'ERR_BEACON_RATE_LIMITED'`; see {@link PeerlinkError} for an example of handling it.
 */
export class BeaconRateLimitedError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_BEACON_RATE_LIMITED', message, options)
  }
}

/**
 * A Beacon limit was reached: identifiers per connection, connections per IP address, or connections in all.
 *
 * Its `code` is `'ERR_BEACON_LIMIT'`; see {@link PeerlinkError} for an example of handling it.
 */
export class BeaconLimitError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_BEACON_LIMIT', message, options)
  }
}

/**
 * No Beacon knows the PeerId a signal was sent to: the peer is not listening (or not connected to these Beacons).
 *
 * Its `code` is `'ERR_BEACON_PEER_NOT_FOUND'`; see {@link PeerlinkError} for an example of handling it.
 */
export class BeaconPeerNotFoundError extends PeerlinkError {
  /** The PeerId that was not found. */
  readonly peerId: string
  constructor(peerId: string, options?: PeerlinkErrorOptions) {
    super('ERR_BEACON_PEER_NOT_FOUND', `Peer ${peerId} is not registered at the Beacon`, options)
    this.peerId = peerId
  }
}

/**
 * No Beacon connection could carry the request: none is connected, the connection was
 * lost before the answer, the request timed out, or the Beacon's fleet store (Redis) failed.
 *
 * Its `code` is `'ERR_BEACON_UNAVAILABLE'`; see {@link PeerlinkError} for an example of handling it.
 */
export class BeaconUnavailableError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_BEACON_UNAVAILABLE', message, options)
  }
}

/**
 * A tunnel message was malformed, too large, of an unknown type or protocol version,
 * or out of order (raised by the decoder, and by the client when the server replies so).
 *
 * Its `code` is `'ERR_TUNNEL_PROTOCOL'`; see {@link PeerlinkError} for an example of handling it.
 */
export class TunnelProtocolError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_TUNNEL_PROTOCOL', message, options)
  }
}

/**
 * The tunnel server refused the device's credentials: unknown token, bad signature, PeerId not allowed, or no hello in time.
 *
 * Its `code` is `'ERR_TUNNEL_AUTH'`; see {@link PeerlinkError} for an example of handling it.
 */
export class TunnelAuthError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_TUNNEL_AUTH', message, options)
  }
}

/**
 * The tunnel name a device asked for is held by another device (online, or offline within its retention time).
 *
 * Its `code` is `'ERR_TUNNEL_NAME_TAKEN'`; see {@link PeerlinkError} for an example of handling it.
 */
export class TunnelNameTakenError extends PeerlinkError {
  /** The name that was asked for. */
  readonly tunnelName: string
  constructor(name: string, options?: PeerlinkErrorOptions) {
    super('ERR_TUNNEL_NAME_TAKEN', `The tunnel name ${JSON.stringify(name)} is held by another device`, options)
    this.tunnelName = name
  }
}

/**
 * A tunnel server limit was reached: ports per device, free ports in its range, devices,
 * connections per IP address, messages per second.
 *
 * Its `code` is `'ERR_TUNNEL_LIMIT'`; see {@link PeerlinkError} for an example of handling it.
 */
export class TunnelLimitError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_TUNNEL_LIMIT', message, options)
  }
}

/**
 * No tunnel server could be reached or used: connection failed, closed, shutting down, or its state store failed.
 *
 * Its `code` is `'ERR_TUNNEL_UNAVAILABLE'`; see {@link PeerlinkError} for an example of handling it.
 */
export class TunnelUnavailableError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_TUNNEL_UNAVAILABLE', message, options)
  }
}

/**
 * No peer listens under the PeerId on the tunnel server (the peer path): it is offline, or registered with another fleet.
 *
 * Its `code` is `'ERR_TUNNEL_PEER_NOT_FOUND'`; see {@link PeerlinkError} for an example of handling it.
 */
export class TunnelPeerNotFoundError extends PeerlinkError {
  /** The PeerId that was asked for. */
  readonly peerId: string
  constructor(peerId: string, message = `No peer listens as ${peerId} on the tunnel server`, options?: PeerlinkErrorOptions) {
    super('ERR_TUNNEL_PEER_NOT_FOUND', message, options)
    this.peerId = peerId
  }
}

/**
 * The NAT lab (`peerlink/testing`) cannot run here: not Linux, not root, `ip` or `nft`
 * missing, or network namespaces not permitted. `reason` says which.
 *
 * Its `code` is `'ERR_NAT_LAB_UNAVAILABLE'`; see {@link PeerlinkError} for an example of handling it.
 */
export class NatLabUnavailableError extends PeerlinkError {
  /** Why the lab cannot run, in words. */
  readonly reason: string
  constructor(reason: string, options?: PeerlinkErrorOptions) {
    super('ERR_NAT_LAB_UNAVAILABLE', `NAT lab unavailable: ${reason}`, options)
    this.reason = reason
  }
}

/**
 * A command the NAT lab ran (`ip`, `nft`, …) failed or timed out while building or removing a lab.
 *
 * Its `code` is `'ERR_NAT_LAB_COMMAND_FAILED'`; see {@link PeerlinkError} for an example of handling it.
 */
export class NatLabCommandError extends PeerlinkError {
  /** The command line, e.g. `ip -n pl-1a2b3c-home -batch -`. */
  readonly command: string
  /** Its exit code, or `null` if it was killed (timeout, abort). */
  readonly exitCode: number | null
  /** What it printed on stderr (truncated). */
  readonly stderr: string
  constructor(command: string, exitCode: number | null, stderr: string, options?: PeerlinkErrorOptions) {
    super(
      'ERR_NAT_LAB_COMMAND_FAILED',
      `NAT lab command failed (${exitCode === null ? 'killed' : `exit code ${exitCode}`}): ${command}${stderr === '' ? '' : `: ${stderr}`}`,
      options,
    )
    this.command = command
    this.exitCode = exitCode
    this.stderr = stderr
  }
}

/** What happened to one candidate pair of a failed ICE attempt (see {@link IceFailedError}). */
export interface IcePairOutcome {
  /** The local candidate, `address:port typ type`. */
  local: string
  /** The remote candidate, `address:port typ type`. */
  remote: string
  /** The pair's final state (`'failed'`, `'waiting'`, …). */
  state: string
  /** Why it failed, when known (`'timeout'`, `'asymmetric response'`, `'error 401'`, …). */
  reason?: string
}

/**
 * ICE found no working candidate pair: every pair failed after both sides signalled the
 * end of their candidates, or the attempt timed out. `pairs` holds each pair's outcome
 * for diagnostics.
 *
 * Its `code` is `'ERR_ICE_FAILED'`; see {@link PeerlinkError} for an example of handling it.
 */
export class IceFailedError extends PeerlinkError {
  /** Why the attempt ended: `'failed'` (every pair failed), `'timeout'`, or `'consent-lost'`. */
  readonly reason: 'failed' | 'timeout' | 'consent-lost'
  /** Each candidate pair and how it ended. */
  readonly pairs: readonly IcePairOutcome[]
  constructor(reason: 'failed' | 'timeout' | 'consent-lost', pairs: readonly IcePairOutcome[], message?: string, options?: PeerlinkErrorOptions) {
    super('ERR_ICE_FAILED', message ?? `ICE ${reason === 'timeout' ? 'timed out' : reason === 'consent-lost' ? 'lost consent' : 'failed'} (${pairs.length} candidate pair${pairs.length === 1 ? '' : 's'} tried)`, options)
    this.reason = reason
    this.pairs = pairs
  }
}

/**
 * A candidate line or ICE credentials from the remote (a signal) cannot be parsed or are invalid.
 *
 * Its `code` is `'ERR_ICE_SIGNAL_INVALID'`; see {@link PeerlinkError} for an example of handling it.
 */
export class IceSignalInvalidError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_ICE_SIGNAL_INVALID', message, options)
  }
}

/**
 * The stream multiplexer of a connection received a malformed or hostile frame (bad
 * version, unknown type, oversized, a stream id out of order, data beyond the flow-control
 * window, …), or the remote reported that it did. The whole multiplexed connection is
 * torn down. See `docs/stream-mux.md`.
 *
 * Its `code` is `'ERR_MUX_PROTOCOL'`; see {@link PeerlinkError} for an example of handling it.
 */
export class MuxProtocolError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_MUX_PROTOCOL', message, options)
  }
}

/**
 * A new stream on a multiplexed connection was refused: the limit of concurrent streams
 * (either side's) was reached, or the connection is going away.
 *
 * Its `code` is `'ERR_MUX_STREAM_REFUSED'`; see {@link PeerlinkError} for an example of handling it.
 */
export class MuxStreamRefusedError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_MUX_STREAM_REFUSED', message, options)
  }
}

/**
 * The remote reset (aborted) a stream of a multiplexed connection before it ended normally.
 *
 * Its `code` is `'ERR_MUX_STREAM_RESET'`; see {@link PeerlinkError} for an example of handling it.
 */
export class MuxStreamResetError extends PeerlinkError {
  constructor(message: string, options?: PeerlinkErrorOptions) {
    super('ERR_MUX_STREAM_RESET', message, options)
  }
}

/**
 * Throws {@link AbortError} (code `'ERR_ABORTED'`, `cause` the signal's reason) if
 * `signal` is already aborted; does nothing otherwise.
 *
 * @example
 * ```ts
 * import { throwIfAborted } from 'peerlink'
 *
 * async function copyAll(files: string[], signal?: AbortSignal): Promise<void> {
 *   for (const file of files) {
 *     throwIfAborted(signal)   // stop between steps once the caller gives up
 *     await copy(file)
 *   }
 * }
 * ```
 */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
}
