import { generateKeyPair as libp2pGenerateKeyPair, generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey as libp2pPeerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import fc from 'fast-check'
import { base58btc } from 'multiformats/bases/base58'
import { describe, expect, it } from 'vitest'
import { InvalidKeyError, InvalidPeerIdError } from '../../src/errors.js'
import {
  PEER_ID_BYTES,
  PEER_ID_LENGTH,
  bytesEqual,
  generateKeyPair,
  isPeerId,
  keyPairFromSeed,
  peerIdFromBytes,
  peerIdFromPublicKey,
  peerIdToBytes,
  publicKeyFromPeerId,
} from '../../src/identity/index.js'

/** base58btc without the multibase `z` prefix, as PeerIds are written. */
const base58 = (bytes: Uint8Array): string => base58btc.encode(bytes).slice(1)
const BASE58_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** Calls `fn`; passes when it returns or throws InvalidPeerIdError, fails on any other error. */
function onlyTypedError<T>(fn: () => T): T | undefined {
  try {
    return fn()
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidPeerIdError)
    expect((err as InvalidPeerIdError).code).toBe('ERR_INVALID_PEER_ID')
    return undefined
  }
}

// The example from @libp2p/peer-id's documentation.
const DOC_PEER_ID = '12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8'

describe('PeerId text form', () => {
  it('matches the PeerId @libp2p/crypto + @libp2p/peer-id compute for the same seed', async () => {
    for (const fill of [0, 1, 0x42, 0xff]) {
      const seed = new Uint8Array(32).fill(fill)
      const theirs = libp2pPeerIdFromPublicKey((await generateKeyPairFromSeed('Ed25519', seed)).publicKey).toString()
      expect(peerIdFromPublicKey(keyPairFromSeed(seed).publicKey)).toBe(theirs)
    }
  })

  it('is the base58btc identity multihash of the protobuf public key', () => {
    const pair = keyPairFromSeed(new Uint8Array(32).fill(9))
    const expected = base58(Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20, ...pair.publicKey))
    const text = peerIdFromPublicKey(pair.publicKey)
    expect(text).toBe(expected)
    expect(text).toHaveLength(PEER_ID_LENGTH)
    expect(text.startsWith('12D3KooW')).toBe(true)
  })

  it('parses the documented example and round-trips it', () => {
    const key = publicKeyFromPeerId(DOC_PEER_ID)
    expect(key).toHaveLength(32)
    expect(bytesEqual(key, peerIdFromString(DOC_PEER_ID).publicKey!.raw)).toBe(true)
    expect(peerIdFromPublicKey(key)).toBe(DOC_PEER_ID)
  })

  it('round-trips every public key', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (publicKey) => {
        const text = peerIdFromPublicKey(publicKey)
        expect(bytesEqual(publicKeyFromPeerId(text), publicKey)).toBe(true)
        expect(isPeerId(text)).toBe(true)
        expect(bytesEqual(peerIdToBytes(text).subarray(6), publicKey)).toBe(true)
        expect(peerIdFromBytes(peerIdToBytes(text))).toBe(text)
      }),
      { numRuns: 200 },
    )
  })

  it('rejects RSA and secp256k1 PeerIds, CIDs and other non-Ed25519 forms', async () => {
    const rsa = libp2pPeerIdFromPublicKey((await libp2pGenerateKeyPair('RSA', 1024)).publicKey).toString()
    const secp = libp2pPeerIdFromPublicKey((await libp2pGenerateKeyPair('secp256k1')).publicKey).toString()
    const ed = libp2pPeerIdFromPublicKey((await libp2pGenerateKeyPair('Ed25519')).publicKey)
    expect(rsa.startsWith('Qm')).toBe(true)
    expect(secp.startsWith('16Uiu2')).toBe(true)
    const sha256Multihash = base58(Uint8Array.of(0x12, 0x20, ...new Uint8Array(32)))
    const bad = [
      rsa,
      secp,
      ed.toCID().toString(), // bafz… (base32 CIDv1)
      ed.toCID().toString(base58btc), // z… CIDv1
      `z${ed.toString()}`, // multibase-prefixed
      ` ${ed.toString()}`,
      `${ed.toString()} `,
      ed.toString().slice(0, -1),
      `${ed.toString()}1`,
      ed.toString().toLowerCase(),
      sha256Multihash,
      '',
      '12D3KooW',
      '1',
      'Qm',
      'not a peer id',
      '12D3KooW'.padEnd(PEER_ID_LENGTH, '0'), // '0' is not in the base58 alphabet
      '12D3KooW'.padEnd(PEER_ID_LENGTH, 'z'), // decodes past the 32-byte key
      'x'.repeat(100_000),
    ]
    for (const text of bad) {
      expect(() => publicKeyFromPeerId(text), text.slice(0, 60)).toThrow(InvalidPeerIdError)
      expect(isPeerId(text)).toBe(false)
    }
    for (const notString of [undefined, null, 42, new Uint8Array(38), {}]) {
      expect(() => publicKeyFromPeerId(notString as unknown as string)).toThrow(InvalidPeerIdError)
      expect(isPeerId(notString)).toBe(false)
    }
  })

  it('rejects a multihash of the right length that is not an Ed25519 key', () => {
    // Identity multihash of a protobuf secp256k1-typed key with 32 data bytes (wrong type field).
    const wrongType = base58(Uint8Array.of(0x00, 0x24, 0x08, 0x02, 0x12, 0x20, ...new Uint8Array(32).fill(3)))
    expect(() => publicKeyFromPeerId(wrongType)).toThrow(InvalidPeerIdError)
    // sha2-256 multihash padded to 38 bytes.
    const wrongHash = base58(Uint8Array.of(0x12, 0x24, 0x08, 0x01, 0x12, 0x20, ...new Uint8Array(32).fill(3)))
    expect(() => publicKeyFromPeerId(wrongHash)).toThrow(InvalidPeerIdError)
  })

  it('throws only InvalidPeerIdError for arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (text) => {
        const key = onlyTypedError(() => publicKeyFromPeerId(text))
        if (key !== undefined) expect(peerIdFromPublicKey(key)).toBe(text)
      }),
      { numRuns: 1000 },
    )
  })

  it('throws only InvalidPeerIdError for PeerId-shaped base58 strings, and accepts only canonical ones', () => {
    const tail = fc.string({ unit: fc.constantFrom(...BASE58_ALPHABET), minLength: 40, maxLength: 48 })
    fc.assert(
      fc.property(tail, (rest) => {
        const text = `12D3KooW${rest}`
        const key = onlyTypedError(() => publicKeyFromPeerId(text))
        if (key !== undefined) expect(peerIdFromPublicKey(key)).toBe(text)
      }),
      { numRuns: 1000 },
    )
  })

  it('accepts a one-character mutation of a PeerId only when it is itself canonical', () => {
    const original = peerIdFromPublicKey(generateKeyPair().publicKey)
    fc.assert(
      fc.property(fc.nat({ max: PEER_ID_LENGTH - 1 }), fc.constantFrom(...BASE58_ALPHABET), (index, char) => {
        const text = original.slice(0, index) + char + original.slice(index + 1)
        const key = onlyTypedError(() => publicKeyFromPeerId(text))
        if (key !== undefined) expect(peerIdFromPublicKey(key)).toBe(text)
      }),
      { numRuns: 500 },
    )
  })

  it('throws only InvalidPeerIdError for arbitrary bytes, base58-encoded or binary', () => {
    const prefix = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20)
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 60 }),
      // Near misses: the Ed25519 prefix with one byte changed, or a wrong length.
      fc.tuple(fc.nat({ max: 5 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ minLength: 30, maxLength: 34 })).map(
        ([i, b, key]) => {
          const out = Uint8Array.of(...prefix, ...key)
          out[i] = b
          return out
        },
      ),
    )
    fc.assert(
      fc.property(bytes, (raw) => {
        const text = base58(raw)
        const key = onlyTypedError(() => publicKeyFromPeerId(text))
        if (key !== undefined) expect(peerIdFromPublicKey(key)).toBe(text)
        const fromBytes = onlyTypedError(() => peerIdFromBytes(raw))
        if (fromBytes !== undefined) expect(bytesEqual(peerIdToBytes(fromBytes), raw)).toBe(true)
        if (raw.byteLength !== PEER_ID_BYTES) expect(fromBytes).toBeUndefined()
      }),
      { numRuns: 1000 },
    )
  })

  it('rejects public keys that are not 32 bytes', () => {
    expect(() => peerIdFromPublicKey(new Uint8Array(33))).toThrow(InvalidKeyError)
    expect(() => peerIdFromPublicKey(new Uint8Array(31))).toThrow(InvalidKeyError)
    expect(() => peerIdFromPublicKey('12D3' as unknown as Uint8Array)).toThrow(InvalidKeyError)
  })
})
