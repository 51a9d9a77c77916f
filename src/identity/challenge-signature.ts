/**
 * Proof of key for a server's challenge, shared by the Beacon and the tunnel: the client
 * signs, under a domain tag, `version (1 byte) ‖ nonce (32) ‖ binding (32)` — the
 * server's fresh nonce and a 32-byte channel binding (the SHA-256 of the TLS certificate
 * the client saw, so a man in the middle that terminates TLS gets a signature over *its*
 * certificate, which the real server refuses).
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js'
import type { Identity } from './identity.js'
import { publicKeyFromPeerId } from './peer-id.js'
import { type SignatureTag, sign, verify } from './signature.js'

/** Bytes of a challenge nonce. */
export const CHALLENGE_NONCE_BYTES = 32
/** Bytes of a channel binding. */
export const CHALLENGE_BINDING_BYTES = 32

/** The tags a challenge may be signed under. */
export type ChallengeTag = Extract<SignatureTag, 'peerlink/beacon-auth/v1' | 'peerlink/tunnel-auth/v1'>

/**
 * The signed bytes: `version ‖ nonce ‖ binding`.
 *
 * @throws InvalidArgumentError when the version is not 1–255 or the nonce or binding is not 32 bytes.
 */
export function challengePayload(version: number, nonce: Uint8Array, binding: Uint8Array): Uint8Array {
  if (!Number.isInteger(version) || version < 1 || version > 255) throw new InvalidArgumentError('version must be an integer from 1 to 255')
  if (!(nonce instanceof Uint8Array) || nonce.byteLength !== CHALLENGE_NONCE_BYTES) throw new InvalidArgumentError(`nonce must be ${CHALLENGE_NONCE_BYTES} bytes`)
  if (!(binding instanceof Uint8Array) || binding.byteLength !== CHALLENGE_BINDING_BYTES) {
    throw new InvalidArgumentError('the binding must be 32 bytes (the SHA-256 of the DER certificate, or zeros)')
  }
  const out = new Uint8Array(1 + CHALLENGE_NONCE_BYTES + CHALLENGE_BINDING_BYTES)
  out[0] = version
  out.set(nonce, 1)
  out.set(binding, 1 + CHALLENGE_NONCE_BYTES)
  return out
}

/** Signs a challenge with the identity's key under `tag`. */
export function signChallenge(identity: Identity, tag: ChallengeTag, version: number, nonce: Uint8Array, binding: Uint8Array): Uint8Array {
  return sign(identity.keyPair.secretKey, tag, challengePayload(version, nonce, binding))
}

/** True only when `signature` was made under `tag` by the key of `peerId` over this version, nonce and binding. */
export function verifyChallenge(peerId: string, tag: ChallengeTag, signature: Uint8Array, version: number, nonce: Uint8Array, binding: Uint8Array): boolean {
  let publicKey: Uint8Array
  try {
    publicKey = publicKeyFromPeerId(peerId)
  } catch {
    return false
  }
  return verify(publicKey, tag, challengePayload(version, nonce, binding), signature)
}
