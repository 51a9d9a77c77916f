/**
 * A Beacon client's outgoing WebSocket frames, built in one buffer: the frame header
 * with its masking key (RFC 6455 §5.2; a client masks every frame, §5.3) and the masked
 * MessagePack message. The client writes such a frame to its TLS socket with one
 * `write`, skipping `ws`'s sender (which would do the same work in more steps).
 *
 * @module
 */
import { randomFillSync } from 'node:crypto'
import { encodeClientMessageFast } from './beacon-encoder.js'
import { type ClientMessage, encodeClientMessage } from './beacon-messages.js'

/** Masking keys come from a pool of random bytes refilled 4 KiB at a time (RFC 6455 §5.3: unpredictable keys). */
const pool = Buffer.alloc(4096)
let poolOffset = pool.length

/** Scratch for headers: copied into the frame before the next use. */
const scratch = Buffer.alloc(14)
let headerLength = 0

/** The header of a masked, final, binary frame of `length` payload bytes, with a fresh masking key. */
function frameHeader(length: number): Uint8Array {
  return header(0x82, length)
}

/** The header of a masked, final frame of `opcode` and `length` payload bytes, with a fresh masking key. */
function header(opcode: number, length: number): Uint8Array {
  if (poolOffset + 4 > pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  scratch[0] = opcode // FIN and the opcode
  let at: number
  if (length < 126) {
    scratch[1] = 0x80 | length
    at = 2
  } else if (length < 0x10000) {
    scratch[1] = 0x80 | 126
    scratch.writeUInt16BE(length, 2)
    at = 4
  } else {
    scratch[1] = 0x80 | 127
    scratch.writeUInt32BE(0, 2)
    scratch.writeUInt32BE(length, 6)
    at = 10
  }
  pool.copy(scratch, at, poolOffset, poolOffset + 4)
  poolOffset += 4
  headerLength = at + 4
  return scratch.subarray(0, headerLength)
}

/** Masks the payload of `frame` in place, with the key at the end of its header. */
function mask(frame: Buffer, header: number): Buffer {
  const k0 = frame[header - 4]!
  const k1 = frame[header - 3]!
  const k2 = frame[header - 2]!
  const k3 = frame[header - 1]!
  const end = frame.length
  let i = header
  for (; i + 4 <= end; i += 4) {
    frame[i] ^= k0
    frame[i + 1] ^= k1
    frame[i + 2] ^= k2
    frame[i + 3] ^= k3
  }
  if (i < end) frame[i++] ^= k0
  if (i < end) frame[i++] ^= k1
  if (i < end) frame[i] ^= k2
  return frame
}

/** Encodes `message` as a complete, masked WebSocket frame. */
export function encodeClientFrame(message: ClientMessage): Buffer {
  const fast = encodeClientMessageFast(message, frameHeader)
  if (fast !== undefined) return mask(fast, headerLength)
  const payload = encodeClientMessage(message)
  const header = frameHeader(payload.byteLength)
  const frame = Buffer.allocUnsafe(header.byteLength + payload.byteLength)
  frame.set(header, 0)
  frame.set(payload, header.byteLength)
  return mask(frame, header.byteLength)
}

/** A masked pong frame echoing `payload` (at most 125 bytes: a ping's, RFC 6455 §5.5.3). */
export function clientPongFrame(payload: Uint8Array): Buffer {
  const head = header(0x8a, payload.byteLength)
  const frame = Buffer.allocUnsafe(head.byteLength + payload.byteLength)
  frame.set(head, 0)
  frame.set(payload, head.byteLength)
  return mask(frame, head.byteLength)
}
