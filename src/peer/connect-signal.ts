/**
 * The signalling data of a connection attempt, carried opaque by the Beacon
 * (`offer`, `answer`, `candidate`, `close` signals; docs/beacon-protocol.md): the ICE
 * credentials, the udx stream id the sender will use, and trickled candidates
 * (RFC 8839 `candidate:` lines).
 *
 * ```text
 * offer / answer : { v: 2, ufrag, pwd, stream, candidates: string[], end: boolean, noise?: bin }
 * candidate      : { v: 2, candidates: string[], end: boolean }
 * close          : { v: 2, reason: string }
 * ```
 *
 * `noise`: message 1 (offer) or 2 (answer) of the secure connection's Noise XX handshake
 * (`attempt-handshake.ts`,
 * docs/secure-connection.md), at most {@link MAX_SIGNAL_NOISE} bytes.
 * Version 2 came with the secure connection's AES-GCM records: a version 1 peer speaks
 * the old wire format and is refused here, with a clear error, rather than failing its
 * handshake.
 *
 * MessagePack; every field is checked on decode, and anything else is an
 * `IceSignalInvalidError` (`ERR_ICE_SIGNAL_INVALID`): a peer that sends garbage ends its
 * own attempt and harms nothing else.
 *
 * @module
 */
import { Decoder, Encoder } from '@msgpack/msgpack'
import { IceSignalInvalidError } from '../errors.js'
import { MAX_CANDIDATE_LINE } from '../ice/candidate-codec.js'
import { type IceCredentials, parseIceCredentials } from '../ice/ice-credentials.js'

/** Version of the signalling payloads. */
export const CONNECT_SIGNAL_VERSION = 2

/** Longest handshake message in an offer or answer (XX messages 1 and 2 are 32 and 96 bytes). */
export const MAX_SIGNAL_NOISE = 256

/** Most candidates in one signal (a Beacon payload is at most 8 KiB anyway). */
export const MAX_SIGNAL_CANDIDATES = 32

// One encoder and decoder for all signals: msgpack's `encode()`/`decode()` functions build
// a new one per call, which costs more than the encoding (signals are on the connect path).
const encoder = new Encoder()
const decoder = new Decoder({ maxStrLength: 4096, maxBinLength: MAX_SIGNAL_NOISE, maxArrayLength: MAX_SIGNAL_CANDIDATES, maxMapLength: 16, maxExtLength: 0 })
const encode = (value: unknown): Uint8Array => encoder.encode(value)

/** Longest close reason. */
const MAX_REASON_LENGTH = 200

/** An offer (from the connecting side) or an answer (from the listening side). */
export interface SessionDescription {
  /** The sender's ICE credentials. */
  ice: IceCredentials
  /** The udx stream id the sender uses for this connection. */
  stream: number
  /** Candidates known when it was sent (more may trickle). */
  candidates: string[]
  /** Whether the sender has no more candidates. */
  end: boolean
  /**
   * The secure connection's handshake message 1 (offer) or 2 (answer).
   * @default undefined (the whole handshake runs on the stream)
   */
  noise?: Uint8Array | undefined
}

/** Trickled candidates. */
export interface CandidateBatch {
  /** Candidate lines. */
  candidates: string[]
  /** Whether these are the sender's last. */
  end: boolean
}

/** Encodes an offer or an answer. */
export function encodeSessionDescription(description: SessionDescription): Uint8Array {
  return encode({
    v: CONNECT_SIGNAL_VERSION,
    ufrag: description.ice.ufrag,
    pwd: description.ice.pwd,
    stream: description.stream,
    candidates: description.candidates,
    end: description.end,
    ...(description.noise === undefined ? {} : { noise: description.noise }),
  })
}

/** Encodes trickled candidates. */
export function encodeCandidateBatch(batch: CandidateBatch): Uint8Array {
  return encode({ v: CONNECT_SIGNAL_VERSION, candidates: batch.candidates, end: batch.end })
}

/** Encodes a close signal (the attempt is abandoned; `reason` is for diagnostics). */
export function encodeCloseSignal(reason: string): Uint8Array {
  return encode({ v: CONNECT_SIGNAL_VERSION, reason: reason.slice(0, MAX_REASON_LENGTH) })
}

function decodeMap(payload: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown
  try {
    value = decoder.decode(payload)
  } catch (err) {
    throw new IceSignalInvalidError(`The ${what} is not valid MessagePack`, { cause: err })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new IceSignalInvalidError(`The ${what} is not a map`)
  const map = value as Record<string, unknown>
  if (map['v'] !== CONNECT_SIGNAL_VERSION) throw new IceSignalInvalidError(`The ${what} has an unsupported version ${String(map['v'])}`)
  return map
}

function candidateLines(map: Record<string, unknown>, what: string): { candidates: string[]; end: boolean } {
  const candidates = map['candidates']
  if (!Array.isArray(candidates) || candidates.length > MAX_SIGNAL_CANDIDATES) throw new IceSignalInvalidError(`The ${what} has no valid candidate list`)
  for (const line of candidates) {
    if (typeof line !== 'string' || line.length > MAX_CANDIDATE_LINE) throw new IceSignalInvalidError(`The ${what} has a candidate that is not a string of at most ${MAX_CANDIDATE_LINE} characters`)
  }
  const end = map['end']
  if (typeof end !== 'boolean') throw new IceSignalInvalidError(`The ${what} has no end flag`)
  return { candidates: candidates as string[], end }
}

/**
 * Decodes an offer or an answer. The candidate lines are checked for size only; the ICE
 * agent parses each (and ignores one it cannot use).
 *
 * @throws IceSignalInvalidError for anything malformed.
 */
export function decodeSessionDescription(payload: Uint8Array): SessionDescription {
  const map = decodeMap(payload, 'offer/answer')
  const ice = parseIceCredentials({ ufrag: map['ufrag'], pwd: map['pwd'] })
  const stream = map['stream']
  if (typeof stream !== 'number' || !Number.isInteger(stream) || stream < 1 || stream > 0xffffffff) {
    throw new IceSignalInvalidError('The offer/answer has no valid stream id')
  }
  return { ice, stream, ...candidateLines(map, 'offer/answer'), ...noiseOf(map, 'offer/answer') }
}

/** The optional handshake message of an offer, answer or candidate signal. */
function noiseOf(map: Record<string, unknown>, what: string): { noise?: Uint8Array } {
  const noise = map['noise']
  if (noise === undefined) return {}
  if (!(noise instanceof Uint8Array && noise.length <= MAX_SIGNAL_NOISE)) {
    throw new IceSignalInvalidError(`The ${what} has a handshake message that is not at most ${MAX_SIGNAL_NOISE} bytes`)
  }
  return { noise }
}

/**
 * Decodes trickled candidates.
 *
 * @throws IceSignalInvalidError for anything malformed.
 */
export function decodeCandidateBatch(payload: Uint8Array): CandidateBatch {
  return candidateLines(decodeMap(payload, 'candidate signal'), 'candidate signal')
}

/**
 * Decodes a close signal's reason ('' when it has none or it is malformed: a close is
 * honoured whatever it says).
 */
export function decodeCloseReason(payload: Uint8Array): string {
  try {
    const reason = decodeMap(payload, 'close signal')['reason']
    return typeof reason === 'string' ? reason.slice(0, MAX_REASON_LENGTH) : ''
  } catch {
    return ''
  }
}
