/**
 * Options and events of {@link StreamMux}, and their validation.
 *
 * @module
 */
import type { Duplex } from 'node:stream'
import { InvalidArgumentError } from '../errors.js'
import type { AbortError, ConnectionClosedError, MuxProtocolError, MuxStreamRefusedError } from '../errors.js'
import { DEFAULT_WINDOW, MAX_FRAME_PAYLOAD, type GoAwayCode } from './mux-frame.js'
import type { MuxStream } from './mux-stream.js'
import type { StreamMux } from './stream-mux.js'

/** Options of {@link StreamMux}. */
export interface StreamMuxOptions {
  /**
   * Exactly one side is the initiator (the connecting side, say): its streams get odd
   * ids, the other side's even ids.
   */
  isInitiator: boolean
  /**
   * Most streams open at once (both directions together). Beyond it, the remote's new
   * streams are refused and `openStream` returns a stream destroyed with
   * {@link MuxStreamRefusedError}.
   * @default 1024
   */
  maxStreams?: number
  /**
   * The receive window (bytes) granted to the remote on each stream: how much it may
   * send that our reader has not consumed yet. At least 256 KiB (the protocol's
   * starting window), at most 1 GiB.
   * @default 262_144
   */
  initialWindow?: number
  /**
   * How far a stream's receive window may grow. A stream starts with `initialWindow`;
   * each time its reader takes half the window while keeping up (nothing received is
   * left waiting for it), the window doubles, up to this: a bulk transfer is then not
   * held back by the window over a path with a large bandwidth-delay product or deep
   * queues, while a stream whose reader lags never grows. A stream nobody reads still
   * holds at most its current window. Equal to `initialWindow` turns growth off; at
   * most 1 GiB.
   * @default 16_777_216 (16 MiB), or `initialWindow` if that is larger
   */
  maxReceiveWindow?: number
  /**
   * Largest data payload sent in one frame, 1 KiB to 64 KiB.
   * @default 65_536
   */
  maxFrameSize?: number
  /**
   * Milliseconds between keep-alive pings when nothing arrives; the connection is
   * destroyed with {@link ConnectionClosedError} after two silent intervals. 0 turns
   * keep-alives off (the transport's own liveness checks then decide).
   * @default 0
   */
  keepAliveInterval?: number
  /** Destroys the multiplexer (and its streams) with {@link AbortError}. */
  signal?: AbortSignal
}

/** Options of {@link StreamMux.openStream}. */
export interface OpenStreamOptions {
  /**
   * A small label the remote sees as `stream.label`: a protocol name, a forward target…
   * At most 1024 UTF-8 bytes.
   * @default ''
   */
  label?: string
  /** Destroys the stream with {@link AbortError}. */
  signal?: AbortSignal
}

/** Options of {@link StreamMux.close}. */
export interface StreamMuxCloseOptions {
  /**
   * Milliseconds to let open streams finish before the multiplexer is destroyed.
   * @default Infinity
   */
  timeout?: number
  /** Destroys the multiplexer at once when aborted. */
  signal?: AbortSignal
}

/** Options of {@link StreamMux.ping}. */
export interface MuxPingOptions {
  /** Rejects with {@link AbortError}. */
  signal?: AbortSignal
}

/** Events of {@link StreamMux}. */
export interface StreamMuxEvents {
  /**
   * The remote opened a stream. Streams are accepted even while no listener is attached
   * (their data waits, within the window): a listener may come a moment later.
   */
  stream: [stream: MuxStream]
  /** The remote sent go-away: it opens and accepts no new streams; open ones continue. */
  goaway: [code: GoAwayCode]
  /** The multiplexer failed (protocol error, transport error, keep-alive timeout, abort). `'close'` follows. */
  error: [err: Error]
  /** The multiplexer and its transport are closed. */
  close: []
}

/** Default of {@link StreamMuxOptions.maxStreams}. */
export const DEFAULT_MAX_STREAMS = 1024
/** Default of {@link StreamMuxOptions.maxFrameSize}: 64 KiB, so a 64 KiB write (a TCP read, say) is one frame. */
export const DEFAULT_MAX_FRAME_SIZE = MAX_FRAME_PAYLOAD
/** Default of {@link StreamMuxOptions.maxReceiveWindow} (16 MiB), unless `initialWindow` is larger. */
export const DEFAULT_MAX_RECEIVE_WINDOW = 16 * 1024 * 1024
/** Largest {@link StreamMuxOptions.initialWindow} and {@link StreamMuxOptions.maxReceiveWindow} (1 GiB). */
export const MAX_INITIAL_WINDOW = 2 ** 30

/** Options with their defaults filled in. @internal */
export interface ValidatedOptions {
  isInitiator: boolean
  maxStreams: number
  initialWindow: number
  maxReceiveWindow: number
  maxFrameSize: number
  keepAliveInterval: number
  signal: AbortSignal | undefined
}

/** Check `options` (throws {@link InvalidArgumentError}) and fill in the defaults. @internal */
export function validateOptions(duplex: Duplex, options: StreamMuxOptions): ValidatedOptions {
  if (
    duplex === null ||
    typeof duplex !== 'object' ||
    typeof duplex.write !== 'function' ||
    typeof duplex.on !== 'function' ||
    typeof duplex.destroy !== 'function'
  ) {
    throw new InvalidArgumentError('duplex must be a Node Duplex stream')
  }
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object')
  const {
    isInitiator,
    maxStreams = DEFAULT_MAX_STREAMS,
    initialWindow = DEFAULT_WINDOW,
    maxFrameSize = DEFAULT_MAX_FRAME_SIZE,
    keepAliveInterval = 0,
    signal,
  } = options
  const { maxReceiveWindow = Math.max(DEFAULT_MAX_RECEIVE_WINDOW, typeof initialWindow === 'number' ? initialWindow : 0) } = options
  if (typeof isInitiator !== 'boolean') throw new InvalidArgumentError('isInitiator must be a boolean')
  checkInteger('maxStreams', maxStreams, 1, 2 ** 24)
  checkInteger('initialWindow', initialWindow, DEFAULT_WINDOW, MAX_INITIAL_WINDOW)
  checkInteger('maxReceiveWindow', maxReceiveWindow, initialWindow, MAX_INITIAL_WINDOW)
  checkInteger('maxFrameSize', maxFrameSize, 1024, MAX_FRAME_PAYLOAD)
  if (typeof keepAliveInterval !== 'number' || !Number.isFinite(keepAliveInterval) || keepAliveInterval < 0) {
    throw new InvalidArgumentError(`keepAliveInterval must be a non-negative number of milliseconds, got ${String(keepAliveInterval)}`)
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal')
  return { isInitiator, maxStreams, initialWindow, maxReceiveWindow, maxFrameSize, keepAliveInterval, signal }
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`)
  }
}
