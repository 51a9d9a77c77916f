/**
 * The Beacon's outgoing WebSocket frames, built in one buffer: the frame header
 * (RFC 6455 §5.2: FIN, opcode 2 "binary", no mask — a server never masks, §5.1) right in
 * front of the MessagePack message. A session writes such a frame to its TLS socket with
 * one `write`, where `ws` would write the header and the message separately (two
 * buffers, a `writev`, and a copy into one TLS record).
 *
 * @module
 */
import { encodeServerMessageFast } from '../../beacon/beacon-encoder.js'
import { type ServerMessage, encodeServerMessage } from '../../beacon/beacon-messages.js'

/** Scratch for headers: copied into the frame before the next use. */
const scratch = Buffer.alloc(10)
const header2 = scratch.subarray(0, 2)
const header4 = scratch.subarray(0, 4)

/** The header of an unmasked, final, binary frame of `length` payload bytes (RFC 6455 §5.2). */
function frameHeader(length: number): Uint8Array {
  scratch[0] = 0x82 // FIN, opcode 0x2 (binary)
  if (length < 126) {
    scratch[1] = length
    return header2
  }
  if (length < 0x10000) {
    scratch[1] = 126
    scratch.writeUInt16BE(length, 2)
    return header4
  }
  scratch[1] = 127
  scratch.writeUInt32BE(0, 2)
  scratch.writeUInt32BE(length, 6)
  return scratch
}

/** Encodes `message` as a complete WebSocket frame. */
export function encodeServerFrame(message: ServerMessage): Buffer {
  return encodeServerMessageFast(message, frameHeader) ?? frameOf(encodeServerMessage(message))
}

/** Wraps an encoded message (`payload`) in a WebSocket frame (a copy). */
export function frameOf(payload: Uint8Array): Buffer {
  const header = frameHeader(payload.byteLength)
  const frame = Buffer.allocUnsafe(header.byteLength + payload.byteLength)
  frame.set(header, 0)
  frame.set(payload, header.byteLength)
  return frame
}

/** The encoded message inside a frame made by {@link encodeServerFrame} or {@link frameOf} (a view). */
export function framePayload(frame: Uint8Array): Uint8Array {
  const length = frame[1]!
  return frame.subarray(length < 126 ? 2 : length === 126 ? 4 : 10)
}
