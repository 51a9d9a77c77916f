/**
 * A peer's identity: its Ed25519 key pair and the PeerId derived from it.
 *
 * @module
 */
import { InvalidKeyError } from '../errors.js'
import { type KeyPair, bytesEqual, generateKeyPair, keyPairFromSeed, keyPairFromSecretKey } from './key-pair.js'
import { peerIdFromPublicKey } from './peer-id.js'

/** A peer's identity: the key pair that proves it and the PeerId that names it. */
export interface Identity {
  /** The Ed25519 key pair (sodium format; pass it to the secure channel as-is). */
  readonly keyPair: KeyPair
  /** The PeerId text form (`12D3KooW…`) of `keyPair.publicKey`. */
  readonly peerId: string
}

/**
 * Creates a new random identity in memory (nothing is written to disk).
 *
 * @example
 * ```ts
 * import { createIdentity, saveIdentity } from 'peerlink'
 *
 * const identity = createIdentity()
 * console.log(identity.peerId)                      // 12D3KooW…, new on every call
 * await saveIdentity('./peer.key', identity)        // keep it (mode 0600)
 * ```
 */
export function createIdentity(): Identity {
  return freeze(generateKeyPair())
}

/**
 * Returns the identity of a 32-byte seed (deterministic; useful in tests).
 *
 * @throws {@link InvalidKeyError} when `seed` is not 32 bytes.
 *
 * @example
 * ```ts
 * import { identityFromSeed } from 'peerlink'
 *
 * // The same seed always gives the same PeerId: handy for fixed test identities.
 * const alice = identityFromSeed(new Uint8Array(32).fill(1))
 * const again = identityFromSeed(new Uint8Array(32).fill(1))
 * console.log(alice.peerId === again.peerId)        // true
 * ```
 */
export function identityFromSeed(seed: Uint8Array): Identity {
  return freeze(keyPairFromSeed(seed))
}

/**
 * Returns the identity of a key pair after checking that its halves belong together.
 *
 * @throws {@link InvalidKeyError} when the key pair is malformed or inconsistent.
 *
 * @example
 * ```ts
 * import { generateKeyPair, identityFromKeyPair } from 'peerlink'
 *
 * const keyPair = generateKeyPair()
 * const identity = identityFromKeyPair(keyPair)     // throws InvalidKeyError if the halves do not match
 * console.log(identity.peerId)
 * ```
 */
export function identityFromKeyPair(keyPair: KeyPair): Identity {
  const checked = keyPairFromSecretKey(keyPair.secretKey)
  if (!(keyPair.publicKey instanceof Uint8Array) || !bytesEqual(checked.publicKey, keyPair.publicKey)) {
    throw new InvalidKeyError('key pair is inconsistent: publicKey is not the public key of secretKey')
  }
  return freeze(checked)
}

function freeze(keyPair: KeyPair): Identity {
  return Object.freeze({ keyPair: Object.freeze(keyPair), peerId: peerIdFromPublicKey(keyPair.publicKey) })
}
