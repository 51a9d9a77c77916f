import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import { StunFingerprintError, StunIntegrityError, StunMalformedError } from '../../src/errors.js'
import {
  assertIntegrity,
  createStunRequest,
  crc32,
  decodeStunMessage,
  encodeStunMessage,
  longTermKey,
  shortTermKey,
  verifyIntegrity,
  verifyMessageIntegrity,
  verifyMessageIntegritySha256,
} from '../../src/stun/index.js'

const key = longTermKey('alice', 'example.org', 'secret', 'sha256')
const request = createStunRequest('allocate', [
  { type: 'requested-transport', value: 17 },
  { type: 'username', value: 'alice' },
  { type: 'realm', value: 'example.org' },
  { type: 'nonce', value: 'abcdef' },
  { type: 'password-algorithm', value: { algorithm: 'sha256', parameters: new Uint8Array(0) } },
])

/** Decodes even when the tampering broke the fingerprint; undefined when no longer STUN. */
function tryDecode(bytes: Uint8Array) {
  try {
    return decodeStunMessage(bytes, { checkFingerprint: false })
  } catch (err) {
    if (err instanceof StunMalformedError) return undefined
    throw err
  }
}

describe('MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6)', () => {
  it('round-trips and verifies with the right key only', () => {
    const bytes = encodeStunMessage(request, { integritySha256: key, fingerprint: true })
    const decoded = decodeStunMessage(bytes)
    expect(verifyMessageIntegritySha256(decoded, key)).toBe(true)
    expect(verifyIntegrity(decoded, key)).toBe(true)
    expect(verifyMessageIntegritySha256(decoded, longTermKey('alice', 'example.org', 'wrong', 'sha256'))).toBe(false)
    expect(verifyMessageIntegrity(decoded, key)).toBe(false) // no SHA1 attribute present
    expect(() => assertIntegrity(decoded, shortTermKey('nope'))).toThrow(StunIntegrityError)
    expect(() => assertIntegrity(decodeStunMessage(encodeStunMessage(request)), key)).toThrow(StunIntegrityError)
  })

  it('supports truncated values (16–32 bytes)', () => {
    for (const length of [16, 20, 24, 28, 32]) {
      const decoded = decodeStunMessage(encodeStunMessage(request, { integritySha256: key, integritySha256Length: length }))
      expect(verifyMessageIntegritySha256(decoded, key)).toBe(true)
    }
  })

  it('MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256 together both verify', () => {
    const decoded = decodeStunMessage(encodeStunMessage(request, { integrity: key, integritySha256: key, fingerprint: true }))
    expect(verifyMessageIntegrity(decoded, key)).toBe(true)
    expect(verifyMessageIntegritySha256(decoded, key)).toBe(true)
  })

  it('detects tampering with any byte covered by the MAC (property)', () => {
    const bytes = encodeStunMessage(request, { integritySha256: key, integrity: key, fingerprint: true })
    const sha256At = decodeStunMessage(bytes).integritySha256Offset as number
    fc.assert(
      fc.property(fc.integer({ min: 0, max: sha256At + 4 + 32 - 1 }), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const tampered = bytes.slice()
        tampered[at] = (tampered[at] as number) ^ xor
        const decoded = tryDecode(tampered)
        // Either no longer a STUN message at all, or the SHA-256 MAC fails.
        if (decoded !== undefined) expect(verifyMessageIntegritySha256(decoded, key)).toBe(false)
      }),
      { numRuns: 500 },
    )
  })

  it('the fingerprint catches tampering too, before any key is involved', () => {
    const bytes = encodeStunMessage(request, { integritySha256: key, fingerprint: true })
    const tampered = bytes.slice()
    tampered[24] = (tampered[24] as number) ^ 1 // REQUESTED-TRANSPORT 17 → 16
    expect(() => decodeStunMessage(tampered)).toThrow(StunFingerprintError)
  })
})

describe('keys and CRC', () => {
  it('short-term key is the UTF-8 password; long-term MD5 key is 16 bytes, SHA-256 32', () => {
    expect(Buffer.from(shortTermKey('pässword')).toString()).toBe('pässword')
    expect(longTermKey('u', 'r', 'p')).toHaveLength(16)
    expect(longTermKey('u', 'r', 'p', 'sha256')).toHaveLength(32)
    // RFC 8489 §9.2.2: MD5("u:r:p") / SHA-256("u:r:p"), computed independently here.
    expect(Buffer.from(longTermKey('u', 'r', 'p')).toString('hex')).toBe(createHash('md5').update('u:r:p').digest('hex'))
    expect(Buffer.from(longTermKey('ü', 'r', 'p', 'sha256')).toString('hex')).toBe(
      createHash('sha256').update(Buffer.from('ü:r:p', 'utf8')).digest('hex'),
    )
  })

  it('crc32 matches the standard check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926)
  })
})
