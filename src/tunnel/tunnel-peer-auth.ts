/**
 * A listening peer's proof of its key: an Ed25519 signature with the tunnel's tag
 * `peerlink/tunnel-auth/v1` over `version (1) ‖ nonce (32) ‖ binding (32) ‖
 * "peer-listen"` — the device login's payload with a suffix. The suffix makes the two
 * messages different lengths, so a device login's signature can never pass as a
 * listener's, nor the reverse (the signed bytes carry the whole message).
 *
 * @module
 */
import type { Identity } from '../identity/identity.js'
import { publicKeyFromPeerId } from '../identity/peer-id.js'
import { sign, verify } from '../identity/signature.js'
import { tunnelAuthPayload } from './tunnel-auth.js'

const SUFFIX = new TextEncoder().encode('peer-listen')

/**
 * The bytes a listening peer signs.
 *
 * @throws `InvalidArgumentError` when the nonce or the binding is not 32 bytes.
 */
export function tunnelPeerListenPayload(version: number, nonce: Uint8Array, binding: Uint8Array): Uint8Array {
  const base = tunnelAuthPayload(version, nonce, binding)
  const out = new Uint8Array(base.byteLength + SUFFIX.byteLength)
  out.set(base)
  out.set(SUFFIX, base.byteLength)
  return out
}

/** Signs a listen challenge (see the module notes). */
export function signTunnelPeerListen(identity: Identity, version: number, nonce: Uint8Array, binding: Uint8Array): Uint8Array {
  return sign(identity.keyPair.secretKey, 'peerlink/tunnel-auth/v1', tunnelPeerListenPayload(version, nonce, binding))
}

/** True only when `signature` was made by the key of `peerId` over this listen challenge. */
export function verifyTunnelPeerListen(peerId: string, signature: Uint8Array, version: number, nonce: Uint8Array, binding: Uint8Array): boolean {
  let publicKey: Uint8Array
  try {
    publicKey = publicKeyFromPeerId(peerId)
  } catch {
    return false
  }
  return verify(publicKey, 'peerlink/tunnel-auth/v1', tunnelPeerListenPayload(version, nonce, binding), signature)
}
