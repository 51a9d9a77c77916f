import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { StunFingerprintError, StunMalformedError } from '../../src/errors.js'
import {
  channelDataFrameLength,
  decodeChannelData,
  decodeStunMessage,
  encodeStunMessage,
  isChannelData,
  isStunMessage,
  streamFrameLength,
  verifyFingerprint,
  verifyIntegrity,
  verifyMessageIntegrity,
  verifyMessageIntegritySha256,
} from '../../src/stun/index.js'
import { encodeOptionsArb, messageArb } from './arbitraries.js'

type Outcome = 'decoded' | 'malformed' | 'fingerprint'

/** Decodes and exercises the verifiers; fails the property on any other exception. */
function decodeOutcome(bytes: Uint8Array): Outcome {
  try {
    const decoded = decodeStunMessage(bytes)
    // Verification must be total on anything the decoder accepted.
    const key = Uint8Array.of(1, 2, 3)
    expect(typeof verifyMessageIntegrity(decoded, key)).toBe('boolean')
    expect(typeof verifyMessageIntegritySha256(decoded, key)).toBe('boolean')
    expect(typeof verifyIntegrity(decoded, key)).toBe('boolean')
    expect(typeof verifyFingerprint(decoded)).toBe('boolean')
    return 'decoded'
  } catch (err) {
    if (err instanceof StunMalformedError) return 'malformed'
    if (err instanceof StunFingerprintError) return 'fingerprint'
    throw err
  }
}

/** A valid header (type, length, cookie, id) followed by `body`. */
function withHeader(type: number, body: Uint8Array, tid: Uint8Array): Uint8Array {
  const out = new Uint8Array(20 + body.length)
  const view = new DataView(out.buffer)
  view.setUint16(0, type)
  view.setUint16(2, body.length & 0xffff)
  view.setUint32(4, 0x2112a442)
  out.set(tid, 8)
  out.set(body, 20)
  return out
}

const mutationArb = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('length' as const), value: fc.integer({ min: 0, max: 0xffff }) }),
  fc.record({ kind: fc.constant('attrLength' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 0xffff }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
)

type Mutation = typeof mutationArb extends fc.Arbitrary<infer T> ? T : never

function mutate(input: Uint8Array, mutations: Mutation[]): Uint8Array {
  let bytes = input.slice()
  for (const m of mutations) {
    if (bytes.length === 0) break
    switch (m.kind) {
      case 'flip':
        bytes[m.at % bytes.length] = (bytes[m.at % bytes.length] as number) ^ (1 << m.bit)
        break
      case 'truncate':
        bytes = bytes.slice(0, m.at % bytes.length)
        break
      case 'length':
        if (bytes.length >= 4) new DataView(bytes.buffer).setUint16(2, m.value)
        break
      case 'attrLength': {
        // Overwrite the length of an attribute-aligned position (offset 20 + 4k, +2).
        const slots = Math.floor((bytes.length - 20) / 4)
        if (slots > 0) new DataView(bytes.buffer).setUint16(20 + 4 * (m.at % slots) + 2, m.value)
        break
      }
      case 'insert': {
        const at = m.at % (bytes.length + 1)
        bytes = Uint8Array.from([...bytes.subarray(0, at), ...m.bytes, ...bytes.subarray(at)])
        break
      }
      case 'byte':
        bytes[m.at % bytes.length] = m.value
        break
    }
  }
  return bytes
}

describe('decoder never throws anything but typed STUN errors', () => {
  it('(a) random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        decodeOutcome(bytes)
        expect(typeof isStunMessage(bytes)).toBe('boolean')
      }),
      { numRuns: 2000 },
    )
  })

  it('(a) random attribute bytes behind a valid header', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0x0001, 0x0101, 0x0111, 0x0003, 0x0016),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.uint8Array({ maxLength: 200 }).map((b) => b.subarray(0, b.length & ~3)),
        (type, tid, body) => {
          const bytes = withHeader(type, body, tid)
          const outcome = decodeOutcome(bytes)
          expect(isStunMessage(bytes)).toBe(true)
          expect(['decoded', 'malformed', 'fingerprint']).toContain(outcome)
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('(a) random TLV sequences (well-framed attributes with random types and values)', () => {
    const tlv = fc.record({ type: fc.integer({ min: 0, max: 0xffff }), value: fc.uint8Array({ maxLength: 24 }) }).map(({ type, value }) => {
      const out = new Uint8Array(4 + ((value.length + 3) & ~3))
      new DataView(out.buffer).setUint16(0, type)
      new DataView(out.buffer).setUint16(2, value.length)
      out.set(value, 4)
      return out
    })
    const interesting = fc
      .record({ type: fc.constantFrom(0x0001, 0x0020, 0x0009, 0x8002, 0x001d, 0x8004, 0x8001, 0x0017, 0x001c, 0x8028, 0x0008), value: fc.uint8Array({ maxLength: 24 }) })
      .map(({ type, value }) => {
        const out = new Uint8Array(4 + ((value.length + 3) & ~3))
        new DataView(out.buffer).setUint16(0, type)
        new DataView(out.buffer).setUint16(2, value.length)
        out.set(value, 4)
        return out
      })
    fc.assert(
      fc.property(fc.array(fc.oneof(tlv, interesting), { maxLength: 10 }), (parts) => {
        const body = Uint8Array.from(parts.flatMap((p) => [...p]))
        decodeOutcome(withHeader(0x0101, body, new Uint8Array(12)))
      }),
      { numRuns: 2000 },
    )
  })

  it('(b) mutated valid messages: bit flips, truncations, length edits, insertions', () => {
    const outcomes = new Set<Outcome>()
    fc.assert(
      fc.property(messageArb, encodeOptionsArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (message, options, mutations) => {
        const bytes = mutate(encodeStunMessage(message, options), mutations)
        outcomes.add(decodeOutcome(bytes))
      }),
      { numRuns: 1500 },
    )
    // The mutations reach all three outcomes (so the property is not vacuous).
    expect(outcomes).toEqual(new Set(['decoded', 'malformed', 'fingerprint']))
  })

  it('ChannelData and stream framing are total too', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.constantFrom('udp' as const, 'tcp' as const), (bytes, transport) => {
        for (const f of [() => decodeChannelData(bytes, { transport }), () => channelDataFrameLength(bytes), () => streamFrameLength(bytes)]) {
          try {
            f()
          } catch (err) {
            if (!(err instanceof StunMalformedError)) throw err
          }
        }
        expect(typeof isChannelData(bytes)).toBe('boolean')
      }),
      { numRuns: 2000 },
    )
  })
})
