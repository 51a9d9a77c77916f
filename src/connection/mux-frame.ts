/**
 * The stream multiplexer's wire format, version 1 (specified in `docs/stream-mux.md`):
 * every frame is a 10-byte header — version (1 byte), type (1 byte), stream id (32-bit
 * big-endian), payload length (32-bit big-endian) — followed by the payload. Stream id 0
 * is the session itself (ping, pong, go-away); streams opened by the initiator have odd
 * ids, those opened by the responder even ids (as in yamux).
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js'

/**
 * The wire-format version this implementation speaks (the first byte of every frame).
 *
 * @example
 * ```ts
 * import { MUX_VERSION, encodeFrame } from 'peerlink'
 *
 * const frame = encodeFrame({ type: 'ping', opaque: new Uint8Array(8) })
 * console.log(frame[0] === MUX_VERSION)   // true: the first byte of every frame
 * ```
 */
export const MUX_VERSION = 1

/**
 * Bytes in a frame header.
 *
 * @example
 * ```ts
 * import { FRAME_HEADER_LENGTH, encodeFrame } from 'peerlink'
 *
 * const frame = encodeFrame({ type: 'data', streamId: 1, payload: Buffer.from('hi') })
 * console.log(frame.length === FRAME_HEADER_LENGTH + 2)   // true: 10-byte header, 2-byte payload
 * ```
 */
export const FRAME_HEADER_LENGTH = 10

/**
 * The hard cap on a frame's payload (64 KiB); longer frames are a protocol error.
 *
 * @example
 * ```ts
 * import { MAX_FRAME_PAYLOAD, StreamMux } from 'peerlink'
 *
 * // Frames of at most 16 KiB interleave streams more finely (the default, and the most, is 64 KiB).
 * const mux = new StreamMux(socket, { isInitiator: true, maxFrameSize: MAX_FRAME_PAYLOAD / 4 })
 * ```
 */
export const MAX_FRAME_PAYLOAD = 65_536

/**
 * The longest stream label (the payload of an `open` frame), in UTF-8 bytes.
 *
 * @example
 * ```ts
 * import { MAX_LABEL_LENGTH } from 'peerlink'
 *
 * const label = `forward:${target}`
 * if (Buffer.byteLength(label) > MAX_LABEL_LENGTH) throw new Error('label too long')
 * const stream = conn.openStream({ label })
 * ```
 */
export const MAX_LABEL_LENGTH = 1_024

/**
 * The flow-control window every stream starts with in each direction (256 KiB). A
 * receiver that wants a larger one grants the difference with a `window-update` at once.
 *
 * @example
 * ```ts
 * import { DEFAULT_WINDOW, StreamMux } from 'peerlink'
 *
 * // Grant each stream 4× the default window (256 KiB) for a long fat path.
 * const mux = new StreamMux(socket, { isInitiator: false, initialWindow: 4 * DEFAULT_WINDOW })
 * ```
 */
export const DEFAULT_WINDOW = 256 * 1024

/** The largest send window a peer may grant (a larger total is a protocol error). */
export const MAX_WINDOW = 0xffff_ffff

/** Largest stream id (32 bits). */
export const MAX_STREAM_ID = 0xffff_ffff

/** Bytes of a `ping` / `pong` payload (opaque; the pong echoes the ping's). */
export const PING_PAYLOAD_LENGTH = 8

/**
 * Frame types:
 * - `data` — stream bytes (counted against the receiver's window);
 * - `open` — opens a stream; the payload is its label (UTF-8, possibly empty);
 * - `window-update` — grants the sender more credit on a stream (32-bit increment);
 * - `close` — half-close: the sender will send no more data on the stream;
 * - `reset` — aborts the stream in both directions (1-byte reason);
 * - `ping` / `pong` — liveness and RTT (8 opaque bytes, echoed);
 * - `go-away` — the sender opens and accepts no new streams (1-byte code).
 */
export type MuxFrameType = 'data' | 'open' | 'window-update' | 'close' | 'reset' | 'ping' | 'pong' | 'go-away'

/** Why a stream was reset: the application aborted it, or the receiver refused to open it. */
export type ResetReason = 'cancel' | 'refused'

/** Why a peer goes away: a normal close, or it found a protocol error in what we sent. */
export type GoAwayCode = 'normal' | 'protocol-error'

/** The type byte of each frame type (index = wire value). */
export const FRAME_TYPES: readonly MuxFrameType[] = ['data', 'open', 'window-update', 'close', 'reset', 'ping', 'pong', 'go-away']

/** The reason byte of a `reset` frame (index = wire value). */
export const RESET_REASONS: readonly ResetReason[] = ['cancel', 'refused']

/** The code byte of a `go-away` frame (index = wire value). */
export const GO_AWAY_CODES: readonly GoAwayCode[] = ['normal', 'protocol-error']

