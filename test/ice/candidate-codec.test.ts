import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  END_OF_CANDIDATES,
  formatCandidate,
  generateIceCredentials,
  isEndOfCandidates,
  parseCandidate,
  parseIceCredentials,
  type IceCandidate,
} from '../../src/ice/index.js'
import { IceSignalInvalidError, InvalidArgumentError } from '../../src/errors.js'

const iceChar = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split(''))
const foundation = fc.string({ unit: iceChar, minLength: 1, maxLength: 32 })
const port = fc.integer({ min: 1, max: 65535 })
// Canonical text forms, as the codec writes them.
const ipv6 = fc.ipV6().map((a) => {
  const n = parseCandidate(`candidate:x 1 udp 1 ${a} 1 typ host`).address
  return n
})
const address = fc.oneof(fc.ipV4(), ipv6)

const candidate: fc.Arbitrary<IceCandidate> = fc
  .record({
    foundation,
    component: fc.integer({ min: 1, max: 256 }),
    priority: fc.nat({ max: 0xffffffff }),
    address,
    port,
    type: fc.constantFrom('host', 'srflx', 'prflx', 'relay' as const),
    related: fc.option(fc.record({ address, port: fc.integer({ min: 0, max: 65535 }) }), { nil: undefined }),
  })
  .map(({ related, ...rest }) => {
    const c: IceCandidate = { ...rest, transport: 'udp' }
    if (related !== undefined) {
      c.relatedAddress = related.address
      c.relatedPort = related.port
    }
    return c
  })

