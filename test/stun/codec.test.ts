import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { InvalidArgumentError, StunFingerprintError, StunMalformedError } from '../../src/errors.js'
import {
  createTransactionId,
  decodeMessageType,
  decodeStunMessage,
  encodeMessageType,
  encodeStunMessage,
  formatIp,
  getAttribute,
  getAttributes,
  normalizeIp,
  parseIp,
  verifyFingerprint,
  verifyMessageIntegrity,
  verifyMessageIntegritySha256,
} from '../../src/stun/index.js'
import type { StunAttribute, StunMessage } from '../../src/stun/index.js'
import { encodeOptionsArb, messageArb } from './arbitraries.js'

const tid = Uint8Array.from({ length: 12 }, (_, i) => i + 1)

function msg(attributes: StunAttribute[], extra: Partial<StunMessage> = {}): StunMessage {
  return { method: 'binding', class: 'request', transactionId: tid, attributes, ...extra }
}

function roundTrip(attributes: StunAttribute[]): StunAttribute[] {
  return decodeStunMessage(encodeStunMessage(msg(attributes))).attributes
}

describe('message type', () => {
  it('encodes the RFC 8489 §5 examples', () => {
    expect(encodeMessageType('binding', 'request')).toBe(0x0001)
    expect(encodeMessageType('binding', 'indication')).toBe(0x0011)
    expect(encodeMessageType('binding', 'success')).toBe(0x0101)
    expect(encodeMessageType('binding', 'error')).toBe(0x0111)
    expect(encodeMessageType('allocate', 'request')).toBe(0x0003)
    expect(encodeMessageType('send', 'indication')).toBe(0x0016)
    expect(encodeMessageType('data', 'indication')).toBe(0x0017)
    expect(encodeMessageType('channel-bind', 'error')).toBe(0x0119)
  })

  it('decodes back, and rejects unknown methods and set top bits', () => {
    expect(decodeMessageType(0x0113)).toEqual({ method: 'allocate', class: 'error' })
    expect(decodeMessageType(0x0002)).toBeUndefined()
    expect(decodeMessageType(0xc001)).toBeUndefined()
  })
})

describe('IP text forms', () => {
  it('parses and formats IPv4 and IPv6 (RFC 5952 compression)', () => {
    expect(parseIp('192.0.2.1')).toEqual({ family: 'IPv4', bytes: Uint8Array.of(192, 0, 2, 1) })
    expect(normalizeIp('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1')
    expect(normalizeIp('::')).toBe('::')
    expect(normalizeIp('::1')).toBe('::1')
    expect(normalizeIp('1:0:0:2:0:0:0:3')).toBe('1:0:0:2::3')
    expect(normalizeIp('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1')
    expect(normalizeIp('::ffff:10.0.0.1')).toBe('::ffff:10.0.0.1')
    expect(normalizeIp('fe80::1%eth0')).toBe('fe80::1')
    for (const bad of ['1.2.3', '256.1.1.1', '01.2.3.4', '1::2::3', 'example.com', '', ':::', '1:2:3:4:5:6:7:8:9']) {
      expect(parseIp(bad)).toBeUndefined()
    }
  })

  it('formatIp and parseIp are inverse on every 16-byte address', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        expect(parseIp(formatIp(bytes))?.bytes).toEqual(bytes)
      }),
    )
  })
})

