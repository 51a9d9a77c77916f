/**
 * The record cipher (AES-256-GCM, nonce = 4 zero bytes ‖ 64-bit big-endian counter) on
 * both backends: node:crypto and the native addon (native/record_cipher.c). The native
 * tests are skipped when the addon is not built; CI builds it (PEERLINK_NATIVE_REQUIRED=1).
 */
import { createCipheriv, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { InvalidArgumentError } from '../../src/errors.js'
import {
  MAX_RECORD_COUNTER,
  RECORD_TAG_BYTES,
  type NativeCipherHandle,
  type RecordCipher,
  type RecordCipherBackend,
  createRecordCipher,
  createRecordCipherWith,
  nativeRecordCipherAddon,
  recordCipherBackend,
} from '../../src/transport/record-cipher.js'

const native = nativeRecordCipherAddon
const TWO_32 = 0x1_0000_0000

/** AES-256-GCM of `plaintext` by node:crypto with the nonce spelled out here, not by the code under test. */
function reference(key: Uint8Array, counter: number, plaintext: Uint8Array): Buffer {
  const nonce = Buffer.alloc(12)
  nonce.writeUInt32BE(Math.floor(counter / TWO_32), 4)
  nonce.writeUInt32BE(counter % TWO_32, 8)
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
}

/** `bytes` cut at the given points (taken modulo its length + 1). */
function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const parts: Uint8Array[] = []
  let last = 0
  for (const point of points) {
    parts.push(bytes.subarray(last, point))
    last = point
  }
  parts.push(bytes.subarray(last))
  return parts
}

function sealed(cipher: RecordCipher, counter: number, parts: readonly Uint8Array[]): Buffer {
  const length = parts.reduce((n, p) => n + p.length, 0)
  const out = Buffer.alloc(length + RECORD_TAG_BYTES)
  cipher.seal(counter, parts, out, 0)
  return out
}

const counters = fc.oneof(fc.nat(), fc.integer({ min: TWO_32 - 2, max: TWO_32 + 2 }), fc.integer({ min: 0, max: MAX_RECORD_COUNTER }))
const keys = fc.uint8Array({ minLength: 32, maxLength: 32 })

const backends: RecordCipherBackend[] = ['node:crypto', 'native']

