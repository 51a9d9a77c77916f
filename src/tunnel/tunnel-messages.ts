/**
 * The tunnel wire protocol, version 1 (see `docs/tunnel-protocol.md`): the typed control
 * messages a device and a tunnel server exchange, their MessagePack encoding and a strict
 * validating decoder shared by both ends.
 *
 * Every control WebSocket binary frame holds exactly one message: a MessagePack map whose
 * `type` field names it. The decoder accepts only the fields a message type defines,
 * with exactly the types and sizes it defines; anything else (unknown type or field,
 * wrong type, out-of-range number, oversized string, trailing bytes, MessagePack
 * extensions) throws {@link TunnelProtocolError}.
 *
 * Transfer WebSockets carry no MessagePack: binary frames are stream bytes and the one
 * text frame `end` closes the sender's direction (see {@link TRANSFER_END}).
 *
 * @module
 */
import { Decoder, Encoder } from '@msgpack/msgpack'
import { isIP } from 'node:net'
import { TunnelProtocolError } from '../errors.js'
import { isTunnelName } from './tunnel-name.js'

/**
 * The protocol version this code speaks (in `challenge` and `hello`, and in the URL paths).
 *
 * @example
 * ```ts
 * import { TUNNEL_PROTOCOL_VERSION, decodeTunnelServerMessage } from 'peerlink'
 *
 * const challenge = decodeTunnelServerMessage(frame)
 * if (challenge.type === 'challenge' && challenge.version !== TUNNEL_PROTOCOL_VERSION) throw new Error('unsupported tunnel server')
 * ```
 */
export const TUNNEL_PROTOCOL_VERSION = 1
/** Bytes in the server's challenge nonce. */
export const TUNNEL_NONCE_BYTES = 32
/** Bytes in a connection id. */
export const TUNNEL_CONNECTION_ID_BYTES = 16
/** Bytes in the per-session secret that proves transfer sockets. */
export const TUNNEL_SESSION_SECRET_BYTES = 32
/** Most ports one `hello` may expose (a server may allow fewer). */
export const TUNNEL_MAX_PORTS = 64
/** Longest token, in characters. */
export const TUNNEL_MAX_TOKEN_LENGTH = 512
/** Longest human-readable text (error messages), in characters. */
export const TUNNEL_MAX_TEXT = 256
/**
 * Largest control message the protocol defines, in bytes (a server may allow less).
 *
 * @example
 * ```ts
 * import WebSocket from 'ws'
 * import { TUNNEL_MAX_MESSAGE_BYTES } from 'peerlink'
 *
 * // No control message is ever larger.
 * const control = new WebSocket('wss://tunnel.example.com:8443/v1/control', { maxPayload: TUNNEL_MAX_MESSAGE_BYTES })
 * ```
 */
export const TUNNEL_MAX_MESSAGE_BYTES = 16384
/** The text frame that ends one direction of a transfer WebSocket (a TCP FIN). */
export const TRANSFER_END = 'end'
/** Path (under the tunnel URL's path) of the control WebSocket. */
export const CONTROL_PATH = `v${TUNNEL_PROTOCOL_VERSION}/control`
/** Path (under the tunnel URL's path) of transfer WebSockets. */
export const TRANSFER_PATH = `v${TUNNEL_PROTOCOL_VERSION}/transfer`

/**
 * Why the server refused something (`error.code` on the wire): `protocol` malformed or
 * out of order, `too-large` over the size limit, `version` unsupported protocol version,
 * `auth` credentials refused or missing, `rate-limited` too many messages per second,
 * `limit` too many ports, devices or connections, or no free port, `name-taken` the
 * name is held by another device, `replaced` the same device logged in on another
 * control socket, `unavailable` the server cannot serve now (shutting down, state store
 * failed).
 */
export type TunnelErrorReason =
  | 'protocol'
  | 'too-large'
  | 'version'
  | 'auth'
  | 'rate-limited'
  | 'limit'
  | 'name-taken'
  | 'replaced'
  | 'unavailable'