describe('attribute encodings', () => {
  it('XOR-MAPPED-ADDRESS hides the address on the wire and restores it', () => {
    const bytes = encodeStunMessage(msg([{ type: 'xor-mapped-address', value: { family: 'IPv4', host: '127.0.0.1', port: 5000 } }]))
    // port 5000 ^ 0x2112 and 127.0.0.1 ^ 0x2112a442
    expect(Buffer.from(bytes.subarray(24, 32)).toString('hex')).toBe('0001' + (5000 ^ 0x2112).toString(16).padStart(4, '0') + '5e12a443')
    expect(roundTrip([{ type: 'xor-mapped-address', value: { family: 'IPv6', host: '::1', port: 1 } }])).toEqual([
      { type: 'xor-mapped-address', value: { family: 'IPv6', host: '::1', port: 1 } },
    ])
  })

  it('writes CHANGE-REQUEST flags, EVEN-PORT, ICMP and ERROR-CODE as specified', () => {
    const bytes = encodeStunMessage(
      msg([
        { type: 'change-request', value: { changeIp: true, changePort: false } },
        { type: 'even-port', value: { reserve: true } },
        { type: 'icmp', value: { type: 3, code: 4, data: 1400 } },
        { type: 'error-code', value: { code: 420, reason: 'Unknown Attribute' } },
      ]),
    )
    const hex = Buffer.from(bytes.subarray(20)).toString('hex')
    expect(hex.slice(0, 16)).toBe('0003000400000004')
    expect(hex.slice(16, 32)).toBe('0018000180000000') // 1 byte + 3 padding
    expect(hex.slice(32, 56)).toBe('800400080000' + ((3 << 9) | 4).toString(16).padStart(4, '0') + '00000578')
    expect(hex.slice(56, 72)).toBe('0009001500000414') // class 4, number 20
  })

  it('keeps unknown comprehension-optional attributes and reports unknown comprehension-required ones', () => {
    const decoded = decodeStunMessage(
      encodeStunMessage(
        msg([
          { type: 'unknown', code: 0xc001, value: Uint8Array.of(1, 2, 3) },
          { type: 'unknown', code: 0x7777, value: Uint8Array.of() },
          { type: 'username', value: 'u' },
        ]),
      ),
    )
    expect(decoded.attributes[0]).toEqual({ type: 'unknown', code: 0xc001, value: Uint8Array.of(1, 2, 3) })
    expect(decoded.unknownRequired).toEqual([0x7777])
    expect(getAttribute(decoded, 'username')?.value).toBe('u')
  })

  it('ignores attributes after MESSAGE-INTEGRITY (except MI-SHA256 and FINGERPRINT) and after FINGERPRINT', () => {
    const key = Uint8Array.of(1, 2, 3)
    const signed = encodeStunMessage(msg([{ type: 'software', value: 'x' }]), { integrity: key })
    // Append a PRIORITY attribute after MESSAGE-INTEGRITY and fix the length field.
    const extra = Uint8Array.of(0x00, 0x24, 0x00, 0x04, 0, 0, 0, 9)
    const bytes = new Uint8Array(signed.length + 8)
    bytes.set(signed)
    bytes.set(extra, signed.length)
    new DataView(bytes.buffer).setUint16(2, bytes.length - 20)
    const decoded = decodeStunMessage(bytes)
    expect(getAttribute(decoded, 'priority')).toBeUndefined()
    // §14.5: the MAC is checked with the length field adjusted to end at the attribute.
    expect(verifyMessageIntegrity(decoded, key)).toBe(true)
  })

  it('rejects values it cannot encode with InvalidArgumentError', () => {
    const bad: StunAttribute[] = [
      { type: 'xor-mapped-address', value: { family: 'IPv4', host: 'example.com', port: 1 } },
      { type: 'xor-mapped-address', value: { family: 'IPv6', host: '1.2.3.4', port: 1 } },
      { type: 'mapped-address', value: { family: 'IPv4', host: '1.2.3.4', port: 70000 } },
      { type: 'priority', value: -1 },
      { type: 'error-code', value: { code: 200, reason: '' } },
      { type: 'userhash', value: new Uint8Array(31) },
      { type: 'username', value: 'x'.repeat(513) },
      { type: 'software', value: '\uD800' },
      { type: 'icmp', value: { type: 128, code: 0, data: 0 } },
    ]
    for (const attr of bad) expect(() => encodeStunMessage(msg([attr]))).toThrow(InvalidArgumentError)
    expect(() => encodeStunMessage(msg([], { transactionId: new Uint8Array(11) }))).toThrow(InvalidArgumentError)
    expect(() => encodeStunMessage(msg([{ type: 'data', value: new Uint8Array(65530) }]))).toThrow(InvalidArgumentError)
    expect(() => encodeStunMessage(msg([{ type: 'fingerprint', value: 1 }]), { fingerprint: true })).toThrow(InvalidArgumentError)
  })
})

