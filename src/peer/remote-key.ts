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
    key = publicKeyFromPeerId(peerId)
    if (keys.size >= MAX_ENTRIES) keys.delete(keys.keys().next().value as string)
    keys.set(peerId, key)
  }
  return Uint8Array.from(key)
}