/**
 * Every {@link TunnelErrorReason}.
 *
 * @example
 * ```ts
 * import { TUNNEL_ERROR_REASONS, type TunnelErrorReason } from 'peerlink'
 *
 * const isErrorReason = (value: string): value is TunnelErrorReason =>
 *   (TUNNEL_ERROR_REASONS as readonly string[]).includes(value)   // 'auth', 'name-taken', 'limit', …
 * ```
 */
export const TUNNEL_ERROR_REASONS: readonly TunnelErrorReason[] = Object.freeze([
  'protocol',
  'too-large',
  'version',
  'auth',
  'rate-limited',
  'limit',
  'name-taken',
  'replaced',
  'unavailable',
])

/** Why a device could not take a connection (`reject.reason`). */
export type TunnelRejectReason = 'refused' | 'unreachable' | 'limit'
/**
 * Every {@link TunnelRejectReason}.
 *
 * @example
 * ```ts
 * import { TUNNEL_REJECT_REASONS, encodeTunnelClientMessage } from 'peerlink'
 *
 * console.log(TUNNEL_REJECT_REASONS)   // ['refused', 'unreachable', 'limit']
 * control.send(encodeTunnelClientMessage({ type: 'reject', id: connection.id, reason: 'unreachable' }))
 * ```
 */
export const TUNNEL_REJECT_REASONS: readonly TunnelRejectReason[] = Object.freeze(['refused', 'unreachable', 'limit'])

/** A network address as it travels: an IP address and a port. */
export interface TunnelAddress {
  /** IPv4 or IPv6 address. */
  host: string
  /** Port, 0–65535. */
  port: number
}

/** A local port a device exposes, and the public port the server gave it. */
export interface TunnelPortMapping {
  /** The device's local port. */
  local: number
  /** The public TCP port on the server. */
  public: number
}

/** Limits the server announces in `welcome`. */
export interface TunnelLimits {
  /** Largest control message the server accepts, in bytes. */
  maxMessageBytes: number
  /** Control messages per second the server accepts (sustained). */
  messagesPerSecond: number
  /** Milliseconds between the server's heartbeats; a device silent for about twice this is dropped. */
  heartbeatMs: number
  /** Milliseconds the server holds a connection for the device's transfer socket. */
  connectTimeoutMs: number
  /** Milliseconds the server keeps a disconnected device's name and ports. */
  retentionMs: number
}

// ---------------------------------------------------------------- device → server

/** First device message: credentials, the ports to expose and the name wanted. */
export interface TunnelHelloMessage {
  type: 'hello'
  version: number
  /** The local ports to expose (distinct, 1–65535). */
  ports: number[]
  /** The local port of the HTTP service (one of `ports`); absent: the first port; 0: none. */
  http?: number
  /** The name wanted; absent: the one retained for this device, else a random one. */
  name?: string
  /** A device token from the server's list. */
  token?: string
  /** The device's PeerId, with `signature`. */
  peerId?: string
  /** Ed25519 signature, tag `peerlink/tunnel-auth/v1`, of the challenge (see `tunnel-auth.ts`). */
  signature?: Uint8Array
}
/** The device could not take an announced connection (its local service refused, …). */
export interface TunnelRejectMessage {
  type: 'reject'
  id: Uint8Array
  reason: TunnelRejectReason
}
/** Application-level heartbeat (either side may send it; the other answers `pong`). */
export interface TunnelPingMessage {
  type: 'ping'
  id: number
}
/** Answer to `ping`. */
export interface TunnelPongMessage {
  type: 'pong'
  id: number
}
/** Any message a device sends on its control socket. */
export type TunnelClientMessage = TunnelHelloMessage | TunnelRejectMessage | TunnelPingMessage | TunnelPongMessage

// ---------------------------------------------------------------- server → device

