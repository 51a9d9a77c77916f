import { createPrivateKey, createPublicKey } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { InvalidKeyError } from '../../src/errors.js'
import {
  bytesEqual,
  createIdentity,
  generateKeyPair,
  identityFromKeyPair,
  identityFromSeed,
  keyPairFromSecretKey,
  keyPairFromSeed,
  seedFromSecretKey,
} from '../../src/identity/index.js'

const hex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'))

// RFC 8032 §7.1, TEST 1.
const RFC8032_SEED = hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60')
const RFC8032_PUBLIC = hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')

/** The key pair of `seed` computed independently with node:crypto (PKCS#8 wrapping). */
function nodeKeyPair(seed: Uint8Array): { publicKey: Uint8Array; privateKey: ReturnType<typeof createPrivateKey> } {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed])
  const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' })
  return { publicKey: new Uint8Array(spki.subarray(spki.length - 32)), privateKey }
}

describe('key pairs', () => {
  it('derives the RFC 8032 test vector public key from its seed', () => {
    const pair = keyPairFromSeed(RFC8032_SEED)
    expect(Buffer.from(pair.publicKey).toString('hex')).toBe(Buffer.from(RFC8032_PUBLIC).toString('hex'))
    expect(pair.secretKey.byteLength).toBe(64)
    expect(bytesEqual(pair.secretKey.subarray(0, 32), RFC8032_SEED)).toBe(true)
    expect(bytesEqual(pair.secretKey.subarray(32), RFC8032_PUBLIC)).toBe(true)
  })

  it('agrees with node:crypto for random seeds', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
        expect(bytesEqual(keyPairFromSeed(seed).publicKey, nodeKeyPair(seed).publicKey)).toBe(true)
      }),
      { numRuns: 50 },
    )
  })

  it('generates distinct, self-consistent key pairs', () => {
    const a = generateKeyPair()
    const b = generateKeyPair()
    expect(a.publicKey.byteLength).toBe(32)
    expect(a.secretKey.byteLength).toBe(64)
    expect(bytesEqual(a.publicKey, b.publicKey)).toBe(false)
    expect(bytesEqual(keyPairFromSeed(seedFromSecretKey(a.secretKey)).publicKey, a.publicKey)).toBe(true)
    expect(bytesEqual(keyPairFromSecretKey(a.secretKey).publicKey, a.publicKey)).toBe(true)
  })

  it('rejects seeds and secret keys of the wrong size or shape', () => {
    for (const bad of [new Uint8Array(31), new Uint8Array(33), new Uint8Array(0), 'x'.repeat(32), null, [1, 2]]) {
      expect(() => keyPairFromSeed(bad as Uint8Array)).toThrow(InvalidKeyError)
    }
    expect(() => keyPairFromSecretKey(new Uint8Array(63))).toThrow(InvalidKeyError)
    expect(() => seedFromSecretKey(new Uint8Array(32))).toThrow(InvalidKeyError)
  })

  it('rejects a secret key whose second half is not its public key', () => {
    const pair = generateKeyPair()
    const forged = Uint8Array.from(pair.secretKey)
    forged.set(generateKeyPair().publicKey, 32)
    expect(() => keyPairFromSecretKey(forged)).toThrow(/inconsistent/)
  })
})

describe('identities', () => {
  it('derive their PeerId from the public key', () => {
    const a = identityFromSeed(RFC8032_SEED)
    const b = identityFromSeed(Uint8Array.from(RFC8032_SEED))
    expect(a.peerId).toBe(b.peerId)
    expect(a.peerId).toMatch(/^12D3KooW/)
    expect(createIdentity().peerId).not.toBe(createIdentity().peerId)
  })

  it('check key pairs handed to identityFromKeyPair', () => {
    const pair = generateKeyPair()
    expect(identityFromKeyPair(pair).peerId).toBe(identityFromKeyPair(keyPairFromSecretKey(pair.secretKey)).peerId)
    expect(() => identityFromKeyPair({ publicKey: generateKeyPair().publicKey, secretKey: pair.secretKey })).toThrow(
      InvalidKeyError,
    )
  })
})
