/**
 * Many independent streams over one reliable, ordered byte stream — a verified
 * connection (the secure connection over udx, later a relayed or tunnelled one) or any
 * other Node `Duplex`. Each forwarded TCP connection, say, becomes a new stream rather
 * than a new hole punch. Wire format and rules: `docs/stream-mux.md`.
 *
 * @module
 */
import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import { performance } from 'node:perf_hooks'
import {
  AbortError,
  ConnectionClosedError,
  InvalidArgumentError,
  MuxProtocolError,
  MuxStreamRefusedError,
  PeerlinkError,
} from '../errors.js'
import {
  DEFAULT_WINDOW,
  FRAME_HEADER_LENGTH,
  FrameTypeCode,
  MAX_STREAM_ID,
  PING_PAYLOAD_LENGTH,
  encodeFrame,
  encodeLabel,
  writeFrameHeader,
  type MuxControlFrame,
  type ResetReason,
} from './mux-frame.js'
import { MuxFrameDecoder } from './mux-frame-decoder.js'
import { MuxStream, type MuxStreamHost } from './mux-stream.js'
import {
  validateOptions,
  type MuxPingOptions,
  type OpenStreamOptions,
  type StreamMuxCloseOptions,
  type StreamMuxEvents,
  type StreamMuxOptions,
} from './stream-mux-options.js'

export type { MuxPingOptions, OpenStreamOptions, StreamMuxCloseOptions, StreamMuxEvents, StreamMuxOptions }

/** Payloads shorter than this are copied behind their header (one small write beats a writev). */
const COPY_BELOW = 1024
/**
 * Frames a remote can make us send at will (pongs, refusals) that may queue up while
 * the transport is congested; more means the remote sends but does not read.
 */
const MAX_REFLECTED_WHILE_CONGESTED = 4096
/**
 * Milliseconds a torn-down multiplexer waits for its transport to finish ending before
 * destroying it: long enough for a lossy path to deliver the last data and the end (udx
 * retransmits with a backing-off timeout), since destroying drops what is still in flight.
 */
const END_GRACE = 5_000

interface PendingPing {
  start: number
  resolve: (rtt: number) => void
  reject: (err: Error) => void
}

/**
 * A stream multiplexer over one `Duplex`. It takes the duplex over: it reads it, writes
 * it, and ends or destroys it when the multiplexer closes.
 *
 * When the transport ends or fails, every open stream is destroyed with
 * {@link ConnectionClosedError} (or the multiplexer's error, e.g.
 * {@link MuxProtocolError}); the multiplexer emits `'error'` for failures (protocol,
 * transport, keep-alive, abort — listen for it) and `'close'` at the end.
 *
 * @example
 * ```ts
 * import { StreamMux } from 'peerlink'
 *
 * const mux = new StreamMux(conn, { isInitiator: true })
 * mux.on('error', (err) => console.error(err.message))   // a PeerlinkError: err.code says which
 * const stream = mux.openStream({ label: 'echo' })
 * stream.end('hello')
 * // the other side: new StreamMux(conn, { isInitiator: false }).on('stream', (s) => s.pipe(s))
 * ```
 */
export class StreamMux extends EventEmitter<StreamMuxEvents> {
  /** Whether this side is the initiator (odd stream ids). */
  readonly isInitiator: boolean
  /** Most streams open at once. */
  readonly maxStreams: number
  /** Receive window a stream starts with. */
  readonly initialWindow: number
  /** How far a stream's receive window may grow ({@link StreamMuxOptions.maxReceiveWindow}). */
  readonly maxReceiveWindow: number
  /** Largest data payload per frame. */
  readonly maxFrameSize: number

