/**
 * The tunnel's peer path on the wire (see `docs/tunnel-protocol.md`, "Peer path"): the
 * messages of a listening peer's socket (`…/v1/peer/listen`) and the one message that
 * opens a connecting peer's socket (`…/v1/peer/connect`), with a strict validating
 * decoder like the control protocol's.
 *
 * A listen socket speaks the control protocol's framing (one MessagePack map per
 * binary frame) and reuses its `challenge`, `error`, `reject`, `ping` and `pong`
 * messages; `peer-listen`, `peer-welcome` and `peer-connection` are its own. A connect
 * socket gets exactly one message — `peer-ready`, `peer-moved` or `peer-error` — and
 * after `peer-ready` it is a transfer socket: binary frames are stream bytes, the text
 * frame `end` ends a direction.
 *
 * @module
 */
import { Decoder, Encoder } from '@msgpack/msgpack'
import { isIP } from 'node:net'
import { TunnelProtocolError } from '../errors.js'
import { isPeerId } from '../identity/peer-id.js'
import {
  TUNNEL_CONNECTION_ID_BYTES,
  TUNNEL_MAX_MESSAGE_BYTES,
  TUNNEL_MAX_TEXT,
  TUNNEL_MAX_TOKEN_LENGTH,
  TUNNEL_PROTOCOL_VERSION,
  TUNNEL_SESSION_SECRET_BYTES,
  type TunnelAddress,
  type TunnelClientMessage,
  type TunnelServerMessage,
  decodeTunnelClientMessage,
  decodeTunnelServerMessage,
} from './tunnel-messages.js'

/** Path (under the tunnel URL's path) of a listening peer's socket. */
export const PEER_LISTEN_PATH = `v${TUNNEL_PROTOCOL_VERSION}/peer/listen`
/** Path (under the tunnel URL's path) of a connecting peer's socket (`?peer=PEERID&from=PEERID`). */
export const PEER_CONNECT_PATH = `v${TUNNEL_PROTOCOL_VERSION}/peer/connect`

/**
 * Why a connect socket was refused (`peer-error.code`): `not-found` no peer listens
 * under that PeerId, `refused` the listener refused, `timeout` the listener did not
 * answer in time, `limit` the listener has too many connections, `unavailable` the
 * server cannot serve now, `protocol` a malformed request.
 */
export type TunnelPeerErrorReason = 'not-found' | 'refused' | 'timeout' | 'limit' | 'unavailable' | 'protocol'
/** Every {@link TunnelPeerErrorReason}. */
export const TUNNEL_PEER_ERROR_REASONS: readonly TunnelPeerErrorReason[] = Object.freeze(['not-found', 'refused', 'timeout', 'limit', 'unavailable', 'protocol'])

/** A listening peer logs in: its PeerId, the proof of its key (see `tunnel-peer-auth.ts`) and optionally a token. */
export interface TunnelPeerListenMessage {
  type: 'peer-listen'
  version: number
  peerId: string
  /** 64 bytes. */
  signature: Uint8Array
  token?: string
}
/** The listener is registered: the secret that proves its transfer sockets, and the server's timings. */
export interface TunnelPeerWelcomeMessage {
  type: 'peer-welcome'
  version: number
  /** Transfer sockets carry HMAC-SHA256(secret, …) of their connection id, as a device's do. */
  secret: Uint8Array
  /** Milliseconds between the server's heartbeats. */
  heartbeatMs: number
  /** Milliseconds the server waits for the transfer socket of an announced connection. */
  connectTimeoutMs: number
}
/** A peer wants to connect: open a transfer socket for connection `id` (or `reject` it). */
export interface TunnelPeerConnectionMessage {
  type: 'peer-connection'
  id: Uint8Array
  /** The PeerId the connecting peer says it has (its Noise handshake must prove it). */
  from: string
  /** Its address as the server sees it. */
  remote: TunnelAddress
}
/** Connect socket: the listener joined; stream bytes follow. */
export interface TunnelPeerReadyMessage {
  type: 'peer-ready'
}
/** Connect socket: the listener is on another server of the fleet; connect there. */
export interface TunnelPeerMovedMessage {
  type: 'peer-moved'
  /** `ws(s)://…/v1/peer/connect?…` of the server to use. */
  url: string
}
/** Connect socket: refused. */
export interface TunnelPeerErrorMessage {
  type: 'peer-error'
  code: TunnelPeerErrorReason
  message: string
}

/** What a listening peer sends. */
export type TunnelPeerListenerMessage = TunnelPeerListenMessage | Extract<TunnelClientMessage, { type: 'reject' | 'ping' | 'pong' }>
/** What a server sends on a listen or connect socket. */
export type TunnelPeerServerMessage =
  | TunnelPeerWelcomeMessage
  | TunnelPeerConnectionMessage
  | TunnelPeerReadyMessage
  | TunnelPeerMovedMessage
  | TunnelPeerErrorMessage
  | Extract<TunnelServerMessage, { type: 'challenge' | 'error' | 'ping' | 'pong' }>

const encoder = new Encoder({ ignoreUndefined: true })
const decoder = new Decoder({ maxStrLength: 1024, maxBinLength: 64, maxArrayLength: 16, maxMapLength: 16, maxExtLength: 0 })

/** Encodes a peer-path message (either direction; fields set to `undefined` are left out). */
export function encodeTunnelPeerMessage(message: TunnelPeerListenerMessage | TunnelPeerServerMessage): Uint8Array {
  return encoder.encode(message)
}

type WireObject = Record<string, unknown>

/**
 * Decodes and validates a message sent by a listening peer.
 *
 * @throws {@link TunnelProtocolError} for anything else.
 */
