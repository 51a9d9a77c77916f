/**
 * One stream of a {@link StreamMux}: a Node `Duplex` with half-close, reset and
 * credit-based flow control (see `docs/stream-mux.md`).
 *
 * Receiving: bytes the remote sends count against the window we granted it; they are
 * handed to Node's readable buffer only as fast as the reader asks for them (`_read`),
 * the rest waits in a queue, and credit goes back (a `window-update`) only for bytes
 * handed on. A stream nobody reads therefore holds at most its window plus one
 * high-water mark, and stops only its own sender.
 *
 * Sending: a write goes out at once as far as the remote's window allows, in frames of
 * at most `maxFrameSize`; the write's callback (and so `write()`'s backpressure and
 * `'drain'`) waits for more credit, and for the transport to drain when it is congested.
 *
 * @module
 */
import { Duplex } from 'node:stream'
import { MuxProtocolError, MuxStreamRefusedError, MuxStreamResetError } from '../errors.js'
import { ChunkQueue } from './chunk-queue.js'
import { DEFAULT_WINDOW, MAX_WINDOW, type ResetReason } from './mux-frame.js'
import type { StreamMux } from './stream-mux.js'

/** Who opened a stream: we (`'outbound'`, {@link StreamMux.openStream}) or the remote (`'inbound'`, the `'stream'` event). */
export type MuxStreamDirection = 'inbound' | 'outbound'

/**
 * What a {@link MuxStream} needs from its multiplexer.
 * @internal
 */
export interface MuxStreamHost {
  /** Largest data payload to send in one frame. */
  readonly maxFrameSize: number
  /** Send a data frame. */
  sendData(streamId: number, payload: Buffer): void
  /** Grant the remote `increment` more bytes on the stream. */
  sendWindowUpdate(streamId: number, increment: number): void
  /** Half-close the stream. */
  sendClose(streamId: number): void
  /** Abort the stream. */
  sendReset(streamId: number, reason: ResetReason): void
  /** Call `callback` once the transport can take more (at once if it can now). */
  whenWritable(callback: () => void): void
  /** The stream is finished on the wire (both sides closed, or reset): forget it. */
  release(stream: MuxStream): void
}

/** How a {@link MuxStream} is set up. @internal */
export interface MuxStreamInit {
  /** The stream id (0 for a stream refused before it was opened). */
  id: number
  /** Who opened it. */
  direction: MuxStreamDirection
  /** Its label. */
  label: string
  /** The receive window we grant the remote at first (≥ {@link DEFAULT_WINDOW}). */
  window: number
  /** How far the receive window may grow (≥ `window`). */
  maxWindow: number
}

/** The readable side a {@link MuxStream} delivers into ({@link MuxStream.attach}). @internal */
export interface MuxStreamSink {
  push(chunk: Buffer | null): boolean
}

/** Writes smaller than this that queue up while the stream waits are merged into one frame. */
const MERGE_BELOW = 8 * 1024
/** Node-side buffering in each direction. */
const HIGH_WATER_MARK = 64 * 1024

/**
 * A stream of a multiplexed connection, as a Node `Duplex`: `end()` half-closes (the
 * remote sees `'end'` and can still write back), `destroy()` resets it (the remote's
 * stream is destroyed with {@link MuxStreamResetError}). Errors are `PeerlinkError`s:
 * {@link MuxStreamResetError}, {@link MuxStreamRefusedError}, and the multiplexer's own
 * error (e.g. `ConnectionClosedError`) when the whole connection goes.
 *
 * Created by {@link StreamMux.openStream} and delivered by its `'stream'` event.
 *
 * @example
 * ```ts
 * import { pipeline } from 'node:stream/promises'
 * import { createReadStream } from 'node:fs'
 *
 * const stream = conn.openStream({ label: 'file:report.pdf' })   // a MuxStream
 * await pipeline(createReadStream('report.pdf'), stream)         // end() half-closes: the remote sees 'end'
 * // on the other side
 * conn.on('stream', (s) => s.label.startsWith('file:') && s.pipe(process.stdout))
 * ```
 */
export class MuxStream extends Duplex {
  /** The stream id on the wire (initiator odd, responder even; 0 if refused before it was opened). */
  readonly id: number
  /** The label given to `openStream` (empty if none), e.g. a protocol name or a forward target. */
  readonly label: string
  /** Who opened the stream. */
  readonly direction: MuxStreamDirection

