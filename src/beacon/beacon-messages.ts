/**
 * The Beacon wire protocol, version 1 (see `docs/beacon-protocol.md`): the typed
 * messages client and server exchange, their MessagePack encoding and a strict
 * validating decoder shared by both ends.
 *
 * Both are on every message's path, so both have a fast path: messages are written
 * field by field (`beacon-encoder.ts`, the bytes `@msgpack/msgpack` would write), and
 * the common ones are read straight from their bytes when they are plainly valid
 * (`beacon-fast-decoder.ts`); `@msgpack/msgpack` and the generic validation take the
 * rest, and decide about anything unusual.
 *
 * Every WebSocket binary frame holds exactly one message: a MessagePack map whose
 * `type` field names it. The decoder accepts only the fields a message type defines,
 * with exactly the types and sizes it defines; anything else (unknown type or field,
 * wrong type, out-of-range number, oversized byte string, trailing bytes, MessagePack
 * extensions) throws {@link BeaconProtocolError}.
 *
 * @module
 */
import { Decoder, Encoder } from '@msgpack/msgpack'
import { isIP } from 'node:net'
import { BeaconProtocolError } from '../errors.js'
import { isPeerId } from '../identity/peer-id.js'
import type { TransportAddress } from '../stun/address.js'
import {
  BEACON_ERROR_REASONS,
  BEACON_ID_BYTES,
  BEACON_MAX_ADDRESSES,
  BEACON_MAX_MESSAGE_BYTES,
  BEACON_MAX_PAYLOAD_BYTES,
  BEACON_MAX_TEXT,
  BEACON_MAX_TOPIC_BYTES,
  BEACON_NONCE_BYTES,
  BEACON_SIGNAL_KINDS,
  type BeaconErrorReason,
  type BeaconSignalKind,
  hasPeerIdForm,
} from './beacon-constants.js'
import { encodeClientMessageFast, encodeServerMessageFast } from './beacon-encoder.js'
import { fastDecodeClientMessage, fastDecodeServerMessage } from './beacon-fast-decoder.js'

export {
  BEACON_PROTOCOL_VERSION,
  BEACON_NONCE_BYTES,
  BEACON_ID_BYTES,
  BEACON_MAX_TOPIC_BYTES,
  BEACON_MAX_PAYLOAD_BYTES,
  BEACON_MAX_ADDRESSES,
  BEACON_MAX_TEXT,
  BEACON_MAX_MESSAGE_BYTES,
  type BeaconSignalKind,
  BEACON_SIGNAL_KINDS,
  type BeaconErrorReason,
  BEACON_ERROR_REASONS,
  hasPeerIdForm,
} from './beacon-constants.js'

/** The limits a server announces in `welcome`. */
export interface BeaconLimits {
  /** Largest message the server accepts, in bytes. */
  maxMessageBytes: number
  /** Most rendezvous identifiers one connection may announce at once. */
  maxTopics: number
  /** Messages per second one connection may send (sustained). */
  messagesPerSecond: number
  /** Interval of the server's heartbeats in milliseconds; a silent client is dropped after twice this. */
  heartbeatMs: number
}

// ---------------------------------------------------------------- client → server

/** First client message: the protocol version and the proof of key (see {@link beaconAuthPayload}). */
export interface HelloMessage {
  type: 'hello'
  version: number
  peerId: string
  /** Ed25519 signature, tag `peerlink/beacon-auth/v1`, of {@link beaconAuthPayload}. */
  signature: Uint8Array
}
/** Registers the token of the connection's own PeerId (connect-by-PeerId: "listen"). */
export interface RegisterMessage {
  type: 'register'
  id: number
}
/** Removes the registration of the connection's PeerId token. */
export interface UnregisterMessage {
  type: 'unregister'
  id: number
}
/** Announces a rendezvous identifier (symmetric mode), kept while the connection lasts. */
export interface AnnounceMessage {
  type: 'announce'
  id: number
  topic: Uint8Array
  /** Id of this announcement, the same through every Beacon (receivers dedupe by it). */
  mid: Uint8Array
  /** Opaque data handed to every peer this one is introduced to. */
  payload?: Uint8Array
}
/** Withdraws an announced identifier. */
export interface WithdrawMessage {
  type: 'withdraw'
  id: number
  topic: Uint8Array
}
/** Signalling for a connection attempt to the peer `to` (connect-by-PeerId). */
export interface SignalRequest {
  type: 'signal'
  id: number
  to: string
  kind: BeaconSignalKind
  /** The connection attempt this belongs to (chosen by the offerer). */
  session: Uint8Array
  /** Id of this signal, the same through every Beacon (receivers dedupe by it). */
  mid: Uint8Array
  payload: Uint8Array
}
/** Application-level heartbeat; the server answers `pong`. */
export interface PingMessage {
  type: 'ping'
  id: number
}
/** Any message a client sends. */
export type ClientMessage = HelloMessage | RegisterMessage | UnregisterMessage | AnnounceMessage | WithdrawMessage | SignalRequest | PingMessage
/** The `type` of a {@link ClientMessage}. */
export type ClientMessageType = ClientMessage['type']

