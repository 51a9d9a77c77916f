/**
 * A fast path for decoding the Beacon's common messages straight from their bytes,
 * without building a generic object first.
 *
 * It reads only the forms the Beacon's own encoder writes (fixmap, fixstr keys, fixstr or
 * str8 ASCII strings, unsigned integers, bin8/bin16, fixarray), and only messages that
 * are valid as a whole; for anything else — another form, a duplicate key, a value out of
 * range, trailing bytes — it returns `undefined`, and the caller runs the strict generic
 * decoder, which then accepts the message or explains what is wrong with it. So whatever
 * this returns is exactly what the generic decoder would have returned.
 *
 * Not re-entrant (one decoding at a time; decoding is synchronous).
 *
 * @module
 */
import { isIP } from 'node:net'
import type { TransportAddress } from '../stun/address.js'
import { BEACON_ID_BYTES, BEACON_MAX_ADDRESSES, BEACON_MAX_PAYLOAD_BYTES, BEACON_MAX_TOPIC_BYTES, type BeaconSignalKind, hasPeerIdForm } from './beacon-constants.js'
import type { ClientMessage, ServerMessage } from './beacon-messages.js'

// Field numbers: bits of the `seen` mask.
const TYPE = 0
const ID = 1
const TO = 2
const KIND = 3
const SESSION = 4
const MID = 5
const PAYLOAD = 6
const TOPIC = 7
const FROM = 8
const OBSERVED = 9
const PEER_ID = 10
const HOST = 11
const PORT = 12

/** Field names by length, for matching key bytes. */
const KEYS: Array<Array<[bytes: Uint8Array, field: number]>> = []
for (const [name, field] of [
  ['type', TYPE],
  ['id', ID],
  ['to', TO],
  ['kind', KIND],
  ['session', SESSION],
  ['mid', MID],
  ['payload', PAYLOAD],
  ['topic', TOPIC],
  ['from', FROM],
  ['observed', OBSERVED],
  ['peerId', PEER_ID],
  ['host', HOST],
  ['port', PORT],
] as const) {
  ;(KEYS[name.length] ??= []).push([Buffer.from(name, 'latin1'), field])
}

const SIGNAL_KINDS: readonly BeaconSignalKind[] = ['offer', 'answer', 'candidate', 'close']
const BAIL = -1

let buf: Uint8Array = new Uint8Array(0)
let pos = 0
let end = 0

/** The field a fixstr key names, or {@link BAIL}. */
function key(): number {
  const b = buf[pos]!
  if ((b & 0xe0) !== 0xa0) return BAIL
  const n = b & 0x1f
  const candidates = KEYS[n]
  if (candidates === undefined || pos + 1 + n > end) return BAIL
  const start = pos + 1
  outer: for (const [bytes, field] of candidates) {
    for (let i = 0; i < n; i++) if (buf[start + i] !== bytes[i]) continue outer
    pos = start + n
    return field
  }
  return BAIL
}

/** An ASCII string (fixstr or str8), or `undefined`. */
function ascii(): string | undefined {
  const b = buf[pos]!
  let n: number
  if ((b & 0xe0) === 0xa0) {
    n = b & 0x1f
    pos += 1
  } else if (b === 0xd9 && pos + 1 < end) {
    n = buf[pos + 1]!
    pos += 2
  } else {
    return undefined
  }
  if (pos + n > end) return undefined
  for (let i = 0; i < n; i++) if (buf[pos + i]! > 0x7f) return undefined
  const s = latin1Slice.call(buf, pos, pos + n)
  pos += n
  return s
}

/** `Buffer#latin1Slice`, which also reads a plain Uint8Array: one native call for a string. */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice

/** An unsigned integer below 2^32, or {@link BAIL}. */
function uint(): number {
  const b = buf[pos]!
  if (b < 0x80) {
    pos += 1
    return b
  }
  if (b === 0xcc && pos + 2 <= end) {
    pos += 2
    return buf[pos - 1]!
  }
  if (b === 0xcd && pos + 3 <= end) {
    pos += 3
    return (buf[pos - 2]! << 8) | buf[pos - 1]!
  }
  if (b === 0xce && pos + 5 <= end) {
    pos += 5
    return buf[pos - 4]! * 0x1000000 + ((buf[pos - 3]! << 16) | (buf[pos - 2]! << 8) | buf[pos - 1]!)
  }
  return BAIL
}

