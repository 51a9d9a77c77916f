/**
 * The options of {@link openSecureConnection} (secure-connection.ts), their checks, and
 * the mapping of transport errors to peerlink's coded errors.
 *
 * @module
 */
import { ConnectionClosedError, HandshakeFailedError, HandshakeTimeoutError, InvalidArgumentError, InvalidKeyError, SocketClosedError, type PeerlinkError } from '../errors.js'
import { peerIdFromPublicKey, publicKeyFromPeerId } from '../identity/peer-id.js'
import { PeerSocket, validateRemote } from './peer-socket.js'
import type { SecureConnection, openSecureConnection } from './secure-connection.js'
import { SecureHandshake, toBuffer } from './secure-handshake.js'
import type NoiseState from 'noise-handshake'

const DEFAULT_HANDSHAKE_TIMEOUT = 10_000

/** An Ed25519 key pair in sodium format. */
export interface TransportKeyPair {
  /** The 32-byte Ed25519 public key. */
  publicKey: Uint8Array
  /** The 64-byte sodium secret key: seed (32) ‖ public key (32). */
  secretKey: Uint8Array
}

/** A remote UDP endpoint. */
export interface RemoteEndpoint {
  /** IP address literal. */
  host: string
  /** UDP port (1–65535). */
  port: number
}

/** Options of {@link openSecureConnection}. */
export interface OpenSecureConnectionOptions {
  /** The local socket the udx stream runs on. */
  socket: PeerSocket
  /** The remote socket's address. */
  remote: RemoteEndpoint
  /** Our udx stream id (from {@link PeerSocket.allocateStreamId}), told to the remote out of band. */
  localStreamId: number
  /** The remote's udx stream id, learnt out of band. */
  remoteStreamId: number
  /** Exactly one side is the Noise initiator. */
  isInitiator: boolean
  /** Our identity key pair. */
  keyPair: TransportKeyPair
  /**
   * The PeerId (`12D3KooW…`) the remote must prove. Give this or
   * `expectedRemotePublicKey`, not both.
   * @default undefined
   */
  expectedPeerId?: string
  /**
   * The 32-byte Ed25519 public key the remote must prove (the raw form of `expectedPeerId`).
   * @default undefined
   */
  expectedRemotePublicKey?: Uint8Array
  /**
   * Milliseconds until the whole handshake (including the remote's confirmation) must
   * have completed.
   * @default 10_000
   */
  handshakeTimeout?: number
  /**
   * Formats a public key for error messages.
   * @default the PeerId text form (`12D3KooW…`)
   */
  formatPeerId?: (publicKey: Uint8Array) => string
  /** Cancels the handshake; rejects with {@link AbortError}. */
  signal?: AbortSignal
  /**
   * Called with the connection as soon as the remote's key is verified, before the
   * remote has confirmed that it accepted ours (the promise resolves with the same
   * connection once it has). What is written from then on goes out right behind our
   * handshake, readable only by the verified remote — the connecting side's first
   * stream frame travels with its last handshake message instead of a round trip later
   * (docs/benchmarks.md). If the confirmation does not come, the connection is
   * destroyed and the promise rejects as it would have.
   * @default undefined
   */
  onVerified?: (connection: SecureConnection) => void
  /**
   * Messages 1 and 2 of the handshake, already exchanged out of band (in peerlink's
   * offer and answer): the stream then carries only message 3 and the records, one round
   * trip less. Its `isInitiator` must match; it is used up.
   * @default undefined (the whole handshake runs on the stream)
   */
  handshake?: SecureHandshake
}

/** Options of {@link SecureConnection.close}. */
export interface SecureConnectionCloseOptions {
  /**
   * Milliseconds to wait for the remote to end its side before the connection is
   * destroyed.
   * @default 5_000
   */
  timeout?: number
}


export interface ValidatedOptions extends OpenSecureConnectionOptions {
  /** The Noise state taken from `handshake`. */
  prepared: NoiseState | undefined
  expectedRemotePublicKey: Uint8Array
  handshakeTimeout: number
  formatPeerId: (publicKey: Uint8Array) => string
}

