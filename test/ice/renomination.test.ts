// Path recovery at the ICE level (src/ice/renomination.ts and the agent's probe/reselect):
// on a simulated network, two agents connect directly while A also has a relay; the
// direct path is black-holed, A checks the other pairs, renominates the relay pair and
// B follows; the relay pair is then used by consent; when the direct path comes back,
// the upgrade candidates find it again.
import { afterEach, describe, expect, it } from 'vitest'
import { IceAgent, type IceAgentOptions, type IceSelection } from '../../src/ice/index.js'
import type { IceRelay } from '../../src/ice/relay-routes.js'
import { isRelayPair } from '../../src/ice/nomination.js'
import { bestOf, failoverCandidates, upgradeCandidates } from '../../src/ice/renomination.js'
import { VirtualNetwork, type VirtualEndpoint } from './helpers/virtual-network.js'
import { wireAgents } from './helpers/signalling.js'

const FAST: Partial<IceAgentOptions> = {
  ta: 5,
  checkRetransmit: { rto: 40, rc: 4, rm: 2 },
  nominationDelay: 20,
  relayDelay: 100,
  consentInterval: 50,
  consentTimeout: 2000,
}

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c()
})

/** A relay on the virtual network: an endpoint at the relayed address (sends from it, receives at it). */
function relayOn(net: VirtualNetwork, ip: string): IceRelay & { endpoint: VirtualEndpoint } {
  const endpoint = net.bind(ip)
  return Object.assign(endpoint, { endpoint, permit: () => {}, server: { host: ip, port: 3478 } })
}

async function setup(): Promise<{ net: VirtualNetwork; a: IceAgent; b: IceAgent; selected: [IceSelection, IceSelection] }> {
  const net = new VirtualNetwork()
  cleanups.push(() => net.close())
  const a = new IceAgent({ endpoint: net.bind('192.0.2.1'), role: 'controlling', ...FAST })
  const b = new IceAgent({ endpoint: net.bind('192.0.2.2'), role: 'controlled', ...FAST, selectOnNomination: true })
  cleanups.push(() => a.close(), () => b.close())
  cleanups.push(wireAgents(a, b))
  a.addRelay(relayOn(net, '203.0.113.50'))
  const selected = await Promise.all([a.connect({ timeout: 5000 }), b.connect({ timeout: 5000 })])
  return { net, a, b, selected }
}

function nextReselected(agent: IceAgent): Promise<{ selection: IceSelection; previous: IceSelection }> {
  return new Promise((resolve) => agent.once('reselected', resolve))
}

describe('ICE renomination (path recovery)', () => {
  it('moves both agents to the relay pair when the direct path is black-holed, then back to the direct pair', async () => {
    const { net, a, b, selected } = await setup()
    const [sa] = selected
    expect(isRelayPair(sa.pair)).toBe(false)

    // The direct path dies: checks on it go unanswered.
    net.dropIf = (src, dst) => (src.ip === '192.0.2.1' && dst.ip === '192.0.2.2') || (src.ip === '192.0.2.2' && dst.ip === '192.0.2.1')
    await expect(a.probe(sa.pair, { rto: 20, rc: 2 })).rejects.toBeDefined()
    const candidates = failoverCandidates(a.pairs, sa.pair)
    expect(candidates.some((p) => isRelayPair(p))).toBe(true)
    expect(candidates).not.toContain(sa.pair)
    const answered = (await Promise.allSettled(candidates.map((p) => a.probe(p, { rto: 20, rc: 3 })))).flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    const best = bestOf(answered)
    expect(best !== undefined && isRelayPair(best)).toBe(true)

    const aMoved = nextReselected(a)
    const bMoved = nextReselected(b)
    a.reselect(await a.probe(best!, { nominate: true, rto: 20, rc: 3 }))
    const [ma, mb] = await Promise.all([aMoved, bMoved])
    expect(ma.previous.pair).toBe(sa.pair)
    expect(ma.selection.local.type).toBe('relay')
    expect(a.selection?.local.type).toBe('relay')
    // B follows the nomination: its remote is now A's relayed address.
    expect(mb.selection.remote).toMatchObject({ address: '203.0.113.50', type: 'relay' })
    expect(b.selection?.remote.address).toBe('203.0.113.50')
    // Consent runs on the new pair: both stay connected past the consent timeout of the dead one.
    await new Promise((resolve) => setTimeout(resolve, 2500))
    expect(a.state).toBe('connected')
    expect(b.state).toBe('connected')

    // The direct path comes back: the upgrade candidates find it, and the agents move back.
    net.dropIf = undefined
    const direct = upgradeCandidates(a.pairs, a.selection!.pair)
    expect(direct.length).toBeGreaterThan(0)
    expect(direct.every((p) => !isRelayPair(p))).toBe(true)
    const working = bestOf((await Promise.allSettled(direct.map((p) => a.probe(p, { rto: 20, rc: 3 })))).flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])))
    expect(working).toBeDefined()
    const aBack = nextReselected(a)
    const bBack = nextReselected(b)
    a.reselect(await a.probe(working!, { nominate: true, rto: 20, rc: 3 }))
    const [ba, bb] = await Promise.all([aBack, bBack])
    expect(isRelayPair(ba.selection.pair)).toBe(false)
    expect(bb.selection.remote).toMatchObject({ address: '192.0.2.1', type: 'host' })
    expect(upgradeCandidates(a.pairs, a.selection!.pair)).toEqual([])
  }, 15_000)

  it('probe rejects when the agent is not connected; reselect of the selected pair is a no-op', async () => {
    const net = new VirtualNetwork()
    cleanups.push(() => net.close())
    const idle = new IceAgent({ endpoint: net.bind('192.0.2.9'), role: 'controlling', ...FAST })
    cleanups.push(() => idle.close())
    const { a } = await setup()
    const pair = a.selection!.pair
    await expect(idle.probe(pair)).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' })
    let moved = false
    a.on('reselected', () => (moved = true))
    a.reselect(pair)
    expect(moved).toBe(false)
  })

  it('the controlled agent does not renominate: its probes carry no USE-CANDIDATE and change nothing', async () => {
    const { a, b, selected } = await setup()
    const other = b.pairs.find((p) => p !== selected[1].pair && p !== selected[1].pair.validPair)
    let moved = false
    a.on('reselected', () => (moved = true))
    b.on('reselected', () => (moved = true))
    if (other !== undefined) await b.probe(other, { nominate: true, rto: 20, rc: 2 }).catch(() => {})
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(moved).toBe(false)
    expect(a.selection?.pair).toBe(selected[0].pair)
  })
})
