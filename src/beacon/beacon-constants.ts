/**
 * The constants of the Beacon wire protocol, version 1 (see `docs/beacon-protocol.md`):
 * sizes, signal kinds, error codes and the form of a PeerId. Re-exported by
 * `beacon-messages.ts`; kept apart so that the codecs can use them without an import cycle.
 *
 * @module
 */

/** The protocol version this code speaks (sent in `challenge` and `hello`). */
export const BEACON_PROTOCOL_VERSION = 1
/** Bytes in the server's `challenge` nonce. */
export const BEACON_NONCE_BYTES = 32
/** Bytes in a signalling session id and in a message id (`mid`). */
export const BEACON_ID_BYTES = 16
/** Largest rendezvous identifier (topic), in bytes. */
export const BEACON_MAX_TOPIC_BYTES = 64
/** Largest opaque payload of a signal or an announcement, in bytes. */
export const BEACON_MAX_PAYLOAD_BYTES = 8192
/** Most addresses in an `observed` list. */
export const BEACON_MAX_ADDRESSES = 8
/** Longest human-readable text (error messages), in characters. */
export const BEACON_MAX_TEXT = 256
/** Largest message the protocol defines, in bytes (a server may allow less, never needs more). */
export const BEACON_MAX_MESSAGE_BYTES = 16384

/** What a signal carries: the ICE agent's offer, answer, a trickled candidate, or the end of the attempt. */
export type BeaconSignalKind = 'offer' | 'answer' | 'candidate' | 'close'
/** Every {@link BeaconSignalKind}. */
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
/** Every {@link BeaconErrorReason}. */
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

/** True when `value` has the form of an Ed25519 PeerId text (see the decoder's notes); cheap, not a full parse. */
export function hasPeerIdForm(value: unknown): value is string {
  return typeof value === 'string' && PEER_ID_FORM.test(value)
}

