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
 * @module
 */
import { randomFillSync } from 'node:crypto'
import type { Socket } from 'node:net'
import { Duplex } from 'node:stream'
import { ConnectionClosedError, TunnelProtocolError } from '../errors.js'
import { TRANSFER_END } from './tunnel-messages.js'
import { TRANSFER_RESET_CODE } from './websocket-duplex.js'
import { type FrameReadError, OPCODE, WebSocketFrameReader, frameHeader, maskCopy } from './websocket-frame.js'


/** Milliseconds a closing transfer socket waits for the peer before it is destroyed. */
const CLOSE_TIMEOUT_MS = 2_000

const END_PAYLOAD = Buffer.from(TRANSFER_END, 'latin1')

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
  readonly #onReceived: ((bytes: number) => void) | undefined
  readonly #onSent: ((bytes: number) => void) | undefined
  #receivedEnd = false
  #sentEnd = false
  #closeSent = false
  #closeReceived = false
  #socketClosed = false
  #waiting: ((error?: Error | null) => void) | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
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
    this.#reader.push(chunk)
  }

  readonly #onData = (bytes: Buffer): void => {
    if (this.#receivedEnd) return this.#protocolError(1002, 'data after end on a transfer socket')
    if (bytes.length === 0) return
    this.bytesIn += bytes.length
    this.#onReceived?.(bytes.length)
    if (!this.push(bytes)) this.#socket.pause()
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
    if (!this.#socketClosed) this.#socket.resume()
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
    let frame: Buffer[] = []
    let size = 0
    for (const { chunk } of chunks) {
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
    socket.uncork()
    if (socket.writableNeedDrain) this.#waiting = callback
    else callback()
  }

  readonly #onDrain = (): void => {
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
