/**
 * The Beacon's message encoder: each message type written field by field with a
 * {@link MsgpackWriter}, into the bytes `@msgpack/msgpack` would produce for the same
 * map (same formats, fields in the order of the message definitions), at a fraction of
 * the cost, and optionally behind a frame header (the server's WebSocket frames).
 *
 * A message with a value of an unexpected type (a caller breaking the types) is not
 * encoded here: the functions return `undefined` and the caller falls back to the
 * general encoder.
 *
 * @module
 */
import type { TransportAddress } from '../stun/address.js'
import type { BeaconLimits, ClientMessage, ServerMessage } from './beacon-messages.js'
import { MsgpackWriter, UnsupportedValueError, msgpackString } from './msgpack-writer.js'

/** Bytes kept free in front of a message for a frame header (the longest WebSocket header is 14). */
const HEADROOM = 16

const writer = new MsgpackWriter()

const K = {
  type: msgpackString('type'),
  id: msgpackString('id'),
  version: msgpackString('version'),
  peerId: msgpackString('peerId'),
  signature: msgpackString('signature'),
  topic: msgpackString('topic'),
  mid: msgpackString('mid'),
  payload: msgpackString('payload'),
  to: msgpackString('to'),
  kind: msgpackString('kind'),
  session: msgpackString('session'),
  nonce: msgpackString('nonce'),
  observed: msgpackString('observed'),
  limits: msgpackString('limits'),
  code: msgpackString('code'),
  message: msgpackString('message'),
  from: msgpackString('from'),
  host: msgpackString('host'),
  port: msgpackString('port'),
  maxMessageBytes: msgpackString('maxMessageBytes'),
  maxTopics: msgpackString('maxTopics'),
  messagesPerSecond: msgpackString('messagesPerSecond'),
  heartbeatMs: msgpackString('heartbeatMs'),
}

/** `type` and its value. */
function typeField(type: string): Uint8Array {
  return Uint8Array.from([...K.type, ...msgpackString(type)])
}
const T_HELLO = typeField('hello')
const T_REGISTER = typeField('register')
const T_UNREGISTER = typeField('unregister')
const T_PING = typeField('ping')
const T_ANNOUNCE = typeField('announce')
const T_WITHDRAW = typeField('withdraw')
const T_SIGNAL = typeField('signal')
const T_CHALLENGE = typeField('challenge')
const T_WELCOME = typeField('welcome')
const T_OK = typeField('ok')
const T_PONG = typeField('pong')
const T_ERROR = typeField('error')
const T_INTRODUCTION = typeField('introduction')

function address(value: TransportAddress): void {
  writer.map(2)
  writer.raw(K.host)
  writer.str(value.host)
  writer.raw(K.port)
  writer.uint(value.port)
}

function addresses(value: readonly TransportAddress[]): void {
  if (!Array.isArray(value)) throw new UnsupportedValueError('not an array')
  writer.array(value.length)
  for (const item of value) address(item)
}

function limits(value: BeaconLimits): void {
  writer.map(4)
  writer.raw(K.maxMessageBytes)
  writer.uint(value.maxMessageBytes)
  writer.raw(K.maxTopics)
  writer.uint(value.maxTopics)
  writer.raw(K.messagesPerSecond)
  writer.uint(value.messagesPerSecond)
  writer.raw(K.heartbeatMs)
  writer.uint(value.heartbeatMs)
}

function writeClient(m: ClientMessage): void {
  switch (m.type) {
    case 'hello':
      writer.map(4)
      writer.raw(T_HELLO)
      writer.raw(K.version)
      writer.uint(m.version)
      writer.raw(K.peerId)
      writer.str(m.peerId)
      writer.raw(K.signature)
      writer.bin(m.signature)
      return
    case 'register':
    case 'unregister':
    case 'ping':
      writer.map(2)
      writer.raw(m.type === 'ping' ? T_PING : m.type === 'register' ? T_REGISTER : T_UNREGISTER)
      writer.raw(K.id)
      writer.uint(m.id)
      return
    case 'announce':
      writer.map(m.payload === undefined ? 4 : 5)
      writer.raw(T_ANNOUNCE)
      writer.raw(K.id)
      writer.uint(m.id)
      writer.raw(K.topic)
      writer.bin(m.topic)
      writer.raw(K.mid)
      writer.bin(m.mid)
      if (m.payload !== undefined) {
        writer.raw(K.payload)
        writer.bin(m.payload)
      }
      return
    case 'withdraw':
      writer.map(3)
      writer.raw(T_WITHDRAW)
      writer.raw(K.id)
      writer.uint(m.id)
      writer.raw(K.topic)
      writer.bin(m.topic)
      return
    case 'signal':
      writer.map(7)
      writer.raw(T_SIGNAL)
      writer.raw(K.id)
      writer.uint(m.id)
      writer.raw(K.to)
      writer.str(m.to)
      writer.raw(K.kind)
      writer.str(m.kind)
      writer.raw(K.session)
      writer.bin(m.session)
      writer.raw(K.mid)
      writer.bin(m.mid)
      writer.raw(K.payload)
      writer.bin(m.payload)
      return
    default:
      throw new UnsupportedValueError('unknown type')
  }
}

