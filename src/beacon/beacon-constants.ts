/**
 * The constants of the Beacon wire protocol, version 1 (see `docs/beacon-protocol.md`):
 * sizes, signal kinds, error codes and the form of a PeerId. Re-exported by
 * `beacon-messages.ts`; kept apart so that the codecs can use them without an import cycle.
 *
 * @module
 */

/**
 * The protocol version this code speaks (sent in `challenge` and `hello`).
 *
 * @example
 * ```ts
 * import { BEACON_PROTOCOL_VERSION, decodeServerMessage } from 'peerlink'
 *
 * const challenge = decodeServerMessage(frame)
 * if (challenge.type === 'challenge' && challenge.version !== BEACON_PROTOCOL_VERSION) throw new Error('unsupported Beacon')
 * ```
 */
export const BEACON_PROTOCOL_VERSION = 1
/**
 * Bytes in the server's `challenge` nonce.
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto'
 * import { BEACON_NONCE_BYTES, BEACON_PROTOCOL_VERSION, encodeServerMessage } from 'peerlink'
 *
 * const nonce = randomBytes(BEACON_NONCE_BYTES)
 * ws.send(encodeServerMessage({ type: 'challenge', version: BEACON_PROTOCOL_VERSION, nonce }))
 * ```
 */
export const BEACON_NONCE_BYTES = 32
/**
 * Bytes in a signalling session id and in a message id (`mid`).
 *
 * @example
 * ```ts
 * import { BEACON_ID_BYTES, randomId } from 'peerlink'
 *
 * const session = randomId(BEACON_ID_BYTES)   // one connection attempt
 * const mid = randomId(BEACON_ID_BYTES)       // one signal, deduplicated across Beacons
 * ```
 */
export const BEACON_ID_BYTES = 16
/**
 * Largest rendezvous identifier (topic), in bytes.
 *
 * @example
 * ```ts
 * import { BEACON_MAX_TOPIC_BYTES } from 'peerlink'
 *
 * const topic = new TextEncoder().encode(code)
 * if (topic.byteLength > BEACON_MAX_TOPIC_BYTES) throw new Error('rendezvous code too long (64 bytes at most)')
 * ```
 */
export const BEACON_MAX_TOPIC_BYTES = 64
/**
 * Largest opaque payload of a signal or an announcement, in bytes.
 *
 * @example
 * ```ts
 * import { BEACON_MAX_PAYLOAD_BYTES } from 'peerlink'
 *
 * if (payload.byteLength > BEACON_MAX_PAYLOAD_BYTES) throw new Error('signal too large for a Beacon (8 KiB)')
 * ```
 */
export const BEACON_MAX_PAYLOAD_BYTES = 8192
/**
 * Most addresses in an `observed` list.
 *
 * @example
 * ```ts
 * import { BEACON_MAX_ADDRESSES } from 'peerlink'
 *
 * const observed = addresses.slice(0, BEACON_MAX_ADDRESSES)   // at most 8 per message
 * ```
 */
export const BEACON_MAX_ADDRESSES = 8
/**
 * Longest human-readable text (error messages), in characters.
 *
 * @example
 * ```ts
 * import { BEACON_MAX_TEXT, encodeServerMessage } from 'peerlink'
 *
 * const message = `registry unavailable: ${String(err)}`.slice(0, BEACON_MAX_TEXT)
 * ws.send(encodeServerMessage({ type: 'error', code: 'unavailable', message }))
 * ```
 */
export const BEACON_MAX_TEXT = 256
/**
 * Largest message the protocol defines, in bytes (a server may allow less, never needs more).
 *
 * @example
 * ```ts
 * import WebSocket from 'ws'
 * import { BEACON_MAX_MESSAGE_BYTES } from 'peerlink'
 *
 * // A server never needs to accept larger frames.
 * const ws = new WebSocket(url, { maxPayload: BEACON_MAX_MESSAGE_BYTES })
 * ```
 */
export const BEACON_MAX_MESSAGE_BYTES = 16384

/** What a signal carries: the ICE agent's offer, answer, a trickled candidate, or the end of the attempt. */
export type BeaconSignalKind = 'offer' | 'answer' | 'candidate' | 'close'
/**
 * Every {@link BeaconSignalKind}.
 *
 * @example
 * ```ts
 * import { BEACON_SIGNAL_KINDS, type BeaconSignalKind } from 'peerlink'
 *
 * const isSignalKind = (value: string): value is BeaconSignalKind =>
 *   (BEACON_SIGNAL_KINDS as readonly string[]).includes(value)   // 'offer' | 'answer' | 'candidate' | 'close'
 * ```
 */
export const BEACON_SIGNAL_KINDS: readonly BeaconSignalKind[] = Object.freeze(['offer', 'answer', 'candidate', 'close'])

/**
 * Why the server refused a message (`error.code` on the wire):
 * `protocol` malformed or out of order, `too-large` over the size limit, `version`
 * unsupported protocol version, `auth` proof of key refused or missing, `rate-limited`
 * too many messages per second, `limit` too many identifiers or connections,
 * `peer-not-found` no registration for the target PeerId, `unavailable` the server
 * cannot serve the request now (its Redis failed, it is shutting down).
 */
export type BeaconErrorReason =
  | 'protocol'
  | 'too-large'
  | 'version'
  | 'auth'
  | 'rate-limited'
  | 'limit'
  | 'peer-not-found'
  | 'unavailable'
/**
 * Every {@link BeaconErrorReason}.
 *
 * @example
 * ```ts
 * import { BEACON_ERROR_REASONS, type BeaconErrorReason } from 'peerlink'
 *
 * const counts = Object.fromEntries(BEACON_ERROR_REASONS.map((r) => [r, 0])) as Record<BeaconErrorReason, number>
 * ```
 */
export const BEACON_ERROR_REASONS: readonly BeaconErrorReason[] = Object.freeze([
  'protocol',
  'too-large',
  'version',
  'auth',
  'rate-limited',
  'limit',
  'peer-not-found',
  'unavailable',
])

/**
 * The form of an Ed25519 PeerId text: `12D3KooW` and 44 more base58btc characters.
 * Parsing one fully (base58, multihash, key) takes tens of microseconds, and every
 * signal names one: the decoder checks the form, and the full parse is done where the
 * key is used — the Beacon parses the PeerId of `hello` to verify its signature, so the
 * PeerIds it relays (`from`, `peerId`) are always valid, and a malformed `to` simply
 * matches no registration.
 */
const PEER_ID_FORM = /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/

/**
 * True when `value` has the form of an Ed25519 PeerId text (see the decoder's notes); cheap, not a full parse.
 *
 * @example
 * ```ts
 * import { hasPeerIdForm, isPeerId } from 'peerlink'
 *
 * hasPeerIdForm('12D3KooW' + 'a'.repeat(44))   // true: right form (cheap regular expression)
 * isPeerId('12D3KooW' + 'a'.repeat(44))        // false: the full parse finds no valid key
 * ```
 */
export function hasPeerIdForm(value: unknown): value is string {
  return typeof value === 'string' && PEER_ID_FORM.test(value)
}