describe('candidate codec (RFC 8839 §5.1)', () => {
  it('formats host and srflx candidates', () => {
    expect(
      formatCandidate({ foundation: 'abc', component: 1, transport: 'udp', priority: 2130706431, address: '192.0.2.10', port: 50000, type: 'host' }),
    ).toBe('candidate:abc 1 udp 2130706431 192.0.2.10 50000 typ host')
    expect(
      formatCandidate({
        foundation: 'f+/9',
        component: 1,
        transport: 'udp',
        priority: 1694498815,
        address: '2001:DB8:0:0::7',
        port: 61000,
        type: 'srflx',
        relatedAddress: '::ffff:10.0.0.1',
        relatedPort: 50000,
      }),
    ).toBe('candidate:f+/9 1 udp 1694498815 2001:db8::7 61000 typ srflx raddr 10.0.0.1 rport 50000')
  })

  it('parses what browsers and other agents send, skipping extensions', () => {
    expect(parseCandidate('a=candidate:842163049 1 UDP 1677729535 198.51.100.7 61000 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag 4ZcD network-cost 999')).toEqual({
      foundation: '842163049',
      component: 1,
      transport: 'udp',
      priority: 1677729535,
      address: '198.51.100.7',
      port: 61000,
      type: 'srflx',
      relatedAddress: '0.0.0.0',
      relatedPort: 0,
    })
    expect(parseCandidate('candidate:1 1 udp 1 ::1 9 typ host').address).toBe('::1')
  })

  it.each([
    ['not a candidate', 'hello'],
    ['too few fields', 'candidate:1 1 udp 1 192.0.2.1 9 typ'],
    ['TCP', 'candidate:1 1 tcp 1 192.0.2.1 9 typ host tcptype active'],
    ['FQDN (mDNS)', 'candidate:1 1 udp 1 6e1c7b2a-1b2b.local 9 typ host'],
    ['unknown type', 'candidate:1 1 udp 1 192.0.2.1 9 typ weird'],
    ['no typ', 'candidate:1 1 udp 1 192.0.2.1 9 type host'],
    ['port 0', 'candidate:1 1 udp 1 192.0.2.1 0 typ host'],
    ['port 65536', 'candidate:1 1 udp 1 192.0.2.1 65536 typ host'],
    ['priority over 2^32-1', 'candidate:1 1 udp 4294967296 192.0.2.1 9 typ host'],
    ['component 0', 'candidate:1 0 udp 1 192.0.2.1 9 typ host'],
    ['foundation too long', `candidate:${'a'.repeat(33)} 1 udp 1 192.0.2.1 9 typ host`],
    ['foundation with bad chars', 'candidate:a-b 1 udp 1 192.0.2.1 9 typ host'],
    ['bad raddr', 'candidate:1 1 udp 1 192.0.2.1 9 typ srflx raddr x rport 1'],
    ['dangling extension', 'candidate:1 1 udp 1 192.0.2.1 9 typ host generation'],
    ['double space', 'candidate:1  1 udp 1 192.0.2.1 9 typ host'],
    ['scoped IPv6', 'candidate:1 1 udp 1 fe80::1%eth0 9 typ host'],
    ['huge', `candidate:1 1 udp 1 192.0.2.1 9 typ host ${'x '.repeat(600)}`],
  ])('refuses %s with IceSignalInvalidError', (_name, line) => {
    expect(() => parseCandidate(line)).toThrow(IceSignalInvalidError)
  })

  it('refuses non-strings with IceSignalInvalidError', () => {
    for (const value of [undefined, null, 42, {}, ['candidate:1 1 udp 1 192.0.2.1 9 typ host']]) {
      expect(() => parseCandidate(value)).toThrow(IceSignalInvalidError)
    }
  })

  it('round-trips every valid candidate', () => {
    fc.assert(
      fc.property(candidate, (c) => {
        expect(parseCandidate(formatCandidate(c))).toEqual(c)
      }),
      { numRuns: 500 },
    )
  })

  it('never throws anything but IceSignalInvalidError on hostile input', () => {
    const tokens = fc.constantFrom('candidate:', 'a=', 'udp', 'UDP', 'typ', 'host', 'srflx', 'raddr', 'rport', '1', '0', '65535', '4294967295', '192.0.2.1', '::1', '::ffff:1.2.3.4', ' ', '  ', '\t', '\n', '%', '[', ']')
    const hostile = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.array(tokens, { maxLength: 20 }).map((t) => t.join(' ')),
      candidate.map(formatCandidate).chain((line) => fc.nat({ max: line.length }).map((i) => line.slice(0, i))),
      candidate.map(formatCandidate).chain((line) => fc.tuple(fc.nat({ max: line.length }), fc.string({ maxLength: 4 })).map(([i, s]) => line.slice(0, i) + s + line.slice(i))),
    )
    fc.assert(
      fc.property(hostile, (line) => {
        try {
          const c = parseCandidate(line)
          // whatever parses must format and parse back to itself
          expect(parseCandidate(formatCandidate(c))).toEqual(c)
        } catch (err) {
          expect(err).toBeInstanceOf(IceSignalInvalidError)
        }
      }),
      { numRuns: 1000 },
    )
  })

  it('formatCandidate refuses impossible candidates with InvalidArgumentError', () => {
    const good: IceCandidate = { foundation: 'a', component: 1, transport: 'udp', priority: 1, address: '192.0.2.1', port: 9, type: 'host' }
    expect(() => formatCandidate({ ...good, address: 'example.com' })).toThrow(InvalidArgumentError)
    expect(() => formatCandidate({ ...good, port: 0 })).toThrow(InvalidArgumentError)
    expect(() => formatCandidate({ ...good, foundation: 'a b' })).toThrow(InvalidArgumentError)
    expect(() => formatCandidate({ ...good, priority: -1 })).toThrow(InvalidArgumentError)
  })

  it('recognises end-of-candidates', () => {
    expect(isEndOfCandidates(END_OF_CANDIDATES)).toBe(true)
    expect(isEndOfCandidates('a=end-of-candidates')).toBe(true)
    expect(isEndOfCandidates('candidate:1 1 udp 1 192.0.2.1 9 typ host')).toBe(false)
    expect(isEndOfCandidates(1)).toBe(false)
  })
})

describe('ICE credentials', () => {
  it('generates valid random credentials of enough entropy', () => {
    const a = generateIceCredentials()
    const b = generateIceCredentials()
    expect(parseIceCredentials(a)).toEqual(a)
    expect(a.ufrag).toMatch(/^[A-Za-z0-9+/]{8}$/)
    expect(a.pwd).toMatch(/^[A-Za-z0-9+/]{24}$/)
    expect(a).not.toEqual(b)
  })

  it.each([
    ['not an object', 'x'],
    ['null', null],
    ['short ufrag', { ufrag: 'abc', pwd: 'a'.repeat(22) }],
    ['short pwd', { ufrag: 'abcd', pwd: 'a'.repeat(21) }],
    ['long ufrag', { ufrag: 'a'.repeat(256), pwd: 'a'.repeat(22) }],
    ['long pwd', { ufrag: 'abcd', pwd: 'a'.repeat(257) }],
    ['bad characters', { ufrag: 'ab:d', pwd: 'a'.repeat(22) }],
    ['numbers', { ufrag: 1234, pwd: 'a'.repeat(22) }],
  ])('refuses %s with IceSignalInvalidError', (_name, value) => {
    expect(() => parseIceCredentials(value)).toThrow(IceSignalInvalidError)
  })

  it('never throws anything but IceSignalInvalidError', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        try {
          parseIceCredentials(value)
        } catch (err) {
          expect(err).toBeInstanceOf(IceSignalInvalidError)
        }
      }),
    )
  })
})