export function decodeTunnelPeerListenerMessage(data: Uint8Array): TunnelPeerListenerMessage {
  const o = decodeMap(data)
  if (o['type'] === 'peer-listen') {
    fields(o, ['type', 'version', 'peerId', 'signature'], ['token'])
    const message: TunnelPeerListenMessage = { type: 'peer-listen', version: uint(o, 'version', 1, 0xffff), peerId: peerId(o, 'peerId'), signature: bytes(o, 'signature', 64) }
    if (o['token'] !== undefined) message.token = text(o, 'token', 1, TUNNEL_MAX_TOKEN_LENGTH)
    return message
  }
  if (o['type'] === 'reject' || o['type'] === 'ping' || o['type'] === 'pong') return decodeTunnelClientMessage(data) as TunnelPeerListenerMessage
  throw new TunnelProtocolError(`unknown listener message type ${describe(o['type'])}`)
}

/**
 * Decodes and validates a message a server sends on a listen or connect socket.
 *
 * @throws {@link TunnelProtocolError} for anything else.
 */
export function decodeTunnelPeerServerMessage(data: Uint8Array): TunnelPeerServerMessage {
  const o = decodeMap(data)
  switch (o['type']) {
    case 'peer-welcome':
      fields(o, ['type', 'version', 'secret', 'heartbeatMs', 'connectTimeoutMs'])
      return {
        type: 'peer-welcome',
        version: uint(o, 'version', 1, 0xffff),
        secret: bytes(o, 'secret', TUNNEL_SESSION_SECRET_BYTES),
        heartbeatMs: uint(o, 'heartbeatMs', 1, 0xffff_ffff),
        connectTimeoutMs: uint(o, 'connectTimeoutMs', 1, 0xffff_ffff),
      }
    case 'peer-connection':
      fields(o, ['type', 'id', 'from', 'remote'])
      return { type: 'peer-connection', id: bytes(o, 'id', TUNNEL_CONNECTION_ID_BYTES), from: peerId(o, 'from'), remote: address(o['remote']) }
    case 'peer-ready':
      fields(o, ['type'])
      return { type: 'peer-ready' }
    case 'peer-moved': {
      fields(o, ['type', 'url'])
      const url = text(o, 'url', 1, 1024)
      if (!/^wss?:\/\/[^\s#]+$/.test(url)) throw new TunnelProtocolError('url must be a ws:// or wss:// URL')
      return { type: 'peer-moved', url }
    }
    case 'peer-error': {
      fields(o, ['type', 'code', 'message'])
      const code = o['code']
      if (typeof code !== 'string' || !(TUNNEL_PEER_ERROR_REASONS as readonly string[]).includes(code)) throw new TunnelProtocolError(`unknown peer error code ${describe(code)}`)
      return { type: 'peer-error', code: code as TunnelPeerErrorReason, message: text(o, 'message', 0, TUNNEL_MAX_TEXT) }
    }
    case 'challenge':
    case 'error':
    case 'ping':
    case 'pong':
      return decodeTunnelServerMessage(data) as TunnelPeerServerMessage
    default:
      throw new TunnelProtocolError(`unknown peer-path message type ${describe(o['type'])}`)
  }
}

function decodeMap(data: Uint8Array): WireObject {
  if (!(data instanceof Uint8Array)) throw new TunnelProtocolError('a tunnel message must be binary')
  if (data.byteLength > TUNNEL_MAX_MESSAGE_BYTES) throw new TunnelProtocolError(`message of ${data.byteLength} bytes exceeds ${TUNNEL_MAX_MESSAGE_BYTES}`)
  let value: unknown
  try {
    value = decoder.decode(data)
  } catch (err) {
    throw new TunnelProtocolError(`not a MessagePack value: ${(err as Error).message}`, { cause: err })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.getPrototypeOf(value) !== Object.prototype) {
    throw new TunnelProtocolError('a tunnel message must be a MessagePack map')
  }
  return value as WireObject
}

function fields(o: WireObject, required: readonly string[], optional: readonly string[] = [], label = String(o['type'])): void {
  for (const key of Object.keys(o)) {
    if (!required.includes(key) && !optional.includes(key)) throw new TunnelProtocolError(`${label}: unknown field ${describe(key)}`)
  }
  for (const key of required) if (o[key] === undefined) throw new TunnelProtocolError(`${label}: missing field ${key}`)
}

function uint(o: WireObject, key: string, min: number, max: number): number {
  const value = o[key]
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw new TunnelProtocolError(`${key} must be an integer from ${min} to ${max}`)
  return value
}

function bytes(o: WireObject, key: string, length: number): Uint8Array {
  const value = o[key]
  if (!(value instanceof Uint8Array) || value.byteLength !== length) throw new TunnelProtocolError(`${key} must be ${length} bytes`)
  return value
}

function text(o: WireObject, key: string, min: number, max: number): string {
  const value = o[key]
  if (typeof value !== 'string' || value.length < min || value.length > max) throw new TunnelProtocolError(`${key} must be a string of ${min} to ${max} characters`)
  return value
}

function peerId(o: WireObject, key: string): string {
  const value = text(o, key, 1, 128)
  if (!isPeerId(value)) throw new TunnelProtocolError(`${key} must be a PeerId`)
  return value
}

function address(value: unknown): TunnelAddress {
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) throw new TunnelProtocolError('remote must be a map { host, port }')
  const o = value as WireObject
  fields(o, ['host', 'port'], [], 'remote')
  if (typeof o['host'] !== 'string' || isIP(o['host']) === 0) throw new TunnelProtocolError('remote.host must be an IP address')
  return { host: o['host'], port: uint(o, 'port', 0, 65535) }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value)
  return value === null ? 'null' : typeof value
}
