import { afterEach, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { IceAgent, type IceAgentOptions, type IceRole, type IceSelection } from '../../src/ice/index.js'
import { decodeStunMessage, encodeStunMessage } from '../../src/stun/message.js'
import { IceFailedError, PeerlinkError } from '../../src/errors.js'
import { VirtualNetwork, type VirtualEndpoint, type Filtering, type Mapping } from './helpers/virtual-network.js'
import { wireAgents, type WireOptions } from './helpers/signalling.js'

const FAST: Partial<IceAgentOptions> = {
  ta: 5,
  checkRetransmit: { rto: 40, rc: 4, rm: 2 },
  nominationDelay: 20,
  consentInterval: 50,
  consentTimeout: 300,
}

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c()
})

function agent(endpoint: VirtualEndpoint, role: IceRole, extra: Partial<IceAgentOptions> = {}): IceAgent {
  const a = new IceAgent({ endpoint, role, ...FAST, ...extra })
  cleanups.push(() => a.close())
  return a
}

function network(options: ConstructorParameters<typeof VirtualNetwork>[0] = {}): VirtualNetwork {
  const net = new VirtualNetwork(options)
  cleanups.push(() => net.close())
  return net
}

function wire(a: IceAgent, b: IceAgent, options?: WireOptions): void {
  cleanups.push(wireAgents(a, b, options))
}

async function connectBoth(a: IceAgent, b: IceAgent, timeout = 5000): Promise<[IceSelection, IceSelection]> {
  return Promise.all([a.connect({ timeout }), b.connect({ timeout })])
}

/** Two hosts, each behind its own NAT, and a STUN server on the internet. */
function natPair(
  net: VirtualNetwork,
  left: [Mapping, Filtering],
  right: [Mapping, Filtering],
): { ea: VirtualEndpoint; eb: VirtualEndpoint; stun: { host: string; port: number } } {
  net.createStunServer('203.0.113.1', 3478)
  const natA = net.createNat('198.51.100.1', ...left)
  const natB = net.createNat('198.51.100.2', ...right)
  return { ea: natA.bind('10.0.1.10'), eb: natB.bind('10.0.2.10'), stun: { host: '203.0.113.1', port: 3478 } }
}