export function validateOptions(options: OpenSecureConnectionOptions): ValidatedOptions {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object')
  const { socket, remote, keyPair, expectedPeerId } = options
  let { expectedRemotePublicKey } = options
  if (!(socket instanceof PeerSocket)) throw new InvalidArgumentError('socket must be a PeerSocket')
  if (remote === null || typeof remote !== 'object') throw new InvalidArgumentError('remote must be { host, port }')
  validateRemote(remote.host, remote.port)
  for (const name of ['localStreamId', 'remoteStreamId'] as const) {
    const id = options[name]
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffffffff) {
      throw new InvalidArgumentError(`${name} must be a 32-bit unsigned integer, got ${String(id)}`)
    }
  }
  if (!socket.isStreamIdFree(options.localStreamId)) {
    throw new InvalidArgumentError(`localStreamId ${options.localStreamId} is already in use on this socket`)
  }
  if (typeof options.isInitiator !== 'boolean') throw new InvalidArgumentError('isInitiator must be a boolean')
  if (keyPair === null || typeof keyPair !== 'object') throw new InvalidArgumentError('keyPair must be { publicKey, secretKey }')
  checkKey('keyPair.publicKey', keyPair.publicKey, 32)
  checkKey('keyPair.secretKey', keyPair.secretKey, 64)
  if (!Buffer.from(keyPair.secretKey.subarray(32)).equals(Buffer.from(keyPair.publicKey))) {
    throw new InvalidKeyError('keyPair.secretKey must be seed ‖ publicKey (sodium format); its public half differs')
  }
  if ((expectedPeerId === undefined) === (expectedRemotePublicKey === undefined)) {
    throw new InvalidArgumentError('give exactly one of expectedPeerId and expectedRemotePublicKey')
  }
  if (expectedPeerId !== undefined) expectedRemotePublicKey = publicKeyFromPeerId(expectedPeerId)
  checkKey('expectedRemotePublicKey', expectedRemotePublicKey, 32)
  const { handshakeTimeout = DEFAULT_HANDSHAKE_TIMEOUT, formatPeerId = peerIdFromPublicKey, signal } = options
  if (typeof handshakeTimeout !== 'number' || !Number.isFinite(handshakeTimeout) || handshakeTimeout <= 0) {
    throw new InvalidArgumentError(`handshakeTimeout must be a positive number, got ${String(handshakeTimeout)}`)
  }
  if (typeof formatPeerId !== 'function') throw new InvalidArgumentError('formatPeerId must be a function')
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new InvalidArgumentError('signal must be an AbortSignal')
  }
  if (options.onVerified !== undefined && typeof options.onVerified !== 'function') throw new InvalidArgumentError('onVerified must be a function')
  let prepared: NoiseState | undefined
  if (options.handshake !== undefined) {
    if (!(options.handshake instanceof SecureHandshake)) throw new InvalidArgumentError('handshake must be a SecureHandshake')
    if (options.handshake.isInitiator !== options.isInitiator) throw new InvalidArgumentError('handshake is the other side\'s half (isInitiator differs)')
    prepared = options.handshake.take()
    if (prepared === undefined) throw new InvalidArgumentError('handshake is not ready (the initiator has not accepted message 2) or was used already')
  }
  return { ...options, expectedRemotePublicKey: expectedRemotePublicKey!, handshakeTimeout, formatPeerId, prepared }
}

function checkKey(name: string, key: unknown, length: number): void {
  if (!(key instanceof Uint8Array)) throw new InvalidArgumentError(`${name} must be a Uint8Array`)
  if (key.length !== length) throw new InvalidKeyError(`${name} must be ${length} bytes, got ${key.length}`)
}

export function handshakeError(err: Error, socket: PeerSocket, describe: string): PeerlinkError {
  if (socket.closed) return new SocketClosedError('The socket closed during the handshake', { cause: err })
  const code = (err as { code?: unknown }).code
  if (code === 'ECONNRESET') {
    return new ConnectionClosedError(
      `${describe} reset the connection during the handshake (it may not have accepted our key)`,
      { cause: err },
    )
  }
  if (code === 'ETIMEDOUT') {
    return new HandshakeTimeoutError(`The transport to ${describe} timed out during the handshake`, { cause: err })
  }
  return new HandshakeFailedError(`Noise handshake with ${describe} failed: ${err.message}`, { cause: err })
}

export function connectionError(err: Error): PeerlinkError {
  const code = (err as { code?: unknown }).code
  if (code === 'ECONNRESET') return new ConnectionClosedError('The remote reset the connection', { cause: err })
  if (code === 'ETIMEDOUT') return new ConnectionClosedError('The connection timed out', { cause: err })
  return new ConnectionClosedError(`The connection failed: ${err.message}`, { cause: err })
}



export function noop(): void {}

