/**
 * The verified secure connection: a udx-native stream on a {@link PeerSocket}, a Noise XX
 * handshake with both peers' Ed25519 keys (`@hyperswarm/secret-stream`), and a check
 * that the remote's static key is exactly the expected one before any application byte
 * flows.
 *
 * @module
 */
import { Duplex } from 'node:stream'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import type UDX from 'udx-native'
import {
  AbortError,
  ConnectionClosedError,
  HandshakeFailedError,
  HandshakeTimeoutError,
  InvalidArgumentError,
  InvalidKeyError,
  PeerIdentityMismatchError,
  SocketClosedError,
  type PeerlinkError,
} from '../errors.js'
import { peerIdFromPublicKey, publicKeyFromPeerId } from '../identity/peer-id.js'
import { PeerSocket, validateRemote, type DatagramAddress } from './peer-socket.js'
import { verifiedHandshake } from './verified-handshake.js'

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

const DEFAULT_HANDSHAKE_TIMEOUT = 10_000
const DEFAULT_CLOSE_TIMEOUT = 5_000
/** Node-side buffering; measured in bench/secure-stream.mjs (see docs/benchmarks.md). */
const HIGH_WATER_MARK = 64 * 1024
/**
 * Largest secretstream message built by coalescing queued writes: 64 KiB, plus room for
 * a small header in front of a 64 KiB write (a multiplexer frame: 10-byte header +
 * 64 KiB payload becomes one message, not two).
 */
const COALESCE_LIMIT = 64 * 1024 + 1024

/**
 * secret-stream's `alloc(length)`: a plaintext buffer inside the buffer the message will
 * be encrypted in, so that writing it costs no further copy (the declaration file in
 * `src/types` does not list it).
 */
interface SecretStreamAlloc {
  alloc(length: number): Buffer
}

// Assigned in the class's static block: the only way to construct a SecureConnection.
let createSecureConnection: (secret: NoiseSecretStream, raw: UDX.UDXStream, socket: PeerSocket) => SecureConnection

/**
 * An encrypted, identity-verified byte stream (a Node `Duplex`). Created only by
 * {@link openSecureConnection}; by then both sides have verified each other's key.
 *
 * Errors: a remote reset, a transport timeout or corrupt ciphertext destroy the stream
 * with {@link ConnectionClosedError}. Destroying it locally resets the remote, which then
 * sees `ConnectionClosedError`. Closing the {@link PeerSocket} destroys it without error.
 *
 * @example
 * ```ts
 * const conn = await openSecureConnection({ socket, remote, localStreamId, remoteStreamId,
 *   isInitiator: true, keyPair, expectedRemotePublicKey })
 * conn.end('hello')
 * ```
 */
export class SecureConnection extends Duplex {
  /** The remote's Ed25519 public key (equal to the expected one). */
  readonly remotePublicKey: Uint8Array
  /** Our Ed25519 public key. */
  readonly publicKey: Uint8Array
  /** The Noise handshake hash (64 bytes), identical on both sides; bind signalling to it. */
  readonly handshakeHash: Uint8Array
  /** Whether we were the Noise initiator. */
  readonly isInitiator: boolean
  /** Our udx stream id. */
  readonly localStreamId: number
  /** The remote's udx stream id. */
  readonly remoteStreamId: number

  readonly #secret: NoiseSecretStream
  readonly #raw: UDX.UDXStream
  readonly #socket: PeerSocket
  #rawClosed = false
  #secretPaused = false
  #remoteEnded = false
  #localFinished = false
  #pendingWrite: ((err?: Error | null) => void) | null = null

