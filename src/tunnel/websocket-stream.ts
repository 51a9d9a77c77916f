/**
 * A byte stream over a transfer WebSocket, as a Node `Duplex` with half-close: binary
 * frames carry the bytes; the text frame `end` ({@link TRANSFER_END}) ends the sender's
 * direction, as a TCP FIN does, while the other direction keeps flowing. Once both
 * directions have ended the WebSocket is closed with 1000; a socket that closes before
 * that, or any protocol violation, destroys the stream (the joined TCP connection is
 * then reset) and closes the WebSocket with 4000 ({@link TRANSFER_RESET_CODE}), 1002,
 * 1003 or 1009.
 *
 * A WebSocket close frame cannot serve as the half-close: RFC 6455 §5.5.1 has the
 * receiver of a close frame answer with its own and stop sending, which would cut the
 * other direction short.
 *
 * The same stream as `WebSocketDuplex` (which runs over a `ws` WebSocket), but the frames
 * are read and written here, on the upgraded socket itself (the upgrade is in
 * `transfer-handshake.ts`), because this is the data path: received payloads are pushed
 * as views of the socket's reads (no reassembly copy, half the allocations), writes that
 * queue up while the socket is busy go out as one frame in one `writev`, and Nagle is
 * off. `bench/tunnel.mjs` measures the difference.
 *
 * Backpressure runs both ways: a full readable side pauses the socket, and writes wait
 * for the socket to drain.
 *
 * Joined to a TCP socket (`joinStreams`), the stream relays without the `Duplex` in
 * between ({@link WebSocketStream.relay}), and plain sockets of a connection that carried
 * 1 MiB read into reused buffers (`reused-reads.ts`); see `docs/benchmarks.md` (tunnel).
 *
 * @module
 */
import { randomFillSync } from 'node:crypto'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { Duplex } from 'node:stream'
import { ConnectionClosedError, TunnelProtocolError } from '../errors.js'
import { readIntoReusedBuffer } from './reused-reads.js'
import { TRANSFER_END } from './tunnel-messages.js'
import { TRANSFER_RESET_CODE } from './websocket-duplex.js'
import { type FrameReadError, OPCODE, WebSocketFrameReader, frameHeader, maskCopy, unmaskInPlace } from './websocket-frame.js'


/** Milliseconds a closing transfer socket waits for the peer before it is destroyed. */
const CLOSE_TIMEOUT_MS = 2_000

const END_PAYLOAD = Buffer.from(TRANSFER_END, 'latin1')

/**
 * Relay mode: bytes a plain socket carries before its reads go into one reused buffer
 * (`reused-reads.ts`); connections that carry less never hold one.
 */
const REUSE_AFTER_BYTES = 1024 * 1024

/** The largest frame header: 2 bytes, a 64-bit length, a masking key (RFC 6455 §5.2). */
const MAX_HEADER_BYTES = 14

/** Relay mode: size of the reused read buffer of a socket. */
const REUSED_BUFFER_BYTES = 128 * 1024

/**
 * A tunnelled connection's stream on either kind of transfer socket: a
 * {@link WebSocketStream}, or a `WebSocketDuplex` over a `ws` WebSocket.
 */
export interface TransferStream extends Duplex {
  /** Destroys the stream and its socket at once, without a closing handshake. */
  terminate(): void
}

/** Options of {@link WebSocketStream}. */
export interface WebSocketStreamOptions {
  /**
   * `'server'`: frames received must be masked, frames sent are not. `'client'`: the
   * other way round (RFC 6455 §5.1).
   */
  role: 'client' | 'server'
  /**
   * Client only: mask frames with a zero key (over TLS, where nothing on the path can
   * see them; RFC 6455 §5.3 masking only defends clear-text proxies) instead of a random
   * key per frame.
   * @default false
   */
  zeroMask?: boolean
  /**
   * Bytes read from the socket with the upgrade, before the stream took it over.
   * @default none
   */
  head?: Buffer
  /**
   * Largest frame payload accepted; a larger frame closes the socket with 1009.
   * @default 4_194_304
   */
  maxFrameBytes?: number
  /**
   * Largest payload of one frame sent (bigger writes are split).
   * @default 262_144
   */
  maxSendFrameBytes?: number
  /**
   * Bytes buffered on each side of the stream (readable and writable high-water marks).
   * @default 262_144
   */
  highWaterMark?: number
  /**
   * Called with the size of each chunk received (for byte counters).
   * @default undefined
   */
  onReceived?: (bytes: number) => void
  /**
   * Called with the size of each chunk sent (for byte counters).
   * @default undefined
   */
  onSent?: (bytes: number) => void
}

