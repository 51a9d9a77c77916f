/**
 * A small MessagePack writer for the Beacon's own messages: maps, arrays, strings,
 * unsigned integers and byte strings, written with the same (smallest) formats
 * `@msgpack/msgpack` chooses, into one reused buffer. It leaves room in front of the
 * message, so that a WebSocket frame header can be put there without another copy.
 *
 * Not re-entrant: one encoding at a time (encoding is synchronous).
 *
 * @module
 */

/** Thrown by {@link MsgpackWriter} for a value it does not write (the caller falls back to the general encoder). */
export class UnsupportedValueError extends Error {}

/** Writes MessagePack values into a growing buffer (see the module notes). */
export class MsgpackWriter {
  #buf: Buffer
  #pos = 0
  #start = 0

  /** @param initialBytes - initial capacity; it doubles as needed. */
  constructor(initialBytes = 4096) {
    this.#buf = Buffer.allocUnsafe(initialBytes)
  }

  /** Starts a new message after `headroom` free bytes. */
  reset(headroom = 0): void {
    this.#start = headroom
    this.#pos = headroom
  }

  /** Bytes written since {@link MsgpackWriter.reset}. */
  get length(): number {
    return this.#pos - this.#start
  }

  /** A copy of the message written since {@link MsgpackWriter.reset}. */
  copy(): Buffer {
    const out = Buffer.allocUnsafe(this.#pos - this.#start)
    this.#buf.copy(out, 0, this.#start, this.#pos)
    return out
  }

  /**
   * A copy of the message with `header` written in the headroom just before it (the
   * headroom must be at least `header.length`).
   */
  copyWithHeader(header: Uint8Array): Buffer {
    const from = this.#start - header.length
    if (from < 0) throw new RangeError('header larger than the headroom')
    this.#buf.set(header, from)
    const out = Buffer.allocUnsafe(this.#pos - from)
    this.#buf.copy(out, 0, from, this.#pos)
    return out
  }

  #ensure(bytes: number): void {
    if (this.#pos + bytes <= this.#buf.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + bytes))
    this.#buf.copy(grown, 0, 0, this.#pos)
    this.#buf = grown
  }

  /** A map header for `size` entries. */
  map(size: number): void {
    this.#ensure(3)
    if (size < 16) {
      this.#buf[this.#pos++] = 0x80 | size
    } else if (size < 0x10000) {
      this.#buf[this.#pos++] = 0xde
      this.#buf.writeUInt16BE(size, this.#pos)
      this.#pos += 2
    } else {
      throw new UnsupportedValueError('map too large')
    }
  }

  /** An array header for `size` items. */
  array(size: number): void {
    this.#ensure(3)
    if (size < 16) {
      this.#buf[this.#pos++] = 0x90 | size
    } else if (size < 0x10000) {
      this.#buf[this.#pos++] = 0xdc
      this.#buf.writeUInt16BE(size, this.#pos)
      this.#pos += 2
    } else {
      throw new UnsupportedValueError('array too large')
    }
  }

  /** An integer from 0 to 2^32-1; anything else throws {@link UnsupportedValueError}. */
  uint(value: unknown): void {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new UnsupportedValueError('not a uint32')
    this.#ensure(5)
    const buf = this.#buf
    if (value < 0x80) {
      buf[this.#pos++] = value
    } else if (value < 0x100) {
      buf[this.#pos++] = 0xcc
      buf[this.#pos++] = value
    } else if (value < 0x10000) {
      buf[this.#pos++] = 0xcd
      buf.writeUInt16BE(value, this.#pos)
      this.#pos += 2
    } else {
      buf[this.#pos++] = 0xce
      buf.writeUInt32BE(value, this.#pos)
      this.#pos += 4
    }
  }

  /** A UTF-8 string (ASCII is written by hand, the rest by `Buffer#write`). */
  str(value: unknown): void {
    if (typeof value !== 'string') throw new UnsupportedValueError('not a string')
    const n = value.length
    let ascii = true
    for (let i = 0; i < n; i++) {
      if (value.charCodeAt(i) > 0x7f) {
        ascii = false
        break
      }
    }
    const bytes = ascii ? n : Buffer.byteLength(value, 'utf8')
    this.#ensure(5 + bytes)
    const buf = this.#buf
    if (bytes < 32) {
      buf[this.#pos++] = 0xa0 | bytes
    } else if (bytes < 0x100) {
      buf[this.#pos++] = 0xd9
      buf[this.#pos++] = bytes
    } else if (bytes < 0x10000) {
      buf[this.#pos++] = 0xda
      buf.writeUInt16BE(bytes, this.#pos)
      this.#pos += 2
    } else {
      buf[this.#pos++] = 0xdb
      buf.writeUInt32BE(bytes, this.#pos)
      this.#pos += 4
    }
    if (ascii) {
      let pos = this.#pos
      for (let i = 0; i < n; i++) buf[pos++] = value.charCodeAt(i)
    } else {
      buf.write(value, this.#pos, bytes, 'utf8')
    }
    this.#pos += bytes
  }

  /** A byte string. */
  bin(value: unknown): void {
    if (!(value instanceof Uint8Array)) throw new UnsupportedValueError('not a Uint8Array')
    const size = value.byteLength
    this.#ensure(5 + size)
    const buf = this.#buf
    if (size < 0x100) {
      buf[this.#pos++] = 0xc4
      buf[this.#pos++] = size
    } else if (size < 0x10000) {
      buf[this.#pos++] = 0xc5
      buf.writeUInt16BE(size, this.#pos)
      this.#pos += 2
    } else {
      buf[this.#pos++] = 0xc6
      buf.writeUInt32BE(size, this.#pos)
      this.#pos += 4
    }
    if (size <= 32) {
      let pos = this.#pos
      for (let i = 0; i < size; i++) buf[pos++] = value[i]!
    } else {
      buf.set(value, this.#pos)
    }
    this.#pos += size
  }

  /** Bytes already encoded (a key, a constant prefix). */
  raw(bytes: Uint8Array): void {
    const size = bytes.byteLength
    this.#ensure(size)
    const buf = this.#buf
    let pos = this.#pos
    for (let i = 0; i < size; i++) buf[pos++] = bytes[i]!
    this.#pos = pos
  }
}

/** The MessagePack encoding of a string: for constant keys and values written with {@link MsgpackWriter.raw}. */
export function msgpackString(value: string): Uint8Array {
  const writer = new MsgpackWriter(64)
  writer.str(value)
  return new Uint8Array(writer.copy())
}
