// The fast paths of the Beacon codec against the general ones: the field-by-field
// encoder writes exactly what @msgpack/msgpack writes, the fast decoder returns exactly
// what the generic decoder returns (or leaves the message to it), and the client's
// masked frames parse as WebSocket frames.
import { Decoder, encode } from '@msgpack/msgpack'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Writable } from 'node:stream'
import * as wsModule from 'ws'
import { fastDecodeClientMessage, fastDecodeServerMessage } from '../../src/beacon/beacon-fast-decoder.js'
import {
  BEACON_ERROR_REASONS,
  BEACON_SIGNAL_KINDS,
  type ClientMessage,
  type ServerMessage,
  decodeClientMessage,
  decodeClientMessageGeneric,
  decodeServerMessage,
  decodeServerMessageGeneric,
  encodeClientMessage,
  encodeServerMessage,
} from '../../src/beacon/beacon-messages.js'
import { encodeClientFrame } from '../../src/beacon/client-frame.js'
import { createIdentity } from '../../src/identity/index.js'
import type { TransportAddress } from '../../src/stun/address.js'

/** ws's frame parser (exported by ws, not in its type declarations). */
const Receiver = (wsModule as unknown as { Receiver: new (options: { isServer: boolean; maxPayload: number }) => Writable }).Receiver

const peerIds = [createIdentity().peerId, createIdentity().peerId]
const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max })
const id = fc.nat(0xffff_ffff)
const peerId = fc.constantFrom(...peerIds)
const kind = fc.constantFrom(...BEACON_SIGNAL_KINDS)
const address: fc.Arbitrary<TransportAddress> = fc.oneof(
  fc.ipV4().map((host) => ({ family: 'IPv4' as const, host })),
  fc.constantFrom('::1', '2001:db8::1', 'fe80::1:2:3:4', '2001:db8:85a3:8d3:1319:8a2e:370:7348').map((host) => ({ family: 'IPv6' as const, host })),
).chain((a) => fc.nat(65535).map((port) => ({ ...a, port })))
const addresses = fc.array(address, { maxLength: 8 })
const payload = fc.oneof(bytes(0, 40), bytes(100, 300), bytes(8000, 8192))

const clientMessage: fc.Arbitrary<ClientMessage> = fc.oneof(
  fc.record({ type: fc.constant('hello' as const), version: fc.integer({ min: 1, max: 0xffff }), peerId, signature: bytes(64, 64) }),
  fc.record({ type: fc.constantFrom('register' as const, 'unregister' as const, 'ping' as const), id }),
  fc.record({ type: fc.constant('announce' as const), id, topic: bytes(1, 64), mid: bytes(16, 16), payload }, { requiredKeys: ['type', 'id', 'topic', 'mid'] }),
  fc.record({ type: fc.constant('withdraw' as const), id, topic: bytes(1, 64) }),
  fc.record({ type: fc.constant('signal' as const), id, to: peerId, kind, session: bytes(16, 16), mid: bytes(16, 16), payload }),
)

const serverMessage: fc.Arbitrary<ServerMessage> = fc.oneof(
  fc.record({ type: fc.constant('challenge' as const), version: fc.integer({ min: 1, max: 0xffff }), nonce: bytes(32, 32) }),
  fc.record({
    type: fc.constant('welcome' as const),
    version: fc.integer({ min: 1, max: 0xffff }),
    peerId,
    observed: address,
    limits: fc.record({ maxMessageBytes: id, maxTopics: id, messagesPerSecond: id, heartbeatMs: id }),
  }),
  fc.record({ type: fc.constant('ok' as const), id, observed: addresses }, { requiredKeys: ['type', 'id'] }),
  fc.record({ type: fc.constant('error' as const), id, code: fc.constantFrom(...BEACON_ERROR_REASONS), message: fc.string({ maxLength: 100 }) }, { requiredKeys: ['type', 'code', 'message'] }),
  fc.record({ type: fc.constant('signal' as const), from: peerId, observed: addresses, kind, session: bytes(16, 16), mid: bytes(16, 16), payload }),
  fc.record({ type: fc.constant('introduction' as const), topic: bytes(1, 64), peerId, observed: addresses, mid: bytes(16, 16), payload }, { requiredKeys: ['type', 'topic', 'peerId', 'observed', 'mid'] }),
  fc.record({ type: fc.constant('pong' as const), id }),
)