/** A `Duplex` over an upgraded transfer socket (see the module notes). */
export class WebSocketStream extends Duplex implements TransferStream {
  readonly #socket: Socket
  readonly #reader: WebSocketFrameReader
  readonly #mask: 'random' | 'zero' | 'none'
  readonly #maxSendFrame: number
  readonly #highWaterMark: number
  readonly #tls: boolean
  readonly #onReceived: ((bytes: number) => void) | undefined
  readonly #onSent: ((bytes: number) => void) | undefined
  #receivedEnd = false
  #sentEnd = false
  #closeSent = false
  #closeReceived = false
  #socketClosed = false
  #waiting: ((error?: Error | null) => void) | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  /** Relay mode ({@link WebSocketStream.relay}): the socket joined directly. */
  #peer: Socket | undefined
  #peerTls = false
  /** Relay mode: the transfer socket is paused until the peer drains. */
  #pausedForPeer = false
  /** Relay mode: the peer is paused until the transfer socket drains. */
  #peerPaused = false
  /** Relay mode: the peer is corked until the next tick (the transfer socket is a TLS socket). */
  #peerCorked = false
  /** Relay mode: chunks from a TLS peer collected for one frame at the next tick. */
  #outParts: Buffer[] = []
  #outSize = 0
  /** Relay mode: bytes read from the transfer socket and from the peer (until their reads reuse a buffer; then -1). */
  #socketRead = 0
  #peerRead = 0
  /** Bytes received. */
  bytesIn = 0
  /** Bytes sent. */
  bytesOut = 0

