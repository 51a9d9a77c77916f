/**
 * A verified connection to one peer: a Node `Duplex` (its main stream) that also
 * carries any number of independent streams ({@link PeerConnection.openStream}, the
 * `'stream'` event), over one encrypted session whose remote proved `remotePeerId`.
 *
 * The main stream is the multiplexer's stream labelled {@link MAIN_STREAM_LABEL}, opened
 * by the connecting side as soon as the session is up; the listening side takes it as
 * its own main stream. Other streams carry whatever label the opener gives.
 *
 * @module
 */
import { Duplex } from 'node:stream'
import { ConnectionClosedError } from '../errors.js'
import type { MuxStream } from '../connection/mux-stream.js'
import type { OpenStreamOptions, StreamMux } from '../connection/stream-mux.js'
import type { IceAgent } from '../ice/ice-agent.js'
import type { SecureConnection } from '../transport/secure-connection.js'
import type { TunnelSecureConnection } from '../tunnel/tunnel-secure-connection.js'
import type { ConnectionInfo, ConnectionPath } from './peer-options.js'
import type { PathChange } from './path-manager.js'

/** How long a graceful close waits for open streams, ms. */
const GRACEFUL_CLOSE_MS = 5_000

/** Node-side buffering in each direction, as the multiplexer's streams. */
const HIGH_WATER_MARK = 64 * 1024

/**
 * Label of the main stream of a connection.
 *
 * @example
 * ```ts
 * import { MAIN_STREAM_LABEL } from 'peerlink'
 *
 * // The main stream is the connection itself; other streams carry their own label.
 * conn.on('stream', (stream) => {
 *   console.log(stream.label === MAIN_STREAM_LABEL ? 'main' : `extra stream ${stream.label}`)
 * })
 * ```
 */
export const MAIN_STREAM_LABEL = 'peerlink/main'

/** Events of a {@link PeerConnection} besides those of a Duplex. */
export interface PeerConnectionEventMap {
  /** The remote opened a stream. */
  stream: [stream: MuxStream]
  /**
   * The connection moved to another path without a reset (`path-manager.ts`): `reason`
   * `consent-lost` (the selected pair stopped answering) or `upgrade` (relay → direct).
   * `info` and `path` already describe the new path. The tunnel path does not move.
   */
  path: [change: PathChange]
}

/** Parts a {@link PeerConnection} is made of (built by the Peer). */
export interface PeerConnectionParts {
  mux: StreamMux
  /** The encrypted session under the multiplexer: a `SecureConnection` (UDP paths) or a `TunnelSecureConnection` (tunnel path). */
  secure: SecureConnection | TunnelSecureConnection
  agent: IceAgent | undefined
  main: MuxStream
  /** Streams the remote opened before the connection existed (emitted as `stream` soon after). */
  early?: readonly MuxStream[]
  info: ConnectionInfo
  onClose: () => void
}

/**
 * A verified connection (see the module notes). Created by `peer.connect()` and
 * emitted by the Peer's `'connection'` event; never constructed by applications.
 *
 * @example
 * ```ts
 * const conn = await peer.connect(peerId)
 * conn.write('hello')                      // the main stream
 * const extra = conn.openStream({ label: 'file' })
 * conn.on('stream', (s) => s.pipe(s))      // streams the remote opens
 * ```
 */
export class PeerConnection extends Duplex {
  /** The remote's PeerId, proved by its key in the handshake. */
  readonly remotePeerId: string
  /** How the connection was made: addresses, candidates, timings. */
  readonly info: ConnectionInfo
  readonly #mux: StreamMux
  readonly #secure: SecureConnection | TunnelSecureConnection
  readonly #agent: IceAgent | undefined
  readonly #main: MuxStream
  readonly #onClose: () => void
  /** Whether writes go straight to the main stream's implementation (see the constructor). */
  readonly #direct: boolean

