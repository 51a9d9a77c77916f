import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { BoundedMap } from '../../../src/server/turn/bounded-map.js'

describe('BoundedMap', () => {
  it('evicts the oldest entry once full, and replacing a key does not evict', () => {
    const map = new BoundedMap<string, number>(2)
    map.set('a', 1)
    map.set('b', 2)
    map.set('b', 3)
    expect(map.size).toBe(2)
    expect(map.get('a')).toBe(1)
    map.set('c', 4)
    expect(map.get('a')).toBeUndefined()
    expect([map.get('b'), map.get('c'), map.size]).toEqual([3, 4, 2])
    map.clear()
    expect(map.size).toBe(0)
  })

  it('never holds more than its capacity and always holds the newest keys', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 60 }), (capacity, keys) => {
        const map = new BoundedMap<number, number>(capacity)
        keys.forEach((key, i) => map.set(key, i))
        expect(map.size).toBeLessThanOrEqual(capacity)
        const last = keys.at(-1)
        if (last !== undefined) expect(map.get(last)).toBe(keys.length - 1)
      }),
    )
  })
})
