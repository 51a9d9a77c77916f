/**
 * TURN ChannelData messages (RFC 8656 §12.4): a 4-byte header (channel number, length)
 * followed by application data, padded to a multiple of 4 over TCP/TLS.
 *
 * @module
 */

import { InvalidArgumentError, StunMalformedError } from '../errors.js'

/** A decoded ChannelData message. */
export interface ChannelData {
  /** Channel number, 0x4000–0x4FFF. */
  channel: number
  /** Application data (a copy). */
  data: Uint8Array
}

/** Transport a ChannelData message travels over; decides the padding rules. */
export type ChannelDataTransport = 'udp' | 'tcp'

/** Options of {@link encodeChannelData}. */
export interface EncodeChannelDataOptions {
  /**
   * Pad to a multiple of 4 bytes. RFC 8656 §12.5: padding MUST be added over TCP/TLS
   * and MAY be over UDP.
   * @default false
   */
  pad?: boolean
}

/** Options of {@link decodeChannelData}. */
export interface DecodeChannelDataOptions {
  /**
   * `'tcp'` requires the frame to be exactly padded to 4 bytes; `'udp'` accepts the data
   * with or without up to 3 padding bytes.
   * @default 'udp'
   */
  transport?: ChannelDataTransport
}

/**
 * Lowest valid channel number (RFC 8656 §12).
 *
 * @example
 * ```ts
 * import { MAX_CHANNEL_NUMBER, MIN_CHANNEL_NUMBER } from 'peerlink'
 *
 * let next = MIN_CHANNEL_NUMBER   // 0x4000
 * const allocateChannel = () => (next <= MAX_CHANNEL_NUMBER ? next++ : undefined)
 * ```
 */
export const MIN_CHANNEL_NUMBER = 0x4000
/**
 * Highest valid channel number (RFC 8656 §12).
 *
 * @example
 * ```ts
 * import { MAX_CHANNEL_NUMBER, MIN_CHANNEL_NUMBER } from 'peerlink'
 *
 * const channels = MAX_CHANNEL_NUMBER - MIN_CHANNEL_NUMBER + 1   // 4096 channels per allocation
 * ```
 */
export const MAX_CHANNEL_NUMBER = 0x4fff

/**
 * Whether `n` is a valid channel number, 0x4000–0x4FFF (RFC 8656 §12).
 *
 * @example
 * ```ts
 * import { isValidChannelNumber } from 'peerlink'
 *
 * isValidChannelNumber(0x4000)   // true
 * isValidChannelNumber(0x5000)   // false (RFC 8656 narrowed RFC 5766's range)
 * ```
 */
export function isValidChannelNumber(n: number): boolean {
  return Number.isInteger(n) && n >= MIN_CHANNEL_NUMBER && n <= MAX_CHANNEL_NUMBER
}

function padded(n: number): number {
  return (n + 3) & ~3
}

/**
 * Encodes a ChannelData message.
 *
 * @throws InvalidArgumentError on an invalid channel number or data over 65535 bytes.
 *
 * @example
 * ```ts
 * import { encodeChannelData } from 'peerlink'
 *
 * const data = new TextEncoder().encode('hello')
 * const overUdp = encodeChannelData(0x4001, data)                 // 9 bytes
 * const overTcp = encodeChannelData(0x4001, data, { pad: true })  // 12 bytes, padded to 4
 * ```
 */
export function encodeChannelData(channel: number, data: Uint8Array, options: EncodeChannelDataOptions = {}): Uint8Array {
  if (!isValidChannelNumber(channel)) throw new InvalidArgumentError(`Invalid TURN channel number ${String(channel)}`)
  if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('ChannelData data must be a Uint8Array')
  if (data.length > 0xffff) throw new InvalidArgumentError(`ChannelData data too long (${data.length} bytes)`)
  const out = new Uint8Array(4 + (options.pad === true ? padded(data.length) : data.length))
  const view = new DataView(out.buffer)
  view.setUint16(0, channel)
  view.setUint16(2, data.length)
  out.set(data, 4)
  return out
}

/**
 * Decodes one ChannelData message that fills `message`.
 *
 * @throws StunMalformedError if the header is short, the channel number is outside
 * 0x4000–0x4FFF, or the length does not fit the bytes (RFC 8656 §12.5).
 *
 * @example
 * ```ts
 * import { decodeChannelData, encodeChannelData } from 'peerlink'
 *
 * const frame = encodeChannelData(0x4001, Uint8Array.of(1, 2, 3), { pad: true })
 * const { channel, data } = decodeChannelData(frame, { transport: 'tcp' })   // 0x4001, [1, 2, 3]
 * ```
 */
export function decodeChannelData(message: Uint8Array, options: DecodeChannelDataOptions = {}): ChannelData {
  if (!(message instanceof Uint8Array)) throw new StunMalformedError('ChannelData input must be a Uint8Array')
  if (message.length < 4) throw new StunMalformedError('ChannelData shorter than its header')
  const channel = ((message[0] as number) << 8) | (message[1] as number)
  const length = ((message[2] as number) << 8) | (message[3] as number)
  if (!isValidChannelNumber(channel)) throw new StunMalformedError(`Invalid channel number 0x${channel.toString(16)}`)
  if (options.transport === 'tcp') {
    if (message.length !== 4 + padded(length)) {
      throw new StunMalformedError(`ChannelData over TCP must be ${4 + padded(length)} bytes, got ${message.length}`)
    }
  } else if (message.length < 4 + length || message.length > 4 + padded(length)) {
    // RFC 8656 §12.5: a datagram too short for the claimed length is discarded.
    throw new StunMalformedError(`ChannelData length ${length} does not fit ${message.length - 4} bytes`)
  }
  return { channel, data: new Uint8Array(message.subarray(4, 4 + length)) }
}

/** Options of {@link channelDataFrameLength} and `streamFrameLength`. */
export interface ChannelDataFramingOptions {
  /**
   * Also accept channel numbers 0x5000–0x7FFF: RFC 5766 allowed 0x4000–0x7FFF, RFC 8656
   * §12 narrowed it to 0x4000–0x4FFF, and coturn's clients (`turnutils_uclient`) still
   * pick numbers from the old range. Servers that want to serve them set this.
   * @default false
   */
  legacyChannelNumbers?: boolean
}

/**
 * Length of the ChannelData frame (header, data and padding to 4 bytes) that starts a
 * TCP byte stream, or `undefined` if fewer than 4 bytes are buffered (RFC 8656 §12.5).
 *
 * @throws StunMalformedError if the channel number is invalid.
 *
 * @example
 * ```ts
 * import { channelDataFrameLength, encodeChannelData } from 'peerlink'
 *
 * const frame = encodeChannelData(0x4001, Uint8Array.of(1, 2, 3), { pad: true })
 * channelDataFrameLength(frame.subarray(0, 2))   // undefined: need 4 bytes
 * channelDataFrameLength(frame.subarray(0, 4))   // 8: cut the stream there
 * ```
 */
export function channelDataFrameLength(buffered: Uint8Array, options: ChannelDataFramingOptions = {}): number | undefined {
  if (buffered.length < 4) return undefined
  const channel = ((buffered[0] as number) << 8) | (buffered[1] as number)
  const valid = options.legacyChannelNumbers === true ? channel >= MIN_CHANNEL_NUMBER && channel <= 0x7fff : isValidChannelNumber(channel)
  if (!valid) throw new StunMalformedError(`Invalid channel number 0x${channel.toString(16)}`)
  return 4 + padded(((buffered[2] as number) << 8) | (buffered[3] as number))
}
