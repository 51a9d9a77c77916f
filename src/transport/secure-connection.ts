/**
 * The verified secure connection: a udx-native stream on a {@link PeerSocket}, a Noise XX
 * handshake with both peers' Ed25519 keys, a check that the remote's static key is
 * exactly the expected one before any application byte flows, then AES-256-GCM records.
 *
 * Wire format (docs/protocol.md, "Secure connection"): every message is a frame — a
 * 3-byte little-endian length, then that many bytes. The first three frames are the
 * messages of `Noise_XX_Ed25519_ChaChaPoly_BLAKE2b` (noise-handshake, prologue
 * `peerlink/secure-connection/v1`, empty payloads); every later frame is a record:
 * AES-256-GCM ciphertext and tag of up to {@link MAX_RECORD_PLAINTEXT} bytes, under the
 * sender's Noise transport key, nonce = the sender's record counter (record-cipher.ts).
 * The responder's first record is empty: its confirmation that it accepted the
 * initiator's key (the initiator's confirmation is its third handshake message).
 *
 * Why not secret-stream's own transport (XChaCha20-Poly1305 secretstream, as before
 * 0.1.0): its cipher and its streamx layers were most of the CPU a direct connection
 * spent per byte above udx; AES-GCM through OpenSSL (native/record_cipher.c when built)
 * and one stream layer cost far less (docs/benchmarks.md, `connect`).
 *
 * @module
 */
import { Duplex } from 'node:stream'
import type NoiseState from 'noise-handshake'
import type UDX from 'udx-native'
import {
  AbortError,
  ConnectionClosedError,
  HandshakeFailedError,
  HandshakeTimeoutError,
  InvalidArgumentError,
  PeerIdentityMismatchError,
  SocketClosedError,
  type PeerlinkError,
} from '../errors.js'
import { allocateFrame, FRAME_HEADER_BYTES, FrameReader } from './frame-reader.js'
import type { DatagramAddress, PeerSocket } from './peer-socket.js'
import { RECORD_TAG_BYTES } from './record-cipher.js'
import { RecordDirection } from './record-direction.js'
import { MAX_HANDSHAKE_MESSAGE, newNoiseState, readHandshakeMessage, sameKey, toBuffer } from './secure-handshake.js'
import {
  connectionError,
  handshakeError,
  noop,
  validateOptions,
  type OpenSecureConnectionOptions,
  type SecureConnectionCloseOptions,
  type TransportKeyPair,
} from './secure-connection-options.js'

export type { OpenSecureConnectionOptions, RemoteEndpoint, SecureConnectionCloseOptions, TransportKeyPair } from './secure-connection-options.js'

const DEFAULT_CLOSE_TIMEOUT = 5_000
/** Node-side buffering; measured in bench/secure-stream.mjs (see docs/benchmarks.md). */
const HIGH_WATER_MARK = 64 * 1024
/**
 * The largest record we send: 64 KiB, plus room for a small header in front of a 64 KiB
 * write (a multiplexer frame: 10-byte header + 64 KiB payload becomes one record, not
 * two). Queued writes are coalesced up to it; larger writes are split.
 */
export const MAX_RECORD_PLAINTEXT = 64 * 1024 + 1024
/**
 * The largest record frame we accept: 1 MiB of plaintext and the tag. Above what we
 * send, so that a later version may send larger records; only a verified peer can get
 * a record read at all.
 */
const MAX_RECORD_FRAME = 1024 * 1024 + RECORD_TAG_BYTES

/** Where the connection is: the handshake, then verified (initiator, awaiting the responder's confirmation), then open. */
type Phase = 'handshake' | 'confirming' | 'open'

/** What the handshake reports to {@link openSecureConnection}'s promise. */
interface HandshakeOutcome {
  resolve(connection: SecureConnection): void
  reject(err: PeerlinkError): void
}

interface ConnectionSetup {
  raw: UDX.UDXStream
  socket: PeerSocket
  isInitiator: boolean
  keyPair: TransportKeyPair
  expected: Buffer
  formatPeerId: (publicKey: Uint8Array) => string
  describe: string
  onVerified: ((connection: SecureConnection) => void) | undefined
  outcome: HandshakeOutcome
  /** Messages 1 and 2 already exchanged out of band (secure-handshake.ts). */
  prepared: NoiseState | undefined
}

// Assigned in the class's static block: the only way to construct a SecureConnection.
let createSecureConnection: (setup: ConnectionSetup) => SecureConnection