  /** Takes over `socket`, already upgraded (see the module notes). */
  constructor(socket: Socket, options: WebSocketStreamOptions) {
    const highWaterMark = options.highWaterMark ?? 262_144
    super({ allowHalfOpen: true, readableHighWaterMark: highWaterMark, writableHighWaterMark: highWaterMark })
    this.#socket = socket
    this.#mask = options.role === 'server' ? 'none' : options.zeroMask === true ? 'zero' : 'random'
    this.#maxSendFrame = options.maxSendFrameBytes ?? 262_144
    this.#highWaterMark = highWaterMark
    this.#tls = (socket as TLSSocket).encrypted === true
    this.#onReceived = options.onReceived
    this.#onSent = options.onSent
    this.#reader = new WebSocketFrameReader(
      { expectMasked: options.role === 'server', maxFrameBytes: options.maxFrameBytes ?? 4 * 1024 * 1024, maxTextBytes: 125 },
      { data: this.#onData, text: this.#onText, control: this.#onControl, error: this.#onFrameError },
    )
    socket.setNoDelay(true)
    socket.setTimeout(0)
    socket.on('data', this.#onSocketData)
    socket.on('end', this.#onSocketEnd)
    socket.on('close', this.#onSocketClose)
    socket.on('drain', this.#onDrain)
    socket.on('error', ignore) // 'close' follows
    if (options.head !== undefined && options.head.length > 0) this.#onSocketData(options.head)
    if (socket.destroyed) queueMicrotask(() => this.#onSocketClose())
    else socket.resume()
  }

  /** The upgraded socket. */
  get socket(): Socket {
    return this.#socket
  }

  /** Destroys the stream and the socket at once, without a closing handshake. */
  terminate(): void {
    this.destroy()
    this.#socket.destroy()
  }

  // ------------------------------------------------------------------ reading

  readonly #onSocketData = (chunk: Buffer): void => {
    if (this.#closeReceived || this.#reader.failed || this.destroyed) return // drained and dropped while closing
    const peer = this.#peer
    if (peer === undefined) {
      this.#reader.push(chunk)
    } else if (this.#tls) {
      // A TLS socket delivers one record (≤ 16 KiB) per chunk, several in one tick: the
      // peer stays corked until the next tick, so they leave in one writev.
      if (!this.#peerCorked) {
        this.#peerCorked = true
        peer.cork()
        process.nextTick(this.#uncorkPeer)
      }
      this.#reader.push(chunk)
    } else {
      peer.cork()
      this.#reader.push(chunk)
      peer.uncork()
      this.#checkPeer(peer)
      if (this.#socketRead >= 0 && (this.#socketRead += chunk.length) >= REUSE_AFTER_BYTES) {
        this.#socketRead = -1
        // A paused socket may still be reading until then: pause it again, now for real.
        if (readIntoReusedBuffer(this.#socket, REUSED_BUFFER_BYTES, this.#onReusedSocketRead) && this.#pausedForPeer) this.#socket.pause()
      }
    }
  }

  /** A read of the transfer socket into its reused buffer: in use afterwards if the peer queued some of it. */
  readonly #onReusedSocketRead = (chunk: Buffer): boolean => {
    this.#onSocketData(chunk)
    return this.#peer!.writableLength > 0
  }

  readonly #uncorkPeer = (): void => {
    this.#peerCorked = false
    const peer = this.#peer!
    peer.uncork()
    this.#checkPeer(peer)
  }

  /** Relay mode: pauses the transfer socket while the peer holds a full buffer (resumed on its `drain`). */
  #checkPeer(peer: Socket): void {
    if (!this.#pausedForPeer && peer.writableNeedDrain && peer.writableLength >= this.#highWaterMark) {
      this.#pausedForPeer = true
      this.#socket.pause()
    }
  }

  readonly #onPeerDrain = (): void => {
    if (!this.#pausedForPeer) return
    this.#pausedForPeer = false
    if (!this.#socketClosed) this.#socket.resume()
  }

  readonly #onData = (bytes: Buffer): void => {
    if (this.#receivedEnd) return this.#protocolError(1002, 'data after end on a transfer socket')
    if (bytes.length === 0) return
    this.bytesIn += bytes.length
    this.#onReceived?.(bytes.length)
    if (this.#peer !== undefined) this.#peer.write(bytes)
    else if (!this.push(bytes)) this.#socket.pause()
  }

  readonly #onText = (message: Buffer): void => {
    if (this.#receivedEnd || !message.equals(END_PAYLOAD)) return this.#protocolError(1003, 'unexpected text frame on a transfer socket')
    this.#receivedEnd = true
    this.push(null)
    this.#maybeFinish()
  }

  readonly #onControl = (opcode: number, payload: Buffer): void => {
    if (opcode === OPCODE.ping) {
      if (!this.#closeSent) this.#writeFrame(OPCODE.pong, payload)
      return
    }
    if (opcode !== OPCODE.close) return
    this.#closeReceived = true
    const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005
    if (this.#receivedEnd && this.#sentEnd) {
      this.#sendClose(1000)
      this.destroy()
    } else {
      this.#sendClose(code === 1005 ? 1000 : code)
      this.destroy(new ConnectionClosedError(`transfer socket closed before the stream ended (${code})`))
    }
  }

  readonly #onFrameError = (error: FrameReadError): void => {
    this.#protocolError(error.code, error.reason)
  }

  #protocolError(code: number, reason: string): void {
    this.#sendClose(code)
    this.destroy(new TunnelProtocolError(reason))
  }

  override _read(): void {
    if (this.#peer === undefined && !this.#socketClosed) this.#socket.resume()
  }

  // ------------------------------------------------------------------ relay mode

  /**
   * Joins this stream to `peer` directly, both ways, without the `node:stream` machinery
   * in between (the data path of a tunnelled TCP connection): payloads received are
   * written to `peer` as they are parsed (all of one socket read in one `writev`), and
   * each chunk read from `peer` leaves at once as one frame. Backpressure pauses the
   * reading side while the writing side holds `highWaterMark` bytes or more; `peer`'s
   * end sends the end of this stream's writable side (`end()`), and the end received
   * ends `peer`. Errors and early closes are the caller's to handle (as with `pipe`, see
   * `joinStreams`). Use the stream no more as a `Duplex` afterwards.
   *
   * @returns `false`, changing nothing, when data written to this stream is still
   * queued or either side has already ended (the caller then pipes instead).
   */
  relay(peer: Socket): boolean {
    if (this.#peer !== undefined || this.destroyed || this.writableLength > 0 || this.writableEnded || this.readableEnded || peer.writableEnded) return false
    this.#peer = peer
    this.#peerTls = (peer as TLSSocket).encrypted === true
    // Bytes received before the relay began (with the upgrade) are still in the readable buffer.
    for (let chunk: Buffer | null = this.read(); chunk !== null; chunk = this.read()) peer.write(chunk)
    this.once('end', () => peer.end())
    this.resume() // flowing (nothing is pushed any more but the end)
    peer.on('drain', this.#onPeerDrain)
    peer.on('data', this.#onPeerData)
    peer.once('end', this.#onPeerEnd)
    peer.resume() // it may have been paused explicitly (a server's `pauseOnConnect`)
    this.#checkPeer(peer)
    if (!this.#pausedForPeer && !this.#socketClosed && !this.#closeReceived) this.#socket.resume()
    return true
  }

  readonly #onPeerData = (chunk: Buffer): void => {
    if (this.#closeSent || this.#socketClosed || this.writableEnded) return // torn down: the join destroys the peer
    if (!this.#peerTls) {
      this.#send([chunk], chunk.length)
      if (this.#peerRead >= 0 && (this.#peerRead += chunk.length) >= REUSE_AFTER_BYTES) {
        this.#peerRead = -1
        // A paused socket may still be reading until then: pause it again, now for real.
        if (readIntoReusedBuffer(this.#peer!, REUSED_BUFFER_BYTES, this.#onReusedPeerRead, MAX_HEADER_BYTES) && this.#peerPaused) this.#peer!.pause()
      }
      return
    }
    // A TLS peer delivers one record per chunk, several in one tick: one frame at the next tick.
    if (this.#outParts.length === 0) process.nextTick(this.#flushPeerData)
    this.#outParts.push(chunk)
    this.#outSize += chunk.length
  }

  /** A read of the peer into its reused buffer: in use afterwards if the transfer socket queued some of it. */
  readonly #onReusedPeerRead = (chunk: Buffer): boolean => {
    if (this.#closeSent || this.#socketClosed || this.writableEnded) return false
    if (chunk.length > this.#maxSendFrame) {
      this.#send([chunk], chunk.length)
      return this.#socket.writableLength > 0
    }
    // The read buffer is this stream's own: the payload is masked in place (RFC 6455
    // §5.3) and the header written in the headroom before it, so the frame leaves as one
    // buffer (no copy here, nor in a TLS socket, which joins the buffers of a writev).
    this.bytesOut += chunk.length
    this.#onSent?.(chunk.length)
    const mask = this.#mask === 'random' ? randomMask() : this.#mask === 'zero' ? 0 : undefined
    if (mask !== undefined && mask !== 0) unmaskInPlace(chunk, mask, 0)
    const header = frameHeader(OPCODE.binary, chunk.length, mask)
    const frame = Buffer.from(chunk.buffer, chunk.byteOffset - header.length, header.length + chunk.length)
    header.copy(frame, 0)
    const socket = this.#socket
    socket.write(frame)
    this.#pausePeerIfFull()
    return socket.writableLength > 0
  }

  readonly #flushPeerData = (): void => {
    const parts = this.#outParts
    const size = this.#outSize
    if (parts.length === 0) return
    this.#outParts = []
    this.#outSize = 0
    if (this.#closeSent || this.#socketClosed) return
    this.#send(parts, size)
  }

  readonly #onPeerEnd = (): void => {
    this.#flushPeerData()
    if (!this.destroyed && !this.writableEnded) this.end()
  }

  /** Relay mode: frames and writes `parts` (`size` bytes) at once; pauses the peer while the socket's buffer is full. */
  #send(parts: Buffer[], size: number): void {
    this.bytesOut += size
    this.#onSent?.(size)
    const socket = this.#socket
    socket.cork()
    this.#writeParts(parts)
    socket.uncork()
    this.#pausePeerIfFull()
  }

  /** Relay mode: pauses the peer while the transfer socket holds a full buffer (resumed on its `drain`). */
  #pausePeerIfFull(): void {
    const socket = this.#socket
    if (!this.#peerPaused && socket.writableNeedDrain && socket.writableLength >= this.#highWaterMark) {
      this.#peerPaused = true
      this.#peer!.pause()
    }
  }

  // ------------------------------------------------------------------ writing

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this._writev([{ chunk }], callback)
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    if (this.#closeSent || this.#socketClosed) {
      callback(new ConnectionClosedError('transfer socket closed'))
      return
    }
    const socket = this.#socket
    let total = 0
    for (const { chunk } of chunks) total += chunk.length
    this.bytesOut += total
    this.#onSent?.(total)
    socket.cork()
    this.#writeParts(chunks.map(({ chunk }) => chunk))
    socket.uncork()
    if (socket.writableNeedDrain) this.#waiting = callback
    else callback()
  }

  /** Writes `chunks` as binary frames of at most `maxSendFrameBytes` (one frame when they fit); the socket is corked. */
  #writeParts(chunks: Buffer[]): void {
    let frame: Buffer[] = []
    let size = 0
    for (const chunk of chunks) {
      // One frame for everything queued, split at maxSendFrameBytes.
      for (let at = 0; at < chunk.length; ) {
        const take = Math.min(chunk.length - at, this.#maxSendFrame - size)
        frame.push(at === 0 && take === chunk.length ? chunk : chunk.subarray(at, at + take))
        size += take
        at += take
        if (size === this.#maxSendFrame) {
          this.#writeData(frame, size)
          frame = []
          size = 0
        }
      }
    }
    if (size > 0) this.#writeData(frame, size)
  }

  readonly #onDrain = (): void => {
    if (this.#peerPaused) {
      this.#peerPaused = false
      this.#peer!.resume()
    }
    const waiting = this.#waiting
    this.#waiting = undefined
    waiting?.()
  }

  /** Writes one binary frame whose payload is `parts` (`size` bytes); the socket is corked. */
  #writeData(parts: Buffer[], size: number): void {
    const socket = this.#socket
    if (this.#mask === 'random') {
      const mask = randomMask()
      const header = frameHeader(OPCODE.binary, size, mask)
      socket.write(maskCopy(header, parts.length === 1 ? parts[0]! : Buffer.concat(parts, size), mask))
      return
    }
    socket.write(frameHeader(OPCODE.binary, size, this.#mask === 'zero' ? 0 : undefined))
    for (const part of parts) socket.write(part)
  }

  /** Writes a control or text frame. */
  #writeFrame(opcode: number, payload: Buffer): void {
    const socket = this.#socket
    if (this.#socketClosed || !socket.writable) return
    if (this.#mask === 'random') {
      const mask = randomMask()
      socket.write(maskCopy(frameHeader(opcode, payload.length, mask), payload, mask))
    } else {
      socket.cork()
      socket.write(frameHeader(opcode, payload.length, this.#mask === 'zero' ? 0 : undefined))
      if (payload.length > 0) socket.write(payload)
      socket.uncork()
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#closeSent || this.#socketClosed) {
      callback(new ConnectionClosedError('transfer socket closed'))
      return
    }
    this.#writeFrame(OPCODE.text, END_PAYLOAD)
    this.#sentEnd = true
    callback()
    this.#maybeFinish()
  }

  // ------------------------------------------------------------------ closing

  /** Both directions ended: close with 1000 (the stream then closes by itself). */
  #maybeFinish(): void {
    if (this.#receivedEnd && this.#sentEnd) this.#sendClose(1000)
  }

  /** Sends a close frame once, then ends the socket; destroys it if the peer does not close in time. */
  #sendClose(code: number): void {
    if (this.#closeSent) return
    this.#closeSent = true
    const payload = Buffer.allocUnsafe(2)
    payload.writeUInt16BE(code, 0)
    this.#writeFrame(OPCODE.close, payload)
    // Keep reading (and dropping) what the peer still sends, so the close frame is not lost in a reset.
    this.#socket.end()
    this.#socket.resume()
    this.#timer ??= setTimeout(() => this.#socket.destroy(), CLOSE_TIMEOUT_MS)
    this.#timer.unref?.()
  }

  readonly #onSocketEnd = (): void => {
    if (!this.#closeSent) this.#socket.end()
    this.#onSocketClose()
  }

  readonly #onSocketClose = (): void => {
    this.#socketClosed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    const waiting = this.#waiting
    this.#waiting = undefined
    waiting?.(new ConnectionClosedError('transfer socket closed'))
    if (this.destroyed) return
    if (this.#receivedEnd && this.#sentEnd) this.destroy()
    else this.destroy(new ConnectionClosedError(`transfer socket closed before the stream ended (${this.#closeReceived ? 'close frame' : 1006})`))
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const waiting = this.#waiting
    this.#waiting = undefined
    waiting?.(error ?? new ConnectionClosedError('transfer stream destroyed'))
    if (!this.#socketClosed) {
      if (error === null && this.#receivedEnd && this.#sentEnd) this.#sendClose(1000)
      else this.#sendClose(TRANSFER_RESET_CODE)
    }
    callback(error)
  }
}

/** A random masking key; any non-zero-predictable value will do (RFC 6455 §5.3). */
function randomMask(): number {
  if (poolAt === POOL_WORDS) {
    randomFillSync(pool)
    poolAt = 0
  }
  return pool[poolAt++]!
}

const POOL_WORDS = 256
const pool = new Uint32Array(POOL_WORDS)
let poolAt = POOL_WORDS

function ignore(): void {}