  /** @internal */
  constructor(parts: PeerConnectionParts) {
    super({ allowHalfOpen: true, readableHighWaterMark: HIGH_WATER_MARK, writableHighWaterMark: HIGH_WATER_MARK })
    this.#mux = parts.mux
    this.#secure = parts.secure
    this.#agent = parts.agent
    this.#main = parts.main
    this.#onClose = parts.onClose
    this.info = parts.info
    this.remotePeerId = parts.info.remotePeerId
    const main = parts.main
    // This Duplex is the main stream's readable and writable side: the main stream
    // pushes what it receives straight into it, and our _read/_write call the main
    // stream's (MuxStream.attach) — one buffering hop, not two. A main stream that was
    // already written to keeps its own writable side (writes are forwarded to it).
    this.#direct = main.writableLength === 0 && !main.writableEnded && !main.destroyed
    main.attach(this)
    // After a go-away (a graceful close of either side), the session ending under us (a
    // reset of the transport once its streams are done) is the close, not a failure.
    const failure = (err: Error): Error | undefined => (parts.mux.goingAway && (err as { code?: string }).code === 'ERR_CONNECTION_CLOSED' ? undefined : err)
    main.on('error', (err: Error) => this.destroy(failure(err)))
    main.once('close', () => {
      // The remote reset the main stream or the session ended.
      // A close() of our own, or a graceful one of the remote (go-away), is not an error,
      // even when one side had not ended (or read) its main stream.
      const graceful = this.#closingLocally || parts.mux.goingAway
      if (!this.destroyed && !main.remoteEndDelivered) this.destroy(graceful ? undefined : new ConnectionClosedError('The connection closed'))
    })
    parts.mux.on('stream', (stream) => this.emit('stream', stream))
    if (parts.early !== undefined && parts.early.length > 0) {
      // After whoever receives this connection has had the chance to listen.
      const early = [...parts.early]
      setImmediate(() => {
        for (const stream of early) if (!stream.destroyed) this.emit('stream', stream)
      })
    }
    parts.mux.once('error', (err: Error) => this.destroy(failure(err)))
    parts.mux.once('close', () => {
      if (!this.destroyed) this.destroy()
    })
    parts.agent?.once('consent-lost', () => this.destroy(new ConnectionClosedError('The peer stopped answering consent checks (RFC 7675)')))
  }

  /** The path the connection uses now. */
  get path(): ConnectionPath {
    return this.info.path
  }

  /** Round-trip time measured by the stream multiplexer's pings, ms (undefined before one). */
  get rtt(): number | undefined {
    return this.#mux.rtt ?? this.info.rttMs
  }

  /**
   * Opens a new independent stream to the peer (usable at once); the remote receives it
   * in its `'stream'` event with the same `label`.
   *
   * @throws InvalidArgumentError at once for a bad label.
   */
  openStream(options: OpenStreamOptions = {}): MuxStream {
    return this.#mux.openStream(options)
  }

  /** @internal */
  override _read(): void {
    this.#main._read()
  }

  /** @internal */
  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#direct) return this.#main._write(chunk, encoding, callback)
    if (this.#main.write(chunk, encoding)) callback()
    else this.#main.once('drain', () => callback())
  }

  /** @internal */
  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, callback: (error?: Error | null) => void): void {
    if (this.#direct) return this.#main._writev(chunks, callback)
    for (const { chunk, encoding } of chunks.slice(0, -1)) this.#main.write(chunk, encoding)
    const last = chunks[chunks.length - 1]!
    this._write(last.chunk, last.encoding, callback)
  }

  /** @internal */
  override _final(callback: (error?: Error | null) => void): void {
    if (this.#direct) return this.#main._final(callback)
    this.#main.end(() => callback())
  }

  #released: Promise<void> | undefined
  /** Set by {@link close}: the session ending then is expected, not an error. */
  #closingLocally = false

  /** @internal */
  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const graceful = err === null && this.readableEnded && this.writableFinished
    if (graceful) {
      // Both directions of the main stream ended: let the other streams and the data in
      // flight finish (go-away), then end the session, instead of resetting it under the
      // peer's last bytes.
      this.#released = this.#mux.close({ timeout: GRACEFUL_CLOSE_MS }).then(() => this.#teardown(null))
    } else {
      this.#teardown(err)
      this.#released = Promise.resolve()
    }
    callback(err)
  }

  #teardown(err: Error | null): void {
    if (!this.#main.destroyed) this.#main.destroy()
    this.#mux.destroy(err ?? undefined)
    this.#secure.destroy()
    this.#agent?.close()
    this.#onClose()
  }

  /**
   * Ends the connection gracefully: ends the main stream, lets open streams finish (up
   * to `timeout` ms, default 5000), then closes the session. Resolves when everything
   * is released.
   */
  async close(options: { timeout?: number } = {}): Promise<void> {
    if (!this.destroyed) {
      this.#closingLocally = true
      this.end()
      await this.#mux.close({ timeout: options.timeout ?? GRACEFUL_CLOSE_MS })
      if (!this.destroyed) this.destroy()
    }
    await this.#released
  }
}
