import { createPublicKey, verify as nodeVerify } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError, InvalidKeyError, InvalidSignatureError } from '../../src/errors.js'
import {
  SIGNATURE_TAGS,
  type SignatureTag,
  assertValidSignature,
  generateKeyPair,
  keyPairFromSeed,
  sign,
  signedBytes,
  verify,
} from '../../src/identity/index.js'

const pair = keyPairFromSeed(new Uint8Array(32).fill(5))
const other = keyPairFromSeed(new Uint8Array(32).fill(6))
const tag = fc.constantFrom(...SIGNATURE_TAGS)
const message = fc.uint8Array({ maxLength: 200 })

describe('domain-separated signatures', () => {
  it('registers exactly the documented tags, all of the form peerlink/<purpose>/v1', () => {
    expect([...SIGNATURE_TAGS].sort()).toEqual(
      [
        'peerlink/beacon-auth/v1',
        'peerlink/signal-offer/v1',
        'peerlink/signal-answer/v1',
        'peerlink/signal-candidate/v1',
        'peerlink/tunnel-auth/v1',
        'peerlink/session-binding/v1',
      ].sort(),
    )
    for (const t of SIGNATURE_TAGS) expect(t).toMatch(/^peerlink\/[a-z-]+\/v1$/)
  })

  it('signs len(tag) || tag || message, as plain Ed25519 that node:crypto verifies', () => {
    const msg = new TextEncoder().encode('hello')
    const bytes = signedBytes('peerlink/signal-offer/v1', msg)
    expect(bytes[0]).toBe('peerlink/signal-offer/v1'.length)
    expect(Buffer.from(bytes.subarray(1, 25)).toString()).toBe('peerlink/signal-offer/v1')
    expect(Buffer.from(bytes.subarray(25)).toString()).toBe('hello')
    const signature = sign(pair.secretKey, 'peerlink/signal-offer/v1', msg)
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), pair.publicKey])
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' })
    expect(nodeVerify(null, bytes, key, signature)).toBe(true)
    // The raw message alone (no domain separation) does not verify.
    expect(nodeVerify(null, msg, key, signature)).toBe(false)
  })

  it('verifies what it signs', () => {
    fc.assert(
      fc.property(tag, message, (t, m) => {
        const signature = sign(pair.secretKey, t, m)
        expect(signature).toHaveLength(64)
        expect(verify(pair.publicKey, t, m, signature)).toBe(true)
        expect(() => assertValidSignature(pair.publicKey, t, m, signature)).not.toThrow()
      }),
      { numRuns: 100 },
    )
  })

  it('never verifies a signature under another tag', () => {
    fc.assert(
      fc.property(tag, tag, message, (t1, t2, m) => {
        fc.pre(t1 !== t2)
        const signature = sign(pair.secretKey, t1, m)
        expect(verify(pair.publicKey, t2, m, signature)).toBe(false)
        expect(() => assertValidSignature(pair.publicKey, t2, m, signature)).toThrow(InvalidSignatureError)
      }),
      { numRuns: 200 },
    )
  })

  it('encodes distinct (tag, message) pairs to distinct signed bytes', () => {
    // Includes messages that start with another tag's bytes: the length prefix keeps them apart.
    const tricky = fc.oneof(
      message,
      fc.tuple(tag, message).map(([t, m]) => Uint8Array.of(...new TextEncoder().encode(t), ...m)),
      fc.tuple(tag, message).map(([t, m]) => signedBytes(t, m)),
    )
    fc.assert(
      fc.property(tag, tricky, tag, tricky, (t1, m1, t2, m2) => {
        fc.pre(t1 !== t2 || Buffer.compare(m1, m2) !== 0)
        expect(Buffer.compare(signedBytes(t1, m1), signedBytes(t2, m2))).not.toBe(0)
      }),
      { numRuns: 500 },
    )
  })

  it('detects any tampering with the message or the signature', () => {
    fc.assert(
      fc.property(tag, fc.uint8Array({ minLength: 1, maxLength: 100 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (t, m, at, bit) => {
        const signature = sign(pair.secretKey, t, m)
        const m2 = Uint8Array.from(m)
        m2[at % m2.length]! ^= 1 << bit
        expect(verify(pair.publicKey, t, m2, signature)).toBe(false)
        const s2 = Uint8Array.from(signature)
        s2[at % 64]! ^= 1 << bit
        expect(verify(pair.publicKey, t, m, s2)).toBe(false)
        expect(verify(other.publicKey, t, m, signature)).toBe(false)
        expect(verify(pair.publicKey, t, Uint8Array.of(...m, 0), signature)).toBe(false)
      }),
      { numRuns: 100 },
    )
  })

  it('treats a signature of the wrong length as invalid', () => {
    const m = new Uint8Array(3)
    const signature = sign(pair.secretKey, 'peerlink/tunnel-auth/v1', m)
    expect(verify(pair.publicKey, 'peerlink/tunnel-auth/v1', m, signature.subarray(0, 63))).toBe(false)
    expect(verify(pair.publicKey, 'peerlink/tunnel-auth/v1', m, Uint8Array.of(...signature, 0))).toBe(false)
    expect(verify(pair.publicKey, 'peerlink/tunnel-auth/v1', m, new Uint8Array(0))).toBe(false)
    expect(() => assertValidSignature(pair.publicKey, 'peerlink/tunnel-auth/v1', m, new Uint8Array(0))).toThrow(
      InvalidSignatureError,
    )
  })

  it('rejects misuse at once', () => {
    const m = new Uint8Array(1)
    const signature = sign(pair.secretKey, 'peerlink/beacon-auth/v1', m)
    const unknown = 'peerlink/unknown/v1' as SignatureTag
    expect(() => sign(pair.secretKey, unknown, m)).toThrow(InvalidArgumentError)
    expect(() => verify(pair.publicKey, unknown, m, signature)).toThrow(InvalidArgumentError)
    expect(() => sign(pair.secretKey, 'peerlink/beacon-auth/v1', 'text' as unknown as Uint8Array)).toThrow(
      InvalidArgumentError,
    )
    expect(() => sign(pair.publicKey, 'peerlink/beacon-auth/v1', m)).toThrow(InvalidKeyError)
    expect(() => verify(pair.secretKey, 'peerlink/beacon-auth/v1', m, signature)).toThrow(InvalidKeyError)
    expect(() => verify(pair.publicKey, 'peerlink/beacon-auth/v1', m, 'sig' as unknown as Uint8Array)).toThrow(
      InvalidArgumentError,
    )
  })

  it('signs with fresh random keys too', () => {
    const fresh = generateKeyPair()
    const m = new Uint8Array([1, 2, 3])
    const signature = sign(fresh.secretKey, 'peerlink/session-binding/v1', m)
    expect(verify(fresh.publicKey, 'peerlink/session-binding/v1', m, signature)).toBe(true)
    expect(verify(pair.publicKey, 'peerlink/session-binding/v1', m, signature)).toBe(false)
  })
})
