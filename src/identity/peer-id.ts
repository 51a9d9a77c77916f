/**
 * The PeerId text form: libp2p's Ed25519 PeerId, `12D3KooW…` — base58btc of the
 * identity multihash of the protobuf-encoded public key
 * (`0x00 0x24 | 0x08 0x01 0x12 0x20 | 32-byte key`). Users of libp2p recognise these IDs,
 * and the conversion is done by `@libp2p/peer-id` itself.
 *
 * Parsing is strict: only the canonical base58btc form of an Ed25519 PeerId is
 * accepted. RSA (`Qm…`) and secp256k1 (`16Uiu2…`) PeerIds, CIDs (`bafz…`, `k51…`),
 * non-canonical encodings and anything else throw {@link InvalidPeerIdError}.
 *
 * @module
 */
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey as libp2pPeerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { InvalidKeyError, InvalidPeerIdError } from '../errors.js'
import { PUBLIC_KEY_BYTES, assertBytes } from './key-pair.js'

/**
 * Length in characters of every Ed25519 PeerId text form.
 *
 * @example
 * ```ts
 * import { PEER_ID_LENGTH, createIdentity } from 'peerlink'
 *
 * console.log(createIdentity().peerId.length === PEER_ID_LENGTH)   // true: 52
 * ```
 */
export const PEER_ID_LENGTH = 52
/**
 * Every Ed25519 PeerId text form starts with this prefix.
 *
 * @example
 * ```ts
 * import { PEER_ID_PREFIX, createIdentity } from 'peerlink'
 *
 * console.log(createIdentity().peerId.startsWith(PEER_ID_PREFIX))  // true: '12D3KooW'
 * ```
 */
export const PEER_ID_PREFIX = '12D3KooW'
/**
 * Length in bytes of the binary form (the identity multihash), see {@link peerIdToBytes}.
 *
 * @example
 * ```ts
 * import { PEER_ID_BYTES, createIdentity, peerIdToBytes } from 'peerlink'
 *
 * const bytes = peerIdToBytes(createIdentity().peerId)
 * console.log(bytes.byteLength === PEER_ID_BYTES)   // true: 38
 * ```
 */
export const PEER_ID_BYTES = 38

/** Identity multihash (0x00, length 36) of a protobuf PublicKey { Type: Ed25519 (1), Data: 32 bytes }. */
const MULTIHASH_PREFIX = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20)

/**
 * Returns the PeerId text form (`12D3KooW…`) of a 32-byte Ed25519 public key.
 *
 * @throws {@link InvalidKeyError} when `publicKey` is not a 32-byte `Uint8Array`.
 *
 * @example
 * ```ts
 * import { generateKeyPair, peerIdFromPublicKey } from 'peerlink'
 *
 * const { publicKey } = generateKeyPair()
 * const peerId = peerIdFromPublicKey(publicKey)   // '12D3KooW…'
 * ```
 */
export function peerIdFromPublicKey(publicKey: Uint8Array): string {
  assertBytes(publicKey, PUBLIC_KEY_BYTES, 'public key')
  const key = publicKeyFromRaw(publicKey)
  if (key.type !== 'Ed25519') throw new InvalidKeyError(`expected an Ed25519 public key, got ${key.type}`)
  return libp2pPeerIdFromPublicKey(key).toString()
}

/**
 * Returns (a copy of) the 32-byte Ed25519 public key a PeerId text form names.
 *
 * @throws {@link InvalidPeerIdError} when `text` is not the canonical text form of an Ed25519 PeerId.
 *
 * @example
 * ```ts
 * import { createIdentity, publicKeyFromPeerId } from 'peerlink'
 *
 * const identity = createIdentity()
 * const publicKey = publicKeyFromPeerId(identity.peerId)   // 32 bytes, equal to identity.keyPair.publicKey
 * publicKeyFromPeerId('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N')   // throws InvalidPeerIdError (RSA PeerId)
 * ```
 */
