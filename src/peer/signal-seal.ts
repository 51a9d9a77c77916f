/**
 * Signed signalling: every offer, answer and batch of trickled candidates a peer sends
 * through the Beacons is signed with its identity key, and checked against the PeerId the
 * attempt is with before it is used (ARCHITECTURE §2.1). The Beacon already vouches for
 * the sender's PeerId (proof of key at `hello`); the signature additionally makes a
 * Beacon — or anyone who can speak for one — unable to change the ICE credentials,
 * candidates or stream id in flight, or to replay them into another attempt: it covers
 * the attempt's session id and both PeerIds. (The Noise handshake with the expected key
 * would still reject an impostor; this keeps a Beacon from steering the attempt at all.)
 *
 * ```text
 * sealed  = MessagePack { v: 2, body: bin (the v1 payload of connect-signal.ts), sig: bin(64) }
 * signed  = session (16) ‖ len(from) (1) ‖ from ‖ len(to) (1) ‖ to ‖ body
 *           under peerlink/signal-offer/v1, …/signal-answer/v1 or …/signal-candidate/v1
 * ```
 *
 * Close signals are not sealed: a close is honoured whatever it says.
 *
 * @module
 */
import { Decoder, Encoder } from '@msgpack/msgpack'
import { IceSignalInvalidError, PeerIdentityMismatchError } from '../errors.js'
import type { Identity } from '../identity/identity.js'
import { type SignatureTag, SIGNATURE_BYTES, sign, verify } from '../identity/signature.js'

/** Version of a sealed signal. */
export const SEALED_SIGNAL_VERSION = 2

/** Largest body sealed (a Beacon payload is at most 8 KiB). */
const MAX_BODY_BYTES = 8192

// Reused (msgpack's `encode()`/`decode()` functions build a new one per call).
const encoder = new Encoder()
const decoder = new Decoder({ maxStrLength: 8, maxBinLength: MAX_BODY_BYTES, maxArrayLength: 0, maxMapLength: 4, maxExtLength: 0 })

/** The signals that are sealed. */
export type SealedSignalKind = 'offer' | 'answer' | 'candidate'

/** Who sends a sealed signal to whom, in which attempt. */
export interface SignalSealContext {
  /** The attempt's session id. */
  session: Uint8Array
  /** The sender's PeerId. */
  from: string
  /** The recipient's PeerId. */
  to: string
}

const TAGS: Record<SealedSignalKind, SignatureTag> = {
  offer: 'peerlink/signal-offer/v1',
  answer: 'peerlink/signal-answer/v1',
  candidate: 'peerlink/signal-candidate/v1',
}

function signedMessage(context: SignalSealContext, body: Uint8Array): Uint8Array {
  const from = Buffer.from(context.from, 'utf8')
  const to = Buffer.from(context.to, 'utf8')
  if (from.length > 255 || to.length > 255) throw new IceSignalInvalidError('PeerIds too long to sign')
  return Buffer.concat([context.session, Buffer.from([from.length]), from, Buffer.from([to.length]), to, body])
}

/** Wraps `body` (a payload of `connect-signal.ts`) with the sender's signature. */
export function sealSignal(identity: Identity, kind: SealedSignalKind, context: SignalSealContext, body: Uint8Array): Uint8Array {
  const sig = sign(identity.keyPair.secretKey, TAGS[kind], signedMessage(context, body))
  return encoder.encode({ v: SEALED_SIGNAL_VERSION, body, sig })
}

/**
 * The body of a sealed signal, once its signature by `senderPublicKey` over this kind,
 * session and pair of PeerIds checks out.
 *
 * @throws IceSignalInvalidError when the payload is malformed or unsigned;
 * PeerIdentityMismatchError when it is signed by another key or for another attempt.
 */
export function openSignal(kind: SealedSignalKind, context: SignalSealContext, payload: Uint8Array, senderPublicKey: Uint8Array): Uint8Array {
  let value: unknown
  try {
    value = decoder.decode(payload)
  } catch (err) {
    throw new IceSignalInvalidError(`The ${kind} is not a sealed signal`, { cause: err })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new IceSignalInvalidError(`The ${kind} is not a sealed signal`)
  const map = value as Record<string, unknown>
  if (map['v'] !== SEALED_SIGNAL_VERSION) throw new IceSignalInvalidError(`The ${kind} has an unsupported version ${String(map['v'])}`)
  const body = map['body']
  const sig = map['sig']
  if (!(body instanceof Uint8Array) || !(sig instanceof Uint8Array) || sig.byteLength !== SIGNATURE_BYTES) {
    throw new IceSignalInvalidError(`The ${kind} has no body or no signature`)
  }
  if (!verify(senderPublicKey, TAGS[kind], signedMessage(context, body), sig)) {
    // Whoever answered for this PeerId does not hold its key (or replays another attempt).
    throw new PeerIdentityMismatchError(context.from, `a signer of the ${kind} other than ${context.from} (or another attempt's)`)
  }
  return body
}
