/**
 * Cheap checks that tell STUN messages and TURN ChannelData apart from other datagrams
 * on a shared socket (RFC 8489 §5, RFC 8656 §12, RFC 7983 demultiplexing).
 *
 * @module
 */

import { STUN_HEADER_LENGTH, STUN_MAGIC_COOKIE } from './constants.js'

/**
 * Whether `data` looks like one STUN message: at least 20 bytes, the first two bits 0,
 * the magic cookie 0x2112A442 at offset 4, and a length field that is a multiple of 4
 * and equals the bytes after the header. Does not decode attributes.
 *
 * @example
 * ```ts
 * import { isChannelData, isStunMessage } from 'peerlink'
 *
 * socket.on('message', (datagram) => {
 *   if (isStunMessage(datagram)) handleStun(datagram)
 *   else if (isChannelData(datagram)) handleChannelData(datagram)
 *   else handleApplicationData(datagram)
 * })
 * ```
 */
export function isStunMessage(data: Uint8Array): boolean {
  if (!(data instanceof Uint8Array) || data.length < STUN_HEADER_LENGTH) return false
  if (((data[0] as number) & 0xc0) !== 0) return false
  const length = ((data[2] as number) << 8) | (data[3] as number)
  if (length % 4 !== 0 || STUN_HEADER_LENGTH + length !== data.length) return false
  const cookie = (((data[4] as number) << 24) | ((data[5] as number) << 16) | ((data[6] as number) << 8) | (data[7] as number)) >>> 0
  return cookie === STUN_MAGIC_COOKIE
}

/**
 * Whether `data` looks like a TURN ChannelData message: first byte 0x40–0x4F (channel
 * numbers 0x4000–0x4FFF, RFC 8656 §12) and at least the 4-byte header.
 *
 * @example
 * ```ts
 * import { decodeChannelData, isChannelData } from 'peerlink'
 *
 * if (isChannelData(datagram)) {
 *   const { channel, data } = decodeChannelData(datagram)   // may still throw StunMalformedError
 * }
 * ```
 */
export function isChannelData(data: Uint8Array): boolean {
  if (!(data instanceof Uint8Array) || data.length < 4) return false
  const first = data[0] as number
  return first >= 0x40 && first <= 0x4f
}
