/**
 * The incremental decoder of the stream multiplexer's frames (`docs/stream-mux.md`).
 * It accepts the byte stream in chunks of any size and checks each frame's structure
 * (version, type, stream id 0 or not, payload length per type) as soon as its header is
 * complete. `data` payloads are handed on as views into the received chunks — never
 * copied, never reassembled — so a frame split across chunks arrives in pieces.
 *
 * Anything malformed throws {@link MuxProtocolError}; after that the decoder stays
 * failed. It never throws anything else on any input (fuzzed in
 * `test/connection/mux-frame.test.ts`).
 *
 * @module
 */
import { MuxProtocolError } from '../errors.js'
import {
  FRAME_HEADER_LENGTH,
  FRAME_TYPES,
  GO_AWAY_CODES,
  MAX_FRAME_PAYLOAD,
  MAX_LABEL_LENGTH,
  MUX_VERSION,
  PING_PAYLOAD_LENGTH,
  RESET_REASONS,
  type MuxControlFrame,
  type MuxFrameType,
} from './mux-frame.js'

/** Receives what a {@link MuxFrameDecoder} decodes. A handler may throw to fail the decoder. */
export interface MuxFrameDecoderHandler {
  /** A `data` frame header: `length` payload bytes follow through {@link onDataPiece}. */
  onDataHeader(streamId: number, length: number): void
  /** A piece of the current `data` frame's payload: a view into the received chunk. */
  onDataPiece(streamId: number, piece: Buffer): void
  /** A complete frame of any other type. */
  onFrame(frame: MuxControlFrame): void
}

const STATE_HEADER = 0
const STATE_DATA = 1
const STATE_CONTROL = 2

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** The exact payload length of the fixed-size frame types. */
const FIXED_LENGTH: Partial<Record<MuxFrameType, number>> = {
  'window-update': 4,
  close: 0,
  reset: 1,
  ping: PING_PAYLOAD_LENGTH,
  pong: PING_PAYLOAD_LENGTH,
  'go-away': 1,
}

/**
 * Decodes a stream of frames, calling a {@link MuxFrameDecoderHandler}.
 *
 * @example
 * ```ts
 * import { MuxFrameDecoder } from 'peerlink'
 *
 * const decoder = new MuxFrameDecoder({ onDataHeader, onDataPiece, onFrame })
 * socket.on('data', (chunk) => decoder.push(chunk))   // throws MuxProtocolError
 * ```
 */
export class MuxFrameDecoder {
  readonly #handler: MuxFrameDecoderHandler
  readonly #header = Buffer.allocUnsafe(FRAME_HEADER_LENGTH)
  #headerFill = 0
  #state = STATE_HEADER
  #type: MuxFrameType = 'data'
  #streamId = 0
  #remaining = 0
  #control: Buffer | null = null
  #controlFill = 0
  #failure: MuxProtocolError | null = null
  #stopped = false

  constructor(handler: MuxFrameDecoderHandler) {
    this.#handler = handler
  }

  /** Whether the decoder sits between frames (no partial frame buffered). */
  get idle(): boolean {
    return this.#state === STATE_HEADER && this.#headerFill === 0
  }

