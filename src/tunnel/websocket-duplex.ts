/**
 * A byte stream over a transfer WebSocket, as a Node `Duplex` with half-close: binary
 * frames carry the bytes; the text frame `end` ({@link TRANSFER_END}) ends the sender's
 * direction, as a TCP FIN does, while the other direction keeps flowing. Once both
 * directions have ended the WebSocket is closed with 1000; a socket that closes before
 * that, or any protocol violation, destroys the stream (the joined TCP connection is
 * then reset).
 *
 * A WebSocket close frame cannot serve as the half-close: RFC 6455 §5.5.1 has the
 * receiver of a close frame answer with its own and stop sending, which would cut the
 * other direction short.
 *
 * Backpressure runs both ways: a full readable side pauses the WebSocket's socket
 * (`ws.pause()`), and writes wait for the WebSocket's send buffer to drain below
 * `highWaterMark`.
 *
 * @module
 */
import { Duplex } from 'node:stream'
import type WebSocket from 'ws'
import { ConnectionClosedError, TunnelProtocolError } from '../errors.js'
import { TRANSFER_END } from './tunnel-messages.js'

/** Close code of a transfer WebSocket torn down before both directions ended (a reset). */
export const TRANSFER_RESET_CODE = 4000

/** Options of {@link WebSocketDuplex}. */
export interface WebSocketDuplexOptions {
  /**
   * Bytes the WebSocket may hold unsent before writes wait, and bytes buffered on the
   * readable side before the socket is paused.
   * @default 262_144
   */
  highWaterMark?: number
  /**
   * Called with the size of each chunk received from the WebSocket (for byte counters).
   * @default undefined
   */
  onReceived?: (bytes: number) => void
  /**
   * Called with the size of each chunk sent into the WebSocket (for byte counters).
   * @default undefined
   */
  onSent?: (bytes: number) => void
}

/** A `Duplex` over a transfer WebSocket (see the module notes). The WebSocket must be open. */
export class WebSocketDuplex extends Duplex {
  readonly #ws: WebSocket
  readonly #highWaterMark: number
  readonly #onReceived: ((bytes: number) => void) | undefined
  readonly #onSent: ((bytes: number) => void) | undefined
  #receivedEnd = false
  #sentEnd = false
  /** Bytes received from the WebSocket. */
  bytesIn = 0
  /** Bytes sent into the WebSocket. */
  bytesOut = 0

  constructor(ws: WebSocket, options: WebSocketDuplexOptions = {}) {
    const highWaterMark = options.highWaterMark ?? 262_144
    super({ allowHalfOpen: true, readableHighWaterMark: highWaterMark, writableHighWaterMark: highWaterMark })
    this.#ws = ws
    this.#highWaterMark = highWaterMark
    this.#onReceived = options.onReceived
    this.#onSent = options.onSent
    ws.on('message', this.#onMessage)
    ws.once('close', this.#onClose)
    ws.on('error', ignore) // 'close' follows
  }

  /** The underlying WebSocket. */
  get webSocket(): WebSocket {
    return this.#ws
  }

  /** Destroys the stream and the WebSocket at once, without a closing handshake. */
  terminate(): void {
    this.destroy()
    this.#ws.terminate()
  }

  readonly #onMessage = (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void => {
    const chunk = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)
    if (!isBinary) {
      if (this.#receivedEnd || chunk.toString('latin1') !== TRANSFER_END) {
        this.destroy(new TunnelProtocolError('unexpected text frame on a transfer socket'))
        return
      }
      this.#receivedEnd = true
      this.push(null)
      this.#maybeClose()
      return
    }
    if (this.#receivedEnd) {
      this.destroy(new TunnelProtocolError('data after end on a transfer socket'))
      return
    }
    if (chunk.byteLength === 0) return
    this.bytesIn += chunk.byteLength
    this.#onReceived?.(chunk.byteLength)
    if (!this.push(chunk)) this.#ws.pause()
  }

  readonly #onClose = (code: number): void => {
    if (this.#receivedEnd && this.#sentEnd) {
      this.destroy()
    } else {
      this.destroy(new ConnectionClosedError(`transfer socket closed before the stream ended (${code})`))
    }
  }

  override _read(): void {
    this.#ws.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const ws = this.#ws
    if (ws.readyState !== ws.OPEN) {
      callback(new ConnectionClosedError('transfer socket closed'))
      return
    }
    this.bytesOut += chunk.byteLength
    this.#onSent?.(chunk.byteLength)
    let waiting = false
    ws.send(chunk, { binary: true }, (err) => {
      if (waiting) {
        waiting = false
        callback(err ?? null)
      }
    })
    if (ws.bufferedAmount <= this.#highWaterMark) callback()
    else waiting = true
  }

  override _final(callback: (error?: Error | null) => void): void {
    const ws = this.#ws
    if (ws.readyState !== ws.OPEN) {
      callback(new ConnectionClosedError('transfer socket closed'))
      return
    }
    ws.send(TRANSFER_END, { binary: false }, (err) => {
      if (err) return callback(err)
      this.#sentEnd = true
      callback()
      this.#maybeClose()
    })
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const ws = this.#ws
    ws.off('message', this.#onMessage)
    ws.off('close', this.#onClose)
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) {
      if (error === null && this.#receivedEnd && this.#sentEnd) closeSoon(ws, 1000, '')
      else closeSoon(ws, TRANSFER_RESET_CODE, 'reset')
    }
    callback(error)
  }

  #maybeClose(): void {
    if (this.#receivedEnd && this.#sentEnd && this.#ws.readyState === this.#ws.OPEN) closeSoon(this.#ws, 1000, '')
  }
}

/** Sends a close frame, and destroys the socket if the close handshake has not finished after 2 s. */
function closeSoon(ws: WebSocket, code: number, reason: string): void {
  if (ws.readyState === ws.CONNECTING) {
    ws.terminate()
    return
  }
  ws.close(code, reason)
  const timer = setTimeout(() => ws.terminate(), 2_000)
  timer.unref?.()
  ws.once('close', () => clearTimeout(timer))
}

function ignore(): void {}
