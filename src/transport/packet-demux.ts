/**
 * Classifies datagrams arriving on the shared UDP socket. udx-native consumes its own
 * stream packets (first byte 0xFF, known stream id) before JavaScript sees them; every
 * other datagram reaches {@link classifyDatagram}, which only recognises STUN and TURN
 * ChannelData by a few byte checks (it does not parse them; `src/stun/` does that).
 *
 * @module
 */

/** What a datagram looks like: a STUN message, a TURN ChannelData message, or neither. */
export type DatagramKind = 'stun' | 'channel-data' | 'unknown'

/** Size of the STUN message header (RFC 8489 §5). */
export const STUN_HEADER_LENGTH = 20

/** The STUN magic cookie, bytes 4–7 of every RFC 5389/8489 message (RFC 8489 §5). */
export const STUN_MAGIC_COOKIE = 0x2112a442

/** Size of the TURN ChannelData header (RFC 8656 §12.4). */
export const CHANNEL_DATA_HEADER_LENGTH = 4

/**
 * Classify one datagram by its first bytes. Pure and total: never throws, for any input.
 *
 * - `'stun'`: the two most significant bits are 0 and the magic cookie is present
 *   (RFC 8489 §5), the 20-byte header is complete, the declared message length is a
 *   multiple of 4 (RFC 8489 §5: attributes are padded) and equals the bytes that follow
 *   the header exactly.
 * - `'channel-data'`: the first byte is 0x40–0x4F, i.e. a channel number in
 *   0x4000–0x4FFF (RFC 8656 §12; RFC 7983 §7 demultiplexing), the 4-byte header is
 *   complete and the declared length fits in the datagram; only the padding up to the next
 *   multiple of 4 may follow (RFC 8656 §12.5: over UDP padding is optional). A truncated message is `'unknown'`.
 * - `'unknown'`: everything else (including udx-native packets for unknown stream ids,
 *   whose first byte is 0xFF).
 *
 * @example
 * ```ts
 * import { classifyDatagram } from 'peerlink'
 *
 * classifyDatagram(Buffer.from('4000000161', 'hex')) // 'channel-data'
 * ```
 */
export function classifyDatagram(buf: Uint8Array): DatagramKind {
  if (buf.length === 0) return 'unknown'
  const first = buf[0]!
  // RFC 8489 §5: the most significant 2 bits of every STUN message are zeroes.
  if (first < 0x40) return isStun(buf) ? 'stun' : 'unknown'
  // RFC 8656 §12: channel numbers 0x4000 through 0x4FFF.
  if (first <= 0x4f) return isChannelData(buf) ? 'channel-data' : 'unknown'
  return 'unknown'
}

function isStun(buf: Uint8Array): boolean {
  if (buf.length < STUN_HEADER_LENGTH) return false
  // RFC 8489 §5: the magic cookie field MUST contain the fixed value 0x2112A442.
  if (buf[4] !== 0x21 || buf[5] !== 0x12 || buf[6] !== 0xa4 || buf[7] !== 0x42) return false
  const length = (buf[2]! << 8) | buf[3]!
  // RFC 8489 §5: the message length is a multiple of 4 and excludes the 20-byte header.
  if ((length & 3) !== 0) return false
  return length === buf.length - STUN_HEADER_LENGTH
}

function isChannelData(buf: Uint8Array): boolean {
  if (buf.length < CHANNEL_DATA_HEADER_LENGTH) return false
  const length = (buf[2]! << 8) | buf[3]!
  const end = CHANNEL_DATA_HEADER_LENGTH + length
  // RFC 8656 §12.4: a UDP datagram shorter than the claimed length is discarded.
  if (buf.length < end) return false
  // RFC 8656 §12.5: over UDP, padding to a multiple of 4 is optional; nothing else may follow.
  return buf.length <= ((end + 3) & ~3)
}
