// The TURN path through real kernel NATs (the NAT lab): a Beacon and our TURN server on
// two public lab servers; peers (the peer-agent fixture, from dist/: `npm run build`) in
// site hosts. Both peers behind endpoint-dependent NATs cannot punch, so they must meet
// through the relay; a site that blocks UDP reaches the relay over TCP.
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { NatLab } from '../../src/testing/index.js'
import { createNatLab } from '../../src/testing/index.js'
import type { ExchangeEvent, ExchangeResult, LabConnectionInfo } from '../testing/lab-helpers.js'
import { describeLab, forkLabBeacon, forkLabTurn, PeerAgent, SMALL } from '../testing/lab-helpers.js'

const EDM = { mapping: 'endpoint-dependent', filtering: 'address-and-port-dependent' } as const
const SITES = {
  'edm-1': { ...EDM, hosts: ['edm1'] },
  'edm-2': { ...EDM, hosts: ['edm2'] },
  'eim-1': { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hosts: ['eim1'] },
  'eim-2': { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hosts: ['eim2'] },
  noudp: { mapping: 'endpoint-independent', firewall: { udp: 'blocked' }, hosts: ['noudp1'] },
} as const
type Host = (typeof SITES)[keyof typeof SITES]['hosts'][number]
const HOSTS = Object.values(SITES).flatMap((site) => site.hosts) as Host[]
const BIG = 5 * 1024 * 1024
const USER = { username: 'lab', credential: 'lab-password' }

interface Info extends LabConnectionInfo {
  relay?: { server: string; transport: string }
}
interface ConnectResult extends ExchangeResult<Info> {
  exchangeMs: number
  closeMs: number
}
type AgentEvent = ExchangeEvent<Info>

/** The peer-agent fixture in one lab host. */
type Agent = PeerAgent<AgentEvent, ConnectResult>