/**
 * An encrypted, identity-verified byte stream (a Node `Duplex`). Created only by
 * {@link openSecureConnection}; by then both sides have verified each other's key.
 *
 * Errors: a remote reset, a transport timeout or a record that fails authentication
 * destroy the stream with {@link ConnectionClosedError}. Destroying it locally resets the
 * remote, which then sees `ConnectionClosedError`. Closing the {@link PeerSocket}
 * destroys it without error.
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
  handshakeHash: Uint8Array = new Uint8Array(0)
  /** Whether we were the Noise initiator. */
  readonly isInitiator: boolean
  /** Our udx stream id. */
  readonly localStreamId: number
  /** The remote's udx stream id. */
  readonly remoteStreamId: number

  readonly #raw: UDX.UDXStream
  readonly #socket: PeerSocket
  readonly #reader: FrameReader
  #setup: ConnectionSetup | null
  #noise: NoiseState | null
  #phase: Phase = 'handshake'
  /** Our records' key, counter and cipher, once the handshake has given the keys. */
  #send: RecordDirection | null = null
  /** The remote's records' key, counter and cipher. */
  #receive: RecordDirection | null = null
  #rawClosed = false
  #rawPaused = false
  #remoteEnded = false
  #localFinished = false
  /** Whether {@link OpenSecureConnectionOptions.onVerified} has been given this connection. */
  #exposed = false
  #pendingWrite: ((err?: Error | null) => void) | null = null

  private constructor(setup: ConnectionSetup) {
    super({
      allowHalfOpen: true,
      readableHighWaterMark: HIGH_WATER_MARK,
      writableHighWaterMark: HIGH_WATER_MARK,
    })
    const { raw, keyPair } = setup
    this.#raw = raw
    this.#socket = setup.socket
    this.#setup = setup
    this.isInitiator = setup.isInitiator
    this.publicKey = new Uint8Array(keyPair.publicKey)
    this.remotePublicKey = new Uint8Array(setup.expected)
    this.localStreamId = raw.id
    this.remoteStreamId = raw.remoteId
    this.#noise = setup.prepared ?? newNoiseState(setup.isInitiator, keyPair)
    this.#reader = new FrameReader(MAX_HANDSHAKE_MESSAGE, this.#onFrame, this.#onOversize)
    if (raw.destroyed) this.#rawClosed = true
    raw.on('data', this.#onRawData)
    raw.on('end', this.#onRawEnd)
    raw.on('drain', this.#onRawDrain)
    raw.on('error', this.#onRawError)
    raw.on('close', this.#onRawClose)
  }

  /** Starts the handshake on the stream (after construction: it may settle at once). */
  #start(): void {
    const setup = this.#setup!
    if (!setup.isInitiator) return // waits for message 1 (or, prepared, message 3)
    if (setup.prepared === undefined) this.#sendHandshake()
    else this.#completeAsInitiator(setup)
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

  /** Fails the handshake: rejects the promise, resets the remote, releases everything. */
  failHandshake(err: PeerlinkError): void {
    const setup = this.#setup
    if (setup === null) return
    this.#setup = null
    this.#reader.stop()
    setup.outcome.reject(err)
    // A connection already given to onVerified reports why to whoever listens by now;
    // otherwise nobody would hear the 'error' (it would be uncaught).
    if (this.#exposed && this.listenerCount('error') > 0) this.destroy(err)
    else this.destroy()
  }

  override _read(): void {
    if (this.#rawPaused) {
      this.#rawPaused = false
      this.#raw.resume()
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this._writev([{ chunk }], cb)
  }

  /**
   * Writes queued while the previous write waited for udx (or given together, under
   * `cork()`) are coalesced into records of up to {@link MAX_RECORD_PLAINTEXT} bytes:
   * fewer records (one tag and one native call each) make small writes cheaper, at no
   * latency cost (only already-queued data is merged). The cipher reads the queued
   * chunks and writes the record once, so merging costs no extra copy.
   */
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    let drained = true
    let parts: Buffer[] = []
    let size = 0
    for (const { chunk } of chunks) {
      if (chunk.length > MAX_RECORD_PLAINTEXT) {
        if (parts.length > 0) drained = this.#sealRecord(parts, size)
        parts = []
        size = 0
        for (let offset = 0; offset < chunk.length; offset += MAX_RECORD_PLAINTEXT) {
          const part = chunk.subarray(offset, offset + MAX_RECORD_PLAINTEXT)
          drained = this.#sealRecord([part], part.length)
        }
        continue
      }
      if (size + chunk.length > MAX_RECORD_PLAINTEXT) {
        drained = this.#sealRecord(parts, size)
        parts = []
        size = 0
      }
      parts.push(chunk)
      size += chunk.length
    }
    if (parts.length > 0) drained = this.#sealRecord(parts, size)
    if (drained) cb()
    else this.#pendingWrite = cb
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#raw.end()
    this.#localFinished = true
    cb()
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#pendingWrite = null
    this.#reader.stop()
    this.#send?.destroy()
    this.#receive?.destroy()
    this.#send = this.#receive = null
    this.#noise = null
    if (this.#setup !== null) {
      // Destroyed while the handshake runs (by onVerified's receiver): the promise fails too.
      const setup = this.#setup
      this.#setup = null
      setup.outcome.reject(err instanceof ConnectionClosedError ? err : new ConnectionClosedError('The connection was destroyed during the handshake', err === null ? undefined : { cause: err }))
    }
    // Both sides ended: udx closes the stream itself once the ends are acknowledged;
    // destroying it now would reset the remote before our end reaches it.
    const graceful = err === null && this.#remoteEnded && this.#localFinished
    if (!graceful && !this.#raw.destroyed) this.#raw.destroy()
    if (this.#rawClosed) cb(err)
    else this.#raw.once('close', () => cb(err))
  }

  /** Encrypts `parts` (`size` bytes) into one record and writes it; false when udx wants us to wait. */
  #sealRecord(parts: readonly Uint8Array[], size: number): boolean {
    const send = this.#send
    if (send === null) return true // destroyed: nothing more goes out
    const frame = allocateFrame(size + RECORD_TAG_BYTES)
    send.seal(parts, frame, FRAME_HEADER_BYTES)
    return this.#raw.write(frame)
  }

  /** Writes our next handshake message; on the last one, sets up the record keys. */
  #sendHandshake(): void {
    const noise = this.#noise!
    const message = noise.send()
    const frame = allocateFrame(message.length)
    frame.set(message, FRAME_HEADER_BYTES)
    this.#raw.write(frame)
    if (noise.complete) this.#keys(noise)
  }

  #keys(noise: NoiseState): void {
    this.#send = new RecordDirection(noise.tx!)
    this.#receive = new RecordDirection(noise.rx!)
    this.handshakeHash = new Uint8Array(noise.hash!)
    this.#noise = null
    this.#reader.limit = MAX_RECORD_FRAME
  }

  readonly #onRawData = (chunk: Buffer): void => {
    this.#reader.push(chunk)
  }

  readonly #onFrame = (frame: Buffer): boolean => {
    if (this.#phase === 'handshake') return this.#onHandshakeFrame(frame)
    if (frame.length < RECORD_TAG_BYTES) return this.#corrupt('a record shorter than its tag')
    const plain = frame.subarray(0, frame.length - RECORD_TAG_BYTES)
    if (!this.#receive!.open(frame, plain)) return this.#corrupt('a record that failed authentication')
    if (this.#phase === 'confirming') {
      // The responder's first record: it has accepted our key.
      this.#phase = 'open'
      this.#settle()
    }
    if (plain.length > 0 && !this.push(plain)) {
      this.#rawPaused = true
      this.#raw.pause()
    }
    return !this.destroyed
  }

  #onHandshakeFrame(frame: Buffer): boolean {
    const setup = this.#setup!
    const noise = this.#noise!
    try {
      readHandshakeMessage(noise, frame)
    } catch (err) {
      return this.#noiseFailed(setup, err)
    }
    if (noise.rs !== null && !this.#verifyRemote(noise.rs, setup)) return false
    if (this.isInitiator) return this.#completeAsInitiator(setup)
    if (!noise.complete) {
      try {
        this.#sendHandshake() // message 2 (its DH fails on a remote ephemeral key that is no curve point)
      } catch (err) {
        return this.#noiseFailed(setup, err)
      }
      return true
    }
    // Message 3 read: the initiator has verified us and we have verified it. Confirm
    // with an empty record, then the connection is open.
    this.#keys(noise)
    this.#phase = 'open'
    this.#sealRecord([], 0)
    this.#settle()
    return !this.destroyed
  }

  /**
   * Message 2 read and the responder verified: message 3 completes the handshake; what
   * the caller writes from onVerified on follows it.
   */
  #completeAsInitiator(setup: ConnectionSetup): boolean {
    try {
      this.#sendHandshake()
    } catch (err) {
      return this.#noiseFailed(setup, err)
    }
    this.#phase = 'confirming'
    if (setup.onVerified !== undefined) {
      this.#exposed = true
      try {
        setup.onVerified(this)
      } catch (err) {
        this.failHandshake(new HandshakeFailedError(`onVerified threw: ${(err as Error).message}`, { cause: err }))
        return false
      }
    }
    return !this.destroyed
  }

  /** A Noise message could not be read or written: the handshake fails. */
  #noiseFailed(setup: ConnectionSetup, err: unknown): false {
    this.failHandshake(new HandshakeFailedError(`Noise handshake with ${setup.describe} failed: ${(err as Error).message}`, { cause: err }))
    return false
  }

  #verifyRemote(actual: Uint8Array, setup: ConnectionSetup): boolean {
    const expected = setup.expected
    if (sameKey(actual, expected)) return true
    // Destroyed before anything more is written: no application byte is ever exchanged
    // with an impostor.
    this.failHandshake(new PeerIdentityMismatchError(setup.formatPeerId(expected), setup.formatPeerId(actual)))
    return false
  }

  /** The handshake is verified both ways: the promise resolves. */
  #settle(): void {
    const setup = this.#setup
    if (setup === null) return
    this.#setup = null
    setup.outcome.resolve(this)
  }

  #corrupt(what: string): boolean {
    const setup = this.#setup
    if (setup !== null) this.failHandshake(new HandshakeFailedError(`${setup.describe} sent ${what} during the handshake`))
    else this.destroy(new ConnectionClosedError(`The remote sent ${what}`))
    return false
  }

  readonly #onOversize = (length: number, limit: number): void => {
    const setup = this.#setup
    if (setup !== null) this.failHandshake(new HandshakeFailedError(`${setup.describe} sent a ${length}-byte frame during the handshake (at most ${limit})`))
    else this.destroy(new ConnectionClosedError(`The remote sent a ${length}-byte record (at most ${limit})`))
  }

  readonly #onRawEnd = (): void => {
    this.#remoteEnded = true
    const setup = this.#setup
    if (setup !== null) {
      this.failHandshake(new ConnectionClosedError(`${setup.describe} ended the stream during the handshake`))
      return
    }
    if (this.#reader.partial) {
      this.destroy(new ConnectionClosedError('The remote ended the connection inside a record'))
      return
    }
    this.push(null)
  }

  readonly #onRawDrain = (): void => {
    const cb = this.#pendingWrite
    this.#pendingWrite = null
    cb?.()
  }

  readonly #onRawError = (err: Error): void => {
    const setup = this.#setup
    if (setup !== null) {
      this.failHandshake(handshakeError(err, this.#socket, setup.describe))
      return
    }
    if (this.#socket.closed) this.destroy()
    else this.destroy(connectionError(err))
  }

  readonly #onRawClose = (): void => {
    this.#rawClosed = true
    const setup = this.#setup
    if (setup !== null) {
      this.failHandshake(this.#socket.closed ? new SocketClosedError('The socket closed during the handshake') : new ConnectionClosedError(`The connection to ${setup.describe} closed during the handshake`))
      return
    }
    if (this.destroyed) return
    // A graceful close (both sides ended): let Node finish delivering buffered data.
    if (this.#remoteEnded && this.#localFinished) return
    if (this.#socket.closed) this.destroy()
    else this.destroy(new ConnectionClosedError('The connection closed before both sides ended it'))
  }

  static {
    createSecureConnection = (setup) => {
      const connection = new SecureConnection(setup)
      connection.#start()
      return connection
    }
  }
}

/**
 * Open a verified secure connection over `socket` to the remote udx stream
 * `remoteStreamId` at `remote`. Both sides call it (one with `isInitiator: true`) with
 * stream ids exchanged out of band.
 *
 * Resolves only when the Noise XX handshake has completed, the remote's static key
 * equals `expectedRemotePublicKey`, AND the remote has confirmed that it accepted our
 * key (the responder's third message read, or the responder's first record). So when
 * the promise resolves on one side, both sides have verified each other. This costs the
 * initiator one extra round trip (see `onVerified`).
 *
 * Throws {@link InvalidArgumentError} / {@link InvalidKeyError} at once for bad
 * arguments. Rejects with {@link PeerIdentityMismatchError} when the remote proves
 * another key (the stream is reset before anything more is written, so no application
 * byte is ever exchanged), {@link HandshakeFailedError} for corrupt or oversized
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
  const expected = toBuffer(opts.expectedRemotePublicKey)
  const describe = `${opts.remote.host.includes(':') ? `[${opts.remote.host}]` : opts.remote.host}:${opts.remote.port}`
  return new Promise<SecureConnection>((resolve, reject) => {
    let connection: SecureConnection | undefined
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
    const onAbort = (): void => connection?.failHandshake(new AbortError(undefined, { cause: signal?.reason }))
    const timer = setTimeout(
      () => connection?.failHandshake(new HandshakeTimeoutError(`No verified handshake with ${opts.formatPeerId(expected)} at ${describe} within ${opts.handshakeTimeout} ms`)),
      opts.handshakeTimeout,
    )
    signal?.addEventListener('abort', onAbort, { once: true })
    connection = createSecureConnection({
      raw,
      socket,
      isInitiator: opts.isInitiator,
      keyPair: opts.keyPair,
      expected,
      formatPeerId: opts.formatPeerId,
      describe,
      onVerified: opts.onVerified,
      prepared: opts.prepared,
      outcome: {
        resolve: (value) => (done(), resolve(value)),
        reject: (err) => (done(), reject(err)),
      },
    })
  })
}

