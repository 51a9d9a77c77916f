/**
 * The TURN data path's STUN messages, read and written without the general codec:
 * Send indications from clients (RFC 8656 §10.2) are scanned for XOR-PEER-ADDRESS and
 * DATA only, and Data indications to clients (§10.3) are written straight into one buffer
 * with the relayed bytes.
 *
 * @module
 */

import { randomBytes } from 'node:crypto'
import { formatIp } from '../../stun/address.js'
import { STUN_ATTRIBUTE_CODES, attributeNameOf } from '../../stun/attribute-type.js'
import { STUN_HEADER_LENGTH, STUN_MAGIC_COOKIE } from '../../stun/constants.js'
import { encodeMessageType } from '../../stun/message-type.js'
import type { AddressFamily } from '../../stun/address.js'

/** Message type field of a Send indication (0x0016). */
export const SEND_INDICATION_TYPE = encodeMessageType('send', 'indication')
/** Message type field of a Data indication (0x0017). */
export const DATA_INDICATION_TYPE = encodeMessageType('data', 'indication')

const XOR_PEER_ADDRESS = STUN_ATTRIBUTE_CODES['xor-peer-address']
const DATA = STUN_ATTRIBUTE_CODES.data
const MESSAGE_INTEGRITY = STUN_ATTRIBUTE_CODES['message-integrity']
const MESSAGE_INTEGRITY_SHA256 = STUN_ATTRIBUTE_CODES['message-integrity-sha256']
const FINGERPRINT = STUN_ATTRIBUTE_CODES.fingerprint
const COOKIE_HIGH = STUN_MAGIC_COOKIE >>> 16

/** What {@link parseSendIndication} found (one reused object: read it before the next call). */
export interface SendIndicationView {
  /** Peer IP (text). */
  host: string
  /** Peer port. */
  port: number
  /** Peer address family. */
  family: AddressFamily
  /** Offset of the DATA value in the message. */
  dataOffset: number
  /** Length of the DATA value. */
  dataLength: number
}

const view: SendIndicationView = { host: '', port: 0, family: 'IPv4', dataOffset: 0, dataLength: 0 }

/**
 * Reads a Send indication (the caller has checked the header with `isStunMessage` and the
 * type): returns the shared view, or `undefined` when the indication must be discarded
 * (RFC 8656 §10.2: no XOR-PEER-ADDRESS or DATA; RFC 8489 §6.3.2: unknown
 * comprehension-required attributes; malformed lengths or addresses; port 0).
 * FINGERPRINT is not checked: Send indications carry no authentication anyway.
 */
export function parseSendIndication(message: Uint8Array): SendIndicationView | undefined {
  const end = message.length
  let peerAt = -1
  let dataAt = -1
  let dataLength = 0
  for (let at = STUN_HEADER_LENGTH; at + 4 <= end; ) {
    const code = ((message[at] as number) << 8) | (message[at + 1] as number)
    const length = ((message[at + 2] as number) << 8) | (message[at + 3] as number)
    if (at + 4 + length > end) return undefined
    if (code === XOR_PEER_ADDRESS) {
      if (peerAt < 0) peerAt = at
    } else if (code === DATA) {
      if (dataAt < 0) {
        dataAt = at + 4
        dataLength = length
      }
    } else if (code === MESSAGE_INTEGRITY || code === MESSAGE_INTEGRITY_SHA256 || code === FINGERPRINT) {
      break // RFC 8489 §14.5–§14.7: what follows is ignored
    } else if (code < 0x8000 && attributeNameOf(code) === undefined) {
      return undefined
    }
    at += 4 + ((length + 3) & ~3)
  }
  if (peerAt < 0 || dataAt < 0) return undefined
  const length = ((message[peerAt + 2] as number) << 8) | (message[peerAt + 3] as number)
  const family = message[peerAt + 5] as number
  const port = (((message[peerAt + 6] as number) << 8) | (message[peerAt + 7] as number)) ^ COOKIE_HIGH
  if (port === 0) return undefined
  const a = peerAt + 8
  if (family === 0x01 && length === 8) {
    // RFC 8489 §14.2: the IPv4 address XOR the magic cookie 0x2112A442.
    view.host = `${(message[a] as number) ^ 0x21}.${(message[a + 1] as number) ^ 0x12}.${(message[a + 2] as number) ^ 0xa4}.${(message[a + 3] as number) ^ 0x42}`
    view.family = 'IPv4'
  } else if (family === 0x02 && length === 20) {
    // RFC 8489 §14.2: the IPv6 address XOR the cookie ‖ transaction ID (bytes 4–19 of the header).
    const ip = new Uint8Array(16)
    for (let i = 0; i < 16; i++) ip[i] = (message[a + i] as number) ^ (message[4 + i] as number)
    view.host = formatIp(ip)
    view.family = 'IPv6'
  } else {
    return undefined
  }
  view.port = port
  view.dataOffset = dataAt
  view.dataLength = dataLength
  return view
}

// Data indications' transaction IDs: 8 random bytes per process and a 32-bit counter.
const tidPrefix = randomBytes(8)
let tidCounter = 0

/**
 * A Data indication (RFC 8656 §10.3) carrying `data` from a peer: header,
 * XOR-PEER-ADDRESS of the peer, DATA and its padding, in one new buffer (one copy of the
 * data; cheaper to send than a header and the data as two buffers).
 *
 * @param ip - the peer IP's 4 or 16 bytes.
 */
export function dataIndication(ip: Uint8Array, port: number, data: Uint8Array): Buffer {
  const addressLength = ip.length === 4 ? 8 : 20
  const at = STUN_HEADER_LENGTH + 4 + addressLength // the DATA attribute header
  const padded = (data.length + 3) & ~3
  const message = Buffer.allocUnsafe(at + 4 + padded)
  message.writeUInt16BE(DATA_INDICATION_TYPE, 0)
  message.writeUInt16BE(at + 4 + padded - STUN_HEADER_LENGTH, 2)
  message.writeUInt32BE(STUN_MAGIC_COOKIE, 4)
  tidPrefix.copy(message, 8)
  tidCounter = (tidCounter + 1) >>> 0
  message.writeUInt32BE(tidCounter, 16)
  message.writeUInt16BE(XOR_PEER_ADDRESS, 20)
  message.writeUInt16BE(addressLength, 22)
  message[24] = 0
  message[25] = ip.length === 4 ? 0x01 : 0x02
  message.writeUInt16BE(port ^ COOKIE_HIGH, 26)
  for (let i = 0; i < ip.length; i++) message[28 + i] = (ip[i] as number) ^ (message[4 + i] as number)
  message.writeUInt16BE(DATA, at)
  message.writeUInt16BE(data.length, at + 2)
  message.set(data, at + 4)
  message.fill(0, at + 4 + data.length)
  return message
}