export function publicKeyFromPeerId(text: string): Uint8Array {
  if (typeof text !== 'string') {
    throw new InvalidPeerIdError(`PeerId must be a string, got ${text === null ? 'null' : typeof text}`)
  }
  // Cheap shape checks first: they give precise messages and keep base58 decoding
  // (quadratic in the input length) away from arbitrarily long input.
  if (text.length === 0) throw new InvalidPeerIdError('PeerId is empty')
  if (text.length !== PEER_ID_LENGTH || !text.startsWith(PEER_ID_PREFIX)) {
    throw new InvalidPeerIdError(`${describe(text)} is not an Ed25519 PeerId (expected ${PEER_ID_LENGTH} characters starting with ${PEER_ID_PREFIX})`)
  }
  let parsed
  try {
    parsed = peerIdFromString(text)
  } catch (err) {
    throw new InvalidPeerIdError(`${describe(text)} is not a valid PeerId: ${(err as Error).message}`, { cause: err })
  }
  if (parsed.type !== 'Ed25519' || parsed.publicKey.raw.byteLength !== PUBLIC_KEY_BYTES) {
    throw new InvalidPeerIdError(`${describe(text)} is a ${parsed.type} PeerId; only Ed25519 PeerIds are supported`)
  }
  const publicKey = Uint8Array.from(parsed.publicKey.raw)
  // Reject every non-canonical spelling: the text must be exactly what the key encodes to.
  if (libp2pPeerIdFromPublicKey(publicKeyFromRaw(publicKey)).toString() !== text) {
    throw new InvalidPeerIdError(`${describe(text)} is not the canonical form of an Ed25519 PeerId`)
  }
  return publicKey
}

/**
 * Returns true when `value` is the canonical text form of an Ed25519 PeerId.
 *
 * @example
 * ```ts
 * import { isPeerId } from 'peerlink'
 *
 * const target = process.argv[2]
 * if (!isPeerId(target)) throw new Error(`usage: connect PEERID (got ${target})`)
 * ```
 */
export function isPeerId(value: unknown): value is string {
  if (typeof value !== 'string') return false
  try {
    publicKeyFromPeerId(value)
    return true
  } catch {
    return false
  }
}

/**
 * Returns the 38-byte binary form of a PeerId (the identity multihash that its text
 * form base58-encodes), for compact wire formats.
 *
 * @throws {@link InvalidPeerIdError} when `text` is not an Ed25519 PeerId.
 *
 * @example
 * ```ts
 * import { createIdentity, peerIdFromBytes, peerIdToBytes } from 'peerlink'
 *
 * const { peerId } = createIdentity()
 * const bytes = peerIdToBytes(peerId)             // 38 bytes, for a compact wire format
 * console.log(peerIdFromBytes(bytes) === peerId)  // true
 * ```
 */
export function peerIdToBytes(text: string): Uint8Array {
  const publicKey = publicKeyFromPeerId(text)
  const bytes = new Uint8Array(PEER_ID_BYTES)
  bytes.set(MULTIHASH_PREFIX, 0)
  bytes.set(publicKey, MULTIHASH_PREFIX.byteLength)
  return bytes
}

/**
 * Returns the PeerId text form of a 38-byte binary PeerId (see {@link peerIdToBytes}).
 *
 * @throws {@link InvalidPeerIdError} when `bytes` is not the binary form of an Ed25519 PeerId.
 *
 * @example
 * ```ts
 * import { peerIdFromBytes } from 'peerlink'
 *
 * const peerId = peerIdFromBytes(message.subarray(0, 38))   // throws InvalidPeerIdError if malformed
 * ```
 */
export function peerIdFromBytes(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array)) throw new InvalidPeerIdError('binary PeerId must be a Uint8Array')
  if (bytes.byteLength !== PEER_ID_BYTES) {
    throw new InvalidPeerIdError(`binary PeerId must be ${PEER_ID_BYTES} bytes, got ${bytes.byteLength}`)
  }
  for (let i = 0; i < MULTIHASH_PREFIX.byteLength; i++) {
    if (bytes[i] !== MULTIHASH_PREFIX[i]) {
      throw new InvalidPeerIdError('binary PeerId is not the identity multihash of an Ed25519 public key')
    }
  }
  return peerIdFromPublicKey(bytes.subarray(MULTIHASH_PREFIX.byteLength))
}

/** Quotes (a prefix of) untrusted input for an error message. */
function describe(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text)
}
