// Relayed local candidates in the ICE agent (RFC 8445 §5.1.1.2, §7.2), on the in-memory
// network: a relay here is a public endpoint the agent sends "from" (what a TURN
// allocation is to it), so checks for relayed pairs must go through it, incoming checks
// through it belong to the relayed candidate, and relay pairs wait for `relayDelay`.
import { afterEach, describe, expect, it } from 'vitest'
import { IceAgent, type IceAgentOptions, type IceRole } from '../../src/ice/index.js'
import type { IceRelay } from '../../src/ice/relay-routes.js'
import { RelayRoutes } from '../../src/ice/relay-routes.js'
import { createStunRequest, encodeStunMessage } from '../../src/stun/message.js'
import { VirtualNetwork, type VirtualEndpoint } from './helpers/virtual-network.js'
import { wireAgents } from './helpers/signalling.js'

const FAST: Partial<IceAgentOptions> = { ta: 5, checkRetransmit: { rto: 40, rc: 4, rm: 2 }, nominationDelay: 20, consentInterval: 50, consentTimeout: 300 }

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c()
})

function agent(endpoint: VirtualEndpoint, role: IceRole, extra: Partial<IceAgentOptions> = {}): IceAgent {
  const a = new IceAgent({ endpoint, role, ...FAST, ...extra })
  cleanups.push(() => a.close())
  return a
}

/** A relay on the virtual internet: its endpoint is the relayed address. */
function relayOn(endpoint: VirtualEndpoint): IceRelay & { permits: string[]; sent: number } {
  const relay = {
    permits: [] as string[],
    sent: 0,
    server: { host: '203.0.113.200', port: 3478 },
    send(data: Uint8Array, port: number, host: string) {
      relay.sent++
      endpoint.send(data, port, host)
    },
    onMessage: (listener: Parameters<VirtualEndpoint['onMessage']>[0]) => endpoint.onMessage(listener),
    localAddress: () => endpoint.localAddress(),
    permit(host: string) {
      relay.permits.push(host)
    },
  }
  return relay
}

function setup(relayDelay: number, extraA: Partial<IceAgentOptions> = {}) {
  const net = new VirtualNetwork()
  cleanups.push(() => net.close())
  net.createStunServer('203.0.113.1', 3478)
  // Both endpoint-dependent: no direct pair can work.
  const natA = net.createNat('198.51.100.1', 'endpoint-dependent', 'address-and-port-dependent')
  const natB = net.createNat('198.51.100.2', 'endpoint-dependent', 'address-and-port-dependent')
  const stunServers = [{ host: '203.0.113.1', port: 3478 }]
  const a = agent(natA.bind('10.0.1.10'), 'controlling', { stunServers, relayDelay, ...extraA })
  const b = agent(natB.bind('10.0.2.10'), 'controlled', { stunServers })
  const relay = relayOn(net.bind('203.0.113.9', 50000))
  return { a, b, relay }
}

describe('relayed candidates in the ICE agent', () => {
  it('connects two endpoint-dependent NATs through the relay: checks go out through it, permissions first', async () => {
    const { a, b, relay } = setup(0)
    cleanups.push(wireAgents(a, b))
    const candidate = a.addRelay(relay)
    expect(candidate).toMatchObject({ type: 'relay', address: '203.0.113.9', port: 50000, base: { address: '203.0.113.9', port: 50000 } })
    expect(a.addRelay(relay)).toBeUndefined() // the same relayed address again
    const [sa, sb] = await Promise.all([a.connect({ timeout: 5000 }), b.connect({ timeout: 5000 })])
    expect(sa.local.type).toBe('relay')
    expect(sb.remote).toMatchObject({ address: '203.0.113.9', port: 50000 })
    expect(relay.sent).toBeGreaterThan(0)
    // B's public IP (its server-reflexive candidate) was permitted before checks to it.
    expect(relay.permits).toContain('198.51.100.2')
  })

  it('does not nominate a relay pair before relayDelay, unless told UDP is blocked', async () => {
    const slow = setup(400)
    cleanups.push(wireAgents(slow.a, slow.b))
    slow.a.addRelay(slow.relay)
    const started = performance.now()
    void slow.b.connect({ timeout: 5000 }).catch(() => {})
    const selection = await slow.a.connect({ timeout: 5000 })
    expect(selection.local.type).toBe('relay')
    expect(performance.now() - started).toBeGreaterThanOrEqual(380)

    const fast = setup(5000)
    cleanups.push(wireAgents(fast.a, fast.b))
    fast.a.addRelay(fast.relay)
    const begun = performance.now()
    void fast.b.connect({ timeout: 5000 }).catch(() => {})
    setTimeout(() => fast.a.nominateRelaysNow(), 50)
    const quick = await fast.a.connect({ timeout: 5000 })
    expect(quick.local.type).toBe('relay')
    expect(performance.now() - begun).toBeLessThan(1500)
  })

  it('prefers a direct pair when one works, with the relay there from the start', async () => {
    const net = new VirtualNetwork()
    cleanups.push(() => net.close())
    const a = agent(net.bind('192.0.2.1'), 'controlling', { relayDelay: 0 })
    const b = agent(net.bind('192.0.2.2'), 'controlled')
    cleanups.push(wireAgents(a, b))
    a.addRelay(relayOn(net.bind('203.0.113.9', 50000)))
    void b.connect({ timeout: 5000 }).catch(() => {})
    const selection = await a.connect({ timeout: 5000 })
    expect(selection.local.type).toBe('host')
    expect(selection.remote.type).toBe('host')
  })

  it('relay-only: with no host candidate at all, the relayed one connects', async () => {
    const { a, b, relay } = setup(0, { gather: { hostAddresses: [] }, stunServers: [] })
    cleanups.push(wireAgents(a, b))
    a.addRelay(relay)
    const [sa] = await Promise.all([a.connect({ timeout: 5000 }), b.connect({ timeout: 5000 })])
    expect(sa.local.type).toBe('relay')
    expect(a.localCandidates.every((c) => c.type === 'relay')).toBe(true)
  })
})

describe('RelayRoutes', () => {
  it('routes requests by transaction id and forgets them', () => {
    const net = new VirtualNetwork()
    cleanups.push(() => net.close())
    const routes = new RelayRoutes(() => {})
    cleanups.push(() => routes.close())
    const candidate = routes.add(relayOn(net.bind('203.0.113.9', 50000)))!
    const key = routes.keyOf(candidate)!
    expect(key).toBeDefined()
    expect(routes.keyOf({ type: 'host', base: { address: '10.0.0.1', port: 1 } })).toBeUndefined()
    const request = createStunRequest('binding')
    const encoded = encodeStunMessage(request)
    expect(routes.routeOf(encoded)).toBeUndefined()
    routes.route(request.transactionId, key)
    expect(routes.routeOf(encoded)).toBe(key)
    routes.unroute(request.transactionId)
    expect(routes.routeOf(encoded)).toBeUndefined()
  })
})
