/**
 * The tunnel's proofs: a device's signature over the server's challenge, and the proof
 * that a transfer WebSocket comes from the device a connection was announced to.
 *
 * **Identity.** A device proves it holds the key of its PeerId by signing, with the
 * domain tag `peerlink/tunnel-auth/v1`, the bytes `version (1 byte) ‖ nonce (32) ‖
 * binding (32)`: the server's fresh challenge nonce and, over `wss://`, the SHA-256 of
 * the TLS certificate the device saw (as the Beacon's proof does). A man in the middle
 * that terminates TLS with its own certificate gets a signature over *its* certificate
 * hash, which the real server refuses. Over plain `ws://` there is no certificate and
 * the binding is 32 zero bytes: plain WebSockets are for loopback, tests, and servers
 * behind a TLS-terminating proxy (see `docs/tunnel-protocol.md`).
 *
 * **Transfer sockets.** `welcome` gives the device a random 32-byte session secret.
 * A transfer WebSocket carries the connection id and
 * `HMAC-SHA256(secret, "peerlink/tunnel-transfer/v1" ‖ id)`: only the device holding the
 * control socket can claim the connections announced on it, and a proof is good for
 * one connection id only.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { InvalidArgumentError } from '../errors.js'
import type { Identity } from '../identity/identity.js'
import { challengePayload, signChallenge, verifyChallenge } from '../identity/challenge-signature.js'
import { TUNNEL_CONNECTION_ID_BYTES, TUNNEL_SESSION_SECRET_BYTES } from './tunnel-messages.js'

/** Domain-separation prefix of transfer proofs. */
export const TUNNEL_TRANSFER_DOMAIN = 'peerlink/tunnel-transfer/v1'

/** The binding of a plain `ws://` server: 32 zero bytes. */
export const NO_CHANNEL_BINDING: Uint8Array = new Uint8Array(32)

/**
 * The bytes a device signs to answer a challenge: `version ‖ nonce ‖ binding`
 * (`challenge-signature.ts`).
 *
 * @throws {@link InvalidArgumentError} when the nonce or the binding is not 32 bytes.
 */
export function tunnelAuthPayload(version: number, nonce: Uint8Array, binding: Uint8Array): Uint8Array {
  return challengePayload(version, nonce, binding)
}

/** Signs a tunnel challenge (see the module notes). */
export function signTunnelChallenge(identity: Identity, version: number, nonce: Uint8Array, binding: Uint8Array): Uint8Array {
  return signChallenge(identity, 'peerlink/tunnel-auth/v1', version, nonce, binding)
}

/** True only when `signature` was made by the key of `peerId` over this version, nonce and binding. */
export function verifyTunnelChallenge(peerId: string, signature: Uint8Array, version: number, nonce: Uint8Array, binding: Uint8Array): boolean {
  return verifyChallenge(peerId, 'peerlink/tunnel-auth/v1', signature, version, nonce, binding)
}

/**
 * The proof a transfer socket carries for connection `id`.
 *
 * @throws {@link InvalidArgumentError} when the secret or the id has the wrong length.
 */
export function transferProof(secret: Uint8Array, id: Uint8Array): Buffer {
  if (!(secret instanceof Uint8Array) || secret.byteLength !== TUNNEL_SESSION_SECRET_BYTES) throw new InvalidArgumentError(`secret must be ${TUNNEL_SESSION_SECRET_BYTES} bytes`)
  if (!(id instanceof Uint8Array) || id.byteLength !== TUNNEL_CONNECTION_ID_BYTES) throw new InvalidArgumentError(`id must be ${TUNNEL_CONNECTION_ID_BYTES} bytes`)
  return createHmac('sha256', secret).update(TUNNEL_TRANSFER_DOMAIN).update(id).digest()
}

/** Checks a transfer proof in constant time. */
export function verifyTransferProof(secret: Uint8Array, id: Uint8Array, proof: Uint8Array): boolean {
  if (!(proof instanceof Uint8Array) || proof.byteLength !== 32) return false
  return timingSafeEqual(transferProof(secret, id), proof)
}