describe('decoder strictness', () => {
  const good = encodeStunMessage(msg([{ type: 'software', value: 'abc' }]), { fingerprint: true })

  it('throws StunMalformedError on bad headers and lengths', () => {
    const cases: Uint8Array[] = [
      new Uint8Array(0),
      good.subarray(0, 19),
      good.subarray(0, good.length - 4), // length field says more
      Uint8Array.from([...good, 0, 0, 0, 0]), // trailing bytes
    ]
    const cookie = good.slice()
    cookie[4] = 0
    cases.push(cookie)
    const topBits = good.slice()
    topBits[0] = 0x40
    cases.push(topBits)
    const oddLength = good.slice()
    oddLength[3] = (oddLength[3] as number) + 1
    cases.push(oddLength)
    const overrun = good.slice()
    overrun[23] = 200 // SOFTWARE claims 200 bytes
    cases.push(overrun)
    const unknownMethod = good.slice()
    unknownMethod[1] = 0x02
    cases.push(unknownMethod)
    for (const c of cases) expect(() => decodeStunMessage(c)).toThrow(StunMalformedError)
    expect(() => decodeStunMessage('nope' as unknown as Uint8Array)).toThrow(StunMalformedError)
  })

  it('throws StunMalformedError on bad attribute values', () => {
    const header = (len: number): number[] => [0, 1, 0, len, 0x21, 0x12, 0xa4, 0x42, ...tid]
    const cases = [
      [...header(12), 0x00, 0x20, 0x00, 0x08, 0x00, 0x03, 0, 0, 1, 2, 3, 4], // family 3
      [...header(12), 0x00, 0x20, 0x00, 0x08, 0x00, 0x02, 0, 0, 1, 2, 3, 4], // IPv6 with 4 address bytes
      [...header(8), 0x00, 0x24, 0x00, 0x03, 0, 0, 0, 0], // PRIORITY of 3 bytes
      [...header(8), 0x00, 0x09, 0x00, 0x04, 0, 0, 2, 0], // ERROR-CODE class 2
      [...header(8), 0x00, 0x06, 0x00, 0x02, 0xc3, 0x28, 0, 0], // USERNAME not UTF-8
      [...header(12), 0x00, 0x08, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0, 0], // MESSAGE-INTEGRITY of 8 bytes
    ]
    for (const c of cases) expect(() => decodeStunMessage(Uint8Array.from(c))).toThrow(StunMalformedError)
  })

  it('limits the attribute count to 64', () => {
    const many = (n: number): StunAttribute[] => Array.from({ length: n }, () => ({ type: 'use-candidate' }) as const)
    expect(decodeStunMessage(encodeStunMessage(msg(many(64)))).attributes).toHaveLength(64)
    expect(() => decodeStunMessage(encodeStunMessage(msg(many(65))))).toThrow(StunMalformedError)
  })

  it('checks FINGERPRINT and throws StunFingerprintError on mismatch (unless told not to)', () => {
    expect(verifyFingerprint(decodeStunMessage(good))).toBe(true)
    const bad = good.slice()
    bad[24] = 0x41 // change SOFTWARE content
    expect(() => decodeStunMessage(bad)).toThrow(StunFingerprintError)
    expect(verifyFingerprint(decodeStunMessage(bad, { checkFingerprint: false }))).toBe(false)
  })

  it('does not alias the input buffer', () => {
    const input = Buffer.from(encodeStunMessage(msg([{ type: 'data', value: Uint8Array.of(1, 2, 3) }])))
    const decoded = decodeStunMessage(input)
    input.fill(0)
    expect(getAttribute(decoded, 'data')?.value).toEqual(Uint8Array.of(1, 2, 3))
    expect(decoded.raw[1]).toBe(1)
    expect(decoded.raw.constructor).toBe(Uint8Array)
  })
})

describe('round trip (property)', () => {
  it('encode → decode gives the same message for arbitrary attributes and options; re-encode gives the same bytes', () => {
    fc.assert(
      fc.property(messageArb, encodeOptionsArb, (message, options) => {
        const bytes = encodeStunMessage(message, options)
        expect(bytes.length % 4).toBe(0)
        const decoded = decodeStunMessage(bytes)
        expect(decoded.method).toBe(message.method)
        expect(decoded.class).toBe(message.class)
        expect(decoded.transactionId).toEqual(message.transactionId)
        const plain = decoded.attributes.filter(
          (a) => a.type !== 'message-integrity' && a.type !== 'message-integrity-sha256' && a.type !== 'fingerprint',
        )
        expect(plain).toEqual(message.attributes)
        expect(getAttributes(decoded, 'message-integrity')).toHaveLength(options.integrity === undefined ? 0 : 1)
        expect(getAttributes(decoded, 'fingerprint')).toHaveLength(options.fingerprint ? 1 : 0)
        if (options.integrity !== undefined) expect(verifyMessageIntegrity(decoded, options.integrity)).toBe(true)
        if (options.integritySha256 !== undefined) {
          expect(getAttribute(decoded, 'message-integrity-sha256')?.value.length).toBe(options.integritySha256Length)
          expect(verifyMessageIntegritySha256(decoded, options.integritySha256)).toBe(true)
        }
        if (options.fingerprint) expect(verifyFingerprint(decoded)).toBe(true)
        const again = encodeStunMessage({ ...decoded, attributes: plain }, options)
        expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true)
      }),
      { numRuns: 300 },
    )
  })

  it('transaction IDs are random 12-byte values', () => {
    const a = createTransactionId()
    const b = createTransactionId()
    expect(a).toHaveLength(12)
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false)
  })
})