/** First server message: its protocol version, a fresh nonce to sign and its id in a fleet. */
export interface TunnelChallengeMessage {
  type: 'challenge'
  version: number
  nonce: Uint8Array
  server: string
}
/** The device was accepted: its name, its public ports and the secret that proves its transfer sockets. */
export interface TunnelWelcomeMessage {
  type: 'welcome'
  version: number
  name: string
  /** `http(s)://NAME.<domain>[:PORT]/` when the device has an HTTP service. */
  httpUrl?: string
  /** The host name the public TCP ports are reached at. */
  host: string
  ports: TunnelPortMapping[]
  /** Per-session secret: transfer sockets carry HMAC-SHA256(secret, …) of their connection id. */
  secret: Uint8Array
  /** True when the name and ports are those the device held before (retention). */
  resumed: boolean
  limits: TunnelLimits
}
/** A connection arrived for one of the device's ports: open a transfer socket for it. */
export interface TunnelConnectionMessage {
  type: 'connection'
  id: Uint8Array
  /** The device's local port it is for. */
  port: number
  /** The address of whoever connected to the public port (or sent the HTTP request). */
  remote: TunnelAddress
}
/** Something was refused. Fatal before `welcome` (the server then closes the socket). */
export interface TunnelErrorMessage {
  type: 'error'
  code: TunnelErrorReason
  message: string
}
/** Any message a server sends on a control socket. */
export type TunnelServerMessage = TunnelChallengeMessage | TunnelWelcomeMessage | TunnelConnectionMessage | TunnelErrorMessage | TunnelPingMessage | TunnelPongMessage

// ---------------------------------------------------------------- encoding

// One encoder and one decoder per process; `encode` returns a copy, never a view of a shared buffer.
const encoder = new Encoder({ ignoreUndefined: true })

/**
 * Encodes a device message (fields set to `undefined` are left out).
 *
 * @example
 * ```ts
 * import { TUNNEL_PROTOCOL_VERSION, encodeTunnelClientMessage } from 'peerlink'
 *
 * control.send(encodeTunnelClientMessage({ type: 'hello', version: TUNNEL_PROTOCOL_VERSION, ports: [8080, 22], name: 'kitchen', token }))
 * ```
 */
export function encodeTunnelClientMessage(message: TunnelClientMessage): Uint8Array {
  return encoder.encode(message)
}

/**
 * Encodes a server message (fields set to `undefined` are left out).
 *
 * @example
 * ```ts
 * import { encodeTunnelServerMessage } from 'peerlink'
 *
 * ws.send(encodeTunnelServerMessage({ type: 'error', code: 'name-taken', message: 'kitchen is held by another device' }))
 * ```
 */
export function encodeTunnelServerMessage(message: TunnelServerMessage): Uint8Array {
  return encoder.encode(message)
}

// ---------------------------------------------------------------- decoding

const decoder = new Decoder({
  maxStrLength: 1024,
  maxBinLength: 64,
  maxArrayLength: TUNNEL_MAX_PORTS,
  maxMapLength: 16,
  maxExtLength: 0,
})

type WireObject = Record<string, unknown>

/**
 * Decodes and validates a message sent by a device.
 *
 * @throws {@link TunnelProtocolError} for anything that is not exactly a valid v1 device message.
 *
 * @example
 * ```ts
 * import { decodeTunnelClientMessage } from 'peerlink'
 *
 * ws.on('message', (data: Buffer) => {
 *   const message = decodeTunnelClientMessage(data)   // throws TunnelProtocolError if malformed
 *   if (message.type === 'hello') console.log('device wants ports', message.ports)
 * })
 * ```
 */
export function decodeTunnelClientMessage(data: Uint8Array): TunnelClientMessage {
  const o = decodeMap(data)
  switch (o['type']) {
    case 'hello': {
      fields(o, ['type', 'version', 'ports'], ['http', 'name', 'token', 'peerId', 'signature'])
      const message: TunnelHelloMessage = { type: 'hello', version: version(o), ports: portList(o) }
      if (o['http'] !== undefined) {
        const http = port(o, 'http', 0)
        if (http !== 0 && !message.ports.includes(http)) throw new TunnelProtocolError('http must be 0 or one of ports')
        message.http = http
      }
      if (o['name'] !== undefined) {
        if (!isTunnelName(o['name'])) throw new TunnelProtocolError('name must be one lower-case DNS label')
        message.name = o['name']
      }
      if (o['token'] !== undefined) message.token = text(o, 'token', 1, TUNNEL_MAX_TOKEN_LENGTH)
      if ((o['peerId'] === undefined) !== (o['signature'] === undefined)) throw new TunnelProtocolError('peerId and signature go together')
      if (o['peerId'] !== undefined) {
        message.peerId = text(o, 'peerId', 1, 128)
        message.signature = bytes(o, 'signature', 64, 64)
      }
      return message
    }
    case 'reject': {
      fields(o, ['type', 'id', 'reason'])
      const reason = o['reason']
      if (typeof reason !== 'string' || !(TUNNEL_REJECT_REASONS as readonly string[]).includes(reason)) {
        throw new TunnelProtocolError(`reason must be one of ${TUNNEL_REJECT_REASONS.join(', ')}`)
      }
      return { type: 'reject', id: connectionId(o), reason: reason as TunnelRejectReason }
    }
    case 'ping':
    case 'pong':
      fields(o, ['type', 'id'])
      return { type: o['type'], id: uint32(o, 'id') }
    default:
      throw new TunnelProtocolError(`unknown device message type ${describe(o['type'])}`)
  }
}

