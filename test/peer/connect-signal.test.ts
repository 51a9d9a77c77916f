// The signalling payloads of a connection attempt (src/peer/connect-signal.ts): the
// offer/answer's `noise` field (handshake message 1 or 2) round-trips, is optional, and
// anything malformed — another type, too long, another version — is ERR_ICE_SIGNAL_INVALID.
import { randomBytes } from 'node:crypto'
import { encode } from '@msgpack/msgpack'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { IceSignalInvalidError } from '../../src/errors.js'
import {
  CONNECT_SIGNAL_VERSION,
  MAX_SIGNAL_NOISE,
  type SessionDescription,
  decodeCandidateBatch,
  decodeCloseReason,
  decodeSessionDescription,
  encodeCandidateBatch,
  encodeCloseSignal,
  encodeSessionDescription,
} from '../../src/peer/connect-signal.js'

const ice = { ufrag: 'abcd', pwd: 'a'.repeat(22) }
const candidate = 'candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host'
const base: SessionDescription = { ice, stream: 7, candidates: [candidate], end: false }
/** The fields of an offer/answer as they go on the wire. */
const wire = { v: CONNECT_SIGNAL_VERSION, ufrag: ice.ufrag, pwd: ice.pwd, stream: 7, candidates: [candidate], end: false }

/** What decoding `payload` throws (fails the test when it decodes). */
function refusal(payload: Uint8Array, decode: (payload: Uint8Array) => unknown = decodeSessionDescription): IceSignalInvalidError {
  try {
    decode(payload)
  } catch (err) {
    expect(err).toBeInstanceOf(IceSignalInvalidError)
    expect((err as IceSignalInvalidError).code).toBe('ERR_ICE_SIGNAL_INVALID')
    return err as IceSignalInvalidError
  }
  throw new Error('expected ERR_ICE_SIGNAL_INVALID')
}

describe('connect signals: the noise field', () => {
  it('is version 2', () => {
    expect(CONNECT_SIGNAL_VERSION).toBe(2)
  })

  it.each([32, 96, MAX_SIGNAL_NOISE, 0])('round-trips a %i-byte handshake message', (length) => {
    const noise = new Uint8Array(randomBytes(length))
    const decoded = decodeSessionDescription(encodeSessionDescription({ ...base, noise }))
    expect(decoded.noise).toBeInstanceOf(Uint8Array)
    expect(Buffer.from(decoded.noise!).equals(Buffer.from(noise))).toBe(true)
    expect({ ...decoded, noise: undefined }).toEqual({ ...base, noise: undefined })
  })

  it('stays absent when absent (and is not on the wire at all)', () => {
    const payload = encodeSessionDescription(base)
    const decoded = decodeSessionDescription(payload)
    expect('noise' in decoded).toBe(false)
    expect(decoded).toEqual(base)
    expect(Buffer.from(payload).includes(Buffer.from('noise'))).toBe(false)
    // `noise: undefined` is the same as none.
    expect(Buffer.from(encodeSessionDescription({ ...base, noise: undefined })).equals(Buffer.from(payload))).toBe(true)
  })

  it.each([
    ['a string', 'message one'],
    ['a number', 32],
    ['an array of bytes', [1, 2, 3]],
    ['nil', null],
    ['a map', { bytes: new Uint8Array(32) }],
    ['true', true],
  ])('refuses a noise field that is %s', (_what, noise) => {
    refusal(encode({ ...wire, noise }))
  })

  it(`refuses a noise field longer than ${MAX_SIGNAL_NOISE} bytes`, () => {
    refusal(encode({ ...wire, noise: new Uint8Array(MAX_SIGNAL_NOISE + 1) }))
    refusal(encodeSessionDescription({ ...base, noise: new Uint8Array(1024) }))
    // The limit itself is fine.
    expect(decodeSessionDescription(encode({ ...wire, noise: new Uint8Array(MAX_SIGNAL_NOISE) })).noise?.length).toBe(MAX_SIGNAL_NOISE)
  })

  it('refuses a version 1 offer/answer, saying which version', () => {
    const err = refusal(encode({ ...wire, v: 1 }))
    expect(err.message).toMatch(/version 1\b/)
    expect(refusal(encode({ ...wire, v: 1, noise: new Uint8Array(32) })).message).toMatch(/version 1\b/)
    // Candidate signals likewise; a close is honoured whatever its version.
    expect(refusal(encode({ v: 1, candidates: [], end: true }), decodeCandidateBatch).message).toMatch(/version 1\b/)
    expect(decodeCloseReason(encode({ v: 1, reason: 'ERR_X' }))).toBe('')
    expect(decodeCloseReason(encodeCloseSignal('ERR_X'))).toBe('ERR_X')
    // No version and a later one too.
    refusal(encode({ ...wire, v: undefined }))
    expect(refusal(encode({ ...wire, v: 3 })).message).toMatch(/version 3\b/)
  })

  it('candidate batches still round-trip (they carry no noise)', () => {
    expect(decodeCandidateBatch(encodeCandidateBatch({ candidates: [candidate], end: true }))).toEqual({ candidates: [candidate], end: true })
  })
})