  private constructor(secret: NoiseSecretStream, raw: UDX.UDXStream, socket: PeerSocket) {
    super({
      allowHalfOpen: true,
      readableHighWaterMark: HIGH_WATER_MARK,
      writableHighWaterMark: HIGH_WATER_MARK,
    })
    this.#secret = secret
    this.#raw = raw
    this.#socket = socket
    this.remotePublicKey = new Uint8Array(secret.remotePublicKey!)
    this.publicKey = new Uint8Array(secret.publicKey!)
    this.handshakeHash = new Uint8Array(secret.handshakeHash!)
    this.isInitiator = secret.isInitiator
    this.localStreamId = raw.id
    this.remoteStreamId = raw.remoteId
    if (raw.destroyed) this.#rawClosed = true
    else raw.once('close', () => (this.#rawClosed = true))
    secret.on('data', this.#onData)
    secret.on('end', this.#onEnd)
    secret.on('drain', this.#onDrain)
    secret.on('finish', this.#onFinish)
    secret.on('error', this.#onError)
    secret.on('close', this.#onClose)
  }

  /** The remote UDP address the stream currently sends to. */
  get remoteAddress(): DatagramAddress {
    const raw = this.#raw
    return { host: raw.remoteHost ?? '', port: raw.remotePort, family: raw.remoteFamily === 6 ? 6 : 4 }
  }

  /** Smoothed round-trip time in milliseconds, as measured by udx. */
  get rtt(): number {
    return this.#raw.rtt
  }

  /**
   * End our side, discard unread input, and resolve once the connection is fully closed
   * and its native stream released. If the remote has not ended its side within
   * `timeout`, the connection is destroyed (the remote then sees a reset). Never rejects.
   */
  close(options: SecureConnectionCloseOptions = {}): Promise<void> {
    const { timeout = DEFAULT_CLOSE_TIMEOUT } = options
    if (!Number.isFinite(timeout) || timeout < 0) {
      throw new InvalidArgumentError(`timeout must be a non-negative number, got ${String(timeout)}`)
    }
    return new Promise((resolve) => {
      if (this.closed) return resolve()
      const timer = setTimeout(() => this.destroy(), timeout)
      this.once('close', () => {
        clearTimeout(timer)
        resolve()
      })
      // close() never rejects, so an error here must not become an uncaught exception.
      this.on('error', noop)
      if (!this.writableEnded) this.end()
      this.resume()
    })
  }

  override _read(): void {
    if (this.#secretPaused) {
      this.#secretPaused = false
      this.#secret.resume()
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#secret.write(chunk)) cb()
    else this.#pendingWrite = cb
  }

  /**
   * Writes queued while the previous write waited for secret-stream (or given together,
   * under `cork()`) are coalesced into messages of up to 64 KiB (+ 1 KiB for a header):
   * fewer secretstream messages (one MAC and one native call each) make small writes
   * faster than secret-stream used directly, at no latency cost (only already-queued
   * data is merged). A merged message is built in the buffer secret-stream encrypts in
   * place (secret-stream's `alloc`), so its bytes are copied once, as a single
   * write's are.
   */
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    let drained = true
    let first = 0
    let size = 0
    for (let i = 0; i < chunks.length; i++) {
      const length = chunks[i]!.chunk.length
      if (i > first && size + length > COALESCE_LIMIT) {
        drained = this.#writeMessage(chunks, first, i, size)
        first = i
        size = 0
      }
      size += length
    }
    if (first < chunks.length) drained = this.#writeMessage(chunks, first, chunks.length, size)
    if (drained) cb()
    else this.#pendingWrite = cb
  }

  /** Write `chunks[from..to)` (`size` bytes) as one secretstream message. */
  #writeMessage(chunks: Array<{ chunk: Buffer }>, from: number, to: number, size: number): boolean {
    const secret = this.#secret
    if (to - from === 1) return secret.write(chunks[from]!.chunk)
    const message = (secret as unknown as SecretStreamAlloc).alloc(size)
    let offset = 0
    for (let i = from; i < to; i++) {
      const { chunk } = chunks[i]!
      message.set(chunk, offset)
      offset += chunk.length
    }
    return secret.write(message)
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#secret.once('finish', () => cb())
    this.#secret.end()
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#pendingWrite = null
    if (!this.#secret.destroying) this.#secret.destroy()
    if (this.#rawClosed) cb(err)
    else this.#raw.once('close', () => cb(err))
  }

  readonly #onData = (chunk: Buffer): void => {
    if (!this.push(chunk)) {
      this.#secretPaused = true
      this.#secret.pause()
    }
  }

  readonly #onEnd = (): void => {
    this.#remoteEnded = true
    this.push(null)
  }

  readonly #onDrain = (): void => {
    const cb = this.#pendingWrite
    this.#pendingWrite = null
    cb?.()
  }

  readonly #onFinish = (): void => {
    this.#localFinished = true
  }

  readonly #onError = (err: Error): void => {
    if (this.#socket.closed) this.destroy()
    else this.destroy(connectionError(err))
  }

  readonly #onClose = (): void => {
    if (this.destroyed) return
    // A graceful close (both sides ended): let Node finish delivering buffered data.
    if (this.#remoteEnded && this.#localFinished) return
    if (this.#socket.closed) this.destroy()
    else this.destroy(new ConnectionClosedError('The connection closed before both sides ended it'))
  }

  static {
    createSecureConnection = (secret, raw, socket) => new SecureConnection(secret, raw, socket)
  }
}

/**
 * Open a verified secure connection over `socket` to the remote udx stream
 * `remoteStreamId` at `remote`. Both sides call it (one with `isInitiator: true`) with
 * stream ids exchanged out of band.
 *
 * Resolves only when the Noise XX handshake has completed, the remote's static key
 * equals `expectedRemotePublicKey`, AND the remote has confirmed that it accepted our
 * key (its secretstream header arrived; it only sends that after its own check). So when
 * the promise resolves on one side, both sides have verified each other. This costs the
 * initiator one extra round trip.
 *
 * Throws {@link InvalidArgumentError} / {@link InvalidKeyError} at once for bad
 * arguments. Rejects with {@link PeerIdentityMismatchError} when the remote proves
 * another key (the stream is destroyed before our secretstream header is written, so no
 * application byte is ever exchanged), {@link HandshakeFailedError} for corrupt
 * handshake data, {@link ConnectionClosedError} when the remote closes or resets the
 * stream first (for example because it rejected our key), {@link HandshakeTimeoutError}
 * after `handshakeTimeout`, {@link AbortError} on abort and {@link SocketClosedError}
 * when the socket is or gets closed.
 */
export function openSecureConnection(options: OpenSecureConnectionOptions): Promise<SecureConnection> {
  const opts = validateOptions(options)
  const { socket, signal } = opts
  if (signal?.aborted === true) return Promise.reject(new AbortError(undefined, { cause: signal.reason }))
  if (socket.closed) return Promise.reject(new SocketClosedError('Cannot connect: the socket is closed'))

  const raw = socket.connectStream(opts.localStreamId, opts.remoteStreamId, opts.remote.port, opts.remote.host)
  const secret = new NoiseSecretStream(opts.isInitiator, raw, {
    keyPair: { publicKey: toBuffer(opts.keyPair.publicKey), secretKey: toBuffer(opts.keyPair.secretKey) },
  })
  // Keeps late errors of a failed attempt (e.g. the remote's reset) from being uncaught.
  secret.on('error', noop)

  const expected = toBuffer(opts.expectedRemotePublicKey)
  const describe = `${opts.remote.host.includes(':') ? `[${opts.remote.host}]` : opts.remote.host}:${opts.remote.port}`

  return verifiedHandshake(
    {
      secret,
      raw,
      isInitiator: opts.isInitiator,
      expected,
      formatPeerId: opts.formatPeerId,
      timeoutMs: opts.handshakeTimeout,
      timeoutError: () => new HandshakeTimeoutError(`No verified handshake with ${opts.formatPeerId(expected)} at ${describe} within ${opts.handshakeTimeout} ms`),
      errorOf: (err) => handshakeError(err, socket, describe),
      closeError: () =>
        socket.closed ? new SocketClosedError('The socket closed during the handshake') : new ConnectionClosedError(`The connection to ${describe} closed during the handshake`),
      signal,
      onVerified: opts.onVerified as ((value: unknown) => void) | undefined,
    },
    () => createSecureConnection(secret, raw, socket),
  )
}

interface ValidatedOptions extends OpenSecureConnectionOptions {
  expectedRemotePublicKey: Uint8Array
  handshakeTimeout: number
  formatPeerId: (publicKey: Uint8Array) => string
}

function validateOptions(options: OpenSecureConnectionOptions): ValidatedOptions {
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
  return { ...options, expectedRemotePublicKey: expectedRemotePublicKey!, handshakeTimeout, formatPeerId }
}

function checkKey(name: string, key: unknown, length: number): void {
  if (!(key instanceof Uint8Array)) throw new InvalidArgumentError(`${name} must be a Uint8Array`)
  if (key.length !== length) throw new InvalidKeyError(`${name} must be ${length} bytes, got ${key.length}`)
}

function handshakeError(err: Error, socket: PeerSocket, describe: string): PeerlinkError {
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

function connectionError(err: Error): PeerlinkError {
  const code = (err as { code?: unknown }).code
  if (code === 'ECONNRESET') return new ConnectionClosedError('The remote reset the connection', { cause: err })
  if (code === 'ETIMEDOUT') return new ConnectionClosedError('The connection timed out', { cause: err })
  return new ConnectionClosedError(`The connection failed: ${err.message}`, { cause: err })
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}


function noop(): void {}
