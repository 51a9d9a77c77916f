/**
 * The Beacon's proof of key and rendezvous keys.
 *
 * A client proves it holds the key of its PeerId by signing, with the domain tag
 * `peerlink/beacon-auth/v1`, the bytes `version (1 byte) ‖ nonce (32) ‖ certificate
 * hash (32)`: the server's fresh challenge nonce and the SHA-256 of the TLS certificate
 * the client saw. A man in the middle that terminates TLS with its own certificate gets
 * a signature over *its* certificate hash, which the real Beacon (checking against its
 * own certificate) refuses: the proof cannot be relayed.
 *
 * Only then may the client register the token of its PeerId,
 * `SHA-256("peerlink/beacon-token/v1" ‖ PeerId text)`, the key under which others
 * reach it by PeerId. Rendezvous identifiers (symmetric mode) live in a separate key
 * space, so announcing an identifier can never shadow a peer's token.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { InvalidArgumentError } from '../errors.js'
import type { Identity } from '../identity/identity.js'
import { challengePayload, signChallenge, verifyChallenge } from '../identity/challenge-signature.js'
import { BEACON_MAX_TOPIC_BYTES } from './beacon-messages.js'

/**
 * Domain-separation prefix of {@link beaconToken}.
 *
 * @example
 * ```ts
 * import { createHash } from 'node:crypto'
 * import { BEACON_TOKEN_DOMAIN, beaconToken } from 'peerlink'
 *
 * const token = createHash('sha256').update(BEACON_TOKEN_DOMAIN).update(peerId).digest()
 * console.log(token.equals(beaconToken(peerId)))   // true
 * ```
 */
export const BEACON_TOKEN_DOMAIN = 'peerlink/beacon-token/v1'

/**
 * The token a peer registers for connect-by-PeerId:
 * `SHA-256("peerlink/beacon-token/v1" ‖ UTF-8 of the PeerId text)`. The text form is
 * canonical (one text per key, and the Beacon registers only PeerIds it parsed in full),
 * so hashing it is as unambiguous as hashing the key, and much cheaper than parsing it.
 *
 * @example
 * ```ts
 * import { beaconToken, createIdentity } from 'peerlink'
 *
 * const { peerId } = createIdentity()
 * const token = beaconToken(peerId)   // 32 bytes: what `register` makes the Beacon file this peer under
 * ```
 */
export function beaconToken(peerId: string): Uint8Array {
  if (typeof peerId !== 'string') throw new InvalidArgumentError('peerId must be a string')
  return new Uint8Array(createHash('sha256').update(BEACON_TOKEN_DOMAIN).update(peerId, 'utf8').digest())
}

/**
 * The bytes a client signs to answer a challenge: `version ‖ nonce ‖ certHash`
 * (`challenge-signature.ts`).
 *
 * @throws {@link InvalidArgumentError} when the nonce is not 32 bytes or the hash not 32 bytes.
 *
 * @example
 * ```ts
 * import { BEACON_PROTOCOL_VERSION, beaconAuthPayload, createIdentity, sign } from 'peerlink'
 *
 * // challenge.nonce from the server, certHash = SHA-256 of the TLS certificate the client saw
 * const payload = beaconAuthPayload(BEACON_PROTOCOL_VERSION, challenge.nonce, certHash)   // 65 bytes
 * const signature = sign(createIdentity().keyPair.secretKey, 'peerlink/beacon-auth/v1', payload)
 * ```
 */
export function beaconAuthPayload(version: number, nonce: Uint8Array, certHash: Uint8Array): Uint8Array {
  return challengePayload(version, nonce, certHash)
}

/**
 * Signs a challenge (see the module notes).
 *
 * @example
 * ```ts
 * import { BEACON_PROTOCOL_VERSION, encodeClientMessage, signBeaconChallenge } from 'peerlink'
 *
 * const signature = signBeaconChallenge(identity, BEACON_PROTOCOL_VERSION, challenge.nonce, certHash)
 * ws.send(encodeClientMessage({ type: 'hello', version: BEACON_PROTOCOL_VERSION, peerId: identity.peerId, signature }))
 * ```
 */
export function signBeaconChallenge(identity: Identity, version: number, nonce: Uint8Array, certHash: Uint8Array): Uint8Array {
  return signChallenge(identity, 'peerlink/beacon-auth/v1', version, nonce, certHash)
}

/**
 * Checks a client's answer to a challenge: true only when `signature` was made by the
 * key of `peerId` over this version, nonce and certificate hash.
 *
 * @example
 * ```ts
 * import { decodeClientMessage, verifyBeaconHello } from 'peerlink'
 *
 * // Server side: nonce is the challenge it sent, certHash the SHA-256 of its own certificate.
 * const hello = decodeClientMessage(frame)
 * if (hello.type !== 'hello' || !verifyBeaconHello(hello.peerId, hello.signature, hello.version, nonce, certHash)) {
 *   ws.close(4001, 'auth')
 * }
 * ```
 */
export function verifyBeaconHello(peerId: string, signature: Uint8Array, version: number, nonce: Uint8Array, certHash: Uint8Array): boolean {
  return verifyChallenge(peerId, 'peerlink/beacon-auth/v1', signature, version, nonce, certHash)
}

/**
 * The registry key of a PeerId's token (connect-by-PeerId): `p:` and the token in base64url.
 *
 * @example
 * ```ts
 * import { beaconPeerKey } from 'peerlink'
 *
 * const key = beaconPeerKey('12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5')
 * // 'p:ewQx3afhdvsF56NWI1EnA0FAy1xRgsZamUkGEPfEVXU': the registry key of that PeerId
 * ```
 */
export function beaconPeerKey(peerId: string): string {
  return `p:${createHash('sha256').update(BEACON_TOKEN_DOMAIN).update(peerId, 'utf8').digest('base64url')}`
}

/**
 * The registry key of a rendezvous identifier (symmetric mode).
 *
 * @throws {@link InvalidArgumentError} when `topic` is not 1 to 64 bytes.
 *
 * @example
 * ```ts
 * import { beaconTopicKey } from 'peerlink'
 *
 * beaconTopicKey(new TextEncoder().encode('blue-falcon-42'))   // 't:Ymx1ZS1mYWxjb24tNDI'
 * beaconTopicKey(new Uint8Array(0))                            // throws InvalidArgumentError
 * ```
 */
export function beaconTopicKey(topic: Uint8Array): string {
  if (!(topic instanceof Uint8Array) || topic.byteLength < 1 || topic.byteLength > BEACON_MAX_TOPIC_BYTES) {
    throw new InvalidArgumentError(`a rendezvous identifier must be 1 to ${BEACON_MAX_TOPIC_BYTES} bytes`)
  }
  return `t:${Buffer.from(topic.buffer, topic.byteOffset, topic.byteLength).toString('base64url')}`
}