/** Wire value of each frame type. */
export const FrameTypeCode = {
  data: 0,
  open: 1,
  'window-update': 2,
  close: 3,
  reset: 4,
  ping: 5,
  pong: 6,
  'go-away': 7,
} as const satisfies Record<MuxFrameType, number>

/** A decoded (or to-be-encoded) frame. Session frames (`ping`, `pong`, `go-away`) have stream id 0. */
export type MuxFrame =
  | { type: 'data'; streamId: number; payload: Uint8Array }
  | { type: 'open'; streamId: number; label: string }
  | { type: 'window-update'; streamId: number; increment: number }
  | { type: 'close'; streamId: number }
  | { type: 'reset'; streamId: number; reason: ResetReason }
  | { type: 'ping' | 'pong'; opaque: Uint8Array }
  | { type: 'go-away'; code: GoAwayCode }

/** A frame other than `data` (the decoder streams `data` payloads in pieces instead). */
export type MuxControlFrame = Exclude<MuxFrame, { type: 'data' }>

/** Write a frame header into `target` at `offset`. No validation (the callers' job). */
export function writeFrameHeader(target: Buffer, offset: number, typeCode: number, streamId: number, length: number): void {
  target[offset] = MUX_VERSION
  target[offset + 1] = typeCode
  target.writeUInt32BE(streamId, offset + 2)
  target.writeUInt32BE(length, offset + 6)
}

/** The UTF-8 bytes of a stream label; throws {@link InvalidArgumentError} if it is too long. */
export function encodeLabel(label: string): Buffer {
  if (typeof label !== 'string') throw new InvalidArgumentError('label must be a string')
  const bytes = Buffer.from(label, 'utf8')
  if (bytes.length > MAX_LABEL_LENGTH) {
    throw new InvalidArgumentError(`label must be at most ${MAX_LABEL_LENGTH} UTF-8 bytes, got ${bytes.length}`)
  }
  return bytes
}

/**
 * Encode one frame (header and payload in one buffer). Throws
 * {@link InvalidArgumentError} for a frame the format cannot carry.
 *
 * @example
 * ```ts
 * import { encodeFrame } from 'peerlink'
 *
 * socket.write(encodeFrame({ type: 'open', streamId: 1, label: 'chat' }))
 * socket.write(encodeFrame({ type: 'data', streamId: 1, payload: Buffer.from('hello') }))
 * socket.write(encodeFrame({ type: 'close', streamId: 1 }))
 * ```
 */
export function encodeFrame(frame: MuxFrame): Buffer {
  let payload: Uint8Array
  let streamId = 0
  switch (frame.type) {
    case 'data':
      payload = frame.payload
      if (payload.length > MAX_FRAME_PAYLOAD) throw new InvalidArgumentError(`data payload over ${MAX_FRAME_PAYLOAD} bytes`)
      streamId = frame.streamId
      break
    case 'open':
      payload = encodeLabel(frame.label)
      streamId = frame.streamId
      break
    case 'window-update':
      if (!Number.isInteger(frame.increment) || frame.increment < 1 || frame.increment > MAX_WINDOW) {
        throw new InvalidArgumentError(`window increment must be 1 to ${MAX_WINDOW}, got ${frame.increment}`)
      }
      payload = Buffer.allocUnsafe(4)
      ;(payload as Buffer).writeUInt32BE(frame.increment, 0)
      streamId = frame.streamId
      break
    case 'close':
      payload = Buffer.alloc(0)
      streamId = frame.streamId
      break
    case 'reset':
      payload = Buffer.of(codeOf(RESET_REASONS, frame.reason, 'reset reason'))
      streamId = frame.streamId
      break
    case 'ping':
    case 'pong':
      payload = frame.opaque
      if (payload.length !== PING_PAYLOAD_LENGTH) throw new InvalidArgumentError(`${frame.type} payload must be ${PING_PAYLOAD_LENGTH} bytes`)
      break
    case 'go-away':
      payload = Buffer.of(codeOf(GO_AWAY_CODES, frame.code, 'go-away code'))
      break
    default:
      throw new InvalidArgumentError(`unknown frame type ${String((frame as { type: unknown }).type)}`)
  }
  const isSession = frame.type === 'ping' || frame.type === 'pong' || frame.type === 'go-away'
  if (!isSession && (!Number.isInteger(streamId) || streamId < 1 || streamId > MAX_STREAM_ID)) {
    throw new InvalidArgumentError(`stream id must be 1 to ${MAX_STREAM_ID}, got ${streamId}`)
  }
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + payload.length)
  writeFrameHeader(out, 0, FrameTypeCode[frame.type], streamId, payload.length)
  out.set(payload, FRAME_HEADER_LENGTH)
  return out
}

function codeOf<T>(values: readonly T[], value: T, what: string): number {
  const code = values.indexOf(value)
  if (code < 0) throw new InvalidArgumentError(`unknown ${what} ${String(value)}`)
  return code
}