function writeServer(m: ServerMessage): void {
  switch (m.type) {
    case 'challenge':
      writer.map(3)
      writer.raw(T_CHALLENGE)
      writer.raw(K.version)
      writer.uint(m.version)
      writer.raw(K.nonce)
      writer.bin(m.nonce)
      return
    case 'welcome':
      writer.map(5)
      writer.raw(T_WELCOME)
      writer.raw(K.version)
      writer.uint(m.version)
      writer.raw(K.peerId)
      writer.str(m.peerId)
      writer.raw(K.observed)
      address(m.observed)
      writer.raw(K.limits)
      limits(m.limits)
      return
    case 'ok':
    case 'pong':
      writer.map(m.type === 'ok' && m.observed !== undefined ? 3 : 2)
      writer.raw(m.type === 'ok' ? T_OK : T_PONG)
      writer.raw(K.id)
      writer.uint(m.id)
      if (m.type === 'ok' && m.observed !== undefined) {
        writer.raw(K.observed)
        addresses(m.observed)
      }
      return
    case 'error':
      writer.map(m.id === undefined ? 3 : 4)
      writer.raw(T_ERROR)
      if (m.id !== undefined) {
        writer.raw(K.id)
        writer.uint(m.id)
      }
      writer.raw(K.code)
      writer.str(m.code)
      writer.raw(K.message)
      writer.str(m.message)
      return
    case 'signal':
      writer.map(7)
      writer.raw(T_SIGNAL)
      writer.raw(K.from)
      writer.str(m.from)
      writer.raw(K.observed)
      addresses(m.observed)
      writer.raw(K.kind)
      writer.str(m.kind)
      writer.raw(K.session)
      writer.bin(m.session)
      writer.raw(K.mid)
      writer.bin(m.mid)
      writer.raw(K.payload)
      writer.bin(m.payload)
      return
    case 'introduction':
      writer.map(m.payload === undefined ? 5 : 6)
      writer.raw(T_INTRODUCTION)
      writer.raw(K.topic)
      writer.bin(m.topic)
      writer.raw(K.peerId)
      writer.str(m.peerId)
      writer.raw(K.observed)
      addresses(m.observed)
      writer.raw(K.mid)
      writer.bin(m.mid)
      if (m.payload !== undefined) {
        writer.raw(K.payload)
        writer.bin(m.payload)
      }
      return
    default:
      throw new UnsupportedValueError('unknown type')
  }
}

/**
 * Encodes with `write`; with `header`, the frame header it returns for the message's
 * length is put in front (at most 16 bytes, possibly a reused scratch buffer).
 */
function encode<M>(write: (m: M) => void, message: M, header: ((length: number) => Uint8Array) | undefined): Buffer | undefined {
  writer.reset(HEADROOM)
  try {
    write(message)
  } catch (err) {
    if (err instanceof UnsupportedValueError || err instanceof TypeError) return undefined
    throw err
  }
  return header === undefined ? writer.copy() : writer.copyWithHeader(header(writer.length))
}

/**
 * Encodes a client message (see the module notes), optionally behind a frame header.
 *
 * @returns `undefined` when a value is not of its message's type.
 */
export function encodeClientMessageFast(message: ClientMessage, header?: (length: number) => Uint8Array): Buffer | undefined {
  if (message === null || typeof message !== 'object') return undefined
  return encode(writeClient, message, header)
}

/**
 * Encodes a server message (see the module notes), optionally behind a frame header.
 *
 * @returns `undefined` when a value is not of its message's type.
 */
export function encodeServerMessageFast(message: ServerMessage, header?: (length: number) => Uint8Array): Buffer | undefined {
  if (message === null || typeof message !== 'object') return undefined
  return encode(writeServer, message, header)
}