for (const backend of backends) {
  describe.skipIf(backend === 'native' && native === undefined)(`record cipher on ${backend}`, () => {
    const make = (key: Uint8Array): RecordCipher => createRecordCipherWith(backend, key)

    it('gives the AES-256-GCM test vectors of McGrew & Viega (Test Cases 13 and 14: zero key, zero IV = counter 0)', () => {
      const cipher = make(new Uint8Array(32))
      expect(sealed(cipher, 0, []).toString('hex')).toBe('530f8afbc74536b9a963b4f1c4cb738b')
      expect(sealed(cipher, 0, [new Uint8Array(16)]).toString('hex')).toBe('cea7403d4d606b6e074ec5d3baf39d18' + 'd0d1c8a799996bf0265b98b5d48ab919')
      const plain = Buffer.alloc(16, 1)
      expect(cipher.open(0, Buffer.from('cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919', 'hex'), plain)).toBe(true)
      expect(plain).toEqual(Buffer.alloc(16))
      cipher.destroy()
    })

    it('equals AES-256-GCM with nonce 0^32 ‖ counter (64-bit BE) for any key, counter and split, at any offset', () => {
      fc.assert(
        fc.property(keys, counters, fc.uint8Array({ maxLength: 3000 }), fc.array(fc.nat(), { maxLength: 6 }), fc.nat(40), (key, counter, plaintext, cuts, offset) => {
          const cipher = make(key)
          const out = Buffer.alloc(offset + plaintext.length + RECORD_TAG_BYTES + 7, 0xaa)
          cipher.seal(counter, split(plaintext, cuts), out, offset)
          expect(out.subarray(offset, offset + plaintext.length + RECORD_TAG_BYTES)).toEqual(reference(key, counter, plaintext))
          // Nothing written outside the record.
          expect(out.subarray(0, offset).every((b) => b === 0xaa)).toBe(true)
          expect(out.subarray(offset + plaintext.length + RECORD_TAG_BYTES).every((b) => b === 0xaa)).toBe(true)
          cipher.destroy()
        }),
        { numRuns: 200 },
      )
    })

    it('opens what it sealed', () => {
      fc.assert(
        fc.property(keys, counters, fc.uint8Array({ maxLength: 3000 }), fc.array(fc.nat(), { maxLength: 4 }), (key, counter, plaintext, cuts) => {
          const sender = make(key)
          const receiver = make(key)
          const record = sealed(sender, counter, split(plaintext, cuts))
          const out = Buffer.alloc(plaintext.length)
          expect(receiver.open(counter, record, out)).toBe(true)
          expect(out).toEqual(Buffer.from(plaintext))
          sender.destroy()
          receiver.destroy()
        }),
        { numRuns: 100 },
      )
    })

    it('seals and opens in place', () => {
      const key = randomBytes(32)
      const cipher = make(key)
      const plaintext = randomBytes(1000)
      const frame = Buffer.alloc(8 + 1000 + RECORD_TAG_BYTES)
      plaintext.copy(frame, 8)
      // Two parts, each exactly where its ciphertext goes.
      cipher.seal(77, [frame.subarray(8, 300), frame.subarray(300, 1008)], frame, 8)
      const record = frame.subarray(8)
      expect(record).toEqual(reference(key, 77, plaintext))
      expect(cipher.open(77, record, record)).toBe(true)
      expect(record.subarray(0, 1000)).toEqual(plaintext)
      cipher.destroy()
    })

    it('refuses any flipped bit of ciphertext or tag, a wrong counter, a wrong key and a record shorter than the tag', () => {
      const key = randomBytes(32)
      const cipher = make(key)
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 200 }), counters, fc.nat(), fc.nat(7), (plaintext, counter, at, bit) => {
          const record = sealed(cipher, counter, [plaintext])
          const out = Buffer.alloc(plaintext.length)
          const flipped = Buffer.from(record)
          flipped[at % flipped.length]! ^= 1 << bit
          expect(cipher.open(counter, flipped, out)).toBe(false)
          const other = counter === MAX_RECORD_COUNTER ? counter - 1 : counter + 1
          expect(cipher.open(other, record, out)).toBe(false)
          expect(cipher.open(counter, record, out)).toBe(true)
        }),
        { numRuns: 300 },
      )
      const record = sealed(cipher, 5, [Buffer.from('hello')])
      const otherKey = Buffer.from(key)
      otherKey[31]! ^= 0x80
      const wrong = make(otherKey)
      expect(wrong.open(5, record, Buffer.alloc(5))).toBe(false)
      expect(cipher.open(5, record.subarray(0, RECORD_TAG_BYTES - 1), Buffer.alloc(0))).toBe(false)
      expect(cipher.open(5, new Uint8Array(0), Buffer.alloc(0))).toBe(false)
      wrong.destroy()
      cipher.destroy()
    })

    it('uses the high half of counters above 2^32', () => {
      const key = randomBytes(32)
      const cipher = make(key)
      const plaintext = Buffer.from('counter beyond 32 bits')
      for (const counter of [TWO_32, TWO_32 + 5, 3 * TWO_32 + 0xffffffff, MAX_RECORD_COUNTER]) {
        const record = sealed(cipher, counter, [plaintext])
        expect(record).toEqual(reference(key, counter, plaintext))
        expect(record).not.toEqual(sealed(cipher, counter % TWO_32, [plaintext]))
        const out = Buffer.alloc(plaintext.length)
        expect(cipher.open(counter, record, out)).toBe(true)
        expect(cipher.open(counter % TWO_32, record, out)).toBe(false)
      }
      cipher.destroy()
    })

    it('refuses bad keys and counters with InvalidArgumentError, and a too small out with RangeError', () => {
      expect(() => make(new Uint8Array(31))).toThrow(InvalidArgumentError)
      expect(() => make('k'.repeat(32) as unknown as Uint8Array)).toThrow(InvalidArgumentError)
      const cipher = make(randomBytes(32))
      for (const counter of [-1, 1.5, Number.NaN, MAX_RECORD_COUNTER + 1, Infinity]) {
        expect(() => cipher.seal(counter, [], Buffer.alloc(16), 0)).toThrow(InvalidArgumentError)
        expect(() => cipher.open(counter, Buffer.alloc(16), Buffer.alloc(0))).toThrow(InvalidArgumentError)
      }
      expect(() => cipher.seal(1, [Buffer.alloc(10)], Buffer.alloc(25), 0)).toThrow(RangeError)
      expect(() => cipher.seal(1, [Buffer.alloc(10)], Buffer.alloc(26), 1)).toThrow(RangeError)
      const record = sealed(cipher, 1, [Buffer.alloc(10)])
      expect(() => cipher.open(1, record, Buffer.alloc(9))).toThrow(RangeError)
      cipher.destroy()
    })
  })
}