// ---------------------------------------------------------------- server → client

/** First server message: its protocol version and a fresh nonce to sign. */
export interface ChallengeMessage {
  type: 'challenge'
  version: number
  nonce: Uint8Array
}
/** The proof of key was accepted. */
export interface WelcomeMessage {
  type: 'welcome'
  version: number
  peerId: string
  /** The client's address as the Beacon sees it (the WebSocket's remote address). */
  observed: TransportAddress
  limits: BeaconLimits
}
/** A request succeeded. For `signal`, `observed` holds the target's addresses as the Beacon sees them. */
export interface OkMessage {
  type: 'ok'
  id: number
  observed?: TransportAddress[]
}
/** A message was refused. `id` is the request's id when it could be read. */
export interface ErrorMessage {
  type: 'error'
  id?: number
  code: BeaconErrorReason
  message: string
}
/** A signal from another peer; `from` was authenticated by the Beacon. */
export interface SignalDelivery {
  type: 'signal'
  from: string
  observed: TransportAddress[]
  kind: BeaconSignalKind
  session: Uint8Array
  mid: Uint8Array
  payload: Uint8Array
}
/** Another peer announced the same identifier (symmetric mode). */
export interface IntroductionMessage {
  type: 'introduction'
  topic: Uint8Array
  peerId: string
  observed: TransportAddress[]
  /** The `mid` of the other peer's announcement. */
  mid: Uint8Array
  payload?: Uint8Array
}
/** Answer to `ping`. */
export interface PongMessage {
  type: 'pong'
  id: number
}
/** Any message a server sends. */
export type ServerMessage = ChallengeMessage | WelcomeMessage | OkMessage | ErrorMessage | SignalDelivery | IntroductionMessage | PongMessage
/** The `type` of a {@link ServerMessage}. */
export type ServerMessageType = ServerMessage['type']

// ---------------------------------------------------------------- encoding

/**
 * Encodes a client message (fields set to `undefined` are left out).
 *
 * @example
 * ```ts
 * import { encodeClientMessage } from 'peerlink'
 *
 * ws.send(encodeClientMessage({ type: 'register', id: 1 }))
 * ws.send(encodeClientMessage({ type: 'ping', id: 2 }))
 * ```
 */
export function encodeClientMessage(message: ClientMessage): Uint8Array {
  return encodeClientMessageFast(message) ?? encoder.encode(message)
}

/**
 * Encodes a server message (fields set to `undefined` are left out).
 *
 * @example
 * ```ts
 * import { encodeServerMessage } from 'peerlink'
 *
 * ws.send(encodeServerMessage({ type: 'ok', id: request.id }))
 * ws.send(encodeServerMessage({ type: 'error', id: request.id, code: 'rate-limited', message: 'slow down' }))
 * ```
 */
export function encodeServerMessage(message: ServerMessage): Uint8Array {
  return encodeServerMessageFast(message) ?? encoder.encode(toWire(message))
}

// Messages are written field by field (beacon-encoder.ts); the general encoder takes
// what that one does not (values of the wrong type, from callers breaking the types).
// One encoder and one decoder for the process: @msgpack/msgpack clones them itself if
// they are ever re-entered. `encode` returns a copy, not a view of the shared buffer.
const encoder = new Encoder({ ignoreUndefined: true })

/** Addresses travel as `{ host, port }`: the family follows from the host. */
function toWire(message: ServerMessage): unknown {
  switch (message.type) {
    case 'welcome':
      return { ...message, observed: wireAddress(message.observed) }
    case 'ok':
      return message.observed === undefined ? message : { ...message, observed: message.observed.map(wireAddress) }
    case 'signal':
    case 'introduction':
      return { ...message, observed: message.observed.map(wireAddress) }
    default:
      return message
  }
}

function wireAddress(address: TransportAddress): { host: string; port: number } {
  return { host: address.host, port: address.port }
}