  readonly #host: MuxStreamHost
  #window: number
  readonly #maxWindow: number
  #creditThreshold: number
  #sendWindow = DEFAULT_WINDOW
  #receiveWindow: number
  #unacknowledged = 0
  readonly #queue = new ChunkQueue()
  #wantsData = false
  #remoteEnded = false
  #localEnded = false
  #eofPushed = false
  #released = false
  #pending: Buffer[] = []
  #pendingIndex = 0
  #pendingCallback: ((err?: Error | null) => void) | null = null
  #pumping = false
  /** Where received bytes go: this stream, or the Duplex that {@link attach} gave. */
  #sink: MuxStreamSink = this

  /** @internal Use {@link StreamMux.openStream}. */
  constructor(host: MuxStreamHost, init: MuxStreamInit) {
    super({ allowHalfOpen: true, readableHighWaterMark: HIGH_WATER_MARK, writableHighWaterMark: HIGH_WATER_MARK })
    this.#host = host
    this.id = init.id
    this.label = init.label
    this.direction = init.direction
    this.#window = init.window
    this.#maxWindow = Math.max(init.window, init.maxWindow)
    this.#receiveWindow = init.window
    this.#creditThreshold = Math.max(1, Math.floor(init.window / 2))
  }

  /**
   * @internal Deliver what this stream receives to `sink` instead of this stream's own
   * readable side, so that a wrapper (the connection's main stream) needs no second
   * buffering hop: the wrapper's `_read` / `_write` / `_writev` / `_final` call this
   * stream's, and this stream's bytes and end are pushed into the wrapper. Anything
   * already buffered on this stream's readable side moves to `sink` first. This stream's
   * own readable then never ends and its writable must not be used any more; errors and
   * `'close'` still come from this stream.
   */
  attach(sink: MuxStreamSink): void {
    if (this.#sink === sink) return
    const buffered: Buffer[] = []
    for (let chunk: Buffer | null; this.readableLength > 0 && (chunk = this.read() as Buffer | null) !== null; ) buffered.push(chunk)
    this.#sink = sink
    for (const chunk of buffered) sink.push(chunk)
    if (this.#eofPushed) sink.push(null)
  }

  /** @internal Whether the remote's end has been handed on (to this stream's reader or the {@link attach} sink). */
  get remoteEndDelivered(): boolean {
    return this.#eofPushed
  }

  /** Bytes received and held for the reader (beyond Node's readable buffer). */
  get queuedBytes(): number {
    return this.#queue.bytes
  }

  /** Bytes the remote currently lets us send before it grants more. */
  get sendWindow(): number {
    return this.#sendWindow
  }

  // ---- called by the multiplexer ------------------------------------------------

  /** @internal A data frame of `length` bytes begins. Throws {@link MuxProtocolError} on a violation. */
  handleDataHeader(length: number): void {
    if (this.#remoteEnded) throw new MuxProtocolError(`Stream ${this.id}: data after the remote closed it`)
    if (length > this.#receiveWindow) {
      throw new MuxProtocolError(
        `Stream ${this.id}: a ${length}-byte data frame exceeds the flow-control window (${this.#receiveWindow} bytes left)`,
      )
    }
    this.#receiveWindow -= length
  }

  /** @internal A piece of a data frame's payload. */
  handleData(piece: Buffer): void {
    if (this.destroyed || piece.length === 0) return
    if (this.#wantsData && this.#queue.length === 0) {
      this.#credit(piece.length, true)
      this.#wantsData = this.#sink.push(piece)
    } else {
      this.#queue.push(piece)
    }
  }

  /** @internal The remote granted `increment` more bytes. */
  handleWindowUpdate(increment: number): void {
    if (this.#sendWindow + increment > MAX_WINDOW) {
      throw new MuxProtocolError(`Stream ${this.id}: window updates beyond ${MAX_WINDOW} bytes`)
    }
    this.#sendWindow += increment
    if (!this.#pumping && this.#pendingIndex < this.#pending.length) this.#pump()
  }

  /** @internal The remote half-closed the stream. */
  handleClose(): void {
    if (this.#remoteEnded) throw new MuxProtocolError(`Stream ${this.id}: closed twice`)
    this.#remoteEnded = true
    if (this.#queue.length === 0 && !this.destroyed) {
      this.#eofPushed = true
      this.#sink.push(null)
    }
    this.#maybeRelease()
  }

  /** @internal The remote reset the stream. */
  handleReset(reason: ResetReason): void {
    if (!this.#released) {
      this.#released = true
      this.#host.release(this)
    }
    this.destroy(
      reason === 'refused'
        ? new MuxStreamRefusedError(`The remote refused stream ${this.id}${this.label === '' ? '' : ` (${JSON.stringify(this.label)})`}`)
        : new MuxStreamResetError(`The remote reset stream ${this.id}`),
    )
  }

  /** @internal Destroy without telling the remote (the connection is gone, or the stream was never opened). */
  abort(err: Error | null): void {
    this.#released = true
    this.destroy(err ?? undefined)
  }

  // ---- node:stream implementation ------------------------------------------------

  override _read(): void {
    this.#wantsData = true
    while (this.#wantsData && this.#queue.length > 0) {
      const chunk = this.#queue.shift()!
      this.#credit(chunk.length, false)
      this.#wantsData = this.#sink.push(chunk)
    }
    if (this.#remoteEnded && !this.#eofPushed && this.#queue.length === 0) {
      this.#eofPushed = true
      this.#sink.push(null)
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#pending = [chunk]
    this.#pendingIndex = 0
    this.#pendingCallback = callback
    this.#pump()
  }

  /** Small writes that queued up while the stream waited are merged into frames of up to `maxFrameSize`. */
  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (err?: Error | null) => void): void {
    const limit = this.#host.maxFrameSize
    const out: Buffer[] = []
    let run: Buffer[] = []
    let runBytes = 0
    const flushRun = (): void => {
      if (run.length > 0) out.push(run.length === 1 ? run[0]! : Buffer.concat(run, runBytes))
      run = []
      runBytes = 0
    }
    for (const { chunk } of chunks) {
      if (chunk.length >= MERGE_BELOW) {
        flushRun()
        out.push(chunk)
        continue
      }
      if (runBytes + chunk.length > limit) flushRun()
      run.push(chunk)
      runBytes += chunk.length
    }
    flushRun()
    this.#pending = out
    this.#pendingIndex = 0
    this.#pendingCallback = callback
    this.#pump()
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (!this.#released) this.#host.sendClose(this.id)
    this.#localEnded = true
    this.#maybeRelease()
    callback()
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.#released) {
      this.#released = true
      // Reset first: releasing the last stream of a closing multiplexer ends the transport.
      this.#host.sendReset(this.id, 'cancel')
      this.#host.release(this)
    }
    this.#queue.clear()
    this.#pending = []
    const pendingCallback = this.#pendingCallback
    this.#pendingCallback = null
    callback(err)
    // Like net.Socket: a write cut short by an error reports it; a plain destroy() leaves it pending.
    if (err !== null) pendingCallback?.(err)
  }

  /** Send pending writes as far as the window allows; complete the write when all is sent. */
  #pump(): void {
    const host = this.#host
    const pending = this.#pending
    // A transport that delivers synchronously may bring a window update back while we
    // send (re-entering through handleWindowUpdate): the state is updated before each
    // send, and the loop below picks the new window up.
    this.#pumping = true
    try {
      while (this.#pendingIndex < pending.length) {
        if (this.#sendWindow === 0 || this.destroyed) return
        const chunk = pending[this.#pendingIndex]!
        const n = Math.min(chunk.length, this.#sendWindow, host.maxFrameSize)
        this.#sendWindow -= n
        if (n === chunk.length) {
          pending[this.#pendingIndex++] = EMPTY
          host.sendData(this.id, chunk)
        } else {
          pending[this.#pendingIndex] = chunk.subarray(n)
          host.sendData(this.id, chunk.subarray(0, n))
        }
      }
    } finally {
      this.#pumping = false
    }
    if (this.destroyed) return
    const callback = this.#pendingCallback
    if (callback === null) return
    this.#pending = []
    this.#pendingIndex = 0
    host.whenWritable(() => {
      // Destroyed while waiting: _destroy completed the write already.
      if (this.#pendingCallback !== callback) return
      this.#pendingCallback = null
      callback()
    })
  }

  /**
   * Count `n` bytes as handed to the reader; grant credit back in batches of half the
   * window. When the batch completes with bytes the reader was already waiting for
   * (`keepingUp`: they went straight to it, nothing queued), the window doubles with the
   * grant, up to `maxWindow`: the window, not the reader, is what holds the sender back
   * then (docs/stream-mux.md, "Flow control").
   */
  #credit(n: number, keepingUp: boolean): void {
    if (this.#remoteEnded || this.#released) return
    this.#unacknowledged += n
    if (this.#unacknowledged >= this.#creditThreshold) {
      let increment = this.#unacknowledged
      this.#unacknowledged = 0
      if (keepingUp && this.#window < this.#maxWindow) {
        const grown = Math.min(this.#window * 2, this.#maxWindow)
        increment += grown - this.#window
        this.#window = grown
        this.#creditThreshold = Math.floor(grown / 2)
      }
      this.#receiveWindow += increment
      this.#host.sendWindowUpdate(this.id, increment)
    }
  }

  #maybeRelease(): void {
    if (this.#released || !this.#remoteEnded || !this.#localEnded) return
    this.#released = true
    this.#host.release(this)
  }
}

const EMPTY = Buffer.alloc(0)