/**
 * Decodes and validates a message sent by a server.
 *
 * @throws {@link TunnelProtocolError} for anything that is not exactly a valid v1 server message.
 *
 * @example
 * ```ts
 * import { decodeTunnelServerMessage } from 'peerlink'
 *
 * control.on('message', (data: Buffer) => {
 *   const message = decodeTunnelServerMessage(data)
 *   if (message.type === 'welcome') console.log(message.httpUrl, message.ports)   // [{ local: 8080, public: 40001 }]
 *   if (message.type === 'connection') console.log('connection from', message.remote.host)
 * })
 * ```
 */
export function decodeTunnelServerMessage(data: Uint8Array): TunnelServerMessage {
  const o = decodeMap(data)
  switch (o['type']) {
    case 'challenge':
      fields(o, ['type', 'version', 'nonce', 'server'])
      return { type: 'challenge', version: version(o), nonce: bytes(o, 'nonce', TUNNEL_NONCE_BYTES, TUNNEL_NONCE_BYTES), server: text(o, 'server', 1, 64) }
    case 'welcome': {
      fields(o, ['type', 'version', 'name', 'host', 'ports', 'secret', 'resumed', 'limits'], ['httpUrl'])
      if (!isTunnelName(o['name'])) throw new TunnelProtocolError('name must be one lower-case DNS label')
      if (typeof o['resumed'] !== 'boolean') throw new TunnelProtocolError('resumed must be a boolean')
      const message: TunnelWelcomeMessage = {
        type: 'welcome',
        version: version(o),
        name: o['name'],
        host: text(o, 'host', 1, 253),
        ports: mappings(o),
        secret: bytes(o, 'secret', TUNNEL_SESSION_SECRET_BYTES, TUNNEL_SESSION_SECRET_BYTES),
        resumed: o['resumed'],
        limits: limits(o['limits']),
      }
      if (o['httpUrl'] !== undefined) message.httpUrl = text(o, 'httpUrl', 1, 512)
      return message
    }
    case 'connection':
      fields(o, ['type', 'id', 'port', 'remote'])
      return { type: 'connection', id: connectionId(o), port: port(o, 'port', 1), remote: address(o['remote']) }
    case 'error': {
      fields(o, ['type', 'code', 'message'])
      const code = o['code']
      if (typeof code !== 'string' || !(TUNNEL_ERROR_REASONS as readonly string[]).includes(code)) {
        throw new TunnelProtocolError(`unknown error code ${describe(code)}`)
      }
      return { type: 'error', code: code as TunnelErrorReason, message: text(o, 'message', 0, TUNNEL_MAX_TEXT) }
    }
    case 'ping':
    case 'pong':
      fields(o, ['type', 'id'])
      return { type: o['type'], id: uint32(o, 'id') }
    default:
      throw new TunnelProtocolError(`unknown server message type ${describe(o['type'])}`)
  }
}