  readonly #duplex: Duplex
  readonly #decoder: MuxFrameDecoder
  readonly #streams = new Map<number, MuxStream>()
  readonly #host: MuxStreamHost
  readonly #signal: AbortSignal | undefined
  #nextLocalId: number
  #lastRemoteId = 0
  #dataTarget: MuxStream | undefined
  #decoding = false
  #backlog: Buffer[] = []
  #localGoAway = false
  #remoteGoAway = false
  #destroyed = false
  #closeEmitted = false
  #transportClosed = false
  #congested = false
  #reflected = 0
  #drainWaiters: Array<() => void> = []
  readonly #pings = new Map<number, PendingPing>()
  #pingSeq = 0
  #rtt: number | undefined
  #keepAliveTimer: NodeJS.Timeout | undefined
  #receivedSinceTick = false
  #keepAliveOutstanding = false
  #endTimer: NodeJS.Timeout | undefined

  constructor(duplex: Duplex, options: StreamMuxOptions) {
    super()
    const opts = validateOptions(duplex, options)
    this.isInitiator = opts.isInitiator
    this.maxStreams = opts.maxStreams
    this.initialWindow = opts.initialWindow
    this.maxReceiveWindow = opts.maxReceiveWindow
    this.maxFrameSize = opts.maxFrameSize
    this.#nextLocalId = opts.isInitiator ? 1 : 2
    this.#duplex = duplex
    this.#signal = opts.signal
    this.#decoder = new MuxFrameDecoder({
      onDataHeader: (id, length) => this.#onDataHeader(id, length),
      onDataPiece: (_id, piece) => this.#dataTarget?.handleData(piece),
      onFrame: (frame) => this.#onFrame(frame),
    })
    const maxFrameSize = this.maxFrameSize
    this.#host = {
      maxFrameSize,
      sendData: (id, payload) => this.#sendData(id, payload),
      sendWindowUpdate: (id, increment) => this.#sendWindowUpdate(id, increment),
      sendClose: (id) => this.#sendControl(encodeFrame({ type: 'close', streamId: id })),
      sendReset: (id, reason) => this.#sendReset(id, reason),
      whenWritable: (callback) => {
        if (this.#congested && !this.#destroyed) this.#drainWaiters.push(callback)
        else callback()
      },
      release: (stream) => this.#release(stream),
    }

    duplex.on('data', this.#onTransportData)
    duplex.on('end', this.#onTransportEnd)
    duplex.on('error', this.#onTransportError)
    duplex.on('close', this.#onTransportClose)
    duplex.on('drain', this.#onTransportDrain)

    if (opts.keepAliveInterval > 0) {
      this.#keepAliveTimer = setInterval(this.#keepAliveTick, opts.keepAliveInterval)
      this.#keepAliveTimer.unref()
    }
    if (duplex.closed) {
      this.#transportClosed = true
      this.#teardown(null, 'none')
    } else if (duplex.destroyed) {
      this.#teardown(null, 'destroy')
    } else if (duplex.readableEnded) {
      this.#teardown(null, 'end')
    } else if (opts.signal?.aborted === true) {
      this.#teardown(new AbortError(undefined, { cause: opts.signal.reason }), 'destroy')
    } else {
      opts.signal?.addEventListener('abort', this.#onAbort, { once: true })
    }
  }

  /** Streams open now (both directions). */
  get streamCount(): number {
    return this.#streams.size
  }

  /** Round-trip time of the last {@link ping}, in milliseconds (`undefined` before the first). */
  get rtt(): number | undefined {
    return this.#rtt
  }

  /** Whether the multiplexer was destroyed or has finished closing (no new streams). */
  get destroyed(): boolean {
    return this.#destroyed
  }

  /** Whether `'close'` has been emitted. */
  get closed(): boolean {
    return this.#closeEmitted
  }

  /** Whether either side has sent go-away (no new streams either way). */
  get goingAway(): boolean {
    return this.#localGoAway || this.#remoteGoAway
  }

  /**
   * Open a stream. It is usable at once: the open frame goes out before any of its data.
   * If the stream cannot be opened — the multiplexer is closed ({@link ConnectionClosedError}),
   * going away or at `maxStreams` ({@link MuxStreamRefusedError}) — it is returned
   * destroyed with that error (an `'error'` event); if the remote refuses it, it is
   * destroyed with {@link MuxStreamRefusedError} later. Throws
   * {@link InvalidArgumentError} for a bad label.
   */
  openStream(options: OpenStreamOptions = {}): MuxStream {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object')
    const { label = '', signal } = options
    const labelBytes = encodeLabel(label)
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal')

    let refusal: Error | null = null
    if (this.#destroyed) refusal = new ConnectionClosedError('Cannot open a stream: the multiplexed connection is closed')
    else if (this.#localGoAway) refusal = new MuxStreamRefusedError('Cannot open a stream: the connection is closing')
    else if (this.#remoteGoAway) refusal = new MuxStreamRefusedError('Cannot open a stream: the remote is going away')
    else if (this.#streams.size >= this.maxStreams) {
      refusal = new MuxStreamRefusedError(`Cannot open a stream: ${this.maxStreams} streams are open (maxStreams)`)
    } else if (this.#nextLocalId > MAX_STREAM_ID) {
      refusal = new MuxStreamRefusedError('Cannot open a stream: stream ids are exhausted; open a new connection')
    }
    if (refusal !== null) {
      const stream = new MuxStream(this.#host, { id: 0, direction: 'outbound', label, window: this.initialWindow, maxWindow: this.maxReceiveWindow })
      stream.abort(refusal)
      return stream
    }

    const id = this.#nextLocalId
    this.#nextLocalId += 2
    const stream = new MuxStream(this.#host, { id, direction: 'outbound', label, window: this.initialWindow, maxWindow: this.maxReceiveWindow })
    this.#streams.set(id, stream)
    const open = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + labelBytes.length)
    writeFrameHeader(open, 0, FrameTypeCode.open, id, labelBytes.length)
    open.set(labelBytes, FRAME_HEADER_LENGTH)
    this.#write(open)
    this.#grantExtraWindow(id)
    if (signal !== undefined) bindSignal(stream, signal)
    return stream
  }

  /**
   * Measure the round-trip time (milliseconds) with a ping. Rejects with
   * {@link ConnectionClosedError} if the multiplexer closes first, {@link AbortError} on abort.
   */
  ping(options: MuxPingOptions = {}): Promise<number> {
    const { signal } = options
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal')
    if (this.#destroyed) return Promise.reject(new ConnectionClosedError('Cannot ping: the multiplexed connection is closed'))
    if (signal?.aborted === true) return Promise.reject(new AbortError(undefined, { cause: signal.reason }))
    this.#pingSeq = this.#pingSeq >= 0xffff_ffff ? 1 : this.#pingSeq + 1
    const seq = this.#pingSeq
    return new Promise<number>((resolve, reject) => {
      const onAbort = (): void => {
        this.#pings.delete(seq)
        reject(new AbortError(undefined, { cause: signal?.reason }))
      }
      this.#pings.set(seq, {
        start: performance.now(),
        resolve: (rtt) => {
          signal?.removeEventListener('abort', onAbort)
          resolve(rtt)
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort)
          reject(err)
        },
      })
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#sendPing(seq)
    })
  }

  /**
   * Close gracefully: send go-away (neither side opens new streams), let open streams
   * finish, then end the transport. Resolves once the multiplexer has closed; never
   * rejects. After `timeout`, or when `signal` aborts, it is destroyed instead.
   */
  close(options: StreamMuxCloseOptions = {}): Promise<void> {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object')
    const { timeout = Infinity, signal } = options
    if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0) {
      throw new InvalidArgumentError(`timeout must be a non-negative number, got ${String(timeout)}`)
    }
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal')
    if (this.#closeEmitted) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const onAbort = (): void => this.destroy()
      const timer = Number.isFinite(timeout) ? setTimeout(onAbort, Math.min(timeout, 2 ** 31 - 1)) : undefined
      this.once('close', () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        resolve()
      })
      if (signal?.aborted === true) return this.destroy()
      signal?.addEventListener('abort', onAbort, { once: true })
      if (!this.#destroyed && !this.#localGoAway) {
        this.#localGoAway = true
        this.#sendControl(encodeFrame({ type: 'go-away', code: 'normal' }))
      }
      this.#maybeFinishClose()
    })
  }

  /**
   * Tear everything down at once: open streams are destroyed with `err` (without an
   * error if none is given, like `stream.destroy()`), pending pings reject, the
   * transport is destroyed (the remote's streams then fail with
   * {@link ConnectionClosedError}), `'error'` is emitted if `err` is given, then `'close'`.
   */
  destroy(err?: Error): void {
    if (!this.#destroyed) this.#teardown(err ?? null, 'destroy')
    // Already torn down but still ending the transport gracefully: stop waiting.
    else if (!this.#transportClosed) this.#duplex.destroy()
  }

  // ---- receiving -----------------------------------------------------------------

  readonly #onTransportData = (chunk: Buffer): void => {
    if (this.#destroyed) return
    this.#receivedSinceTick = true
    // An in-memory transport may deliver the remote's answer to one of our writes
    // synchronously, while we are still decoding: keep it for after the current chunk.
    if (this.#decoding) {
      this.#backlog.push(chunk)
      return
    }
    this.#decoding = true
    try {
      this.#decoder.push(chunk)
      for (let next = this.#backlog.shift(); next !== undefined; next = this.#backlog.shift()) this.#decoder.push(next)
    } catch (err) {
      this.#backlog = []
      if (err instanceof MuxProtocolError) return this.#protocolError(err)
      // A listener of ours threw (say, in a 'stream' or 'data' handler): the rest of the
      // chunk is lost, so the connection cannot go on. Tear down, then let it surface.
      this.#teardown(new ConnectionClosedError('A listener threw while data was being delivered', { cause: err }), 'destroy')
      throw err
    } finally {
      this.#decoding = false
    }
  }

  #onDataHeader(id: number, length: number): void {
    const stream = this.#lookup(id)
    this.#dataTarget = stream
    stream?.handleDataHeader(length)
  }

  #onFrame(frame: MuxControlFrame): void {
    if (this.#destroyed) return
    switch (frame.type) {
      case 'open':
        return this.#onOpen(frame.streamId, frame.label)
      case 'window-update':
        return this.#lookup(frame.streamId)?.handleWindowUpdate(frame.increment)
      case 'close':
        return this.#lookup(frame.streamId)?.handleClose()
      case 'reset':
        return this.#lookup(frame.streamId)?.handleReset(frame.reason)
      case 'ping':
        this.#countReflected()
        return this.#sendControl(encodeFrame({ type: 'pong', opaque: frame.opaque }))
      case 'pong':
        return this.#onPong(Buffer.from(frame.opaque))
      case 'go-away':
        if (frame.code === 'protocol-error') {
          return this.#teardown(new MuxProtocolError('The remote reported a protocol error in our frames'), 'destroy')
        }
        if (!this.#remoteGoAway) {
          this.#remoteGoAway = true
          this.emit('goaway', frame.code)
        }
        return
    }
  }

  /**
   * The live stream `id`, or `undefined` for one that existed and is finished (frames
   * still in flight for it are dropped). Throws for an id that was never opened.
   */
  #lookup(id: number): MuxStream | undefined {
    const stream = this.#streams.get(id)
    if (stream !== undefined) return stream
    const ours = id % 2 === (this.isInitiator ? 1 : 0)
    if (ours ? id >= this.#nextLocalId : id > this.#lastRemoteId) {
      throw new MuxProtocolError(`Frame for stream ${id}, which was never opened`)
    }
    return undefined
  }

  #onOpen(id: number, label: string): void {
    if (id % 2 === (this.isInitiator ? 1 : 0)) {
      throw new MuxProtocolError(`The remote opened stream ${id}, an id of our parity`)
    }
    if (id <= this.#lastRemoteId) {
      throw new MuxProtocolError(`The remote opened stream ${id} after stream ${this.#lastRemoteId} (ids must increase)`)
    }
    this.#lastRemoteId = id
    if (this.#localGoAway || this.#streams.size >= this.maxStreams) {
      this.#countReflected()
      this.#sendReset(id, 'refused')
      return
    }
    const stream = new MuxStream(this.#host, { id, direction: 'inbound', label, window: this.initialWindow, maxWindow: this.maxReceiveWindow })
    this.#streams.set(id, stream)
    this.#grantExtraWindow(id)
    this.emit('stream', stream)
  }

  #onPong(opaque: Buffer): void {
    const seq = opaque.readUInt32BE(4)
    const ping = this.#pings.get(seq)
    if (ping === undefined) return // a keep-alive, or one given up on
    this.#pings.delete(seq)
    const rtt = performance.now() - ping.start
    this.#rtt = rtt
    ping.resolve(rtt)
  }

  readonly #onTransportEnd = (): void => {
    if (this.#destroyed) return
    // The remote ended the whole connection: streams still open can never finish.
    this.#teardown(null, 'end', new ConnectionClosedError('The connection ended before the stream finished'))
  }

  readonly #onTransportError = (err: Error): void => {
    if (this.#destroyed) return
    const error =
      err instanceof PeerlinkError ? err : new ConnectionClosedError(`The connection failed: ${err.message}`, { cause: err })
    this.#teardown(error, 'destroy')
  }

  readonly #onTransportClose = (): void => {
    this.#transportClosed = true
    if (!this.#destroyed) this.#teardown(null, 'none', new ConnectionClosedError('The connection closed before the stream finished'))
    this.#emitClose()
  }

  readonly #onTransportDrain = (): void => {
    this.#congested = false
    this.#reflected = 0
    const waiters = this.#drainWaiters
    this.#drainWaiters = []
    for (const waiter of waiters) waiter()
  }

  readonly #onAbort = (): void => {
    this.destroy(new AbortError(undefined, { cause: this.#signal?.reason }))
  }

  readonly #keepAliveTick = (): void => {
    if (this.#destroyed) return
    if (this.#receivedSinceTick) {
      this.#receivedSinceTick = false
      this.#keepAliveOutstanding = false
      return
    }
    if (this.#keepAliveOutstanding) {
      this.#teardown(new ConnectionClosedError('The remote did not answer keep-alive pings'), 'destroy')
      return
    }
    this.#keepAliveOutstanding = true
    this.#sendPing(0)
  }

  // ---- sending -------------------------------------------------------------------

  /**
   * Frames go to the transport at once: holding them back to batch a whole tick (cork
   * until the next tick) measured slower — the window's worth of data then waits in
   * user space instead of flowing (docs/benchmarks.md).
   */
  #write(buffer: Buffer): void {
    if (this.#destroyed) return
    if (!this.#duplex.write(buffer)) this.#congested = true
  }

  /**
   * A data frame goes to the transport as its header and its payload, two buffers under
   * one cork (one `_writev`), without copying the payload here: TCP sends both with one
   * `writev`, and the secure connection builds one encrypted message of them (it
   * coalesces queued writes, with room for a header beyond 64 KiB, copying once into the
   * message it encrypts in place). Only tiny payloads are copied behind their header
   * (one small write beats a writev). See docs/stream-mux.md and docs/benchmarks.md.
   */
  #sendData(id: number, payload: Buffer): void {
    if (this.#destroyed) return
    const n = payload.length
    const duplex = this.#duplex
    if (n >= COPY_BELOW) {
      const header = Buffer.allocUnsafe(FRAME_HEADER_LENGTH)
      writeFrameHeader(header, 0, FrameTypeCode.data, id, n)
      duplex.cork()
      this.#write(header)
      this.#write(payload)
      duplex.uncork()
      return
    }
    const frame = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + n)
    writeFrameHeader(frame, 0, FrameTypeCode.data, id, n)
    payload.copy(frame, FRAME_HEADER_LENGTH)
    this.#write(frame)
  }

  #sendWindowUpdate(id: number, increment: number): void {
    const frame = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 4)
    writeFrameHeader(frame, 0, FrameTypeCode['window-update'], id, 4)
    frame.writeUInt32BE(increment, FRAME_HEADER_LENGTH)
    this.#write(frame)
  }

  #sendReset(id: number, reason: ResetReason): void {
    this.#write(encodeFrame({ type: 'reset', streamId: id, reason }))
  }

  #sendControl(frame: Buffer): void {
    this.#write(frame)
  }

  #sendPing(seq: number): void {
    const opaque = Buffer.alloc(PING_PAYLOAD_LENGTH)
    opaque.writeUInt32BE(seq, 4)
    this.#write(encodeFrame({ type: 'ping', opaque }))
  }

  /** A receive window above the protocol's starting one is granted right after the open. */
  #grantExtraWindow(id: number): void {
    if (this.initialWindow > DEFAULT_WINDOW) this.#sendWindowUpdate(id, this.initialWindow - DEFAULT_WINDOW)
  }

  #countReflected(): void {
    if (this.#congested && ++this.#reflected > MAX_REFLECTED_WHILE_CONGESTED) {
      throw new MuxProtocolError('The remote keeps sending pings or opening streams without reading our answers')
    }
  }

  // ---- lifecycle -----------------------------------------------------------------

  #release(stream: MuxStream): void {
    if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id)
    if (this.#dataTarget === stream) this.#dataTarget = undefined
    this.#maybeFinishClose()
  }

  #maybeFinishClose(): void {
    if (this.#localGoAway && this.#streams.size === 0 && !this.#destroyed) this.#teardown(null, 'end')
  }

  #protocolError(err: MuxProtocolError): void {
    if (this.#destroyed) return
    // Tell the remote why before going (best effort), then end the transport.
    this.#write(encodeFrame({ type: 'go-away', code: 'protocol-error' }))
    this.#teardown(err, 'end')
  }

  /**
   * Stop everything. `transport` says what happens to the duplex: `'destroy'` it,
   * `'end'` it (flushing what was written; destroyed if it has not closed within
   * {@link END_GRACE}), or `'none'` (it is closed already).
   */
  #teardown(err: Error | null, transport: 'destroy' | 'end' | 'none', streamError: Error | null = err): void {
    if (this.#destroyed) return
    const duplex = this.#duplex
    this.#destroyed = true
    this.#decoder.stop()
    this.#dataTarget = undefined
    clearInterval(this.#keepAliveTimer)
    this.#signal?.removeEventListener('abort', this.#onAbort)
    this.#drainWaiters = []

    const streams = [...this.#streams.values()]
    this.#streams.clear()
    for (const stream of streams) stream.abort(streamError)
    const pings = [...this.#pings.values()]
    this.#pings.clear()
    for (const ping of pings) ping.reject(err ?? new ConnectionClosedError('The multiplexed connection closed before the pong'))
    if (err !== null) process.nextTick(() => this.emit('error', err))

    if (this.#transportClosed || transport === 'none') {
      if (this.#transportClosed) process.nextTick(() => this.#emitClose())
      return
    }
    if (transport === 'destroy') {
      duplex.destroy()
      return
    }
    if (!duplex.writableEnded) duplex.end()
    // Keep reading so that the remote's end arrives (and the transport can close).
    duplex.resume()
    this.#endTimer = setTimeout(() => duplex.destroy(), END_GRACE)
  }

  #emitClose(): void {
    if (this.#closeEmitted) return
    this.#closeEmitted = true
    clearTimeout(this.#endTimer)
    const duplex = this.#duplex
    duplex.off('data', this.#onTransportData)
    duplex.off('end', this.#onTransportEnd)
    duplex.off('drain', this.#onTransportDrain)
    duplex.off('close', this.#onTransportClose)
    // 'error' stays: a late error of the closed transport must not become uncaught.
    process.nextTick(() => this.emit('close'))
  }
}

function bindSignal(stream: MuxStream, signal: AbortSignal): void {
  const onAbort = (): void => void stream.destroy(new AbortError(undefined, { cause: signal.reason }))
  if (signal.aborted) return onAbort()
  signal.addEventListener('abort', onAbort, { once: true })
  stream.once('close', () => signal.removeEventListener('abort', onAbort))
}
