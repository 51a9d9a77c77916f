import { encode } from '@msgpack/msgpack'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { beaconAuthPayload, beaconPeerKey, beaconToken, beaconTopicKey, signBeaconChallenge, verifyBeaconHello } from '../../src/beacon/beacon-auth.js'
import {
  BEACON_MAX_PAYLOAD_BYTES,
  type ClientMessage,
  type ServerMessage,
  decodeClientMessage,
  decodeServerMessage,
  encodeClientMessage,
  encodeServerMessage,
} from '../../src/beacon/beacon-messages.js'
import { reconnectDelay } from '../../src/beacon/backoff.js'
import { RecentSet } from '../../src/beacon/recent-set.js'
import { BeaconProtocolError, InvalidArgumentError } from '../../src/errors.js'
import { createIdentity } from '../../src/identity/index.js'

const alice = createIdentity()
const bob = createIdentity()
const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill)
const v4 = { family: 'IPv4' as const, host: '203.0.113.5', port: 40_000 }
const v6 = { family: 'IPv6' as const, host: '2001:db8::1', port: 4264 }

const clientMessages: ClientMessage[] = [
  { type: 'hello', version: 1, peerId: alice.peerId, signature: bytes(64) },
  { type: 'register', id: 1 },
  { type: 'unregister', id: 0xffff_ffff },
  { type: 'announce', id: 2, topic: bytes(1), mid: bytes(16) },
  { type: 'announce', id: 3, topic: bytes(64), mid: bytes(16), payload: bytes(BEACON_MAX_PAYLOAD_BYTES) },
  { type: 'withdraw', id: 4, topic: bytes(5) },
  { type: 'signal', id: 5, to: bob.peerId, kind: 'offer', session: bytes(16, 1), mid: bytes(16, 2), payload: bytes(0) },
  { type: 'signal', id: 6, to: bob.peerId, kind: 'candidate', session: bytes(16, 1), mid: bytes(16, 3), payload: bytes(300) },
  { type: 'ping', id: 7 },
]

const serverMessages: ServerMessage[] = [
  { type: 'challenge', version: 1, nonce: bytes(32) },
  { type: 'welcome', version: 1, peerId: alice.peerId, observed: v4, limits: { maxMessageBytes: 16384, maxTopics: 16, messagesPerSecond: 50, heartbeatMs: 15000 } },
  { type: 'ok', id: 1 },
  { type: 'ok', id: 2, observed: [v4, v6] },
  { type: 'error', code: 'protocol', message: 'bad' },
  { type: 'error', id: 3, code: 'peer-not-found', message: 'no such peer' },
  { type: 'signal', from: bob.peerId, observed: [v6], kind: 'answer', session: bytes(16), mid: bytes(16), payload: bytes(10) },
  { type: 'introduction', topic: bytes(3), peerId: bob.peerId, observed: [v4], mid: bytes(16) },
  { type: 'introduction', topic: bytes(3), peerId: bob.peerId, observed: [], mid: bytes(16), payload: bytes(20) },
  { type: 'pong', id: 9 },
]

