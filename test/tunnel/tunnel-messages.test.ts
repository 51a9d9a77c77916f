// The tunnel wire codec: round trips, strict validation, and fuzzing (only
// TunnelProtocolError ever comes out of the decoders).
import { encode } from '@msgpack/msgpack'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { TunnelProtocolError } from '../../src/errors.js'
import {
  type TunnelClientMessage,
  type TunnelServerMessage,
  decodeTunnelClientMessage,
  decodeTunnelServerMessage,
  encodeTunnelClientMessage,
  encodeTunnelServerMessage,
} from '../../src/tunnel/tunnel-messages.js'
import { isTunnelName, normalizeTunnelName, randomTunnelName } from '../../src/tunnel/tunnel-name.js'
import { transferProof, verifyTransferProof } from '../../src/tunnel/tunnel-auth.js'

const id16 = () => new Uint8Array(16).fill(3)

const clientMessages: TunnelClientMessage[] = [
  { type: 'hello', version: 1, ports: [22, 8080], http: 8080, name: 'kitchen', token: 'secret-token' },
  { type: 'hello', version: 1, ports: [1], peerId: '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq', signature: new Uint8Array(64) },
  { type: 'reject', id: id16(), reason: 'refused' },
  { type: 'ping', id: 7 },
  { type: 'pong', id: 0 },
]
const serverMessages: TunnelServerMessage[] = [
  { type: 'challenge', version: 1, nonce: new Uint8Array(32), server: 'srv-1' },
  {
    type: 'welcome',
    version: 1,
    name: 'kitchen',
    httpUrl: 'http://kitchen.example.com/',
    host: 'example.com',
    ports: [{ local: 22, public: 20001 }],
    secret: new Uint8Array(32),
    resumed: true,
    limits: { maxMessageBytes: 16384, messagesPerSecond: 50, heartbeatMs: 10000, connectTimeoutMs: 10000, retentionMs: 300000 },
  },
  { type: 'connection', id: id16(), port: 22, remote: { host: '::1', port: 5000 } },
  { type: 'error', code: 'name-taken', message: 'taken' },
  { type: 'ping', id: 1 },
]

describe('tunnel messages', () => {
  it('round-trips every message type', () => {
    for (const message of clientMessages) expect(decodeTunnelClientMessage(encodeTunnelClientMessage(message))).toEqual(message)
    for (const message of serverMessages) expect(decodeTunnelServerMessage(encodeTunnelServerMessage(message))).toEqual(message)
  })

  it.each([
    ['an unknown type', { type: 'bogus' }],
    ['an unknown field', { type: 'ping', id: 1, extra: 1 }],
    ['a missing field', { type: 'reject', id: new Uint8Array(16) }],
    ['ports listed twice', { type: 'hello', version: 1, ports: [80, 80] }],
    ['no ports', { type: 'hello', version: 1, ports: [] }],
    ['port 0', { type: 'hello', version: 1, ports: [0] }],
    ['http not among the ports', { type: 'hello', version: 1, ports: [80], http: 81 }],
    ['an upper-case name', { type: 'hello', version: 1, ports: [80], name: 'Kitchen' }],
    ['a peerId without signature', { type: 'hello', version: 1, ports: [80], peerId: 'x' }],
    ['a short connection id', { type: 'reject', id: new Uint8Array(15), reason: 'refused' }],
    ['an unknown reject reason', { type: 'reject', id: new Uint8Array(16), reason: 'nope' }],
    ['a float id', { type: 'ping', id: 1.5 }],
  ])('refuses %s', (_, object) => {
    expect(() => decodeTunnelClientMessage(encode(object))).toThrow(TunnelProtocolError)
  })

  it('refuses trailing bytes, non-maps and oversized input', () => {
    const good = encodeTunnelClientMessage({ type: 'ping', id: 1 })
    expect(() => decodeTunnelClientMessage(new Uint8Array([...good, 0]))).toThrow(TunnelProtocolError)
    expect(() => decodeTunnelClientMessage(encode([1, 2]))).toThrow(TunnelProtocolError)
    expect(() => decodeTunnelClientMessage(new Uint8Array(20_000))).toThrow(/exceeds/)
  })

  it('decoders throw nothing but TunnelProtocolError on random input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        for (const decode of [decodeTunnelClientMessage, decodeTunnelServerMessage]) {
          try {
            decode(bytes)
          } catch (err) {
            expect(err).toBeInstanceOf(TunnelProtocolError)
          }
        }
      }),
      { numRuns: 2_000 },
    )
  })

  it('decoders throw nothing but TunnelProtocolError on random MessagePack maps', () => {
    const type = fc.constantFrom('hello', 'reject', 'ping', 'pong', 'challenge', 'welcome', 'connection', 'error', 'x')
    const value = fc.oneof(fc.integer(), fc.double(), fc.string(), fc.boolean(), fc.constant(null), fc.uint8Array({ maxLength: 70 }), fc.array(fc.integer({ min: -1, max: 70000 }), { maxLength: 5 }))
    const key = fc.constantFrom('version', 'ports', 'http', 'name', 'token', 'peerId', 'signature', 'id', 'reason', 'nonce', 'server', 'host', 'secret', 'resumed', 'limits', 'remote', 'port', 'code', 'message', 'httpUrl')
    fc.assert(
      fc.property(type, fc.dictionary(key, value, { maxKeys: 8 }), (t, fields) => {
        const bytes = encode({ type: t, ...fields })
        for (const decode of [decodeTunnelClientMessage, decodeTunnelServerMessage]) {
          try {
            decode(bytes)
          } catch (err) {
            expect(err).toBeInstanceOf(TunnelProtocolError)
          }
        }
      }),
      { numRuns: 2_000 },
    )
  })
})

describe('tunnel names and proofs', () => {
  it('names are lower-case DNS labels', () => {
    expect(isTunnelName('a')).toBe(true)
    expect(isTunnelName('my-device-1')).toBe(true)
    expect(isTunnelName('-a')).toBe(false)
    expect(isTunnelName('a-')).toBe(false)
    expect(isTunnelName('a.b')).toBe(false)
    expect(isTunnelName('x'.repeat(64))).toBe(false)
    expect(normalizeTunnelName('Kitchen')).toBe('kitchen')
    expect(() => normalizeTunnelName('under_score')).toThrow(/DNS label/)
    expect(isTunnelName(randomTunnelName())).toBe(true)
  })

  it('a transfer proof is good for its id and secret only', () => {
    const secret = new Uint8Array(32).fill(1)
    const proof = transferProof(secret, id16())
    expect(verifyTransferProof(secret, id16(), proof)).toBe(true)
    expect(verifyTransferProof(secret, new Uint8Array(16), proof)).toBe(false)
    expect(verifyTransferProof(new Uint8Array(32), id16(), proof)).toBe(false)
    expect(verifyTransferProof(secret, id16(), proof.subarray(1))).toBe(false)
  })
})