/** A byte string (bin8 or bin16) of `min` to `max` bytes, as a view of the input, or `undefined`. */
function bin(min: number, max: number): Uint8Array | undefined {
  const b = buf[pos]!
  let n: number
  if (b === 0xc4 && pos + 2 <= end) {
    n = buf[pos + 1]!
    pos += 2
  } else if (b === 0xc5 && pos + 3 <= end) {
    n = (buf[pos + 1]! << 8) | buf[pos + 2]!
    pos += 3
  } else {
    return undefined
  }
  if (n < min || n > max || pos + n > end) return undefined
  pos += n
  return buf.subarray(pos - n, pos)
}

/** `{ host, port }` (either order), or `undefined`. */
function address(): TransportAddress | undefined {
  if (buf[pos] !== 0x82) return undefined
  pos += 1
  let host: string | undefined
  let port = BAIL
  for (let i = 0; i < 2; i++) {
    if (pos >= end) return undefined
    const field = key()
    if (pos >= end) return undefined
    if (field === HOST && host === undefined) host = ascii()
    else if (field === PORT && port === BAIL) port = uint()
    else return undefined
  }
  if (host === undefined || port === BAIL || port > 65535) return undefined
  const family = isIP(host)
  if (family === 0) return undefined
  return { family: family === 6 ? 'IPv6' : 'IPv4', host, port }
}

/** A fixarray of addresses, or `undefined`. */
function addresses(): TransportAddress[] | undefined {
  const b = buf[pos]!
  if ((b & 0xf0) !== 0x90) return undefined
  const n = b & 0x0f
  if (n > BEACON_MAX_ADDRESSES) return undefined
  pos += 1
  const list: TransportAddress[] = []
  for (let i = 0; i < n; i++) {
    if (pos >= end) return undefined
    const item = address()
    if (item === undefined) return undefined
    list.push(item)
  }
  return list
}

interface Fields {
  type: string | undefined
  id: number
  to: string | undefined
  kind: string | undefined
  session: Uint8Array | undefined
  mid: Uint8Array | undefined
  payload: Uint8Array | undefined
  topic: Uint8Array | undefined
  from: string | undefined
  observed: TransportAddress[] | undefined
  peerId: string | undefined
}

const f: Fields = { type: undefined, id: BAIL, to: undefined, kind: undefined, session: undefined, mid: undefined, payload: undefined, topic: undefined, from: undefined, observed: undefined, peerId: undefined }

/** Reads the top-level map into {@link f}; returns the mask of fields seen, or {@link BAIL}. */
function readMap(data: Uint8Array): number {
  buf = data
  pos = 0
  end = data.byteLength
  if (end === 0) return BAIL
  const header = buf[0]!
  if ((header & 0xf0) !== 0x80) return BAIL
  const n = header & 0x0f
  pos = 1
  f.type = f.to = f.kind = f.from = f.peerId = undefined
  f.session = f.mid = f.payload = f.topic = undefined
  f.observed = undefined
  f.id = BAIL
  let seen = 0
  for (let i = 0; i < n; i++) {
    if (pos >= end) return BAIL
    const field = key()
    if (field === BAIL || (seen & (1 << field)) !== 0 || pos >= end) return BAIL
    seen |= 1 << field
    switch (field) {
      case TYPE:
        if ((f.type = ascii()) === undefined) return BAIL
        break
      case ID:
        if ((f.id = uint()) === BAIL) return BAIL
        break
      case TO:
        if ((f.to = ascii()) === undefined) return BAIL
        break
      case KIND:
        if ((f.kind = ascii()) === undefined) return BAIL
        break
      case SESSION:
        if ((f.session = bin(BEACON_ID_BYTES, BEACON_ID_BYTES)) === undefined) return BAIL
        break
      case MID:
        if ((f.mid = bin(BEACON_ID_BYTES, BEACON_ID_BYTES)) === undefined) return BAIL
        break
      case PAYLOAD:
        if ((f.payload = bin(0, BEACON_MAX_PAYLOAD_BYTES)) === undefined) return BAIL
        break
      case TOPIC:
        if ((f.topic = bin(1, BEACON_MAX_TOPIC_BYTES)) === undefined) return BAIL
        break
      case FROM:
        if ((f.from = ascii()) === undefined) return BAIL
        break
      case OBSERVED:
        if ((f.observed = addresses()) === undefined) return BAIL
        break
      case PEER_ID:
        if ((f.peerId = ascii()) === undefined) return BAIL
        break
      default:
        return BAIL
    }
  }
  return pos === end ? seen : BAIL
}