/** Decoded byte strings are Buffer views; compare contents. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array || (v as { type?: string })?.type === 'Buffer' ? Array.from(v instanceof Uint8Array ? v : ((v as { data: number[] }).data)) : v)))
}

function expectProtocolError(fn: () => unknown): BeaconProtocolError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(BeaconProtocolError)
    expect((err as BeaconProtocolError).code).toBe('ERR_BEACON_PROTOCOL')
    return err as BeaconProtocolError
  }
  throw new Error('expected a BeaconProtocolError')
}

describe('Beacon messages', () => {
  it('round-trips every client message', () => {
    for (const message of clientMessages) expect(plain(decodeClientMessage(encodeClientMessage(message)))).toEqual(plain(message))
  })

  it('round-trips every server message (addresses get their family back)', () => {
    for (const message of serverMessages) expect(plain(decodeServerMessage(encodeServerMessage(message)))).toEqual(plain(message))
  })

  it('refuses messages of the other direction, unknown types and fields, wrong types and sizes', () => {
    const cases: unknown[] = [
      { type: 'challenge', version: 1, nonce: bytes(32) }, // a server message sent by a client
      { type: 'nope', id: 1 },
      { type: 'ping' },
      { type: 'ping', id: 1, extra: true },
      { type: 'ping', id: -1 },
      { type: 'ping', id: 1.5 },
      { type: 'ping', id: 2 ** 32 },
      { type: 'ping', id: '1' },
      { type: 'hello', version: 0, peerId: alice.peerId, signature: bytes(64) },
      { type: 'hello', version: 1, peerId: 'QmNotAnEd25519PeerId', signature: bytes(64) },
      { type: 'hello', version: 1, peerId: alice.peerId, signature: bytes(63) },
      { type: 'announce', id: 1, topic: bytes(0), mid: bytes(16) },
      { type: 'announce', id: 1, topic: bytes(65), mid: bytes(16) },
      { type: 'announce', id: 1, topic: 'text topic', mid: bytes(16) },
      { type: 'announce', id: 1, topic: bytes(4), mid: bytes(15) },
      { type: 'signal', id: 1, to: bob.peerId, kind: 'hello', session: bytes(16), mid: bytes(16), payload: bytes(1) },
      { type: 'signal', id: 1, to: bob.peerId, kind: 'offer', session: bytes(16), mid: bytes(16), payload: bytes(BEACON_MAX_PAYLOAD_BYTES + 1) },
      [1, 2, 3],
      'hello',
      42,
      null,
    ]
    for (const value of cases) expectProtocolError(() => decodeClientMessage(encode(value)))
    expectProtocolError(() => decodeServerMessage(encode({ type: 'error', code: 'teapot', message: 'x' })))
    expectProtocolError(() => decodeServerMessage(encode({ type: 'ok', id: 1, observed: [{ host: 'example.com', port: 1 }] })))
    expectProtocolError(() => decodeServerMessage(encode({ type: 'ok', id: 1, observed: [{ host: '::1', port: 70_000 }] })))
    expectProtocolError(() => decodeServerMessage(encode({ type: 'ok', id: 1, observed: Array(9).fill({ host: '::1', port: 1 }) })))
  })

  it('refuses trailing bytes, extensions, __proto__ keys, non-binary input and oversized input', () => {
    const ping = encodeClientMessage({ type: 'ping', id: 1 })
    expectProtocolError(() => decodeClientMessage(Uint8Array.from([...ping, 0xc0])))
    // fixext1 (type 1) as the id, and a timestamp (ext -1) as the id.
    expectProtocolError(() => decodeClientMessage(Uint8Array.from([0x82, 0xa4, ...Buffer.from('type'), 0xa4, ...Buffer.from('ping'), 0xa2, ...Buffer.from('id'), 0xd4, 0x01, 0x00])))
    expectProtocolError(() => decodeClientMessage(encode({ type: 'ping', id: new Date(0) })))
    const proto = Uint8Array.from([0x82, 0xa9, ...Buffer.from('__proto__'), 0x80, 0xa4, ...Buffer.from('type'), 0xa4, ...Buffer.from('ping')])
    expectProtocolError(() => decodeClientMessage(proto))
    expectProtocolError(() => decodeClientMessage('ping' as unknown as Uint8Array))
    expectProtocolError(() => decodeClientMessage(new Uint8Array(16385)))
    expectProtocolError(() => decodeClientMessage(new Uint8Array(0)))
  })

  it('reports the request id of a malformed request when it can be read', () => {
    expect(expectProtocolError(() => decodeClientMessage(encode({ type: 'announce', id: 77, topic: bytes(0), mid: bytes(16) }))).requestId).toBe(77)
    expect(expectProtocolError(() => decodeClientMessage(encode({ type: 'bogus', id: 5 }))).requestId).toBe(5)
    expect(expectProtocolError(() => decodeClientMessage(encode({ type: 'bogus', id: -5 }))).requestId).toBeUndefined()
  })

  it('fuzz: any bytes decode to a valid message or throw BeaconProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        for (const decodeFn of [decodeClientMessage, decodeServerMessage]) {
          try {
            const message = decodeFn(data)
            expect(typeof message.type).toBe('string')
          } catch (err) {
            expect(err).toBeInstanceOf(BeaconProtocolError)
          }
        }
      }),
      { numRuns: 3000 },
    )
  })

  it('fuzz: any MessagePack value decodes to a valid message or throws BeaconProtocolError', () => {
    const value = fc.letrec((tie) => ({
      any: fc.oneof(
        { depthSize: 'small' },
        fc.constantFrom(...clientMessages, ...serverMessages),
        fc.string(),
        fc.integer(),
        fc.double(),
        fc.boolean(),
        fc.constant(null),
        fc.uint8Array({ maxLength: 70 }),
        fc.array(tie('any'), { maxLength: 4 }),
        fc.dictionary(fc.constantFrom('type', 'id', 'to', 'topic', 'peerId', 'kind', 'mid', 'x'), tie('any'), { maxKeys: 6 }),
      ),
    })).any
    // Mutations of valid messages: one field replaced by an arbitrary value.
    const mutated = fc
      .tuple(fc.constantFrom<Record<string, unknown>>(...(clientMessages as unknown as Record<string, unknown>[])), fc.string({ maxLength: 10 }), value)
      .map(([message, key, v]) => ({ ...message, [Object.keys(message)[key.length % Object.keys(message).length]!]: v }))
    fc.assert(
      fc.property(fc.oneof(value, mutated), (v) => {
        let data: Uint8Array
        try {
          data = encode(v)
        } catch {
          return // not encodable (e.g. -0 edge cases): nothing to test
        }
        for (const decodeFn of [decodeClientMessage, decodeServerMessage]) {
          try {
            decodeFn(data)
          } catch (err) {
            expect(err).toBeInstanceOf(BeaconProtocolError)
          }
        }
      }),
      { numRuns: 3000 },
    )
  })
})

describe('Beacon proof of key and tokens', () => {
  const nonce = bytes(32, 9)
  const certHash = bytes(32, 4)

  it('derives the PeerId token with a domain-separated SHA-256 of the PeerId text', async () => {
    const { createHash } = await import('node:crypto')
    const expected = createHash('sha256').update('peerlink/beacon-token/v1').update(alice.peerId).digest()
    expect(Buffer.from(beaconToken(alice.peerId))).toEqual(expected)
    expect(beaconToken(alice.peerId)).not.toEqual(beaconToken(bob.peerId))
    // Token and topic keys never collide, even for the same bytes.
    expect(beaconPeerKey(alice.peerId)).not.toBe(beaconTopicKey(beaconToken(alice.peerId)))
    expect(() => beaconTopicKey(new Uint8Array(0))).toThrow(InvalidArgumentError)
  })

  it('accepts only a signature by the PeerId key over this nonce and certificate hash', () => {
    const signature = signBeaconChallenge(alice, 1, nonce, certHash)
    expect(verifyBeaconHello(alice.peerId, signature, 1, nonce, certHash)).toBe(true)
    expect(verifyBeaconHello(bob.peerId, signature, 1, nonce, certHash)).toBe(false) // another peer's PeerId
    expect(verifyBeaconHello(alice.peerId, signature, 1, bytes(32, 8), certHash)).toBe(false) // another challenge
    expect(verifyBeaconHello(alice.peerId, signature, 1, nonce, bytes(32, 5))).toBe(false) // another server (MITM)
    expect(verifyBeaconHello(alice.peerId, signature, 2, nonce, certHash)).toBe(false)
    expect(verifyBeaconHello('not a peer id', signature, 1, nonce, certHash)).toBe(false)
    expect(beaconAuthPayload(1, nonce, certHash)).toEqual(Uint8Array.from([1, ...nonce, ...certHash]))
    expect(() => beaconAuthPayload(1, bytes(31), certHash)).toThrow(InvalidArgumentError)
  })
})

describe('reconnectDelay and RecentSet', () => {
  it('doubles from minDelayMs up to maxDelayMs, less up to `jitter` of it', () => {
    const options = { minDelayMs: 100, maxDelayMs: 1_000, jitter: 0.5 }
    expect([0, 1, 2, 3, 4, 10].map((n) => reconnectDelay(n, options, () => 0))).toEqual([100, 200, 400, 800, 1000, 1000])
    expect(reconnectDelay(2, options, () => 0.999_999)).toBe(200)
    fc.assert(
      fc.property(fc.nat(100), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (n, r) => {
        const delay = reconnectDelay(n, options, () => r)
        const base = Math.min(1_000, 100 * 2 ** n)
        return delay >= base / 2 && delay <= base
      }),
    )
    expect(() => reconnectDelay(0, { minDelayMs: 10, maxDelayMs: 5 })).toThrow(InvalidArgumentError)
    expect(() => reconnectDelay(0, { jitter: 2 })).toThrow(InvalidArgumentError)
  })

  it('remembers keys for its window and at most maxKeys of them', () => {
    let now = 0
    const seen = new RecentSet(1_000, 3, () => now)
    expect(seen.add('a')).toBe(true)
    expect(seen.add('a')).toBe(false)
    now = 999
    expect(seen.add('a')).toBe(false)
    now = 1_000
    expect(seen.add('a')).toBe(true) // expired, new again
    seen.add('b')
    seen.add('c')
    seen.add('d') // evicts 'a'
    expect(seen.size).toBe(3)
    expect(seen.add('a')).toBe(true)
  })
})
