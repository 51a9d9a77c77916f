/**
 * Domain-separated Ed25519 signatures. Every signature peerlink makes is bound to a
 * registered tag naming its purpose, so a signature made for one purpose (say, a
 * signalling offer) can never be replayed as another (say, a tunnel login).
 *
 * The signed bytes are `len(tag) (1 byte) || tag (ASCII) || message`. The length
 * prefix makes the encoding injective: no (tag, message) pair encodes to the same bytes
 * as a different pair, whatever the messages contain.
 *
 * @module
 */
import sodium from 'sodium-universal'
import { InvalidArgumentError, InvalidSignatureError } from '../errors.js'
import { PUBLIC_KEY_BYTES, SECRET_KEY_BYTES, assertBytes } from './key-pair.js'

/**
 * Length in bytes of an Ed25519 signature.
 *
 * @example
 * ```ts
 * import { SIGNATURE_BYTES, createIdentity, sign } from 'peerlink'
 *
 * const { keyPair } = createIdentity()
 * const signature = sign(keyPair.secretKey, 'peerlink/tunnel-auth/v1', new TextEncoder().encode('hello'))
 * console.log(signature.byteLength === SIGNATURE_BYTES)   // true: 64
 * ```
 */
export const SIGNATURE_BYTES = 64

/**
 * The registered signature purposes, `peerlink/<purpose>/v<version>`. Add a tag here
 * (never reuse or rename one) when a new message type needs signing.
 */
export type SignatureTag =
  | 'peerlink/beacon-auth/v1'
  | 'peerlink/signal-offer/v1'
  | 'peerlink/signal-answer/v1'
  | 'peerlink/signal-candidate/v1'
  | 'peerlink/tunnel-auth/v1'
  | 'peerlink/session-binding/v1'

/**
 * Every {@link SignatureTag}, for run-time checks.
 *
 * @example
 * ```ts
 * import { SIGNATURE_TAGS, type SignatureTag } from 'peerlink'
 *
 * function isSignatureTag(value: string): value is SignatureTag {
 *   return (SIGNATURE_TAGS as readonly string[]).includes(value)
 * }
 * ```
 */
export const SIGNATURE_TAGS: readonly SignatureTag[] = Object.freeze([
  'peerlink/beacon-auth/v1',
  'peerlink/signal-offer/v1',
  'peerlink/signal-answer/v1',
  'peerlink/signal-candidate/v1',
  'peerlink/tunnel-auth/v1',
  'peerlink/session-binding/v1',
])

const TAG_PATTERN = /^peerlink\/[a-z0-9-]+\/v[1-9][0-9]*$/
const encoder = new TextEncoder()

/**
 * Signs `message` for the purpose `tag` with a 64-byte sodium secret key.
 *
 * @returns the 64-byte detached signature.
 * @throws `InvalidKeyError` when `secretKey` is not 64 bytes.
 * @throws {@link InvalidArgumentError} when `tag` is not registered or `message` is not bytes.
 *
 * @example
 * ```ts
 * import { createIdentity, sign, verify } from 'peerlink'
 *
 * const { keyPair } = createIdentity()
 * const message = new TextEncoder().encode('login as alice')
 * const signature = sign(keyPair.secretKey, 'peerlink/tunnel-auth/v1', message)
 * verify(keyPair.publicKey, 'peerlink/tunnel-auth/v1', message, signature)    // true
 * verify(keyPair.publicKey, 'peerlink/signal-offer/v1', message, signature)   // false: another purpose
 * ```
 */
export function sign(secretKey: Uint8Array, tag: SignatureTag, message: Uint8Array): Uint8Array {
  assertBytes(secretKey, SECRET_KEY_BYTES, 'secret key')
  const signature = new Uint8Array(SIGNATURE_BYTES)
  sodium.crypto_sign_detached(signature, signedBytes(tag, message), secretKey)
  return signature
}

/**
 * Returns true when `signature` is a valid signature of `message` for the purpose
 * `tag` by the owner of `publicKey`. A signature of the wrong length is simply invalid.
 *
 * @throws `InvalidKeyError` when `publicKey` is not 32 bytes.
 * @throws {@link InvalidArgumentError} when `tag` is not registered or `message`/`signature` are not bytes.
 *
 * @example
 * ```ts
 * import { publicKeyFromPeerId, verify } from 'peerlink'
 *
 * const ok = verify(publicKeyFromPeerId(senderPeerId), 'peerlink/signal-offer/v1', offerBytes, signature)
 * if (!ok) throw new Error('forged offer: ignore it')
 * ```
 */
export function verify(publicKey: Uint8Array, tag: SignatureTag, message: Uint8Array, signature: Uint8Array): boolean {
  assertBytes(publicKey, PUBLIC_KEY_BYTES, 'public key')
  const bytes = signedBytes(tag, message)
  if (!(signature instanceof Uint8Array)) throw new InvalidArgumentError('signature must be a Uint8Array')
  if (signature.byteLength !== SIGNATURE_BYTES) return false
  return sodium.crypto_sign_verify_detached(signature, bytes, publicKey)
}

/**
 * Like {@link verify}, but throws instead of returning false.
 *
 * @throws {@link InvalidSignatureError} when the signature does not verify.
 *
 * @example
 * ```ts
 * import { assertValidSignature, publicKeyFromPeerId } from 'peerlink'
 *
 * // Throws InvalidSignatureError (code 'ERR_INVALID_SIGNATURE') when it does not verify.
 * assertValidSignature(publicKeyFromPeerId(senderPeerId), 'peerlink/signal-answer/v1', answerBytes, signature)
 * ```
 */
export function assertValidSignature(publicKey: Uint8Array, tag: SignatureTag, message: Uint8Array, signature: Uint8Array): void {
  if (!verify(publicKey, tag, message, signature)) {
    throw new InvalidSignatureError(`Signature does not verify for ${tag}`)
  }
}

/**
 * The exact bytes that are signed for (`tag`, `message`):
 * `len(tag) || tag || message`.
 *
 * @throws {@link InvalidArgumentError} when `tag` is not registered or `message` is not bytes.
 *
 * @example
 * ```ts
 * import { signedBytes } from 'peerlink'
 *
 * const bytes = signedBytes('peerlink/tunnel-auth/v1', Uint8Array.of(1, 2, 3))
 * // bytes = [23, ...'peerlink/tunnel-auth/v1', 1, 2, 3]: what sign() signs
 * ```
 */
export function signedBytes(tag: SignatureTag, message: Uint8Array): Uint8Array {
  if (typeof tag !== 'string' || !SIGNATURE_TAGS.includes(tag) || !TAG_PATTERN.test(tag)) {
    throw new InvalidArgumentError(`unknown signature tag ${JSON.stringify(tag)}; registered tags: ${SIGNATURE_TAGS.join(', ')}`)
  }
  if (!(message instanceof Uint8Array)) throw new InvalidArgumentError('message must be a Uint8Array')
  const tagBytes = encoder.encode(tag)
  const out = new Uint8Array(1 + tagBytes.byteLength + message.byteLength)
  out[0] = tagBytes.byteLength
  out.set(tagBytes, 1)
  out.set(message, 1 + tagBytes.byteLength)
  return out
}