describeLab('Peer through a TURN relay in the NAT lab', () => {
  let lab: NatLab
  let turn: unknown[]
  const agents = new Map<Host, Agent>()
  const agent = (host: Host): Agent => agents.get(host) as Agent

  beforeAll(async () => {
    lab = await createNatLab({ servers: { beacon: {}, turn: {} }, sites: SITES })
    const beacon = await forkLabBeacon(lab)
    turn = [await forkLabTurn(lab, USER)]
    await Promise.all(
      HOSTS.map(async (host) => {
        agents.set(host, await PeerAgent.fork<AgentEvent, ConnectResult>(lab, host, new URL('./fixtures/peer-agent.mjs', import.meta.url), { args: [beacon] }))
      }),
    )
  }, 60_000)

  afterAll(async () => {
    await lab?.close()
  })

  it('two endpoint-dependent NATs connect through the relay and carry 5 MB each way intact', async () => {
    const target = await agent('edm2').listen('big', { bytes: BIG, turn })
    await agent('edm1').start('main', { turn })
    const result = await agent('edm1').connect(target, { bytes: BIG, timeout: 20_000 })
    expect(result.remotePeerId).toBe(target)
    expect(result.info.path).toBe('turn')
    const dialerId = agent('edm1').peerIds.get('main')
    const accepted = await agent('edm2').event((e) => e.event === 'connection' && e.name === 'big' && e.remotePeerId === dialerId)
    expect(accepted.info?.path).toBe('turn')
    // At least one side runs its stream through its own relay allocation.
    const relayed = [result.info, accepted.info as Info].filter((info) => info.local.type === 'relay')
    expect(relayed.length).toBeGreaterThan(0)
    for (const info of relayed) expect(info.relay).toMatchObject({ transport: 'udp', server: (turn[0] as { urls: string }).urls })
    const exchanged = await agent('edm2').event((e) => e.event === 'exchanged' && e.name === 'big' && e.remotePeerId === dialerId, 60_000)
    expect(exchanged.received).toEqual({ hash: result.sent, bytes: BIG })
    expect(result.received).toEqual({ hash: exchanged.sent, bytes: BIG })
    console.log(`[turn-lab] EDM↔EDM over TURN: connect ${Math.round(result.connectMs)} ms (ICE+handshake ${result.info.ms} ms), 5 MB each way in ${Math.round(result.exchangeMs)} ms, close ${Math.round(result.closeMs)} ms`)
  }, 90_000)

  it('for comparison, two endpoint-independent NATs connect directly with the same relays configured', async () => {
    const target = await agent('eim2').listen('main', { turn })
    await agent('eim1').start('main', { turn })
    const result = await agent('eim1').connect(target)
    expect(result.info.path).toBe('direct')
    expect(result.received.bytes).toBe(SMALL)
    console.log(`[turn-lab] EIM↔EIM direct: connect ${Math.round(result.connectMs)} ms (ICE+handshake ${result.info.ms} ms)`)
  }, 45_000)

  it('an endpoint-dependent NAT against address-and-port-dependent filtering goes through the relay', async () => {
    // eim2's listener (started above) filters by address and port: edm1's checks from its
    // fresh mappings never get in, and eim2's checks to edm1's reflexive mapping are dropped.
    const result = await agent('edm1').connect(agent('eim2').peerIds.get('main') as string)
    expect(result.info.path).toBe('turn')
    expect(result.received.bytes).toBe(SMALL)
    console.log(`[turn-lab] EDM→EIM+APDF over TURN: connect ${Math.round(result.connectMs)} ms`)
  }, 45_000)

  it('rejects an impostor where only the relay could connect, with ERR_PEER_IDENTITY_MISMATCH, at once', async () => {
    // The liar gets the offer meant for `claimed` (a misrouting Beacon): the offer is not
    // signed for it, so it refuses it, and the dialer learns at once that it reached the
    // wrong peer — before any path is tried (the Noise check would refuse it on the path).
    const claimed = await agent('edm2').listen('liar', { liar: true, turn })
    await agent('edm1').start('dialer2', { turn })
    const started = Date.now()
    const failure = agent('edm1').connect(claimed, { name: 'dialer2', timeout: 15_000 })
    await expect(failure).rejects.toMatchObject({ code: 'ERR_PEER_IDENTITY_MISMATCH' })
    expect(Date.now() - started).toBeLessThan(5_000)
    const dialerId = agent('edm1').peerIds.get('dialer2')
    await agent('edm2').event((e) => e.event === 'incoming-error' && e.name === 'liar' && e.peerId === dialerId)
  }, 45_000)

  it('a site that blocks UDP reaches the relay over TCP and connects through it', async () => {
    const target = await agent('eim1').listen('fromnoudp', { turn })
    await agent('noudp1').start('main', { turn })
    const result = await agent('noudp1').connect(target, { timeout: 20_000 })
    expect(result.info.path).toBe('turn')
    expect(result.info.local.type).toBe('relay')
    expect(result.info.relay).toMatchObject({ transport: 'tcp' })
    const dialerId = agent('noudp1').peerIds.get('main')
    const exchanged = await agent('eim1').event((e) => e.event === 'exchanged' && e.name === 'fromnoudp' && e.remotePeerId === dialerId, 30_000)
    expect(exchanged.received).toEqual({ hash: result.sent, bytes: SMALL })
    expect(result.received).toEqual({ hash: exchanged.sent, bytes: SMALL })
    console.log(`[turn-lab] UDP blocked → TURN over TCP: connect ${Math.round(result.connectMs)} ms (ICE+handshake ${result.info.ms} ms)`)
    // Once the peer's STUN gathering has shown UDP blocked (about 2.75 s after it started),
    // the next attempt goes to TCP at once instead of trying a UDP Allocate first.
    await new Promise((resolve) => setTimeout(resolve, 2_500))
    const again = await agent('noudp1').connect(target, { timeout: 20_000 })
    expect(again.info.relay).toMatchObject({ transport: 'tcp' })
    // (Trying UDP first would cost its 300 ms head start before TCP.)
    expect(again.connectMs).toBeLessThan(300)
    console.log(`[turn-lab] UDP known blocked → TURN over TCP: connect ${Math.round(again.connectMs)} ms`)
  }, 75_000)
})
