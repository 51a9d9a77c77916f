// The ICE behaviours a peer's fast connects rely on (src/peer's PEER_ICE_DEFAULTS):
// foreign private host candidates checked last and not waited for, nomination that does
// not wait for checks gone stale, the controlled side selecting on nomination, a young
// check re-sent once when the peer's check shows the hole is open, and the cache of
// server-reflexive candidates that offers and answers carry.
import { afterEach, describe, expect, it } from 'vitest'
import {
  type CandidatePair,
  Checklist,
  ControlledNomination,
  ControllingNomination,
  IceAgent,
  type IceAgentOptions,
  type IceCandidate,
  type IceRole,
  type LocalCandidate,
  candidatePriority,
  createLocalCandidate,
} from '../../src/ice/index.js'
import { isForeignPrivateAddress } from '../../src/ice/canonical-address.js'
import { PEER_ICE_DEFAULTS } from '../../src/peer/connect-attempt.js'
import { ReflexiveCache } from '../../src/peer/reflexive-cache.js'
import { PeerSocket } from '../../src/transport/peer-socket.js'
import { wireAgents } from '../ice/helpers/signalling.js'
import { VirtualNetwork, type VirtualEndpoint } from '../ice/helpers/virtual-network.js'

const PORT = 5000

function host(address: string): LocalCandidate {
  return createLocalCandidate({ type: 'host', address, port: PORT, base: { address, port: PORT } })
}

function remote(address: string, port: number, type: IceCandidate['type']): IceCandidate {
  return { foundation: `${type}${address.replace(/[.:]/g, '')}`, component: 1, transport: 'udp', priority: candidatePriority(type), address, port, type }
}

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup()
})

describe('isForeignPrivateAddress', () => {
  it('is true only for a private address outside every local network', () => {
    expect(isForeignPrivateAddress('10.0.2.10', ['10.0.1.10'])).toBe(true)
    expect(isForeignPrivateAddress('192.168.1.7', ['10.0.1.10', '192.168.2.1'])).toBe(true)
    expect(isForeignPrivateAddress('172.20.0.5', [])).toBe(true)
    expect(isForeignPrivateAddress('100.64.3.1', ['10.0.0.1'])).toBe(true)
    expect(isForeignPrivateAddress('fd00:1::5', ['fd00:2::1'])).toBe(true)
    // Our own LAN (same /24, same /64).
    expect(isForeignPrivateAddress('10.0.1.11', ['10.0.1.10'])).toBe(false)
    expect(isForeignPrivateAddress('fd00:1::5', ['fd00:1::1'])).toBe(false)
    // Public addresses may be reachable from anywhere.
    expect(isForeignPrivateAddress('198.51.100.7', ['10.0.1.10'])).toBe(false)
    expect(isForeignPrivateAddress('2001:db8::1', ['fd00::1'])).toBe(false)
    expect(isForeignPrivateAddress('172.32.0.1', [])).toBe(false)
    expect(isForeignPrivateAddress('not an address', [])).toBe(false)
  })
})

describe('Checklist order', () => {
  it('checks the host candidate of another private network after the server-reflexive one', () => {
    const list = new Checklist({ role: 'controlling' })
    list.addLocalCandidate(host('10.0.1.10'))
    list.addRemoteCandidate(remote('10.0.2.10', 1, 'host'))
    list.addRemoteCandidate(remote('198.51.100.2', 2, 'srflx'))
    // By priority the host pair comes first…
    expect(list.pairs.map((p) => p.remote.port)).toEqual([1, 2])
    expect(list.isUnlikelyPair(list.pairs[0] as CandidatePair)).toBe(true)
    // …but it is checked second.
    const first = list.next() as CandidatePair
    first.setState('in-progress')
    const second = list.next() as CandidatePair
    expect([first.remote.port, second.remote.port]).toEqual([2, 1])
  })

  it('checks a host candidate of our own LAN first', () => {
    const list = new Checklist({ role: 'controlling' })
    list.addLocalCandidate(host('10.0.1.10'))
    list.addRemoteCandidate(remote('198.51.100.2', 2, 'srflx'))
    list.addRemoteCandidate(remote('10.0.1.11', 1, 'host'))
    expect(list.next()?.remote.port).toBe(1)
  })
})

describe('ControllingNomination', () => {
  /** A checklist with a valid srflx pair (RTT 100 ms) below a pending pair to `above`. */
  function setup(above: string, delay: number): { list: Checklist; valid: CandidatePair; pending: CandidatePair; nominated: CandidatePair[]; nomination: ControllingNomination } {
    const list = new Checklist({ role: 'controlling' })
    list.addLocalCandidate(host('10.0.1.10'))
    list.addRemoteCandidate(remote(above, 1, 'host'))
    list.addRemoteCandidate(remote('198.51.100.2', 2, 'srflx'))
    const [pending, valid] = list.pairs as [CandidatePair, CandidatePair]
    valid.setState('in-progress')
    valid.setState('succeeded')
    valid.rttMs = 100
    list.addValidPair(valid, valid.local)
    const nominated: CandidatePair[] = []
    const nomination = new ControllingNomination({ checklist: list, sendNomination: (pair) => nominated.push(pair), select: () => {} }, { nominationDelay: delay })
    cleanups.push(() => nomination.close())
    return { list, valid, pending, nominated, nomination }
  }

  it('waits for a higher pair whose check is young, and nominates as soon as it is stale', async () => {
    const { valid, pending, nominated, nomination } = setup('10.0.1.11', 10_000)
    pending.setState('in-progress')
    pending.lastCheckAt = performance.now()
    nomination.onValidPair(valid, valid, false)
    expect(nominated).toEqual([])
    // 1.5 × 100 ms + 1 ms after the check went out, well before the 10 s deadline.
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(nominated).toEqual([valid])
  })

  it('nominates at once over a pair whose check has been unanswered for longer than the valid round trip', () => {
    const { valid, pending, nominated, nomination } = setup('10.0.1.11', 10_000)
    pending.setState('in-progress')
    pending.lastCheckAt = performance.now() - 500
    nomination.onValidPair(valid, valid, false)
    expect(nominated).toEqual([valid])
  })

  it('waits for an unchecked pair of our own LAN until the deadline', async () => {
    const { valid, nominated, nomination } = setup('10.0.1.11', 30)
    nomination.onValidPair(valid, valid, false)
    expect(nominated).toEqual([])
    await new Promise((resolve) => setTimeout(resolve, 80))
    expect(nominated).toEqual([valid])
  })

  it('does not wait for an unchecked host candidate of another private network', () => {
    const { valid, nominated, nomination } = setup('10.0.2.10', 10_000)
    nomination.onValidPair(valid, valid, false)
    expect(nominated).toEqual([valid])
  })
})