describe('ICE on a simulated network', () => {
  it('connects two public hosts by their host candidates', async () => {
    const net = network()
    const a = agent(net.bind('192.0.2.1'), 'controlling')
    const b = agent(net.bind('192.0.2.2'), 'controlled')
    wire(a, b)
    const [sa, sb] = await connectBoth(a, b)
    expect(sa.remote).toMatchObject({ address: '192.0.2.2', type: 'host' })
    expect(sb.remote).toMatchObject({ address: '192.0.2.1', type: 'host' })
    expect(sa.pair.nominated).toBe(true)
    expect(sb.pair.nominated).toBe(true)
    expect(a.state).toBe('connected')
    expect(b.state).toBe('connected')
    expect(typeof sa.rttMs).toBe('number')
  })

  it.each<[string, [Mapping, Filtering], [Mapping, Filtering]]>([
    ['EIM/EIF both', ['endpoint-independent', 'endpoint-independent'], ['endpoint-independent', 'endpoint-independent']],
    ['EIM/ADF both', ['endpoint-independent', 'address-dependent'], ['endpoint-independent', 'address-dependent']],
    ['EIM/APDF both', ['endpoint-independent', 'address-and-port-dependent'], ['endpoint-independent', 'address-and-port-dependent']],
  ])('punches through %s NATs with server-reflexive candidates', async (_name, left, right) => {
    const net = network()
    const { ea, eb, stun } = natPair(net, left, right)
    const a = agent(ea, 'controlling', { stunServers: [stun] })
    const b = agent(eb, 'controlled', { stunServers: [stun] })
    wire(a, b)
    const [sa, sb] = await connectBoth(a, b)
    expect(sa.remote.address).toBe('198.51.100.2')
    expect(sb.remote.address).toBe('198.51.100.1')
    expect(sa.local.address).toBe('198.51.100.1')
    expect(sa.local.type).toBe('srflx')
  })

  it.each<[Filtering]>([['endpoint-independent'], ['address-dependent']])(
    'connects an EIM/%s NAT to an endpoint-dependent NAT through a peer-reflexive candidate',
    async (filtering) => {
      const net = network()
      const { ea, eb, stun } = natPair(net, ['endpoint-independent', filtering], ['endpoint-dependent', 'address-and-port-dependent'])
      const a = agent(ea, 'controlling', { stunServers: [stun] })
      const b = agent(eb, 'controlled', { stunServers: [stun] })
      wire(a, b)
      const [sa, sb] = await connectBoth(a, b)
      // A reaches B only at the port B's NAT opened towards A: learnt from B's check.
      expect(sa.remote.type).toBe('prflx')
      expect(sa.remote.address).toBe('198.51.100.2')
      expect(a.remoteCandidates.some((c) => c.type === 'prflx')).toBe(true)
      expect(sb.remote.address).toBe('198.51.100.1')
      // B's mapped address towards A differs from its srflx one: B learns a local prflx.
      expect(sb.local.type).toBe('prflx')
    },
  )

  it('fails with ERR_ICE_FAILED and per-pair outcomes when no pair works (APDF against EDM)', async () => {
    const net = network()
    const { ea, eb, stun } = natPair(net, ['endpoint-independent', 'address-and-port-dependent'], ['endpoint-dependent', 'address-and-port-dependent'])
    const a = agent(ea, 'controlling', { stunServers: [stun] })
    const b = agent(eb, 'controlled', { stunServers: [stun] })
    wire(a, b)
    const started = performance.now()
    const results = await Promise.allSettled([a.connect({ timeout: 10_000 }), b.connect({ timeout: 10_000 })])
    expect(performance.now() - started).toBeLessThan(5000)
    for (const r of results) {
      expect(r.status).toBe('rejected')
      const err = (r as PromiseRejectedResult).reason as IceFailedError
      expect(err).toBeInstanceOf(IceFailedError)
      expect(err.code).toBe('ERR_ICE_FAILED')
      expect(err.reason).toBe('failed')
      expect(err.pairs.length).toBeGreaterThan(0)
      expect(err.pairs.every((p) => p.state === 'failed')).toBe(true)
      expect(err.pairs.some((p) => p.reason === 'timeout')).toBe(true)
    }
    expect(a.state).toBe('failed')
  })

  it('learns a peer-reflexive remote candidate from a check when the peer trickles nothing', async () => {
    const net = network()
    const a = agent(net.bind('192.0.2.1'), 'controlling')
    const b = agent(net.bind('192.0.2.2'), 'controlled')
    // A never hears of B's candidates: B's check is how A learns its address.
    wire(a, b, { filter: (_c, from) => from === 'a' })
    const [sa, sb] = await connectBoth(a, b)
    expect(sa.remote).toMatchObject({ type: 'prflx', address: '192.0.2.2' })
    expect(sb.remote).toMatchObject({ type: 'host', address: '192.0.2.1' })
  })

  it('answers checks that arrive before the credentials, and acts on them afterwards', async () => {
    const net = network()
    const a = agent(net.bind('192.0.2.1'), 'controlling')
    const b = agent(net.bind('192.0.2.2'), 'controlled')
    wire(a, b, { skipCredentials: true })
    a.setRemoteCredentials(b.localCredentials)
    const pa = a.connect({ timeout: 5000 })
    const pb = b.connect({ timeout: 5000 })
    await new Promise((r) => setTimeout(r, 60))
    // B answered A's checks without knowing A's credentials.
    expect(a.validPairs.length).toBeGreaterThan(0)
    b.setRemoteCredentials(a.localCredentials)
    const [sa, sb] = await Promise.all([pa, pb])
    expect(sa.remote.address).toBe('192.0.2.2')
    expect(sb.remote.address).toBe('192.0.2.1')
  })

  it('starts checks before the remote candidates trickle in, and checks late candidates too', async () => {
    const net = network()
    const a = agent(net.bind('192.0.2.1'), 'controlling')
    const b = agent(net.bind('192.0.2.2'), 'controlled')
    // B's candidates reach A 100 ms late; A's never reach B (B learns A from A's checks).
    wire(a, b, { delayToA: 100, filter: (_c, from) => from === 'b' })
    a.addRemoteCandidate('candidate:dead 1 udp 2130706431 192.0.2.99 9 typ host')
    const checked: { address: string; at: number }[] = []
    const started = performance.now()
    a.on('pair-state', (pair) => {
      if (pair.state === 'in-progress') checked.push({ address: pair.remote.address, at: performance.now() - started })
    })
    const [sa, sb] = await connectBoth(a, b)
    expect(checked[0]?.address).toBe('192.0.2.99')
    const late = checked.find((c) => c.address === '192.0.2.2')
    expect(late?.at).toBeGreaterThanOrEqual(95)
    expect(sa.remote).toMatchObject({ address: '192.0.2.2', type: 'host' })
    expect(sb.remote).toMatchObject({ address: '192.0.2.1', type: 'prflx' })
  })

  it.each<[IceRole]>([['controlling'], ['controlled']])('resolves a role conflict when both sides start %s', async (role) => {
    const net = network()
    const a = agent(net.bind('192.0.2.1'), role, { tieBreaker: 10n })
    const b = agent(net.bind('192.0.2.2'), role, { tieBreaker: 20n })
    wire(a, b)
    const changes: IceRole[] = []
    a.on('role-change', (r) => changes.push(r))
    b.on('role-change', (r) => changes.push(r))
    const [sa, sb] = await connectBoth(a, b)
    expect(a.role).not.toBe(b.role)
    // RFC 8445 §7.3.1.1: the larger tie-breaker (B) ends up controlling.
    expect(b.role).toBe('controlling')
    expect(a.role).toBe('controlled')
    expect(changes.length).toBeGreaterThan(0)
    expect(sa.remote.address).toBe('192.0.2.2')
    expect(sb.remote.address).toBe('192.0.2.1')
  })

  it('still connects with 10% random loss on every packet', async () => {
    let lost = 0
    for (const seed of [1, 2, 3, 4, 5]) {
      const net = network({ loss: 0.1, seed })
      const { ea, eb, stun } = natPair(net, ['endpoint-independent', 'address-dependent'], ['endpoint-independent', 'address-and-port-dependent'])
      const a = agent(ea, 'controlling', { stunServers: [stun], checkRetransmit: { rto: 30, rc: 7, rm: 4 } })
      const b = agent(eb, 'controlled', { stunServers: [stun], checkRetransmit: { rto: 30, rc: 7, rm: 4 } })
      wire(a, b)
      const [sa, sb] = await connectBoth(a, b, 10_000)
      expect(sa.remote.address).toBe('198.51.100.2')
      expect(sb.remote.address).toBe('198.51.100.1')
      lost += net.counters.lost
      a.close()
      b.close()
    }
    expect(lost).toBeGreaterThan(0)
  })

  it('keeps consent while the path works and reports consent-lost when it dies', async () => {
    const net = network()
    const a = agent(net.bind('192.0.2.1'), 'controlling')
    const b = agent(net.bind('192.0.2.2'), 'controlled')
    wire(a, b)
    await connectBoth(a, b)
    await new Promise((r) => setTimeout(r, 400)) // > consentTimeout with the path alive
    expect(a.state).toBe('connected')
    expect(b.state).toBe('connected')
    const lost = new Promise<{ sinceLastResponseMs: number }>((resolve) => a.once('consent-lost', resolve))
    const lostB = new Promise<unknown>((resolve) => b.once('consent-lost', resolve))
    net.dropIf = () => true
    const started = performance.now()
    const info = await lost
    await lostB
    expect(info.sinceLastResponseMs).toBeGreaterThanOrEqual(300)
    expect(performance.now() - started).toBeLessThan(1000)
    expect(a.state).toBe('failed')
  })

  it('fails with reason timeout when nothing answers before the deadline', async () => {
    const net = network()
    const a = agent(net.bind('192.0.2.1'), 'controlling', { checkRetransmit: { rto: 1000, rc: 7, rm: 16 } })
    a.setRemoteCredentials({ ufrag: 'abcd', pwd: 'abcdefghijklmnopqrstuv' })
    a.addRemoteCandidate('candidate:x 1 udp 2130706431 192.0.2.99 9 typ host')
    const err = await a.connect({ timeout: 100 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IceFailedError)
    expect((err as IceFailedError).reason).toBe('timeout')
    expect((err as IceFailedError).pairs).toEqual([
      { local: '192.0.2.1:10000 typ host', remote: '192.0.2.99:9 typ host', state: 'failed', reason: 'timeout' },
    ])
  })

  it('rejects connect with ERR_ABORTED and closes the agent when the signal aborts', async () => {
    const net = network()
    const a = agent(net.bind('192.0.2.1'), 'controlling')
    const controller = new AbortController()
    const p = a.connect({ signal: controller.signal })
    controller.abort()
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(a.state).toBe('closed')
  })

  it('answers a check with the wrong password with 401 and learns nothing from it', async () => {
    const net = network()
    const ea = net.bind('192.0.2.1')
    const a = agent(ea, 'controlled')
    await a.gather()
    const intruder = agent(net.bind('192.0.2.66'), 'controlling', { remoteCredentials: { ufrag: a.localCredentials.ufrag, pwd: 'wrongwrongwrongwrongwrong' } })
    intruder.addRemoteCandidate(`candidate:x 1 udp 2130706431 192.0.2.1 ${ea.address.port} typ host`)
    intruder.endOfRemoteCandidates()
    await intruder.gather()
    a.setRemoteCredentials(intruder.localCredentials)
    const err = await intruder.connect({ timeout: 3000 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PeerlinkError)
    expect((err as IceFailedError).pairs[0]?.reason).toBe('error 401')
    expect(a.remoteCandidates).toEqual([])
  })
  it('shrugs off hostile datagrams and still connects', async () => {
    const net = network()
    const ea = net.bind('192.0.2.1')
    const a = agent(ea, 'controlled')
    const b = agent(net.bind('192.0.2.2'), 'controlling')
    const attacker = net.bind('192.0.2.66')
    const stunLike = fc.record({
      cls: fc.constantFrom('request', 'indication', 'success', 'error' as const),
      username: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
      priority: fc.option(fc.nat({ max: 0xffffffff }), { nil: undefined }),
      controlling: fc.option(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { nil: undefined }),
      fingerprint: fc.boolean(),
    })
    const datagrams = fc.sample(
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }),
        stunLike.map((m) =>
          encodeStunMessage(
            {
              method: 'binding',
              class: m.cls,
              transactionId: new Uint8Array(12).fill(7),
              attributes: [
                ...(m.username === undefined ? [] : [{ type: 'username' as const, value: m.username }]),
                ...(m.priority === undefined ? [] : [{ type: 'priority' as const, value: m.priority }]),
                ...(m.controlling === undefined ? [] : [{ type: 'ice-controlling' as const, value: m.controlling }]),
              ],
            },
            { fingerprint: m.fingerprint, integrity: new Uint8Array(20) },
          ),
        ),
      ),
      300,
    )
    for (const d of datagrams) attacker.send(d, ea.address.port, '192.0.2.1')
    await new Promise((r) => setTimeout(r, 20))
    expect(a.remoteCandidates).toEqual([])
    expect(a.role).toBe('controlled')
    wire(a, b)
    const [sa] = await connectBoth(a, b)
    expect(sa.remote.address).toBe('192.0.2.2')
  })

  it('closes when the constructor signal aborts', () => {
    const net = network()
    const controller = new AbortController()
    const a = agent(net.bind('192.0.2.1'), 'controlling', { signal: controller.signal })
    const states: string[] = []
    a.on('state', (s) => states.push(s))
    controller.abort()
    expect(a.state).toBe('closed')
    expect(states).toEqual(['closed'])
  })
  it('sends a Binding indication as keepalive on the selected pair', async () => {
    const net = network()
    const a = agent(net.bind('192.0.2.1'), 'controlling')
    const eb = net.bind('192.0.2.2')
    const b = agent(eb, 'controlled')
    a.sendKeepalive() // nothing selected yet: no-op
    wire(a, b)
    await connectBoth(a, b)
    const seen: { cls: string; fingerprint: boolean }[] = []
    eb.onMessage((data) => {
      const m = decodeStunMessage(data)
      seen.push({ cls: m.class, fingerprint: m.fingerprintOffset !== undefined })
    })
    a.sendKeepalive()
    await new Promise((r) => setTimeout(r, 10))
    expect(seen).toContainEqual({ cls: 'indication', fingerprint: true })
    expect(b.state).toBe('connected')
  })
  it('checks a pair at once (triggered check) when the peer checks it first', async () => {
    const net = network()
    const a = agent(net.bind('192.0.2.1'), 'controlling', { ta: 10 })
    const b = agent(net.bind('192.0.2.2'), 'controlled', { ta: 10 })
    // A has eight dead candidates that outrank B's real one.
    for (let i = 1; i <= 8; i++) a.addRemoteCandidate(`candidate:dead${i} 1 udp ${4_000_000_000 + i} 192.0.2.${100 + i} 9 typ host`)
    const order: string[] = []
    a.on('pair-state', (pair) => {
      if (pair.state === 'in-progress') order.push(pair.remote.address)
    })
    wire(a, b)
    await connectBoth(a, b)
    const index = order.indexOf('192.0.2.2')
    expect(index).toBeGreaterThanOrEqual(0)
    expect(index).toBeLessThan(4)
  })
})