/** A message as the general encoder sees it: addresses without their family, fields in definition order. */
function wire(message: ServerMessage | ClientMessage): unknown {
  const strip = (a: TransportAddress) => ({ host: a.host, port: a.port })
  const order: Record<string, string[]> = {
    hello: ['type', 'version', 'peerId', 'signature'],
    register: ['type', 'id'],
    unregister: ['type', 'id'],
    ping: ['type', 'id'],
    pong: ['type', 'id'],
    announce: ['type', 'id', 'topic', 'mid', 'payload'],
    withdraw: ['type', 'id', 'topic'],
    signal: 'to' in message ? ['type', 'id', 'to', 'kind', 'session', 'mid', 'payload'] : ['type', 'from', 'observed', 'kind', 'session', 'mid', 'payload'],
    challenge: ['type', 'version', 'nonce'],
    welcome: ['type', 'version', 'peerId', 'observed', 'limits'],
    ok: ['type', 'id', 'observed'],
    error: ['type', 'id', 'code', 'message'],
    introduction: ['type', 'topic', 'peerId', 'observed', 'mid', 'payload'],
  }
  const out: Record<string, unknown> = {}
  for (const key of order[message.type]!) {
    const value = (message as unknown as Record<string, unknown>)[key]
    if (value === undefined) continue
    if (key === 'observed') out[key] = Array.isArray(value) ? value.map(strip) : strip(value as TransportAddress)
    else if (key === 'limits') out[key] = { ...(value as object) }
    else out[key] = value
  }
  return out
}

/** Decoded results with byte strings as plain arrays (views of different buffers compare by content). */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? { bytes: Array.from(v) } : (v as { type?: string })?.type === 'Buffer' ? { bytes: (v as { data: number[] }).data } : v)))
}

/** The outcome of a decoder: the message, or the class and message of the error. */
function outcome(decode: (data: Uint8Array) => unknown, data: Uint8Array): unknown {
  try {
    return { ok: plain(decode(data)) }
  } catch (err) {
    return { error: (err as Error).constructor.name, message: (err as Error).message }
  }
}

/** Valid messages, then each corrupted: a byte changed, cut short, a byte added. */
function variants(encoded: Uint8Array, at: number, value: number): Uint8Array[] {
  const i = at % encoded.byteLength
  const changed = Uint8Array.from(encoded)
  changed[i] = value
  return [encoded, changed, encoded.subarray(0, i), Uint8Array.from([...encoded, value])]
}

