/**
 * Ed25519 key pairs in libsodium's format, the format `@hyperswarm/secret-stream`
 * takes for the Noise handshake: a 32-byte public key and a 64-byte secret key that
 * is the 32-byte seed (RFC 8032's "private key") followed by the public key.
 *
 * Implemented with `sodium-universal` (libsodium through `sodium-native`) rather than
 * `node:crypto`: it is the library the secure channel already uses for these very keys,
 * it speaks the 64-byte seed||publicKey form natively (Node's `KeyObject` needs PKCS#8 /
 * SPKI DER wrapping and has no way to export the 64-byte form), it is synchronous, and
 * libsodium's verification is strict (it rejects non-canonical signatures and
 * small-order public keys).
 *
 * @module
 */
import sodium from 'sodium-universal'
import { InvalidKeyError } from '../errors.js'

/**
 * Length in bytes of an Ed25519 public key.
 *
 * @example
 * ```ts
 * import { PUBLIC_KEY_BYTES, publicKeyFromPeerId } from 'peerlink'
 *
 * const key = publicKeyFromPeerId(remotePeerId)
 * console.log(key.byteLength === PUBLIC_KEY_BYTES)  // true: 32
 * ```
 */
export const PUBLIC_KEY_BYTES = 32
/**
 * Length in bytes of a secret key in sodium format (seed || public key).
 *
 * @example
 * ```ts
 * import { SECRET_KEY_BYTES, generateKeyPair } from 'peerlink'
 *
 * const { secretKey } = generateKeyPair()
 * console.log(secretKey.byteLength === SECRET_KEY_BYTES)   // true: 64 (seed || public key)
 * ```
 */
export const SECRET_KEY_BYTES = 64
/**
 * Length in bytes of an Ed25519 seed (RFC 8032 private key).
 *
 * @example
 * ```ts
 * import { SEED_BYTES, identityFromSeed } from 'peerlink'
 * import { randomBytes } from 'node:crypto'
 *
 * const identity = identityFromSeed(randomBytes(SEED_BYTES))
 * ```
 */
export const SEED_BYTES = 32

/**
 * An Ed25519 key pair in sodium format, accepted as-is by `@hyperswarm/secret-stream`.
 */
export interface KeyPair {
  /** The 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array
  /** 64 bytes: the 32-byte seed followed by {@link KeyPair.publicKey}. Keep it secret. */
  readonly secretKey: Uint8Array
}

/**
 * Generates a fresh random Ed25519 key pair.
 *
 * @example
 * ```ts
 * import { generateKeyPair, peerIdFromPublicKey } from 'peerlink'
 *
 * const { publicKey, secretKey } = generateKeyPair()   // 32 and 64 bytes
 * console.log(peerIdFromPublicKey(publicKey))          // 12D3KooW…
 * ```
 */
export function generateKeyPair(): KeyPair {
  const publicKey = new Uint8Array(PUBLIC_KEY_BYTES)
  const secretKey = new Uint8Array(SECRET_KEY_BYTES)
  sodium.crypto_sign_keypair(publicKey, secretKey)
  return { publicKey, secretKey }
}

/**
 * Derives the Ed25519 key pair of a 32-byte seed (deterministic).
 *
 * @throws {@link InvalidKeyError} when `seed` is not a 32-byte `Uint8Array`.
 *
 * @example
 * ```ts
 * import { keyPairFromSeed } from 'peerlink'
 *
 * const seed = new Uint8Array(32).fill(7)
 * const a = keyPairFromSeed(seed)
 * const b = keyPairFromSeed(seed)
 * console.log(Buffer.from(a.publicKey).equals(b.publicKey))   // true: deterministic
 * ```
 */
export function keyPairFromSeed(seed: Uint8Array): KeyPair {
  assertBytes(seed, SEED_BYTES, 'seed')
  const publicKey = new Uint8Array(PUBLIC_KEY_BYTES)
  const secretKey = new Uint8Array(SECRET_KEY_BYTES)
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed)
  return { publicKey, secretKey }
}

/**
 * Rebuilds a key pair from a 64-byte sodium secret key, checking that its second
 * half really is the public key of its seed.
 *
 * @throws {@link InvalidKeyError} when `secretKey` has the wrong length or is inconsistent.
 *
 * @example
 * ```ts
 * import { generateKeyPair, keyPairFromSecretKey } from 'peerlink'
 *
 * const { secretKey } = generateKeyPair()
 * const pair = keyPairFromSecretKey(secretKey)   // recovers publicKey, checks consistency
 * ```
 */
export function keyPairFromSecretKey(secretKey: Uint8Array): KeyPair {
  assertBytes(secretKey, SECRET_KEY_BYTES, 'secret key')
  const pair = keyPairFromSeed(secretKey.subarray(0, SEED_BYTES))
  if (!bytesEqual(pair.secretKey, secretKey)) {
    throw new InvalidKeyError('secret key is inconsistent: its last 32 bytes are not the public key of its seed')
  }
  return pair
}

/**
 * Returns a copy of the 32-byte seed inside a 64-byte sodium secret key.
 *
 * @throws {@link InvalidKeyError} when `secretKey` is not 64 bytes.
 *
 * @example
 * ```ts
 * import { generateKeyPair, keyPairFromSeed, seedFromSecretKey } from 'peerlink'
 *
 * const { secretKey } = generateKeyPair()
 * const seed = seedFromSecretKey(secretKey)      // 32 bytes: store this, derive the rest
 * const same = keyPairFromSeed(seed)
 * ```
 */
export function seedFromSecretKey(secretKey: Uint8Array): Uint8Array {
  assertBytes(secretKey, SECRET_KEY_BYTES, 'secret key')
  return secretKey.slice(0, SEED_BYTES)
}

/**
 * Throws {@link InvalidKeyError} unless `value` is a `Uint8Array` of exactly `length` bytes.
 *
 * @param what - how to name the value in the message, e.g. `'public key'`.
 *
 * @example
 * ```ts
 * import { PUBLIC_KEY_BYTES, assertBytes } from 'peerlink'
 *
 * function checkKey(key: unknown): Uint8Array {
 *   assertBytes(key, PUBLIC_KEY_BYTES, 'public key')   // throws InvalidKeyError otherwise
 *   return key                                          // narrowed to Uint8Array
 * }
 * ```
 */
export function assertBytes(value: unknown, length: number, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new InvalidKeyError(`${what} must be a Uint8Array of ${length} bytes, got ${describe(value)}`)
  }
  if (value.byteLength !== length) {
    throw new InvalidKeyError(`${what} must be ${length} bytes, got ${value.byteLength}`)
  }
}

/**
 * Constant-shape byte comparison (no early exit on the first difference).
 *
 * @example
 * ```ts
 * import { bytesEqual, publicKeyFromPeerId } from 'peerlink'
 *
 * const expected = publicKeyFromPeerId(remotePeerId)
 * if (!bytesEqual(expected, receivedPublicKey)) throw new Error('not the expected peer')
 * ```
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  let diff = 0
  for (let i = 0; i < a.byteLength; i++) diff |= a[i]! ^ b[i]!
  return diff === 0
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object'
  return typeof value
}
