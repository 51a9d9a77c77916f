/**
 * The verified secure channel over any byte stream — here the tunnel's peer path: a
 * Noise XX handshake with both peers' Ed25519 keys (`@hyperswarm/secret-stream`) run
 * over a Node `Duplex` (the joined WebSocket), and a check that the remote's static key
 * is exactly the expected one before any application byte flows. The tunnel server
 * relaying the stream sees only the handshake and ciphertext, and cannot impersonate
 * either peer.
 *
 * As on the UDP path (`transport/secure-connection.ts`), the promise resolves only when
 * the remote has confirmed that it accepted our key too: its secretstream header has
 * arrived, which it writes only after its own check (counted with the transport's frame
 * counter).
 *
 * @module
 */
import { Duplex } from 'node:stream'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import {
  AbortError,
  ConnectionClosedError,
  HandshakeFailedError,
  HandshakeTimeoutError,
  InvalidArgumentError,
  InvalidKeyError,
} from '../errors.js'
// Referenced from TSDoc only.
import type { PeerIdentityMismatchError } from '../errors.js'
import { peerIdFromPublicKey, publicKeyFromPeerId } from '../identity/peer-id.js'
import { verifiedHandshake } from '../transport/verified-handshake.js'

/** Options of {@link secureTunnelStream}. */
export interface SecureTunnelStreamOptions {
  /** The raw byte stream (both directions, half-close allowed); it belongs to the connection afterwards. */
  stream: Duplex
  /** Exactly one side is the Noise initiator (on the peer path: the connecting peer). */
  isInitiator: boolean
  /** Our identity key pair (sodium format: `secretKey` is seed ‖ public key). */
  keyPair: { publicKey: Uint8Array; secretKey: Uint8Array }
  /** The PeerId (`12D3KooW…`) the remote must prove. */
  expectedPeerId: string
  /**
   * Milliseconds until the whole handshake (including the remote's confirmation) must
   * have completed.
   * @default 10_000
   */
  handshakeTimeout?: number
  /**
   * Cancels the handshake; rejects with {@link AbortError}.
   * @default undefined
   */
  signal?: AbortSignal
}

/** Options of {@link TunnelSecureConnection.close}. */
export interface TunnelSecureConnectionCloseOptions {
  /**
   * Milliseconds to wait for the remote to end its side before the connection is destroyed.
   * @default 5_000
   */
  timeout?: number
}

const HIGH_WATER_MARK = 64 * 1024
/**
 * Largest secretstream message: bigger writes are split, queued small ones merged up to
 * it. Each message is one frame on the tunnel, and tunnel servers refuse frames over
 * their `maxFrameBytes` (1 MiB by default).
 */
const MESSAGE_LIMIT = 64 * 1024

let create: (secret: NoiseSecretStream, raw: Duplex) => TunnelSecureConnection

/**
 * An encrypted, identity-verified byte stream over the tunnel (a Node `Duplex` with
 * half-close). Created only by {@link secureTunnelStream}.
 *
 * @example
 * ```ts
 * import { secureTunnelStream } from 'peerlink'
 *
 * const conn = await secureTunnelStream({ stream: raw, isInitiator: true, keyPair: identity.keyPair, expectedPeerId: remotePeerId })
 * console.log(conn.remotePeerId === remotePeerId)   // true: proved by the handshake
 * conn.write('hello')
 * await conn.close({ timeout: 2_000 })
 * ```
 */
export class TunnelSecureConnection extends Duplex {
  /** The remote's Ed25519 public key (equal to the expected one). */
  readonly remotePublicKey: Uint8Array
  /** The remote's PeerId (the expected one). */
  readonly remotePeerId: string
  /** Our Ed25519 public key. */
  readonly publicKey: Uint8Array
  /** The Noise handshake hash (64 bytes), identical on both sides. */
  readonly handshakeHash: Uint8Array
  /** Whether we were the Noise initiator. */
  readonly isInitiator: boolean

  readonly #secret: NoiseSecretStream
  readonly #raw: Duplex
  #secretPaused = false
  #remoteEnded = false
  #localFinished = false
  #pendingWrite: ((err?: Error | null) => void) | null = null