describe('connect signals: fuzz', () => {
  const iceChars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('')
  const iceString = (min: number, max: number) => fc.array(fc.constantFrom(...iceChars), { minLength: min, maxLength: max }).map((c) => c.join(''))
  const description = fc.record({
    ice: fc.record({ ufrag: iceString(4, 40), pwd: iceString(22, 60) }),
    stream: fc.integer({ min: 1, max: 0xffffffff }),
    candidates: fc.array(fc.string({ maxLength: 120 }), { maxLength: 8 }),
    end: fc.boolean(),
    noise: fc.option(fc.uint8Array({ maxLength: MAX_SIGNAL_NOISE + 40 }), { nil: undefined }),
  })

  it('any offer/answer round-trips, noise included, or (noise too long) is ERR_ICE_SIGNAL_INVALID', () => {
    fc.assert(
      fc.property(description, (d) => {
        const sent: SessionDescription = d.noise === undefined ? { ice: d.ice, stream: d.stream, candidates: d.candidates, end: d.end } : d
        const payload = encodeSessionDescription(sent)
        if (d.noise !== undefined && d.noise.length > MAX_SIGNAL_NOISE) {
          refusal(payload)
          return
        }
        const got = decodeSessionDescription(payload)
        expect(got.ice).toEqual(d.ice)
        expect([got.stream, got.candidates, got.end]).toEqual([d.stream, d.candidates, d.end])
        if (d.noise === undefined) expect('noise' in got).toBe(false)
        else expect(Buffer.from(got.noise!).equals(Buffer.from(d.noise))).toBe(true)
      }),
      { numRuns: 300 },
    )
  })

  it('maps of any values for the known fields decode or throw ERR_ICE_SIGNAL_INVALID, nothing else', () => {
    const anyValue = fc.oneof(
      fc.constant(undefined),
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.double(),
      fc.string({ maxLength: 40 }),
      fc.uint8Array({ maxLength: MAX_SIGNAL_NOISE + 8 }),
      fc.array(fc.string({ maxLength: 20 }), { maxLength: 4 }),
      fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 3 }),
    )
    const field = fc.constantFrom('v', 'ufrag', 'pwd', 'stream', 'candidates', 'end', 'noise', 'reason', 'x')
    fc.assert(
      fc.property(fc.array(fc.tuple(field, anyValue), { maxLength: 5 }), (changes) => {
        const map: Record<string, unknown> = { ...wire, noise: new Uint8Array(32) }
        for (const [key, value] of changes) map[key] = value
        const payload = encode(map, { ignoreUndefined: true })
        for (const decode of [decodeSessionDescription, decodeCandidateBatch]) {
          try {
            const got = decode(payload) as Partial<SessionDescription>
            if (decode === decodeSessionDescription && got.noise !== undefined) {
              expect(got.noise).toBeInstanceOf(Uint8Array)
              expect(got.noise.length).toBeLessThanOrEqual(MAX_SIGNAL_NOISE)
            }
          } catch (err) {
            expect(err).toBeInstanceOf(IceSignalInvalidError)
          }
        }
        expect(typeof decodeCloseReason(payload)).toBe('string')
      }),
      { numRuns: 500 },
    )
  })

  it('random bytes decode or throw ERR_ICE_SIGNAL_INVALID, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        for (const decode of [decodeSessionDescription, decodeCandidateBatch]) {
          try {
            decode(bytes)
          } catch (err) {
            expect(err).toBeInstanceOf(IceSignalInvalidError)
          }
        }
        expect(typeof decodeCloseReason(bytes)).toBe('string')
      }),
      { numRuns: 500 },
    )
  })
})
