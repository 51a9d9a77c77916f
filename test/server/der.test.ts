import { X509Certificate } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  derBoolean,
  derInteger,
  derLength,
  derNamedBits,
  derNull,
  derOid,
  derSequence,
  derSet,
  derTime,
  derUtf8String,
  ipAddressBytes,
  readDer,
  readDerChildren,
} from '../../src/server/der.js'

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex')

describe('DER encoder (X.690 examples and known encodings)', () => {
  it('encodes lengths in short and long form', () => {
    expect(hex(derLength(0))).toBe('00')
    expect(hex(derLength(127))).toBe('7f')
    expect(hex(derLength(128))).toBe('8180')
    expect(hex(derLength(256))).toBe('820100')
    expect(hex(derLength(65536))).toBe('83010000')
    expect(() => derLength(-1)).toThrow(/non-negative/)
  })

  it('encodes INTEGERs in minimal two\'s complement', () => {
    expect(hex(derInteger(0))).toBe('020100')
    expect(hex(derInteger(127))).toBe('02017f')
    expect(hex(derInteger(128))).toBe('02020080')
    expect(hex(derInteger(256))).toBe('02020100')
    expect(hex(derInteger(-1))).toBe('0201ff')
    expect(hex(derInteger(-128))).toBe('020180')
    expect(hex(derInteger(-129))).toBe('0202ff7f')
    expect(hex(derInteger(2))).toBe('020102')
    // Unsigned bytes: a 0x00 is added before a set top bit, leading zeros are removed.
    expect(hex(derInteger(Buffer.from([0xff, 0x01])))).toBe('020300ff01')
    expect(hex(derInteger(Buffer.from([0, 0, 0x12])))).toBe('020112')
    expect(hex(derInteger(Buffer.from([0, 0])))).toBe('020100')
  })

  it('encodes OIDs (ecdsa-with-SHA256, commonName, a large arc)', () => {
    expect(hex(derOid('1.2.840.10045.4.3.2'))).toBe('06082a8648ce3d040302')
    expect(hex(derOid('2.5.4.3'))).toBe('0603550403')
    expect(hex(derOid('1.3.6.1.5.5.7.3.1'))).toBe('06082b06010505070301')
    expect(hex(derOid('2.999.3'))).toBe('0603883703') // X.690 §8.19.5 example
    expect(() => derOid('1.40')).toThrow(/below 40/)
    expect(() => derOid('3.1')).toThrow(/OID/)
    expect(() => derOid('1.02')).toThrow(/OID/)
  })

  it('encodes the simple types', () => {
    expect(hex(derBoolean(true))).toBe('0101ff')
    expect(hex(derBoolean(false))).toBe('010100')
    expect(hex(derNull())).toBe('0500')
    expect(hex(derUtf8String('é'))).toBe('0c02c3a9')
    expect(hex(derSequence())).toBe('3000')
    // KeyUsage digitalSignature (bit 0): one byte, 7 unused bits.
    expect(hex(derNamedBits([0]))).toBe('03020780')
    // keyCertSign (5) + cRLSign (6): 0x06 = 1 unused bit.
    expect(hex(derNamedBits([5, 6]))).toBe('03020106')
    expect(hex(derNamedBits([0, 8]))).toBe('0303078080')
  })

  it('sorts SET OF members', () => {
    const a = derInteger(2)
    const b = derInteger(1)
    expect(hex(derSet(a, b))).toBe(`3106${hex(b)}${hex(a)}`)
  })

  it('encodes times as UTCTime until 2049 and GeneralizedTime after (RFC 5280 §4.1.2.5)', () => {
    expect(derTime(new Date('2035-01-02T03:04:05.678Z')).toString('latin1')).toBe('\x17\x0d350102030405Z')
    expect(derTime(new Date('1950-01-01T00:00:00Z')).toString('latin1')).toBe('\x17\x0d500101000000Z')
    expect(derTime(new Date('2050-01-01T00:00:00Z')).toString('latin1')).toBe('\x18\x0f20500101000000Z')
    expect(derTime(new Date('1949-12-31T23:59:59Z')).toString('latin1')).toBe('\x18\x0f19491231235959Z')
    expect(() => derTime(new Date(NaN))).toThrow(/invalid date/)
  })

  it('encodes IP addresses for subjectAltName', () => {
    expect(hex(ipAddressBytes('127.0.0.1'))).toBe('7f000001')
    expect(hex(ipAddressBytes('::1'))).toBe('00000000000000000000000000000001')
    expect(hex(ipAddressBytes('::'))).toBe('0'.repeat(32))
    expect(hex(ipAddressBytes('2001:db8::5'))).toBe('20010db8000000000000000000000005')
    expect(hex(ipAddressBytes('fe80::1:2'))).toBe('fe800000000000000000000000010002')
    expect(hex(ipAddressBytes('1::'))).toBe('00010000000000000000000000000000')
    expect(hex(ipAddressBytes('::ffff:1.2.3.4'))).toBe('00000000000000000000ffff01020304')
    expect(() => ipAddressBytes('1.2.3')).toThrow(/not an IP/)
  })

  it('round-trips through the reader, and the reader refuses broken input', () => {
    const value = derSequence(derInteger(5), derSequence(derUtf8String('x'.repeat(300))), derNull())
    const top = readDer(value)
    expect(top.tag).toBe(0x30)
    const children = readDerChildren(top.contents)
    expect(children.map((child) => child.tag)).toEqual([0x02, 0x30, 0x05])
    expect(readDerChildren(children[1]!.contents)[0]!.contents.toString()).toBe('x'.repeat(300))
    expect(() => readDer(value.subarray(0, value.byteLength - 1))).toThrow(/truncated/)
    expect(() => readDer(Buffer.from([0x30, 0x80, 0, 0]))).toThrow(/indefinite/)
    expect(() => readDer(Buffer.from([0x04, 0x81, 0x05, 1, 2, 3, 4, 5]))).toThrow(/minimally/)
  })

  it('property: any safe integer encodes to what a DER reader decodes back', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }), (n) => {
        const { tag, contents } = readDer(derInteger(n))
        expect(tag).toBe(0x02)
        // Minimal: the first 9 bits are never all equal.
        if (contents.byteLength > 1) {
          const nine = ((contents[0]! << 1) | (contents[1]! >> 7)) & 0x1ff
          expect(nine === 0 || nine === 0x1ff).toBe(false)
        }
        expect(BigInt.asIntN(contents.byteLength * 8, BigInt(`0x${contents.toString('hex')}`))).toBe(n)
      }),
    )
  })

  it('property: random byte strings never crash the reader with anything but InvalidArgumentError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          readDerChildren(bytes)
        } catch (err) {
          expect((err as { code?: string }).code).toBe('ERR_INVALID_ARGUMENT')
        }
      }),
    )
  })

  it('is good enough for OpenSSL: a certificate it builds parses (see tls.test.ts for the full check)', async () => {
    const { createSelfSignedCertificate } = await import('../../src/server/tls.js')
    const { der } = createSelfSignedCertificate()
    expect(new X509Certificate(der).raw.equals(der)).toBe(true)
  })
})
