import { describe, expect, it } from 'vitest'
import {
  CandidatePair,
  Checklist,
  candidatePriority,
  createLocalCandidate,
  type IceCandidate,
  type LocalCandidate,
} from '../../src/ice/index.js'
import { InvalidArgumentError } from '../../src/errors.js'

const PORT = 5000

function host(address: string, localPreference = 65535): LocalCandidate {
  return createLocalCandidate({ type: 'host', address, port: PORT, base: { address, port: PORT }, localPreference })
}

function remote(address: string, port: number, type: IceCandidate['type'] = 'host', foundation = `${type}${address.replace(/[.:]/g, '')}`): IceCandidate {
  return { foundation, component: 1, transport: 'udp', priority: candidatePriority(type), address, port, type }
}

describe('Checklist', () => {
  it('pairs candidates of the same family only, as they trickle in, highest priority first', () => {
    const list = new Checklist({ role: 'controlling' })
    list.addLocalCandidate(host('192.0.2.1'))
    expect(list.pairs).toHaveLength(0)
    list.addRemoteCandidate(remote('198.51.100.1', 1, 'srflx'))
    list.addRemoteCandidate(remote('2001:db8::1', 2))
    list.addRemoteCandidate(remote('198.51.100.2', 3, 'host'))
    expect(list.pairs.map((p) => p.remote.port)).toEqual([3, 1])
    list.addLocalCandidate(host('2001:db8::9'))
    expect(list.pairs.map((p) => p.remote.port)).toEqual([3, 2, 1])
    for (let i = 1; i < list.pairs.length; i++) expect(list.pairs[i - 1]!.priority >= list.pairs[i]!.priority).toBe(true)
  })

  it('never pairs link-local IPv6 with global IPv6', () => {
    const list = new Checklist({ role: 'controlling' })
    list.addLocalCandidate(host('2001:db8::9'))
    list.addRemoteCandidate(remote('fe80::1', 1))
    expect(list.pairs).toHaveLength(0)
  })

  it('ignores a remote candidate at an address it already knows (RFC 8445 §5.1.3)', () => {
    const list = new Checklist({ role: 'controlling' })
    list.addLocalCandidate(host('192.0.2.1'))
    expect(list.addRemoteCandidate(remote('198.51.100.1', 1))).toHaveLength(1)
    expect(list.addRemoteCandidate(remote('::ffff:198.51.100.1', 1, 'srflx'))).toHaveLength(0)
    expect(list.remoteCandidates).toHaveLength(1)
  })

  it('replaces local reflexive candidates by their base and prunes redundant pairs (RFC 8445 §6.1.2.4)', () => {
    const list = new Checklist({ role: 'controlling' })
    const h1 = host('192.0.2.1', 65535)
    const h2 = host('10.0.0.1', 65000)
    list.addRemoteCandidate(remote('198.51.100.1', 1))
    list.addLocalCandidate(h2)
    expect(list.pairs).toHaveLength(1)
    // Same socket, same family, same remote: the better local candidate replaces the pair.
    list.addLocalCandidate(h1)
    expect(list.pairs).toHaveLength(1)
    expect(list.pairs[0]!.local).toBe(h1)
    const srflx = createLocalCandidate({ type: 'srflx', address: '203.0.113.5', port: 6000, base: h1.base, localPreference: 65535 })
    expect(list.addLocalCandidate(srflx)).toEqual([])
    expect(list.pairs).toHaveLength(1)
    expect(list.localCandidates).toContain(srflx)
  })

  it('sets the first pair of each foundation Waiting and the others Frozen (RFC 8445 §6.1.2.6)', () => {
    const list = new Checklist({ role: 'controlling' })
    list.addLocalCandidate(host('192.0.2.1'))
    // Two remote candidates with the same foundation, one with another.
    list.addRemoteCandidate(remote('198.51.100.1', 1, 'host', 'F1'))
    list.addRemoteCandidate(remote('198.51.100.2', 2, 'host', 'F1'))
    list.addRemoteCandidate(remote('198.51.100.3', 3, 'srflx', 'F2'))
    const state = (port: number): string => list.pairs.find((p) => p.remote.port === port)!.state
    expect(state(1)).toBe('waiting')
    expect(state(2)).toBe('frozen')
    expect(state(3)).toBe('waiting')
  })

  it('hands out triggered checks first, then Waiting by priority, then unfreezes (RFC 8445 §6.1.4.2)', () => {
    const list = new Checklist({ role: 'controlling' })
    list.addLocalCandidate(host('192.0.2.1'))
    list.addRemoteCandidate(remote('198.51.100.1', 1, 'host', 'F1'))
    list.addRemoteCandidate(remote('198.51.100.2', 2, 'host', 'F1'))
    list.addRemoteCandidate(remote('198.51.100.3', 3, 'srflx', 'F2'))
    const low = list.pairs.find((p) => p.remote.port === 3)!
    list.enqueueTriggered(low)
    const order: number[] = []
    for (let pair = list.next(); pair !== undefined; pair = list.next()) {
      order.push(pair.remote.port)
      pair.setState('in-progress')
      pair.setState('failed', 'timeout')
    }
    // 3 (triggered), 1 (Waiting), then 2 unfrozen once foundation F1 has nothing in progress.
    expect(order).toEqual([3, 1, 2])
    expect(list.hasPendingChecks).toBe(false)
  })

  it('unfreezes a foundation when one of its pairs succeeds (RFC 8445 §7.2.5.3.3)', () => {
    const list = new Checklist({ role: 'controlling' })
    list.addLocalCandidate(host('192.0.2.1'))
    list.addRemoteCandidate(remote('198.51.100.1', 1, 'host', 'F1'))
    list.addRemoteCandidate(remote('198.51.100.2', 2, 'host', 'F1'))
    const [first, second] = [list.pairs.find((p) => p.remote.port === 1)!, list.pairs.find((p) => p.remote.port === 2)!]
    expect(second.state).toBe('frozen')
    first.setState('in-progress')
    first.setState('succeeded')
    list.unfreezeFoundation(first.foundation)
    expect(second.state).toBe('waiting')
  })

  it('builds the valid list with the checked pair or a peer-reflexive one (RFC 8445 §7.2.5.3.2)', () => {
    const list = new Checklist({ role: 'controlled' })
    const h = host('10.0.0.1')
    list.addLocalCandidate(h)
    list.addRemoteCandidate(remote('198.51.100.1', 1))
    const pair = list.pairs[0]!
    pair.setState('waiting')
    pair.setState('in-progress')
    pair.setState('succeeded')
    const prflx = createLocalCandidate({ type: 'prflx', address: '203.0.113.9', port: 7000, base: h.base, priority: candidatePriority('prflx') })
    list.addLocalCandidate(prflx)
    const valid = list.addValidPair(pair, prflx)
    expect(valid).not.toBe(pair)
    expect(valid.local).toBe(prflx)
    expect(valid.state).toBe('succeeded')
    expect(pair.validPair).toBe(valid)
    expect(list.validPairs).toEqual([valid])
    expect(list.pairs).not.toContain(valid)
    expect(list.addValidPair(pair, prflx)).toBe(valid)
    expect(list.validPairs).toHaveLength(1)
  })

  it('recomputes priorities and order when the role changes', () => {
    const list = new Checklist({ role: 'controlling' })
    list.addLocalCandidate(host('192.0.2.1'))
    list.addRemoteCandidate(remote('198.51.100.1', 1, 'srflx'))
    const before = list.pairs[0]!.priority
    list.setRole('controlled')
    expect(list.role).toBe('controlled')
    expect(list.pairs[0]!.priority).toBe(before - 1n) // only the G>D bit changes here
  })

  it('keeps at most maxPairs, dropping the lowest-priority ones', () => {
    const list = new Checklist({ role: 'controlling', maxPairs: 3 })
    list.addLocalCandidate(host('192.0.2.1'))
    for (let i = 1; i <= 5; i++) list.addRemoteCandidate({ ...remote(`198.51.100.${i}`, i), priority: 1000 * i })
    expect(list.pairs.map((p) => p.remote.port)).toEqual([5, 4, 3])
  })

  it('enforces the pair state machine in one place', () => {
    const list = new Checklist({ role: 'controlling' })
    list.addLocalCandidate(host('192.0.2.1'))
    list.addRemoteCandidate(remote('198.51.100.1', 1))
    const pair: CandidatePair = list.pairs[0]!
    expect(() => pair.setState('succeeded')).toThrow(InvalidArgumentError)
    pair.setState('in-progress')
    pair.setState('succeeded')
    expect(() => pair.setState('failed')).toThrow(InvalidArgumentError)
    expect(() => new Checklist({ role: 'boss' as 'controlling' })).toThrow(InvalidArgumentError)
  })

  it('creates a Waiting pair for a triggered check to a new peer-reflexive candidate', () => {
    const list = new Checklist({ role: 'controlled' })
    const h = host('192.0.2.1')
    list.addLocalCandidate(h)
    const prflx = remote('198.51.100.7', 4444, 'prflx')
    list.addRemoteCandidate(prflx)
    const pair = list.pairForTriggeredCheck(list.localFor(prflx)!, prflx)
    expect(pair.local).toBe(h)
    list.enqueueTriggered(pair)
    expect(list.next()).toBe(pair)
  })
})

describe('Checklist and trickled candidates that were learnt first', () => {
  it('upgrades a peer-reflexive remote candidate when the peer signals it later', () => {
    const list = new Checklist({ role: 'controlling' })
    list.addLocalCandidate(host('192.0.2.1'))
    const learnt = remote('198.51.100.1', 1, 'prflx', 'learnt')
    list.addRemoteCandidate(learnt)
    const before = list.pairs[0]!.priority
    expect(list.addRemoteCandidate(remote('198.51.100.1', 1, 'host', 'signalled'))).toEqual([])
    expect(list.remoteCandidates).toHaveLength(1)
    expect(list.remoteCandidates[0]).toMatchObject({ type: 'host', foundation: 'signalled', priority: candidatePriority('host') })
    expect(list.pairs[0]!.priority > before).toBe(true)
    expect(list.pairs[0]!.foundation.endsWith(':signalled')).toBe(true)
  })

  it('stores at most twice maxPairs remote candidates', () => {
    const list = new Checklist({ role: 'controlling', maxPairs: 4 })
    for (let i = 1; i <= 20; i++) list.addRemoteCandidate(remote(`198.51.100.${i}`, i))
    expect(list.remoteCandidates).toHaveLength(8)
  })
})