// ---------------------------------------------------------------- decoding

const decoder = new Decoder({
  maxStrLength: 1024,
  maxBinLength: BEACON_MAX_PAYLOAD_BYTES,
  maxArrayLength: BEACON_MAX_ADDRESSES,
  maxMapLength: 16,
  maxExtLength: 0,
})

/**
 * Decodes and validates a message sent by a client.
 *
 * @throws {@link BeaconProtocolError} for anything that is not exactly a valid v1 client message
 *   (its `requestId` is set when the message had a readable `id`).
 *
 * @example
 * ```ts
 * import { BeaconProtocolError, decodeClientMessage } from 'peerlink'
 *
 * ws.on('message', (data: Buffer) => {
 *   try {
 *     const message = decodeClientMessage(data)   // fully validated, e.g. { type: 'register', id: 1 }
 *     handle(message)
 *   } catch (err) {
 *     if (err instanceof BeaconProtocolError) ws.close(1002, 'protocol')
 *   }
 * })
 * ```
 */
export function decodeClientMessage(data: Uint8Array): ClientMessage {
  const fast = data instanceof Uint8Array && data.byteLength <= BEACON_MAX_MESSAGE_BYTES ? fastDecodeClientMessage(data) : undefined
  return fast ?? decodeClientMessageGeneric(data)
}

/**
 * Decodes and validates a message sent by a server.
 *
 * @throws {@link BeaconProtocolError} for anything that is not exactly a valid v1 server message.
 *
 * @example
 * ```ts
 * import { decodeServerMessage } from 'peerlink'
 *
 * ws.on('message', (data: Buffer) => {
 *   const message = decodeServerMessage(data)   // throws BeaconProtocolError if malformed
 *   if (message.type === 'signal') console.log(`${message.kind} from ${message.from}`)
 * })
 * ```
 */
export function decodeServerMessage(data: Uint8Array): ServerMessage {
  const fast = data instanceof Uint8Array && data.byteLength <= BEACON_MAX_MESSAGE_BYTES ? fastDecodeServerMessage(data) : undefined
  return fast ?? decodeServerMessageGeneric(data)
}

/**
 * {@link decodeClientMessage} without its fast path (`beacon-fast-decoder.ts`): same
 * results, slower; the reference that path is tested against.
 *
 * @throws {@link BeaconProtocolError} as {@link decodeClientMessage} does.
 *
 * @example
 * ```ts
 * import { decodeClientMessage, decodeClientMessageGeneric, encodeClientMessage } from 'peerlink'
 *
 * const bytes = encodeClientMessage({ type: 'ping', id: 7 })
 * // Same result as the fast decoder, by the general MessagePack path (a test oracle).
 * console.log(decodeClientMessageGeneric(bytes), decodeClientMessage(bytes))   // { type: 'ping', id: 7 } twice
 * ```
 */
export function decodeClientMessageGeneric(data: Uint8Array): ClientMessage {
  const object = decodeMap(data)
  try {
    return parseClientMessage(object)
  } catch (err) {
    throw withRequestId(err, object)
  }
}

/**
 * {@link decodeServerMessage} without its fast path: same results, slower.
 *
 * @throws {@link BeaconProtocolError} as {@link decodeServerMessage} does.
 *
 * @example
 * ```ts
 * import { decodeServerMessageGeneric, encodeServerMessage } from 'peerlink'
 *
 * const bytes = encodeServerMessage({ type: 'pong', id: 7 })
 * decodeServerMessageGeneric(bytes)   // { type: 'pong', id: 7 }
 * ```
 */
export function decodeServerMessageGeneric(data: Uint8Array): ServerMessage {
  return parseServerMessage(decodeMap(data))
}

type WireObject = Record<string, unknown>

function decodeMap(data: Uint8Array): WireObject {
  if (!(data instanceof Uint8Array)) throw new BeaconProtocolError('a Beacon message must be binary')
  if (data.byteLength > BEACON_MAX_MESSAGE_BYTES) {
    throw new BeaconProtocolError(`message of ${data.byteLength} bytes exceeds ${BEACON_MAX_MESSAGE_BYTES}`)
  }
  let value: unknown
  try {
    value = decoder.decode(data)
  } catch (err) {
    throw new BeaconProtocolError(`not a MessagePack value: ${(err as Error).message}`, { cause: err })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.getPrototypeOf(value) !== Object.prototype) {
    throw new BeaconProtocolError('a Beacon message must be a MessagePack map')
  }
  return value as WireObject
}

