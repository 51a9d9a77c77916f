/** fast-check generators for STUN messages covering every attribute kind. */
import fc from 'fast-check'
import { STUN_ATTRIBUTE_CODES, STUN_METHOD_CODES, formatIp } from '../../src/stun/index.js'
import type { StunAttribute, StunMessage, StunMethod, TransportAddress } from '../../src/stun/index.js'

const KNOWN_CODES = new Set<number>(Object.values(STUN_ATTRIBUTE_CODES))

export const transactionIdArb = fc.uint8Array({ minLength: 12, maxLength: 12 })

/** Addresses in the canonical text form the decoder produces. */
export const addressArb: fc.Arbitrary<TransportAddress> = fc.oneof(
  fc.record({
    family: fc.constant('IPv4' as const),
    host: fc.uint8Array({ minLength: 4, maxLength: 4 }).map(formatIp),
    port: fc.integer({ min: 0, max: 65535 }),
  }),
  fc.record({
    family: fc.constant('IPv6' as const),
    host: fc
      .oneof(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        // sparse addresses exercise '::' compression and IPv4-mapped forms
        fc.array(fc.constantFrom(0, 0, 0, 1, 0xff, 0xfe), { minLength: 16, maxLength: 16 }).map((a) => Uint8Array.from(a)),
      )
      .map(formatIp),
    port: fc.integer({ min: 0, max: 65535 }),
  }),
)

const textArb = (maxLength: number): fc.Arbitrary<string> => fc.string({ unit: 'grapheme', maxLength })
const bytesArb = (min: number, max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: min, maxLength: max })
const familyArb = fc.constantFrom('IPv4' as const, 'IPv6' as const)
const errorCodeArb = fc.integer({ min: 300, max: 699 })
const algorithmArb = fc.record({
  algorithm: fc.oneof(fc.constantFrom('md5' as const, 'sha256' as const), fc.integer({ min: 3, max: 0xffff })),
  parameters: bytesArb(0, 9),
})

/** One attribute of any kind (integrity/fingerprint excluded: the encoder adds those). */
export const attributeArb: fc.Arbitrary<StunAttribute> = fc.oneof(
  fc.record({
    type: fc.constantFrom(
      'mapped-address' as const,
      'xor-mapped-address' as const,
      'alternate-server' as const,
      'xor-peer-address' as const,
      'xor-relayed-address' as const,
      'response-origin' as const,
      'other-address' as const,
    ),
    value: addressArb,
  }),
  fc.record({
    type: fc.constantFrom('username' as const, 'realm' as const, 'nonce' as const, 'software' as const),
    value: textArb(40),
  }),
  fc.record({ type: fc.constant('alternate-domain' as const), value: fc.domain() }),
  fc.record({ type: fc.constant('userhash' as const), value: bytesArb(32, 32) }),
  fc.record({ type: fc.constant('error-code' as const), value: fc.record({ code: errorCodeArb, reason: textArb(30) }) }),
  fc.record({ type: fc.constant('unknown-attributes' as const), value: fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 7 }) }),
  fc.record({ type: fc.constant('password-algorithm' as const), value: algorithmArb }),
  fc.record({ type: fc.constant('password-algorithms' as const), value: fc.array(algorithmArb, { maxLength: 4 }) }),
  fc.record({ type: fc.constantFrom('priority' as const, 'lifetime' as const), value: fc.integer({ min: 0, max: 0xffffffff }) }),
  fc.record({ type: fc.constantFrom('use-candidate' as const, 'dont-fragment' as const) }),
  fc.record({ type: fc.constantFrom('ice-controlled' as const, 'ice-controlling' as const), value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
  fc.record({ type: fc.constant('channel-number' as const), value: fc.integer({ min: 0x4000, max: 0x4fff }) }),
  fc.record({ type: fc.constantFrom('data' as const, 'padding' as const), value: bytesArb(0, 64) }),
  fc.record({ type: fc.constantFrom('requested-address-family' as const, 'additional-address-family' as const), value: familyArb }),
  fc.record({ type: fc.constant('even-port' as const), value: fc.record({ reserve: fc.boolean() }) }),
  fc.record({ type: fc.constant('requested-transport' as const), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ type: fc.constant('reservation-token' as const), value: bytesArb(8, 8) }),
  fc.record({
    type: fc.constant('address-error-code' as const),
    value: fc.record({ family: familyArb, code: errorCodeArb, reason: textArb(20) }),
  }),
  fc.record({
    type: fc.constant('icmp' as const),
    value: fc.record({ type: fc.integer({ min: 0, max: 127 }), code: fc.integer({ min: 0, max: 511 }), data: fc.integer({ min: 0, max: 0xffffffff }) }),
  }),
  fc.record({ type: fc.constant('change-request' as const), value: fc.record({ changeIp: fc.boolean(), changePort: fc.boolean() }) }),
  fc.record({ type: fc.constant('response-port' as const), value: fc.integer({ min: 0, max: 65535 }) }),
  fc.record({
    type: fc.constant('unknown' as const),
    code: fc.integer({ min: 0, max: 0xffff }).filter((c) => !KNOWN_CODES.has(c)),
    value: bytesArb(0, 24),
  }),
) as fc.Arbitrary<StunAttribute>

export const methodArb = fc.constantFrom(...(Object.keys(STUN_METHOD_CODES) as StunMethod[]))
export const classArb = fc.constantFrom('request' as const, 'indication' as const, 'success' as const, 'error' as const)

export const messageArb: fc.Arbitrary<StunMessage> = fc.record({
  method: methodArb,
  class: classArb,
  transactionId: transactionIdArb,
  attributes: fc.array(attributeArb, { maxLength: 12 }),
})

export const encodeOptionsArb = fc.record({
  integrity: fc.option(bytesArb(0, 40), { nil: undefined }),
  integritySha256: fc.option(bytesArb(1, 40), { nil: undefined }),
  integritySha256Length: fc.constantFrom(16, 20, 24, 28, 32),
  fingerprint: fc.boolean(),
  paddingByte: fc.integer({ min: 0, max: 255 }),
})