  private constructor(secret: NoiseSecretStream, raw: Duplex) {
    super({ allowHalfOpen: true, readableHighWaterMark: HIGH_WATER_MARK, writableHighWaterMark: HIGH_WATER_MARK })
    this.#secret = secret
    this.#raw = raw
    this.remotePublicKey = new Uint8Array(secret.remotePublicKey!)
    this.remotePeerId = peerIdFromPublicKey(this.remotePublicKey)
    this.publicKey = new Uint8Array(secret.publicKey!)
    this.handshakeHash = new Uint8Array(secret.handshakeHash!)
    this.isInitiator = secret.isInitiator
    secret.on('data', this.#onData)
    secret.on('end', this.#onEnd)
    secret.on('drain', this.#onDrain)
    secret.on('finish', () => (this.#localFinished = true))
    secret.on('error', this.#onError)
    secret.on('close', this.#onClose)
  }

  /**
   * Ends our side, discards unread input, and resolves once the connection is closed.
   * If the remote has not ended its side within `timeout`, the connection is destroyed
   * (the remote then sees a reset). Never rejects.
   */
  close(options: TunnelSecureConnectionCloseOptions = {}): Promise<void> {
    const { timeout = 5_000 } = options
    if (!Number.isFinite(timeout) || timeout < 0) throw new InvalidArgumentError(`timeout must be a non-negative number, got ${String(timeout)}`)
    return new Promise((resolve) => {
      if (this.closed) return resolve()
      const timer = setTimeout(() => this.destroy(), timeout)
      this.once('close', () => {
        clearTimeout(timer)
        resolve()
      })
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
    let drained = true
    for (let offset = 0; offset < chunk.byteLength; offset += MESSAGE_LIMIT) drained = this.#secret.write(chunk.subarray(offset, offset + MESSAGE_LIMIT))
    if (drained) cb()
    else this.#pendingWrite = cb
  }

  /** Writes queued while the previous one waited are merged into messages of up to 64 KiB (one MAC each). */
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    let drained = true
    let batch: Buffer[] = []
    let size = 0
    for (const { chunk: whole } of chunks) {
      for (let offset = 0; offset < whole.byteLength; offset += MESSAGE_LIMIT) {
        const chunk = whole.byteLength <= MESSAGE_LIMIT ? whole : whole.subarray(offset, offset + MESSAGE_LIMIT)
        if (batch.length > 0 && size + chunk.length > MESSAGE_LIMIT) {
          drained = this.#secret.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch, size))
          batch = []
          size = 0
        }
        batch.push(chunk)
        size += chunk.length
      }
    }
    if (batch.length > 0) drained = this.#secret.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch, size))
    if (drained) cb()
    else this.#pendingWrite = cb
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#secret.once('finish', () => cb())
    this.#secret.end()
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#pendingWrite = null
    if (!this.#secret.destroying) this.#secret.destroy()
    if (this.#raw.closed) cb(err)
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

  readonly #onError = (err: Error): void => {
    this.destroy(new ConnectionClosedError(`The tunnelled connection failed: ${err.message}`, { cause: err }))
  }

  readonly #onClose = (): void => {
    if (this.destroyed) return
    // A graceful close (both sides ended): let Node finish delivering buffered data.
    if (this.#remoteEnded && this.#localFinished) return
    this.destroy(new ConnectionClosedError('The tunnelled connection closed before both sides ended it'))
  }

  static {
    create = (secret, raw) => new TunnelSecureConnection(secret, raw)
  }
}

/**
 * Runs the verified Noise handshake over `stream` and resolves with the secure
 * connection once both sides have verified each other (see the module notes).
 *
 * @throws {@link InvalidArgumentError} / {@link InvalidKeyError} at once for bad options.
 * @throws {@link PeerIdentityMismatchError} (rejects, `ERR_PEER_IDENTITY_MISMATCH`) when the remote proves another key; the stream is destroyed before our secretstream header is written.
 * @throws {@link ConnectionClosedError} (rejects) when the stream closes first (for example because the remote refused our key).
 * @throws {@link HandshakeFailedError} (rejects) for corrupt handshake data.
 * @throws {@link HandshakeTimeoutError} (rejects) after `handshakeTimeout`.
 * @throws {@link AbortError} (rejects) when `signal` fires first.
 *
 * @example
 * ```ts
 * import { PeerIdentityMismatchError, secureTunnelStream } from 'peerlink'
 *
 * try {
 *   const conn = await secureTunnelStream({ stream: raw, isInitiator: false, keyPair: identity.keyPair, expectedPeerId: request.from, handshakeTimeout: 5_000 })
 *   conn.pipe(conn)
 * } catch (err) {
 *   if (err instanceof PeerIdentityMismatchError) console.warn('impostor refused')
 * }
 * ```
 */
export function secureTunnelStream(options: SecureTunnelStreamOptions): Promise<TunnelSecureConnection> {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object')
  const { stream: raw, isInitiator, keyPair, signal } = options
  if (!(raw instanceof Duplex)) throw new InvalidArgumentError('stream must be a Duplex')
  if (typeof isInitiator !== 'boolean') throw new InvalidArgumentError('isInitiator must be a boolean')
  if (keyPair === null || typeof keyPair !== 'object') throw new InvalidArgumentError('keyPair must be { publicKey, secretKey }')
  checkKey('keyPair.publicKey', keyPair.publicKey, 32)
  checkKey('keyPair.secretKey', keyPair.secretKey, 64)
  if (!Buffer.from(keyPair.secretKey.subarray(32)).equals(Buffer.from(keyPair.publicKey))) throw new InvalidKeyError('keyPair.secretKey must be seed ‖ publicKey (sodium format)')
  const expected = Buffer.from(publicKeyFromPeerId(options.expectedPeerId))
  const handshakeTimeout = options.handshakeTimeout ?? 10_000
  if (!Number.isFinite(handshakeTimeout) || handshakeTimeout <= 0) throw new InvalidArgumentError('handshakeTimeout must be a positive number')
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal')
  if (signal?.aborted === true) {
    raw.destroy()
    return Promise.reject(new AbortError(undefined, { cause: signal.reason }))
  }

  const secret = new NoiseSecretStream(isInitiator, raw, {
    keyPair: { publicKey: Buffer.from(keyPair.publicKey), secretKey: Buffer.from(keyPair.secretKey) },
    enableSend: false,
  })
  // Keeps late errors of a failed attempt (e.g. the remote's reset) from being uncaught.
  secret.on('error', noop)

  return verifiedHandshake(
    {
      secret,
      raw,
      isInitiator,
      expected,
      formatPeerId: peerIdFromPublicKey,
      timeoutMs: handshakeTimeout,
      timeoutError: () => new HandshakeTimeoutError(`No verified handshake with ${options.expectedPeerId} over the tunnel within ${handshakeTimeout} ms`),
      errorOf: (err) => {
        const code = (err as { code?: unknown }).code
        if (err instanceof ConnectionClosedError || code === 'ERR_CONNECTION_CLOSED' || code === 'ECONNRESET') {
          return new ConnectionClosedError('The tunnelled stream closed during the handshake (the remote may not have accepted our key)', { cause: err })
        }
        return new HandshakeFailedError(`Noise handshake over the tunnel failed: ${err.message}`, { cause: err })
      },
      closeError: () => new ConnectionClosedError('The tunnelled stream closed during the handshake (the remote may not have accepted our key)'),
      signal,
      // secret-stream attaches its own 'data' listener when it opens (a microtask queued
      // by its constructor); the counter must not set the stream flowing before that, or
      // bytes already buffered would reach the counter alone.
      deferCounter: true,
      destroyRawOnFail: true,
    },
    () => create(secret, raw),
  )
}

function checkKey(name: string, key: unknown, length: number): void {
  if (!(key instanceof Uint8Array)) throw new InvalidArgumentError(`${name} must be a Uint8Array`)
  if (key.length !== length) throw new InvalidKeyError(`${name} must be ${length} bytes, got ${key.length}`)
}

function noop(): void {}
