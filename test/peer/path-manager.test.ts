// PathManager helpers: the recovery options check (createPeer rejects bad ones before
// binding anything) and the path of a pair.
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../../src/errors.js'
import { createLocalCandidate } from '../../src/ice/candidate.js'
import { createPeer } from '../../src/peer/index.js'
import { checkPathRecoveryOptions, pathOf } from '../../src/peer/path-manager.js'

describe('path recovery options', () => {
  it('accepts false, nothing, or positive timings; refuses the rest', async () => {
    expect(() => checkPathRecoveryOptions(undefined)).not.toThrow()
    expect(() => checkPathRecoveryOptions(false)).not.toThrow()
    expect(() => checkPathRecoveryOptions({ probeInterval: 500, failoverAfter: 1500, upgradeInterval: 1000 })).not.toThrow()
    for (const bad of [true, null, 3, { probeInterval: 0 }, { failoverAfter: -1 }, { upgradeInterval: Number.NaN }, { probeInterval: '1000' }]) {
      expect(() => checkPathRecoveryOptions(bad)).toThrow(InvalidArgumentError)
    }
    await expect(createPeer({ recovery: { failoverAfter: 0 } })).rejects.toBeInstanceOf(InvalidArgumentError)
  })

  it('pathOf: a relayed candidate on either side is the turn path', () => {
    const host = createLocalCandidate({ type: 'host', address: '192.0.2.1', port: 1000, base: { address: '192.0.2.1', port: 1000 }, localPreference: 65535 })
    const relay = createLocalCandidate({ type: 'relay', address: '203.0.113.5', port: 2000, base: { address: '203.0.113.5', port: 2000 }, localPreference: 65535 })
    expect(pathOf({ local: host, remote: host })).toBe('direct')
    expect(pathOf({ local: relay, remote: host })).toBe('turn')
    expect(pathOf({ local: host, remote: relay })).toBe('turn')
  })
})