  /**
   * Decode `chunk`. Throws {@link MuxProtocolError} for malformed input (and again on
   * every later call); a handler's own exception propagates unchanged.
   */
  push(chunk: Buffer): void {
    if (this.#failure !== null) throw this.#failure
    if (this.#stopped) return
    try {
      this.#decode(chunk)
    } catch (err) {
      if (err instanceof MuxProtocolError) this.#failure = err
      throw err
    }
  }

  /** Ignore all further input (also the rest of a chunk being decoded). */
  stop(): void {
    this.#stopped = true
  }

  #decode(chunk: Buffer): void {
    const length = chunk.length
    let offset = 0
    while (offset < length && !this.#stopped) {
      if (this.#state === STATE_HEADER) {
        if (this.#headerFill === 0 && length - offset >= FRAME_HEADER_LENGTH) {
          const at = offset
          offset += FRAME_HEADER_LENGTH
          this.#onHeader(chunk, at)
        } else {
          const n = Math.min(FRAME_HEADER_LENGTH - this.#headerFill, length - offset)
          chunk.copy(this.#header, this.#headerFill, offset, offset + n)
          this.#headerFill += n
          offset += n
          if (this.#headerFill === FRAME_HEADER_LENGTH) {
            this.#headerFill = 0
            this.#onHeader(this.#header, 0)
          }
        }
      } else if (this.#state === STATE_DATA) {
        const n = Math.min(this.#remaining, length - offset)
        const piece = chunk.subarray(offset, offset + n)
        offset += n
        this.#remaining -= n
        if (this.#remaining === 0) this.#state = STATE_HEADER
        this.#handler.onDataPiece(this.#streamId, piece)
      } else if (this.#controlFill === 0 && length - offset >= this.#remaining) {
        const payload = chunk.subarray(offset, offset + this.#remaining)
        offset += this.#remaining
        this.#state = STATE_HEADER
        this.#onControl(payload)
      } else {
        this.#control ??= Buffer.allocUnsafe(this.#remaining)
        const n = Math.min(this.#remaining - this.#controlFill, length - offset)
        chunk.copy(this.#control, this.#controlFill, offset, offset + n)
        this.#controlFill += n
        offset += n
        if (this.#controlFill === this.#remaining) {
          const payload = this.#control
          this.#control = null
          this.#controlFill = 0
          this.#state = STATE_HEADER
          this.#onControl(payload)
        }
      }
    }
  }

  #onHeader(buf: Buffer, at: number): void {
    const version = buf[at]!
    if (version !== MUX_VERSION) {
      throw new MuxProtocolError(`Unsupported multiplexer version ${version} (this peer speaks version ${MUX_VERSION})`)
    }
    const type = FRAME_TYPES[buf[at + 1]!]
    if (type === undefined) throw new MuxProtocolError(`Unknown frame type ${buf[at + 1]!}`)
    const streamId = buf.readUInt32BE(at + 2)
    const length = buf.readUInt32BE(at + 6)
    const isSession = type === 'ping' || type === 'pong' || type === 'go-away'
    if (isSession && streamId !== 0) throw new MuxProtocolError(`A ${type} frame must have stream id 0, got ${streamId}`)
    if (!isSession && streamId === 0) throw new MuxProtocolError(`A ${type} frame must not have stream id 0`)
    const fixed = FIXED_LENGTH[type]
    if (fixed !== undefined && length !== fixed) {
      throw new MuxProtocolError(`A ${type} frame must have a ${fixed}-byte payload, got ${length}`)
    }
    if (type === 'data' && length > MAX_FRAME_PAYLOAD) {
      throw new MuxProtocolError(`Data frame of ${length} bytes exceeds the ${MAX_FRAME_PAYLOAD}-byte limit`)
    }
    if (type === 'open' && length > MAX_LABEL_LENGTH) {
      throw new MuxProtocolError(`Stream label of ${length} bytes exceeds the ${MAX_LABEL_LENGTH}-byte limit`)
    }
    this.#type = type
    this.#streamId = streamId
    this.#remaining = length
    if (type === 'data') {
      this.#state = length > 0 ? STATE_DATA : STATE_HEADER
      this.#handler.onDataHeader(streamId, length)
    } else if (length === 0) {
      this.#onControl(EMPTY)
    } else {
      this.#state = STATE_CONTROL
    }
  }

  #onControl(payload: Buffer): void {
    const streamId = this.#streamId
    const handler = this.#handler
    switch (this.#type) {
      case 'open': {
        let label: string
        try {
          label = utf8.decode(payload)
        } catch (err) {
          throw new MuxProtocolError(`Stream ${streamId}: the label is not valid UTF-8`, { cause: err })
        }
        handler.onFrame({ type: 'open', streamId, label })
        return
      }
      case 'window-update': {
        const increment = payload.readUInt32BE(0)
        if (increment === 0) throw new MuxProtocolError(`Stream ${streamId}: window update of 0 bytes`)
        handler.onFrame({ type: 'window-update', streamId, increment })
        return
      }
      case 'close':
        handler.onFrame({ type: 'close', streamId })
        return
      case 'reset': {
        const reason = RESET_REASONS[payload[0]!]
        if (reason === undefined) throw new MuxProtocolError(`Stream ${streamId}: unknown reset reason ${payload[0]!}`)
        handler.onFrame({ type: 'reset', streamId, reason })
        return
      }
      case 'ping':
      case 'pong':
        handler.onFrame({ type: this.#type, opaque: Buffer.from(payload) })
        return
      case 'go-away': {
        const code = GO_AWAY_CODES[payload[0]!]
        if (code === undefined) throw new MuxProtocolError(`Unknown go-away code ${payload[0]!}`)
        handler.onFrame({ type: 'go-away', code })
        return
      }
      /* c8 ignore next 2 */
      default:
        throw new MuxProtocolError(`Unexpected frame type ${this.#type}`)
    }
  }
}

const EMPTY = Buffer.alloc(0)