function withRequestId(err: unknown, object: WireObject): unknown {
  const id = object['id']
  if (err instanceof BeaconProtocolError && isUint32(id)) {
    return new BeaconProtocolError(err.message, { requestId: id, cause: err.cause })
  }
  return err
}

function parseClientMessage(o: WireObject): ClientMessage {
  switch (o['type']) {
    case 'hello':
      fields(o, ['type', 'version', 'peerId', 'signature'])
      if (!isPeerId(o['peerId'])) throw new BeaconProtocolError('peerId must be an Ed25519 PeerId')
      return { type: 'hello', version: version(o), peerId: o['peerId'], signature: bytes(o, 'signature', 64, 64) }
    case 'register':
    case 'unregister':
    case 'ping':
      fields(o, ['type', 'id'])
      return { type: o['type'], id: uint32(o, 'id') }
    case 'announce': {
      fields(o, ['type', 'id', 'topic', 'mid'], ['payload'])
      const message: AnnounceMessage = { type: 'announce', id: uint32(o, 'id'), topic: topic(o), mid: bytes(o, 'mid', BEACON_ID_BYTES, BEACON_ID_BYTES) }
      if (o['payload'] !== undefined) message.payload = bytes(o, 'payload', 0, BEACON_MAX_PAYLOAD_BYTES)
      return message
    }
    case 'withdraw':
      fields(o, ['type', 'id', 'topic'])
      return { type: 'withdraw', id: uint32(o, 'id'), topic: topic(o) }
    case 'signal':
      fields(o, ['type', 'id', 'to', 'kind', 'session', 'mid', 'payload'])
      return {
        type: 'signal',
        id: uint32(o, 'id'),
        to: peerId(o, 'to'),
        kind: signalKind(o),
        session: bytes(o, 'session', BEACON_ID_BYTES, BEACON_ID_BYTES),
        mid: bytes(o, 'mid', BEACON_ID_BYTES, BEACON_ID_BYTES),
        payload: bytes(o, 'payload', 0, BEACON_MAX_PAYLOAD_BYTES),
      }
    default:
      throw new BeaconProtocolError(`unknown client message type ${describe(o['type'])}`)
  }
}

function parseServerMessage(o: WireObject): ServerMessage {
  switch (o['type']) {
    case 'challenge':
      fields(o, ['type', 'version', 'nonce'])
      return { type: 'challenge', version: version(o), nonce: bytes(o, 'nonce', BEACON_NONCE_BYTES, BEACON_NONCE_BYTES) }
    case 'welcome':
      fields(o, ['type', 'version', 'peerId', 'observed', 'limits'])
      return { type: 'welcome', version: version(o), peerId: peerId(o, 'peerId'), observed: address(o['observed'], 'observed'), limits: limits(o['limits']) }
    case 'ok': {
      fields(o, ['type', 'id'], ['observed'])
      const message: OkMessage = { type: 'ok', id: uint32(o, 'id') }
      if (o['observed'] !== undefined) message.observed = addresses(o)
      return message
    }
    case 'error': {
      fields(o, ['type', 'code', 'message'], ['id'])
      const code = o['code']
      if (typeof code !== 'string' || !(BEACON_ERROR_REASONS as readonly string[]).includes(code)) {
        throw new BeaconProtocolError(`unknown error code ${describe(code)}`)
      }
      const message: ErrorMessage = { type: 'error', code: code as BeaconErrorReason, message: text(o, 'message') }
      if (o['id'] !== undefined) message.id = uint32(o, 'id')
      return message
    }
    case 'signal':
      fields(o, ['type', 'from', 'observed', 'kind', 'session', 'mid', 'payload'])
      return {
        type: 'signal',
        from: peerId(o, 'from'),
        observed: addresses(o),
        kind: signalKind(o),
        session: bytes(o, 'session', BEACON_ID_BYTES, BEACON_ID_BYTES),
        mid: bytes(o, 'mid', BEACON_ID_BYTES, BEACON_ID_BYTES),
        payload: bytes(o, 'payload', 0, BEACON_MAX_PAYLOAD_BYTES),
      }
    case 'introduction': {
      fields(o, ['type', 'topic', 'peerId', 'observed', 'mid'], ['payload'])
      const message: IntroductionMessage = {
        type: 'introduction',
        topic: topic(o),
        peerId: peerId(o, 'peerId'),
        observed: addresses(o),
        mid: bytes(o, 'mid', BEACON_ID_BYTES, BEACON_ID_BYTES),
      }
      if (o['payload'] !== undefined) message.payload = bytes(o, 'payload', 0, BEACON_MAX_PAYLOAD_BYTES)
      return message
    }
    case 'pong':
      fields(o, ['type', 'id'])
      return { type: 'pong', id: uint32(o, 'id') }
    default:
      throw new BeaconProtocolError(`unknown server message type ${describe(o['type'])}`)
  }
}

