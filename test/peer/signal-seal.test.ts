// Signed signalling: a sealed offer/answer/candidate opens only for the right kind,
// session, PeerIds and key; tampering and garbage get ERR_ICE_SIGNAL_INVALID.
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createIdentity } from '../../src/identity/index.js'
import { encodeSessionDescription } from '../../src/peer/connect-signal.js'
import { openSignal, sealSignal } from '../../src/peer/signal-seal.js'

const alice = createIdentity()
const bob = createIdentity()
const session = randomBytes(16)
const context = { session, from: alice.peerId, to: bob.peerId }
const body = encodeSessionDescription({ ice: { ufrag: 'abcd', pwd: 'a'.repeat(22) }, stream: 7, candidates: ['candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host'], end: false })

describe('sealed signals', () => {
  it('open for the right kind, session, PeerIds and key, giving back the body', () => {
    const sealed = sealSignal(alice, 'offer', context, body)
    expect(Buffer.from(openSignal('offer', context, sealed, alice.keyPair.publicKey)).equals(Buffer.from(body))).toBe(true)
  })

  it('refuse another key, kind, session, sender or recipient as an identity mismatch', () => {
    const sealed = sealSignal(alice, 'offer', context, body)
    const refuse = (f: () => unknown) => expect(f).toThrow(expect.objectContaining({ code: 'ERR_PEER_IDENTITY_MISMATCH' }))
    refuse(() => openSignal('offer', context, sealed, bob.keyPair.publicKey))
    refuse(() => openSignal('answer', context, sealed, alice.keyPair.publicKey))
    refuse(() => openSignal('offer', { ...context, session: randomBytes(16) }, sealed, alice.keyPair.publicKey))
    refuse(() => openSignal('offer', { ...context, from: bob.peerId }, sealed, alice.keyPair.publicKey))
    refuse(() => openSignal('offer', { ...context, to: alice.peerId }, sealed, alice.keyPair.publicKey))
  })

  it('refuse any flipped bit (malformed or mismatched), and any garbage (malformed)', () => {
    const sealed = sealSignal(alice, 'candidate', context, body)
    fc.assert(
      fc.property(fc.nat(sealed.length * 8 - 1), (bit) => {
        const copy = Buffer.from(sealed)
        copy[bit >> 3]! ^= 1 << (bit & 7)
        try {
          openSignal('candidate', context, copy, alice.keyPair.publicKey)
          return false
        } catch (err) {
          return ['ERR_ICE_SIGNAL_INVALID', 'ERR_PEER_IDENTITY_MISMATCH'].includes((err as { code?: string }).code ?? '')
        }
      }),
      { numRuns: 300 },
    )
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (garbage) => {
        try {
          openSignal('offer', context, garbage, alice.keyPair.publicKey)
          return false
        } catch (err) {
          return (err as { code?: string }).code === 'ERR_ICE_SIGNAL_INVALID'
        }
      }),
      { numRuns: 300 },
    )
  })
})
