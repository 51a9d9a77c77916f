import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { publicKeyFromPeerId } from '../../src/identity/peer-id.js'
import { createIdentity } from '../../src/identity/index.js'
import { remoteKeyOf } from '../../src/peer/remote-key.js'

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** What libp2p's parser says: the key, or the error's code. */
function reference(text: string): Uint8Array | string {
  try {
    return publicKeyFromPeerId(text)
  } catch (err) {
    return (err as { code: string }).code
  }
}

function ours(text: string): Uint8Array | string {
  try {
    return remoteKeyOf(text)
  } catch (err) {
    return (err as { code: string }).code
  }
}

describe('remoteKeyOf', () => {
  it('decodes every PeerId to the key libp2p decodes it to', () => {
    for (let i = 0; i < 200; i++) {
      const { peerId, keyPair } = createIdentity()
      expect(remoteKeyOf(peerId)).toEqual(new Uint8Array(keyPair.publicKey))
    }
  })

  it('accepts and refuses exactly what libp2p does for PeerIds with one character changed', () => {
    const { peerId } = createIdentity()
    fc.assert(
      fc.property(fc.integer({ min: 0, max: peerId.length - 1 }), fc.integer({ min: 0, max: BASE58.length + 2 }), (at, pick) => {
        const char = pick < BASE58.length ? BASE58[pick]! : ['0', 'O', 'l'][pick - BASE58.length]!
        const text = peerId.slice(0, at) + char + peerId.slice(at + 1)
        expect(ours(text)).toEqual(reference(text))
      }),
      { numRuns: 400 },
    )
  })

  it('refuses strings that are no PeerId with the same error as libp2p', () => {
    const { peerId } = createIdentity()
    for (const text of ['', '1', peerId.slice(1), `${peerId}1`, `1${peerId.slice(1)}`, peerId.replace(/^12D3/, '11D3'), 'Qm' + peerId.slice(2)]) {
      expect(ours(text)).toEqual(reference(text))
    }
  })

  it('returns a copy: changing it does not change what the next call returns', () => {
    const { peerId, keyPair } = createIdentity()
    remoteKeyOf(peerId).fill(0)
    expect(remoteKeyOf(peerId)).toEqual(new Uint8Array(keyPair.publicKey))
  })
})