describe('Beacon codec fast paths', () => {
  it('the field-by-field encoder writes the bytes @msgpack/msgpack writes', () => {
    fc.assert(
      fc.property(clientMessage, serverMessage, (client, server) => {
        expect(Buffer.from(encodeClientMessage(client)).equals(Buffer.from(encode(wire(client), { ignoreUndefined: true })))).toBe(true)
        expect(Buffer.from(encodeServerMessage(server)).equals(Buffer.from(encode(wire(server), { ignoreUndefined: true })))).toBe(true)
      }),
      { numRuns: 300 },
    )
  })

  it('falls back to the general encoder for values of the wrong type', () => {
    const odd = { type: 'ping', id: 1.5 } as unknown as ClientMessage
    expect(new Decoder().decode(encodeClientMessage(odd))).toEqual({ type: 'ping', id: 1.5 })
    const negative = { type: 'pong', id: -3 } as unknown as ServerMessage
    expect(new Decoder().decode(encodeServerMessage(negative))).toEqual({ type: 'pong', id: -3 })
  })

  it('the fast decoder takes the common messages, and gives what the generic decoder gives', () => {
    fc.assert(
      fc.property(clientMessage, serverMessage, (client, server) => {
        const c = encodeClientMessage(client)
        const s = encodeServerMessage(server)
        expect(plain(decodeClientMessage(c))).toEqual(plain(decodeClientMessageGeneric(c)))
        expect(plain(decodeServerMessage(s))).toEqual(plain(decodeServerMessageGeneric(s)))
        if (client.type !== 'hello') expect(fastDecodeClientMessage(c)).toBeDefined()
        if (['signal', 'introduction', 'ok', 'pong'].includes(server.type)) expect(fastDecodeServerMessage(s)).toBeDefined()
      }),
      { numRuns: 300 },
    )
  })

  it('on corrupted and foreign input, the fast decoder agrees with the generic one or leaves it to it', () => {
    const foreign = fc.dictionary(
      fc.constantFrom('type', 'id', 'to', 'kind', 'session', 'mid', 'payload', 'topic', 'from', 'observed', 'peerId', 'x'),
      fc.oneof(fc.constantFrom('signal', 'ok', 'pong', 'ping', 'announce', 'introduction', 'offer', peerIds[0]!), id, fc.integer(), fc.double(), bytes(0, 20), bytes(16, 16), fc.constant(null), addresses.map((list) => list.map((a) => ({ host: a.host, port: a.port })))),
      { maxKeys: 8 },
    )
    const anyValue = fc.oneof(
      id,
      fc.integer(),
      fc.constantFrom(65535, 65536, 2 ** 32 - 1, 2 ** 32, 1.5, -1),
      fc.string({ maxLength: 60 }),
      fc.constantFrom(peerIds[0]!, 'offer', 'nope', '12D3KooWshort', '127.0.0.1', 'example.com'),
      bytes(0, 70),
      bytes(15, 17),
      fc.constant(null),
      fc.array(fc.record({ host: fc.constantFrom('127.0.0.1', '::1', '2001:db8::1', 'x'), port: fc.constantFrom(0, 65535, 65536, 70_000, -1) }), { maxLength: 10 }),
      fc.record({ host: fc.constant('::1'), port: fc.nat(10), extra: fc.constant(1) }),
    )
    // A valid message with one field's value replaced, or one field added.
    const fieldNames = fc.constantFrom('extra', 'id', 'to', 'kind', 'session', 'mid', 'payload', 'topic', 'from', 'observed', 'peerId', 'type')
    const nearlyValid = fc.tuple(fc.oneof(clientMessage, serverMessage), fc.nat(), anyValue, fc.option(fieldNames)).map(([m, at, value, added]) => {
      const o = wire(m) as Record<string, unknown>
      const keys = Object.keys(o)
      o[added ?? keys[at % keys.length]!] = value
      return encode(o)
    })
    const input = fc.oneof(
      nearlyValid,
      fc.tuple(clientMessage, fc.nat(), fc.nat(255)).chain(([m, at, v]) => fc.constantFrom(...variants(encodeClientMessage(m), at, v))),
      fc.tuple(serverMessage, fc.nat(), fc.nat(255)).chain(([m, at, v]) => fc.constantFrom(...variants(encodeServerMessage(m), at, v))),
      foreign.map((o) => encode(o)),
      fc.uint8Array({ maxLength: 80 }),
    )
    fc.assert(
      fc.property(input, (data) => {
        expect(outcome(decodeClientMessage, data)).toEqual(outcome(decodeClientMessageGeneric, data))
        expect(outcome(decodeServerMessage, data)).toEqual(outcome(decodeServerMessageGeneric, data))
      }),
      { numRuns: 3_000 },
    )
  })

  it('agrees with the generic decoder on address lists at and past their limits', () => {
    const tricky = fc.oneof(
      fc.array(
        fc.record({ host: fc.constantFrom('127.0.0.1', '::1', '2001:db8::1', '300.1.1.1', 'x'), port: fc.constantFrom(0, 1, 65535, 65536, 70_000, -1, 1.5) }),
        { maxLength: 10 },
      ),
      fc.array(address.map((a) => ({ host: a.host, port: a.port })), { minLength: 7, maxLength: 10 }),
    )
    const message = fc.tuple(fc.oneof(serverMessage.filter((m) => 'observed' in m && Array.isArray(m.observed))), tricky).map(([m, observed]) => encode({ ...(wire(m) as object), observed }))
    fc.assert(
      fc.property(message, (data) => {
        expect(outcome(decodeServerMessage, data)).toEqual(outcome(decodeServerMessageGeneric, data))
      }),
      { numRuns: 1_000 },
    )
  })

  it('client frames are masked binary WebSocket frames a server reads back (7-bit and 16-bit lengths)', async () => {
    const receiver = new Receiver({ isServer: true, maxPayload: 0 })
    const received: Buffer[] = []
    receiver.on('message', (data: Buffer, isBinary: boolean) => {
      expect(isBinary).toBe(true)
      received.push(Buffer.from(data))
    })
    receiver.on('error', (err: Error) => {
      throw err
    })
    const messages: ClientMessage[] = [
      { type: 'ping', id: 1 },
      { type: 'signal', id: 2, to: peerIds[0]!, kind: 'offer', session: new Uint8Array(16), mid: new Uint8Array(16).fill(1), payload: new Uint8Array(200).fill(2) },
      { type: 'announce', id: 3, topic: new Uint8Array(64), mid: new Uint8Array(16), payload: new Uint8Array(8192).fill(3) },
      { type: 'ping', id: 1.5 } as unknown as ClientMessage, // the general encoder's path
    ]
    const frames = messages.map(encodeClientFrame)
    expect(frames.map((f) => f[1]! & 0x80)).toEqual([0x80, 0x80, 0x80, 0x80])
    expect(frames[0]!.subarray(6).equals(Buffer.from(encodeClientMessage(messages[0]!)))).toBe(false) // masked (a zero key is 1 in 2^32)
    await new Promise<void>((resolve) => receiver.write(Buffer.concat(frames), () => resolve()))
    expect(received.map((r) => r.toString('hex'))).toEqual(messages.map((m) => Buffer.from(encodeClientMessage(m)).toString('hex')))
  })
})