// ---------------------------------------------------------------- field validators

function fields(o: WireObject, required: readonly string[], optional: readonly string[] = [], label = String(o['type'])): void {
  for (const key of Object.keys(o)) {
    if (!required.includes(key) && !optional.includes(key)) throw new BeaconProtocolError(`${label}: unknown field ${describe(key)}`)
  }
  for (const key of required) {
    if (o[key] === undefined) throw new BeaconProtocolError(`${label}: missing field ${key}`)
  }
}

function isUint32(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff
}

function uint32(o: WireObject, key: string): number {
  const value = o[key]
  if (!isUint32(value)) throw new BeaconProtocolError(`${key} must be an integer from 0 to 2^32-1`)
  return value
}

function version(o: WireObject): number {
  const value = o['version']
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 0xffff) {
    throw new BeaconProtocolError('version must be an integer from 1 to 65535')
  }
  return value
}

function bytes(o: WireObject, key: string, min: number, max: number): Uint8Array {
  const value = o[key]
  if (!(value instanceof Uint8Array)) throw new BeaconProtocolError(`${key} must be a byte string`)
  if (value.byteLength < min || value.byteLength > max) {
    throw new BeaconProtocolError(min === max ? `${key} must be ${min} bytes` : `${key} must be ${min} to ${max} bytes`)
  }
  return value
}

function topic(o: WireObject): Uint8Array {
  return bytes(o, 'topic', 1, BEACON_MAX_TOPIC_BYTES)
}

function peerId(o: WireObject, key: string): string {
  const value = o[key]
  if (!hasPeerIdForm(value)) throw new BeaconProtocolError(`${key} must be an Ed25519 PeerId`)
  return value
}

function signalKind(o: WireObject): BeaconSignalKind {
  const value = o['kind']
  if (typeof value !== 'string' || !(BEACON_SIGNAL_KINDS as readonly string[]).includes(value)) {
    throw new BeaconProtocolError(`kind must be one of ${BEACON_SIGNAL_KINDS.join(', ')}`)
  }
  return value as BeaconSignalKind
}

function text(o: WireObject, key: string): string {
  const value = o[key]
  if (typeof value !== 'string' || value.length > BEACON_MAX_TEXT) throw new BeaconProtocolError(`${key} must be a string of at most ${BEACON_MAX_TEXT} characters`)
  return value
}

function address(value: unknown, key: string): TransportAddress {
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) {
    throw new BeaconProtocolError(`${key} must be a map { host, port }`)
  }
  const o = value as WireObject
  const extra = Object.keys(o).find((k) => k !== 'host' && k !== 'port')
  if (extra !== undefined) throw new BeaconProtocolError(`${key}: unknown field ${describe(extra)}`)
  const host = o['host']
  const port = o['port']
  const family = typeof host === 'string' ? isIP(host) : 0
  if (family === 0) throw new BeaconProtocolError(`${key}.host must be an IP address`)
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new BeaconProtocolError(`${key}.port must be an integer from 0 to 65535`)
  }
  return { family: family === 6 ? 'IPv6' : 'IPv4', host: host as string, port }
}

function addresses(o: WireObject): TransportAddress[] {
  const value = o['observed']
  if (!Array.isArray(value) || value.length > BEACON_MAX_ADDRESSES) {
    throw new BeaconProtocolError(`observed must be a list of at most ${BEACON_MAX_ADDRESSES} addresses`)
  }
  return value.map((item) => address(item, 'observed[]'))
}

function limits(value: unknown): BeaconLimits {
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) {
    throw new BeaconProtocolError('limits must be a map')
  }
  const o = value as WireObject
  fields(o, ['maxMessageBytes', 'maxTopics', 'messagesPerSecond', 'heartbeatMs'], [], 'limits')
  return {
    maxMessageBytes: uint32(o, 'maxMessageBytes'),
    maxTopics: uint32(o, 'maxTopics'),
    messagesPerSecond: uint32(o, 'messagesPerSecond'),
    heartbeatMs: uint32(o, 'heartbeatMs'),
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value)
  return value === null ? 'null' : typeof value
}