const mask = (...fields: number[]) => fields.reduce((m, field) => m | (1 << field), 0)
const ID_ONLY = mask(TYPE, ID)
const SIGNAL_REQUEST = mask(TYPE, ID, TO, KIND, SESSION, MID, PAYLOAD)
const ANNOUNCE = mask(TYPE, ID, TOPIC, MID)
const WITHDRAW = mask(TYPE, ID, TOPIC)
const OK_OBSERVED = mask(TYPE, ID, OBSERVED)
const SIGNAL_DELIVERY = mask(TYPE, FROM, OBSERVED, KIND, SESSION, MID, PAYLOAD)
const INTRODUCTION = mask(TYPE, TOPIC, PEER_ID, OBSERVED, MID)
const WITH_PAYLOAD = mask(PAYLOAD)

function kind(): BeaconSignalKind | undefined {
  const value = f.kind as BeaconSignalKind
  return SIGNAL_KINDS.includes(value) ? value : undefined
}

/**
 * Decodes a client message of a common kind (signal, register, unregister, ping,
 * announce, withdraw; not hello) if it is plainly valid.
 *
 * @returns `undefined` when the generic decoder must decide (see the module notes).
 */
export function fastDecodeClientMessage(data: Uint8Array): ClientMessage | undefined {
  const seen = readMap(data)
  if (seen === BAIL) return undefined
  switch (f.type) {
    case 'signal': {
      const k = kind()
      if (seen !== SIGNAL_REQUEST || k === undefined || !hasPeerIdForm(f.to)) return undefined
      return { type: 'signal', id: f.id, to: f.to, kind: k, session: f.session!, mid: f.mid!, payload: f.payload! }
    }
    case 'register':
    case 'unregister':
    case 'ping':
      return seen === ID_ONLY ? { type: f.type, id: f.id } : undefined
    case 'announce': {
      if ((seen & ~WITH_PAYLOAD) !== ANNOUNCE) return undefined
      const message: ClientMessage = { type: 'announce', id: f.id, topic: f.topic!, mid: f.mid! }
      if (f.payload !== undefined) message.payload = f.payload
      return message
    }
    case 'withdraw':
      return seen === WITHDRAW ? { type: 'withdraw', id: f.id, topic: f.topic! } : undefined
    default:
      return undefined
  }
}

/**
 * Decodes a server message of a common kind (signal, introduction, ok, pong; not
 * challenge, welcome or error) if it is plainly valid.
 *
 * @returns `undefined` when the generic decoder must decide (see the module notes).
 */
export function fastDecodeServerMessage(data: Uint8Array): ServerMessage | undefined {
  const seen = readMap(data)
  if (seen === BAIL) return undefined
  switch (f.type) {
    case 'signal': {
      const k = kind()
      if (seen !== SIGNAL_DELIVERY || k === undefined || !hasPeerIdForm(f.from)) return undefined
      return { type: 'signal', from: f.from, observed: f.observed!, kind: k, session: f.session!, mid: f.mid!, payload: f.payload! }
    }
    case 'ok':
      if (seen === ID_ONLY) return { type: 'ok', id: f.id }
      return seen === OK_OBSERVED ? { type: 'ok', id: f.id, observed: f.observed! } : undefined
    case 'pong':
      return seen === ID_ONLY ? { type: 'pong', id: f.id } : undefined
    case 'introduction': {
      if ((seen & ~WITH_PAYLOAD) !== INTRODUCTION || !hasPeerIdForm(f.peerId)) return undefined
      const message: ServerMessage = { type: 'introduction', topic: f.topic!, peerId: f.peerId, observed: f.observed!, mid: f.mid! }
      if (f.payload !== undefined) message.payload = f.payload
      return message
    }
    default:
      return undefined
  }
}