function decodeMap(data: Uint8Array): WireObject {
  if (!(data instanceof Uint8Array)) throw new TunnelProtocolError('a tunnel message must be binary')
  if (data.byteLength > TUNNEL_MAX_MESSAGE_BYTES) {
    throw new TunnelProtocolError(`message of ${data.byteLength} bytes exceeds ${TUNNEL_MAX_MESSAGE_BYTES}`)
  }
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

// ---------------------------------------------------------------- field validators

function fields(o: WireObject, required: readonly string[], optional: readonly string[] = [], label = String(o['type'])): void {
  for (const key of Object.keys(o)) {
    if (!required.includes(key) && !optional.includes(key)) throw new TunnelProtocolError(`${label}: unknown field ${describe(key)}`)
  }
  for (const key of required) {
    if (o[key] === undefined) throw new TunnelProtocolError(`${label}: missing field ${key}`)
  }
}

function uint32(o: WireObject, key: string): number {
  const value = o[key]
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new TunnelProtocolError(`${key} must be an integer from 0 to 2^32-1`)
  }
  return value
}

function version(o: WireObject): number {
  const value = o['version']
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 0xffff) {
    throw new TunnelProtocolError('version must be an integer from 1 to 65535')
  }
  return value
}

function port(o: WireObject, key: string, min: number): number {
  const value = o[key]
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 65535) {
    throw new TunnelProtocolError(`${key} must be a port number from ${min} to 65535`)
  }
  return value
}

function portList(o: WireObject): number[] {
  const value = o['ports']
  if (!Array.isArray(value) || value.length < 1 || value.length > TUNNEL_MAX_PORTS) {
    throw new TunnelProtocolError(`ports must be a list of 1 to ${TUNNEL_MAX_PORTS} port numbers`)
  }
  const ports = value.map((_, i) => port(value as unknown as WireObject, String(i), 1))
  if (new Set(ports).size !== ports.length) throw new TunnelProtocolError('ports lists a port twice')
  return ports
}

function mappings(o: WireObject): TunnelPortMapping[] {
  const value = o['ports']
  if (!Array.isArray(value) || value.length > TUNNEL_MAX_PORTS) throw new TunnelProtocolError(`ports must be a list of at most ${TUNNEL_MAX_PORTS} mappings`)
  return value.map((item) => {
    if (item === null || typeof item !== 'object' || Object.getPrototypeOf(item) !== Object.prototype) throw new TunnelProtocolError('ports[] must be a map { local, public }')
    const m = item as WireObject
    fields(m, ['local', 'public'], [], 'ports[]')
    return { local: port(m, 'local', 1), public: port(m, 'public', 1) }
  })
}

function bytes(o: WireObject, key: string, min: number, max: number): Uint8Array {
  const value = o[key]
  if (!(value instanceof Uint8Array)) throw new TunnelProtocolError(`${key} must be a byte string`)
  if (value.byteLength < min || value.byteLength > max) {
    throw new TunnelProtocolError(min === max ? `${key} must be ${min} bytes` : `${key} must be ${min} to ${max} bytes`)
  }
  return value
}

function connectionId(o: WireObject): Uint8Array {
  return bytes(o, 'id', TUNNEL_CONNECTION_ID_BYTES, TUNNEL_CONNECTION_ID_BYTES)
}

function text(o: WireObject, key: string, min: number, max: number): string {
  const value = o[key]
  if (typeof value !== 'string' || value.length < min || value.length > max) {
    throw new TunnelProtocolError(`${key} must be a string of ${min} to ${max} characters`)
  }
  return value
}

function address(value: unknown): TunnelAddress {
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) {
    throw new TunnelProtocolError('remote must be a map { host, port }')
  }
  const o = value as WireObject
  fields(o, ['host', 'port'], [], 'remote')
  if (typeof o['host'] !== 'string' || isIP(o['host']) === 0) throw new TunnelProtocolError('remote.host must be an IP address')
  return { host: o['host'], port: port(o, 'port', 0) }
}

function limits(value: unknown): TunnelLimits {
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) {
    throw new TunnelProtocolError('limits must be a map')
  }
  const o = value as WireObject
  fields(o, ['maxMessageBytes', 'messagesPerSecond', 'heartbeatMs', 'connectTimeoutMs', 'retentionMs'], [], 'limits')
  return {
    maxMessageBytes: uint32(o, 'maxMessageBytes'),
    messagesPerSecond: uint32(o, 'messagesPerSecond'),
    heartbeatMs: uint32(o, 'heartbeatMs'),
    connectTimeoutMs: uint32(o, 'connectTimeoutMs'),
    retentionMs: uint32(o, 'retentionMs'),
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value)
  return value === null ? 'null' : typeof value
}
