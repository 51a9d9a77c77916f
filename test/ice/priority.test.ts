import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  CandidatePair,
  candidatePriority,
  createLocalCandidate,
  hostLocalPreferences,
  pairPriority,
  TYPE_PREFERENCES,
} from '../../src/ice/index.js'
import { InvalidArgumentError } from '../../src/errors.js'

describe('candidate priority (RFC 8445 §5.1.2.1)', () => {
  it('uses the recommended type preferences', () => {
    expect(TYPE_PREFERENCES).toEqual({ host: 126, prflx: 110, srflx: 100, relay: 0 })
  })

  it.each([
    // hand-computed: 2^24·type + 2^8·local + (256 − component)
    ['host', 65535, 1, 2130706431], // 2113929216 + 16776960 + 255
    ['prflx', 65535, 1, 1862270975], // 1845493760 + 16776960 + 255
    ['srflx', 65535, 1, 1694498815], // 1677721600 + 16776960 + 255
    ['relay', 65535, 1, 16777215], // 0 + 16776960 + 255
    ['host', 65534, 1, 2130706175],
    ['host', 0, 1, 2113929471],
    ['relay', 0, 256, 0],
    ['host', 65535, 2, 2130706430],
  ] as const)('%s with local preference %d, component %d = %d', (type, local, component, expected) => {
    expect(candidatePriority(type, local, component)).toBe(expected)
  })

  it('defaults to local preference 65535 and component 1', () => {
    expect(candidatePriority('host')).toBe(2130706431)
  })

  it('stays a positive 32-bit integer (no signed overflow from shifts)', () => {
    fc.assert(
      fc.property(fc.constantFrom('host', 'srflx', 'prflx', 'relay' as const), fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 1, max: 256 }), (type, local, component) => {
        const p = candidatePriority(type, local, component)
        expect(Number.isInteger(p)).toBe(true)
        expect(p).toBeGreaterThanOrEqual(0)
        expect(p).toBeLessThan(2 ** 31)
      }),
    )
  })

  it('throws InvalidArgumentError for out-of-range inputs', () => {
    expect(() => candidatePriority('host', 65536)).toThrow(InvalidArgumentError)
    expect(() => candidatePriority('host', -1)).toThrow(InvalidArgumentError)
    expect(() => candidatePriority('host', 1.5)).toThrow(InvalidArgumentError)
    expect(() => candidatePriority('host', 1, 0)).toThrow(InvalidArgumentError)
    expect(() => candidatePriority('bogus' as 'host')).toThrow(InvalidArgumentError)
    expect(() => candidatePriority('toString' as 'host')).toThrow(InvalidArgumentError)
  })
})

describe('local preferences (RFC 8421)', () => {
  it('prefers IPv6 but intermingles the families, keeping interface order', () => {
    const prefs = hostLocalPreferences(['192.168.1.2', '2001:db8::2', '10.0.0.2', '2001:db8::3', '172.16.0.2'])
    expect([...prefs.entries()]).toEqual([
      ['2001:db8::2', 65535],
      ['192.168.1.2', 65534],
      ['2001:db8::3', 65533],
      ['10.0.0.2', 65532],
      ['172.16.0.2', 65531],
    ])
  })

  it('gives a single-homed host 65535 and ignores duplicates and non-IPs', () => {
    expect([...hostLocalPreferences(['192.0.2.1', '192.0.2.1', 'example.com'])]).toEqual([['192.0.2.1', 65535]])
  })

  it('gives every address a distinct preference', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.oneof(fc.ipV4(), fc.ipV6()), { maxLength: 40 }), (addresses) => {
        const values = [...hostLocalPreferences(addresses).values()]
        expect(new Set(values).size).toBe(values.length)
        for (const v of values) expect(v).toBeLessThanOrEqual(65535)
      }),
    )
  })
})

describe('pair priority (RFC 8445 §6.1.2.3)', () => {
  // hand-computed with arbitrary-precision integers: 2^32·MIN(G,D) + 2·MAX(G,D) + (G>D?1:0)
  it('G > D', () => {
    expect(pairPriority(2130706431, 1694498815)).toBe(7277816997797167103n)
  })
  it('G < D', () => {
    expect(pairPriority(1694498815, 2130706431)).toBe(7277816997797167102n)
  })
  it('G == D', () => {
    expect(pairPriority(2130706431, 2130706431)).toBe(9151314442783293438n)
  })
  it('small values, where `1 << 32` would have collapsed the first term', () => {
    expect(pairPriority(1, 0)).toBe(3n)
    expect(pairPriority(0, 1)).toBe(2n)
    expect(pairPriority(1, 1)).toBe(4294967298n) // 2^32 + 2
  })
  it('the whole 2^32 range', () => {
    expect(pairPriority(16777215, 2130706431)).toBe(72057594004373502n)
    expect(pairPriority(0xffffffff, 0xffffffff)).toBe(18446744078004518910n)
    expect(pairPriority(0xffffffff, 0)).toBe(8589934591n)
  })
  it('orders like the RFC says: the minimum dominates, then the maximum, then the controlling side', () => {
    // Candidate priorities are at most 2^31-1 (RFC 8445 §5.1.2.1); above that, 2·MAX of the
    // RFC formula spills into the MIN term and the ordering does not hold.
    const priority = fc.nat({ max: 0x7fffffff })
    fc.assert(
      fc.property(priority, priority, priority, priority, (g1, d1, g2, d2) => {
        const a = pairPriority(g1, d1)
        const b = pairPriority(g2, d2)
        const key = (g: number, d: number): [number, number, number] => [Math.min(g, d), Math.max(g, d), g > d ? 1 : 0]
        const [ka, kb] = [key(g1, d1), key(g2, d2)]
        const cmp = ka[0] !== kb[0] ? Math.sign(ka[0] - kb[0]) : ka[1] !== kb[1] ? Math.sign(ka[1] - kb[1]) : Math.sign(ka[2] - kb[2])
        expect(a === b ? 0 : a > b ? 1 : -1).toBe(cmp)
      }),
    )
  })
  it('rejects non-32-bit priorities', () => {
    expect(() => pairPriority(2 ** 32, 1)).toThrow(InvalidArgumentError)
    expect(() => pairPriority(-1, 1)).toThrow(InvalidArgumentError)
    expect(() => pairPriority(1.5, 1)).toThrow(InvalidArgumentError)
  })

  it('a pair computes its priority from the role: G is the controlling side', () => {
    const local = createLocalCandidate({ type: 'host', address: '192.0.2.1', port: 1000, base: { address: '192.0.2.1', port: 1000 } })
    const remote = { ...createLocalCandidate({ type: 'srflx', address: '198.51.100.1', port: 2000, base: { address: '10.0.0.1', port: 2000 } }) }
    const pair = new CandidatePair(local, remote, 'controlling')
    expect(pair.priority).toBe(7277816997797167103n)
    pair.updatePriority('controlled')
    expect(pair.priority).toBe(7277816997797167102n)
  })
})
