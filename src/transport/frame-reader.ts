/**
 * Splits a byte stream into frames: a 3-byte little-endian length, then that many bytes
 * (the framing of the secure connection's handshake messages and records, the same as
 * secret-stream's).
 *
 * Built for the receive path of a bulk transfer, where a 64 KiB record arrives as some
 * 45 packets: a frame that lies whole inside one chunk is handed on as a view of that
 * chunk (no copy); a frame spread over chunks is assembled once, into a buffer of
 * exactly its size, allocated when its length is known.
 *
 * @module
 */

/** Bytes of a frame's length prefix. */
export const FRAME_HEADER_BYTES = 3
/** The largest length a 3-byte prefix can state. */
export const MAX_FRAME_LENGTH = 0xffffff

/**
 * A frame of `length` bytes with its length prefix written: the caller fills the
 * `length` bytes after {@link FRAME_HEADER_BYTES}.
 *
 * @internal
 * @example
 * ```ts
 * const frame = allocateFrame(2)
 * frame.set([0xaa, 0xbb], FRAME_HEADER_BYTES) // frame is 02 00 00 aa bb
 * ```
 */
export function allocateFrame(length: number): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length)
  frame[0] = length & 0xff
  frame[1] = (length >>> 8) & 0xff
  frame[2] = length >>> 16
  return frame
}

/**
 * Called with each complete frame, in order. The frame's bytes belong to the callee
 * (it may decrypt them in place). Return false to stop reading (the rest of the chunk
 * and everything after it is dropped).
 */
export type FrameHandler = (frame: Buffer) => boolean

/**
 * Called when a frame's length exceeds the current limit; the reader then stops
 * for good.
 */
export type OversizeHandler = (length: number, limit: number) => void

/**
 * @internal
 * @example
 * ```ts
 * const reader = new FrameReader(1024, (frame) => (console.log(frame.length), true), () => {})
 * reader.push(Buffer.from([2, 0, 0, 0xaa, 0xbb])) // logs 2
 * ```
 */
export class FrameReader {
  #limit: number
  readonly #onFrame: FrameHandler
  readonly #onOversize: OversizeHandler
  #stopped = false
  /** Length prefix bytes read so far (0–2 while reading a prefix). */
  #headerBytes = 0
  #length = 0
  /** The frame being assembled across chunks, or null. */
  #frame: Buffer | null = null
  #filled = 0

  constructor(limit: number, onFrame: FrameHandler, onOversize: OversizeHandler) {
    this.#limit = limit
    this.#onFrame = onFrame
    this.#onOversize = onOversize
  }

  /** The largest frame accepted from now on (frames already started keep their size). */
  set limit(limit: number) {
    this.#limit = limit
  }

  /** Whether a frame has been started and not completed (the stream ended inside it). */
  get partial(): boolean {
    return this.#headerBytes !== 0 || this.#frame !== null
  }

  /** Stops reading: later chunks are ignored. */
  stop(): void {
    this.#stopped = true
    this.#frame = null
  }

  /** Reads one chunk of the stream. */
  push(chunk: Buffer): void {
    const size = chunk.length
    let offset = 0
    while (offset < size && !this.#stopped) {
      const frame = this.#frame
      if (frame !== null) {
        // Continue a frame spread over chunks.
        const take = Math.min(frame.length - this.#filled, size - offset)
        chunk.copy(frame, this.#filled, offset, offset + take)
        this.#filled += take
        offset += take
        if (this.#filled < frame.length) return
        this.#frame = null
        if (!this.#onFrame(frame)) this.#stopped = true
        continue
      }
      if (this.#headerBytes === 0 && size - offset >= FRAME_HEADER_BYTES) {
        this.#length = chunk[offset]! | (chunk[offset + 1]! << 8) | (chunk[offset + 2]! << 16)
        offset += FRAME_HEADER_BYTES
      } else {
        // A length prefix split over chunks.
        this.#length |= chunk[offset++]! << (8 * this.#headerBytes)
        if (++this.#headerBytes < FRAME_HEADER_BYTES) continue
        this.#headerBytes = 0
      }
      const length = this.#length
      this.#length = 0
      if (length > this.#limit) {
        this.#stopped = true
        this.#onOversize(length, this.#limit)
        return
      }
      if (size - offset >= length) {
        const whole = chunk.subarray(offset, offset + length)
        offset += length
        if (!this.#onFrame(whole)) this.#stopped = true
      } else {
        this.#frame = Buffer.allocUnsafe(length)
        this.#filled = 0
      }
    }
  }
}
