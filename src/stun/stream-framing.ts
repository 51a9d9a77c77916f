/**
 * Framing of TURN over TCP/TLS, where STUN messages and ChannelData messages follow
 * each other in one byte stream (RFC 8656 §12.5, RFC 8489 §6.2.2).
 *
 * @module
 */

import { StunMalformedError } from '../errors.js'
import { channelDataFrameLength } from './channel-data.js'
import type { ChannelDataFramingOptions } from './channel-data.js'
import { STUN_HEADER_LENGTH } from './constants.js'

/** Which kind of frame starts a stream buffer. */
export type StreamFrameKind = 'stun' | 'channel-data'

/** A frame boundary found by {@link streamFrameLength}. */
export interface StreamFrame {
  /** STUN message or ChannelData. */
  kind: StreamFrameKind
  /** Total bytes of the frame, padding included. */
  length: number
}

/**
 * Finds the first frame in a TCP byte stream: a STUN message (first two bits 00,
 * 20 + length bytes) or ChannelData (first two bits 01, padded to 4 bytes). Returns
 * `undefined` until the 4 bytes that carry the length are buffered.
 *
 * @throws StunMalformedError if the stream is neither (it cannot be resynchronised).
 *
 * @example
 * ```ts
 * import { streamFrameLength } from 'peerlink'
 *
 * let buffered = Buffer.alloc(0)
 * tcpSocket.on('data', (chunk: Buffer) => {
 *   buffered = Buffer.concat([buffered, chunk])
 *   for (let frame = streamFrameLength(buffered); frame && buffered.length >= frame.length; frame = streamFrameLength(buffered)) {
 *     handle(frame.kind, buffered.subarray(0, frame.length))   // 'stun' | 'channel-data'
 *     buffered = buffered.subarray(frame.length)
 *   }
 * })
 * ```
 */
export function streamFrameLength(buffered: Uint8Array, options?: ChannelDataFramingOptions): StreamFrame | undefined {
  if (buffered.length < 4) return undefined
  const first = buffered[0] as number
  if ((first & 0xc0) === 0) {
    const length = ((buffered[2] as number) << 8) | (buffered[3] as number)
    if (length % 4 !== 0) throw new StunMalformedError(`STUN length ${length} is not a multiple of 4`)
    return { kind: 'stun', length: STUN_HEADER_LENGTH + length }
  }
  const length = channelDataFrameLength(buffered, options)
  if (length === undefined) return undefined
  return { kind: 'channel-data', length }
}