describe('record cipher backend selection', () => {
  it(native === undefined ? 'falls back to node:crypto (native addon not built)' : 'uses the native addon (CI builds it with PEERLINK_NATIVE_REQUIRED=1)', () => {
    const disabled = process.env.PEERLINK_NATIVE_CIPHER === '0'
    if (process.env.CI && !disabled) expect(native).toBeDefined()
    else if (native === undefined && !disabled) console.warn('native record cipher not built: run `node scripts/build-native.mjs`')
    expect(recordCipherBackend).toBe(native === undefined ? 'node:crypto' : 'native')
    const cipher = createRecordCipher(randomBytes(32))
    expect(cipher.constructor.name).toBe(native === undefined ? 'NodeRecordCipher' : 'NativeRecordCipher')
    cipher.destroy()
  })

  it('uses node:crypto when PEERLINK_NATIVE_CIPHER=0', async () => {
    vi.stubEnv('PEERLINK_NATIVE_CIPHER', '0')
    vi.resetModules()
    try {
      const reloaded = await import('../../src/transport/record-cipher.js')
      expect(reloaded.recordCipherBackend).toBe('node:crypto')
      expect(reloaded.nativeRecordCipherAddon).toBeUndefined()
      // (errors.js was reloaded too: compare by code, not class)
      expect(() => reloaded.createRecordCipherWith('native', randomBytes(32))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    } finally {
      vi.unstubAllEnvs()
      vi.resetModules()
    }
  })
})

describe.skipIf(native === undefined)('native record cipher', () => {
  const addon = native!

  it('produces byte-identical records to node:crypto for random keys, counters, part splits and offsets', () => {
    fc.assert(
      fc.property(keys, counters, fc.uint8Array({ maxLength: 5000 }), fc.array(fc.nat(), { maxLength: 40 }), fc.nat(64), (key, counter, plaintext, cuts, offset) => {
        const parts = split(plaintext, cuts)
        const a = createRecordCipherWith('native', key)
        const b = createRecordCipherWith('node:crypto', key)
        const outA = Buffer.alloc(offset + plaintext.length + RECORD_TAG_BYTES)
        const outB = Buffer.alloc(offset + plaintext.length + RECORD_TAG_BYTES)
        a.seal(counter, parts, outA, offset)
        b.seal(counter, parts, outB, offset)
        expect(outA).toEqual(outB)
        // And each opens the other's record.
        const plainA = Buffer.alloc(plaintext.length)
        const plainB = Buffer.alloc(plaintext.length)
        expect(a.open(counter, outB.subarray(offset), plainA)).toBe(true)
        expect(b.open(counter, outA.subarray(offset), plainB)).toBe(true)
        expect(plainA).toEqual(Buffer.from(plaintext))
        expect(plainB).toEqual(Buffer.from(plaintext))
        a.destroy()
        b.destroy()
      }),
      { numRuns: 200 },
    )
  })

  it('takes one Uint8Array, plain Uint8Arrays with a byteOffset, and more parts than one batch (32)', () => {
    const key = randomBytes(32)
    const handle = addon.create(key, true)
    const plaintext = randomBytes(4000)
    const out = new Uint8Array(4000 + RECORD_TAG_BYTES)
    addon.seal(handle, 0, 9, new Uint8Array(plaintext.buffer, plaintext.byteOffset, plaintext.length), out, 0)
    expect(Buffer.from(out)).toEqual(reference(key, 9, plaintext))
    const parts = Array.from({ length: 100 }, (_, i) => new Uint8Array(plaintext.buffer, plaintext.byteOffset + i * 40, 40))
    out.fill(0)
    addon.seal(handle, 0, 9, parts, out, 0)
    expect(Buffer.from(out)).toEqual(reference(key, 9, plaintext))
    addon.free(handle)
  })

  it('zeroes the plaintext of a record that fails authentication', () => {
    const key = randomBytes(32)
    const cipher = createRecordCipherWith('native', key)
    const record = sealed(cipher, 3, [Buffer.alloc(100, 7)])
    record[record.length - 1]! ^= 1
    const out = Buffer.alloc(100, 0xee)
    expect(cipher.open(3, record, out)).toBe(false)
    expect(out).toEqual(Buffer.alloc(100))
    cipher.destroy()
  })

  it('throws typed errors for bad arguments and writes nothing', () => {
    const sealer = addon.create(randomBytes(32), true)
    const opener = addon.create(randomBytes(32), false)
    const out = Buffer.alloc(64, 0x55)
    const untouched = (): void => expect(out.every((b) => b === 0x55)).toBe(true)
    const code = (fn: () => unknown, type: ErrorConstructor, errorCode: string): void => {
      expect(fn).toThrow(type)
      try {
        fn()
      } catch (error) {
        expect((error as { code?: string }).code).toBe(errorCode)
      }
    }
    // Handles.
    code(() => addon.seal({} as NativeCipherHandle, 0, 0, [], out, 0), TypeError, 'ERR_INVALID_ARG_TYPE')
    code(() => addon.seal(opener, 0, 0, [], out, 0), TypeError, 'ERR_INVALID_ARG_TYPE')
    code(() => addon.open(sealer, 0, 0, out, out), TypeError, 'ERR_INVALID_ARG_TYPE')
    code(() => addon.free(null as unknown as NativeCipherHandle), TypeError, 'ERR_INVALID_ARG_TYPE')
    // Keys.
    code(() => addon.create(new Uint8Array(16), true), RangeError, 'ERR_OUT_OF_RANGE')
    code(() => addon.create(new Uint16Array(16) as unknown as Uint8Array, true), TypeError, 'ERR_INVALID_ARG_TYPE')
    code(() => addon.create(randomBytes(32), 1 as unknown as boolean), TypeError, 'ERR_INVALID_ARG_TYPE')
    // Counter halves.
    for (const bad of [TWO_32, -1, 0.5, Number.NaN]) {
      code(() => addon.seal(sealer, bad, 0, [], out, 0), RangeError, 'ERR_OUT_OF_RANGE')
      code(() => addon.seal(sealer, 0, bad, [], out, 0), RangeError, 'ERR_OUT_OF_RANGE')
      code(() => addon.open(opener, bad, 0, out, out), RangeError, 'ERR_OUT_OF_RANGE')
    }
    code(() => addon.seal(sealer, '1' as unknown as number, 0, [], out, 0), TypeError, 'ERR_INVALID_ARG_TYPE')
    // Parts, out and offset.
    code(() => addon.seal(sealer, 0, 0, ['text'] as unknown as Uint8Array[], out, 0), TypeError, 'ERR_INVALID_ARG_TYPE')
    code(() => addon.seal(sealer, 0, 0, [new DataView(new ArrayBuffer(4))] as unknown as Uint8Array[], out, 0), TypeError, 'ERR_INVALID_ARG_TYPE')
    code(() => addon.seal(sealer, 0, 0, 'text' as unknown as Uint8Array, out, 0), TypeError, 'ERR_INVALID_ARG_TYPE')
    code(() => addon.seal(sealer, 0, 0, [], [] as unknown as Uint8Array, 0), TypeError, 'ERR_INVALID_ARG_TYPE')
    code(() => addon.seal(sealer, 0, 0, [Buffer.alloc(49)], out, 0), RangeError, 'ERR_OUT_OF_RANGE')
    code(() => addon.seal(sealer, 0, 0, [Buffer.alloc(40), Buffer.alloc(9)], out, 0), RangeError, 'ERR_OUT_OF_RANGE')
    code(() => addon.seal(sealer, 0, 0, [Buffer.alloc(10)], out, 39), RangeError, 'ERR_OUT_OF_RANGE')
    code(() => addon.seal(sealer, 0, 0, [], out, 49), RangeError, 'ERR_OUT_OF_RANGE')
    code(() => addon.seal(sealer, 0, 0, [], out, 65), RangeError, 'ERR_OUT_OF_RANGE')
    code(() => addon.seal(sealer, 0, 0, [], out, -1), RangeError, 'ERR_OUT_OF_RANGE')
    code(() => addon.seal(sealer, 0, 0, [], out, 1.5), RangeError, 'ERR_OUT_OF_RANGE')
    // A part overlapping its own ciphertext without being in place.
    code(() => addon.seal(sealer, 0, 0, [out.subarray(1, 21)], out, 0), RangeError, 'ERR_OUT_OF_RANGE')
    untouched()
    code(() => addon.open(opener, 0, 0, out.subarray(0, 40), out.subarray(1)), RangeError, 'ERR_OUT_OF_RANGE')
    code(() => addon.open(opener, 0, 0, out.subarray(0, 40), Buffer.alloc(23)), RangeError, 'ERR_OUT_OF_RANGE')
    code(() => addon.open(opener, 0, 0, 'x'.repeat(40) as unknown as Uint8Array, out), TypeError, 'ERR_INVALID_ARG_TYPE')
    untouched()
    addon.free(sealer)
    addon.free(opener)
  })

  it('throws, and does not crash, on a handle used after free; free twice is fine', () => {
    const sealer = addon.create(randomBytes(32), true)
    const opener = addon.create(randomBytes(32), false)
    addon.free(sealer)
    addon.free(sealer)
    addon.free(opener)
    expect(() => addon.seal(sealer, 0, 0, [], Buffer.alloc(16), 0)).toThrow(expect.objectContaining({ code: 'ERR_RECORD_CIPHER_FREED' }))
    expect(() => addon.open(opener, 0, 0, Buffer.alloc(16), Buffer.alloc(0))).toThrow(expect.objectContaining({ code: 'ERR_RECORD_CIPHER_FREED' }))
    const cipher = createRecordCipherWith('native', randomBytes(32))
    cipher.destroy()
    cipher.destroy()
    expect(() => cipher.seal(0, [], Buffer.alloc(16), 0)).toThrow(expect.objectContaining({ code: 'ERR_RECORD_CIPHER_FREED' }))
    expect(() => cipher.open(0, Buffer.alloc(16), Buffer.alloc(0))).toThrow(expect.objectContaining({ code: 'ERR_RECORD_CIPHER_FREED' }))
  })

  it('stays in bounds when a getter of the parts array frees the handle, detaches out or seals again', () => {
    const handle = addon.create(randomBytes(32), true)
    const partsWith = (at: number, effect: () => void): Uint8Array[] => {
      const parts = Array.from({ length: 40 }, () => Buffer.alloc(10))
      Object.defineProperty(parts, at, {
        get: () => {
          effect()
          return Buffer.alloc(10)
        },
      })
      return parts
    }
    // Detaching out in a later batch (index 35), after the first batch was written.
    const out = new Uint8Array(400 + RECORD_TAG_BYTES)
    expect(() => addon.seal(handle, 0, 0, partsWith(35, () => structuredClone(out.buffer, { transfer: [out.buffer] })), out, 0)).toThrow(RangeError)
    expect(out.length).toBe(0)
    // Sealing again from inside seal() on the same handle.
    const out2 = Buffer.alloc(400 + RECORD_TAG_BYTES)
    expect(() => addon.seal(handle, 0, 0, partsWith(35, () => addon.seal(handle, 0, 1, [], Buffer.alloc(16), 0)), out2, 0)).toThrow(
      expect.objectContaining({ code: 'ERR_RECORD_CIPHER_BUSY' }),
    )
    // The handle still works afterwards.
    const key = randomBytes(32)
    const fresh = addon.create(key, true)
    const record = Buffer.alloc(5 + RECORD_TAG_BYTES)
    addon.seal(fresh, 0, 4, [Buffer.from('hello')], record, 0)
    expect(record).toEqual(reference(key, 4, Buffer.from('hello')))
    addon.seal(handle, 0, 0, [], Buffer.alloc(16), 0)
    // Freeing the handle from a getter.
    expect(() => addon.seal(handle, 0, 0, partsWith(3, () => addon.free(handle)), Buffer.alloc(400 + RECORD_TAG_BYTES), 0)).toThrow(
      expect.objectContaining({ code: 'ERR_RECORD_CIPHER_FREED' }),
    )
    addon.free(fresh)
  })
})
