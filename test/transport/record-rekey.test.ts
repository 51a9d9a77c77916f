// Rekeying of the secure connection's records (src/transport/record-rekey.ts): Noise's
// REKEY with AES-GCM, applied by both sides after every `interval` records of a direction.
import { describe, it, expect, afterEach } from 'vitest'
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { rekey, rekeyPolicy, REKEY_INTERVAL } from '../../src/transport/record-rekey.js'
import { connectedPair, receiveAll, sendRandom, socketPair } from './helpers.js'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  rekeyPolicy.interval = REKEY_INTERVAL
  while (cleanups.length > 0) await cleanups.pop()!()
})

describe('rekey', () => {
  it('is Noise REKEY(k): the first 32 bytes of ENCRYPT(k, 2^64 - 1, "", zeros(32))', () => {
    const key = randomBytes(32)
    const nonce = Buffer.from('00000000ffffffffffffffff', 'hex')
    const cipher = createCipheriv('aes-256-gcm', key, nonce)
    const expected = Buffer.concat([cipher.update(Buffer.alloc(32)), cipher.final()])
    expect(rekey(key).equals(expected.subarray(0, 32))).toBe(true)
    expect(rekey(key).equals(rekey(key))).toBe(true) // deterministic: both sides derive the same key
    expect(rekey(key).equals(key)).toBe(false)
    expect(rekey(rekey(key)).equals(rekey(key))).toBe(false)
  })

  it('keeps a connection intact through many rekeys in both directions', async () => {
    rekeyPolicy.interval = 3
    const sockets = await socketPair()
    cleanups.push(sockets.close)
    const [a, b] = await connectedPair(sockets.a, sockets.b)
    const SIZE = 2 * 1024 * 1024 // about 32 records each way: 10 rekeys per direction
    const [sentA, sentB, gotA, gotB] = await Promise.all([sendRandom(a, SIZE), sendRandom(b, SIZE), receiveAll(a), receiveAll(b)])
    expect(gotB).toEqual({ bytes: SIZE, sha256: sentA })
    expect(gotA).toEqual({ bytes: SIZE, sha256: sentB })
    await Promise.all([a.close(), b.close()])
  })

  it('a side that did not rekey cannot read the records after the interval (the key really changes)', () => {
    const key = randomBytes(32)
    const next = rekey(key)
    const nonce = Buffer.from('000000000000000000000003', 'hex')
    const cipher = createCipheriv('aes-256-gcm', next, nonce)
    const sealed = Buffer.concat([cipher.update(Buffer.from('after the rekey')), cipher.final()])
    const decipher = createDecipheriv('aes-256-gcm', key, nonce)
    decipher.setAuthTag(cipher.getAuthTag())
    decipher.update(sealed)
    expect(() => decipher.final()).toThrow()
  })
})
