/**
 * The public key a remote PeerId names, decoded once: `publicKeyFromPeerId` (libp2p's
 * parser plus a canonical re-encoding check) costs about half a millisecond, and a peer
 * decodes the same few PeerIds again and again (every attempt, on both sides).
 *
 * @module
 */
import { publicKeyFromPeerId } from '../identity/peer-id.js'

/** PeerIds remembered (a small bound: a flood of new PeerIds only evicts). */
const MAX_ENTRIES = 256
const keys = new Map<string, Uint8Array>()

/**
 * The 32-byte Ed25519 public key of `peerId` (a copy; cached).
 *
 * @throws `InvalidPeerIdError` when `peerId` is not the canonical text form of an Ed25519 PeerId.
 */
export function remoteKeyOf(peerId: string): Uint8Array {
  let key = keys.get(peerId)
  if (key === undefined) {
    // A new PeerId is decoded on the connect path (every cold connect brings one to the
    // listener): the fast decoder below, or libp2p's parser (which also reports why a
    // string is not a PeerId).
    key = canonicalPublicKey(peerId) ?? publicKeyFromPeerId(peerId)
    if (keys.size >= MAX_ENTRIES) keys.delete(keys.keys().next().value as string)
    keys.set(peerId, key)
  }
  return Uint8Array.from(key)
}

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const BASE58_DIGIT = new Int8Array(128).fill(-1)
for (let i = 0; i < BASE58.length; i++) BASE58_DIGIT[BASE58.charCodeAt(i)] = i
/** An Ed25519 PeerId's bytes: the identity multihash (0x00, 36 bytes) of the key's protobuf (type 1, 32-byte key). */
const PEER_ID_BYTES = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20)
const PEER_ID_LENGTH = 38

/**
 * The key of an Ed25519 PeerId in its canonical text form (base58btc of the identity
 * multihash, as libp2p writes it), decoded in a few microseconds (libp2p's parser and
 * its canonical re-encoding take ≈ 70 µs); `undefined` for anything else, which
 * {@link publicKeyFromPeerId} then judges.
 */
function canonicalPublicKey(text: string): Uint8Array | undefined {
  if (text.length !== 52 || text.charCodeAt(0) !== 0x31 || text.charCodeAt(1) === 0x31) return undefined
  const bytes = new Uint8Array(PEER_ID_LENGTH)
  // The leading '1' is the leading zero byte; the other 51 digits are the remaining bytes.
  for (let i = 1; i < text.length; i++) {
    const code = text.charCodeAt(i)
    let carry = code < 128 ? BASE58_DIGIT[code]! : -1
    if (carry < 0) return undefined
    for (let j = PEER_ID_LENGTH - 1; j >= 0; j--) {
      carry += bytes[j]! * 58
      bytes[j] = carry & 0xff
      carry >>= 8
    }
    if (carry !== 0) return undefined
  }
  for (let i = 0; i < PEER_ID_BYTES.length; i++) if (bytes[i] !== PEER_ID_BYTES[i]) return undefined
  // Canonical: exactly what these bytes encode to (no other spelling is accepted).
  return base58(bytes) === text ? bytes.slice(PEER_ID_BYTES.length) : undefined
}

function base58(bytes: Uint8Array): string {
  let zeros = 0
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++
  const digits: number[] = []
  for (let i = zeros; i < bytes.length; i++) {
    let carry = bytes[i]!
    for (let j = 0; j < digits.length; j++) {
      carry += digits[j]! * 256
      digits[j] = carry % 58
      carry = (carry / 58) | 0
    }
    while (carry > 0) {
      digits.push(carry % 58)
      carry = (carry / 58) | 0
    }
  }
  let out = '1'.repeat(zeros)
  for (let i = digits.length - 1; i >= 0; i--) out += BASE58[digits[i]!]
  return out
}