describe('ControlledNomination', () => {
  function pairInProgress(): CandidatePair {
    const list = new Checklist({ role: 'controlled' })
    list.addLocalCandidate(host('10.0.1.10'))
    list.addRemoteCandidate(remote('198.51.100.2', 2, 'srflx'))
    const pair = list.pairs[0] as CandidatePair
    pair.setState('in-progress')
    return pair
  }

  it('selects a nominated pair at once with selectOnNomination', () => {
    const pair = pairInProgress()
    const selected: CandidatePair[] = []
    new ControlledNomination({ checklist: new Checklist({ role: 'controlled' }), sendNomination: () => {}, select: (p) => selected.push(p) }, { selectOnNomination: true }).onUseCandidate(pair)
    expect(selected).toEqual([pair])
    expect(pair.nominated).toBe(true)
  })

  it('waits for its own check without it (RFC 8445 §7.3.1.5)', () => {
    const pair = pairInProgress()
    const selected: CandidatePair[] = []
    new ControlledNomination({ checklist: new Checklist({ role: 'controlled' }), sendNomination: () => {}, select: (p) => selected.push(p) }).onUseCandidate(pair)
    expect(selected).toEqual([])
    expect(pair.nominateOnSuccess).toBe(true)
  })
})

describe('IceAgent through two port-restricted NATs', () => {
  it('re-sends a young check the peer’s NAT dropped as soon as the peer’s own check arrives', async () => {
    const net = new VirtualNetwork({ latency: 10 })
    cleanups.push(() => net.close())
    net.createStunServer('203.0.113.1', 3478)
    const ea = net.createNat('198.51.100.1', 'endpoint-independent', 'address-and-port-dependent').bind('10.0.1.10')
    const eb = net.createNat('198.51.100.2', 'endpoint-independent', 'address-and-port-dependent').bind('10.0.2.10')
    // Ta 50 ms: A's first check is still "young" when B's check arrives; a retransmission
    // only after 3 s — so connecting in well under that shows it was re-sent at once.
    const options: Partial<IceAgentOptions> = { ta: 50, checkRetransmit: { rto: 3000, rc: 2, rm: 2 }, stunServers: [{ host: '203.0.113.1', port: 3478 }] }
    const agent = (endpoint: VirtualEndpoint, role: IceRole): IceAgent => {
      const a = new IceAgent({ endpoint, role, ...options })
      cleanups.push(() => a.close())
      return a
    }
    const a = agent(ea, 'controlling')
    const b = agent(eb, 'controlled')
    // B learns A's candidates 25 ms late, so A's first check to B's mapping is dropped by
    // B's NAT, and B's first check (which opens it) reaches A while A's is young.
    cleanups.push(wireAgents(a, b, { delayToB: 25 }))
    const started = performance.now()
    const [sa] = await Promise.all([a.connect({ timeout: 10_000 }), b.connect({ timeout: 10_000 })])
    expect(sa.remote.address).toBe('198.51.100.2')
    expect(performance.now() - started).toBeLessThan(1_500)
  })
})

describe('the peer’s ICE defaults', () => {
  it('are the fast-connect settings, within RFC 8445’s bounds', () => {
    expect(PEER_ICE_DEFAULTS).toMatchObject({ ta: 5, nominationDelay: 20, selectOnNomination: true, checkRetransmit: { rto: 100 } })
    expect(PEER_ICE_DEFAULTS.ta).toBeGreaterThanOrEqual(5) // RFC 8445 §14.2: Ta ≥ 5 ms
  })
})

describe('ReflexiveCache', () => {
  it('keeps the server-reflexive candidates it learns, and nothing once closed', async () => {
    const socket = await PeerSocket.bind({ host: '127.0.0.1' })
    try {
      const cache = new ReflexiveCache(socket, [], {})
      const srflx = createLocalCandidate({ type: 'srflx', address: '198.51.100.1', port: 40000, base: { address: '10.0.1.10', port: PORT }, serverAddress: '203.0.113.1' })
      cache.learn(host('10.0.1.10'))
      cache.learn(srflx)
      cache.learn({ ...srflx })
      expect(cache.candidates()).toEqual([srflx])
      cache.refresh() // no STUN servers: nothing to do
      cache.close()
      cache.learn(srflx)
      expect(cache.candidates()).toEqual([])
    } finally {
      await socket.close()
    }
  })
})
