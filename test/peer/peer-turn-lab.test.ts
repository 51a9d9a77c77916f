// The TURN path through real kernel NATs (the NAT lab): a Beacon and our TURN server on
// two public lab servers; peers (the peer-agent fixture, from dist/: `npm run build`) in
// site hosts. Both peers behind endpoint-dependent NATs cannot punch, so they must meet
// through the relay; a site that blocks UDP reaches the relay over TCP.
import type { ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { NatLab } from '../../src/testing/index.js'
import { createNatLab } from '../../src/testing/index.js'
import { describeLab, nextMessage } from '../testing/lab-helpers.js'

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
const SMALL = 16 * 1024
const BIG = 5 * 1024 * 1024
const USER = { username: 'lab', credential: 'lab-password' }

interface Info {
  path: string
  local: { address: string; port: number; type: string }
  remote: { address: string; port: number; type: string }
  relay?: { server: string; transport: string }
  ms: number
}
interface ConnectResult {
  info: Info
  remotePeerId: string
  connectMs: number
  exchangeMs: number
  closeMs: number
  sent: string
  received: { hash: string; bytes: number }
}
type AgentEvent = { event: string; name: string; remotePeerId?: string; peerId?: string; info?: Info; sent?: string; received?: { hash: string; bytes: number } }

class Agent {
  readonly events: AgentEvent[] = []
  readonly peerIds = new Map<string, string>()
  #nextId = 1

  constructor(
    readonly host: Host,
    readonly child: ChildProcess,
  ) {
    child.on('message', (m: AgentEvent) => {
      if (m.event !== undefined) this.events.push(m)
    })
  }

  async call<T>(op: string, args: Record<string, unknown> = {}, timeout = 20_000): Promise<T> {
    const id = this.#nextId++
    type Reply = { ok: boolean; code?: string; message?: string; selectedPath?: string }
    const reply = nextMessage(this.child, (m) => ((m as { id?: number }).id === id ? (m as Reply) : undefined), timeout, `${op} in ${this.host}`)
    this.child.send({ id, op, ...args })
    const r = await reply
    if (!r.ok) throw Object.assign(new Error(`${op} in ${this.host}: ${r.code} ${r.message}`), { code: r.code, selectedPath: r.selectedPath })
    return r as T
  }

  async listen(name: string, options: { bytes?: number; liar?: boolean; turn?: unknown } = {}): Promise<string> {
    const { peerId } = await this.call<{ peerId: string }>('start', { name, liar: options.liar === true, turn: options.turn })
    await this.call('listen', { name, bytes: options.bytes ?? SMALL })
    this.peerIds.set(name, peerId)
    return peerId
  }

  async start(name: string, turn?: unknown): Promise<string> {
    const { peerId } = await this.call<{ peerId: string }>('start', { name, turn })
    this.peerIds.set(name, peerId)
    return peerId
  }

  connect(name: string, target: string, options: { bytes?: number; timeout?: number; paths?: string[] } = {}): Promise<ConnectResult> {
    const timeout = options.timeout ?? 15_000
    return this.call<ConnectResult>('connect', { name, target, bytes: options.bytes ?? SMALL, timeout, ...(options.paths ? { paths: options.paths } : {}) }, timeout + 20_000)
  }

  async event(match: (e: AgentEvent) => boolean, timeout = 15_000): Promise<AgentEvent> {
    const deadline = Date.now() + timeout
    for (;;) {
      const found = this.events.find(match)
      if (found !== undefined) return found
      if (Date.now() > deadline) throw new Error(`${this.host}: no matching event within ${timeout} ms; got ${JSON.stringify(this.events.map((e) => e.event))}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
}

describeLab('Peer through a TURN relay in the NAT lab', () => {
  let lab: NatLab
  let turn: unknown[]
  const agents = new Map<Host, Agent>()
  const agent = (host: Host): Agent => agents.get(host) as Agent

  beforeAll(async () => {
    lab = await createNatLab({ servers: { beacon: {}, turn: {} }, sites: SITES })
    const beaconServer = lab.fork('beacon', new URL('./fixtures/beacon.mjs', import.meta.url), [lab.address('beacon')])
    const beacon = await nextMessage(beaconServer, (m) => (m as { spec?: string }).spec, 15_000, 'beacon')
    const turnServer = lab.fork('turn', new URL('./fixtures/turn-server.mjs', import.meta.url), [lab.address('turn'), USER.username, USER.credential])
    const port = await nextMessage(turnServer, (m) => (m as { port?: number }).port, 15_000, 'turn server')
    turn = [{ urls: `turn:${lab.address('turn')}:${port}?transport=udp`, ...USER }]
    await Promise.all(
      HOSTS.map(async (host) => {
        const child = lab.fork(host, new URL('./fixtures/peer-agent.mjs', import.meta.url), [beacon])
        await nextMessage(child, (m) => ((m as { ready?: boolean }).ready === true ? true : undefined), 20_000, `agent in ${host}`)
        agents.set(host, new Agent(host, child))
      }),
    )
  }, 60_000)

  afterAll(async () => {
    await lab?.close()
  })

  it('two endpoint-dependent NATs connect through the relay and carry 5 MB each way intact', async () => {
    const target = await agent('edm2').listen('big', { bytes: BIG, turn })
    await agent('edm1').start('main', turn)
    const result = await agent('edm1').connect('main', target, { bytes: BIG, timeout: 20_000 })
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
    await agent('eim1').start('main', turn)
    const result = await agent('eim1').connect('main', target)
    expect(result.info.path).toBe('direct')
    expect(result.received.bytes).toBe(SMALL)
    console.log(`[turn-lab] EIM↔EIM direct: connect ${Math.round(result.connectMs)} ms (ICE+handshake ${result.info.ms} ms)`)
  }, 45_000)

  it('an endpoint-dependent NAT against address-and-port-dependent filtering goes through the relay', async () => {
    // eim2's listener (started above) filters by address and port: edm1's checks from its
    // fresh mappings never get in, and eim2's checks to edm1's reflexive mapping are dropped.
    const result = await agent('edm1').connect('main', agent('eim2').peerIds.get('main') as string)
    expect(result.info.path).toBe('turn')
    expect(result.received.bytes).toBe(SMALL)
    console.log(`[turn-lab] EDM→EIM+APDF over TURN: connect ${Math.round(result.connectMs)} ms`)
  }, 45_000)

  it('rejects an impostor where only the relay could connect, with ERR_PEER_IDENTITY_MISMATCH, at once', async () => {
    // The liar gets the offer meant for `claimed` (a misrouting Beacon): the offer is not
    // signed for it, so it refuses it, and the dialer learns at once that it reached the
    // wrong peer — before any path is tried (the Noise check would refuse it on the path).
    const claimed = await agent('edm2').listen('liar', { liar: true, turn })
    await agent('edm1').start('dialer2', turn)
    const started = Date.now()
    const failure = agent('edm1').connect('dialer2', claimed, { timeout: 15_000 })
    await expect(failure).rejects.toMatchObject({ code: 'ERR_PEER_IDENTITY_MISMATCH' })
    expect(Date.now() - started).toBeLessThan(5_000)
    const dialerId = agent('edm1').peerIds.get('dialer2')
    await agent('edm2').event((e) => e.event === 'incoming-error' && e.name === 'liar' && e.peerId === dialerId)
  }, 45_000)

  it('a site that blocks UDP reaches the relay over TCP and connects through it', async () => {
    const target = await agent('eim1').listen('fromnoudp', { turn })
    await agent('noudp1').start('main', turn)
    const result = await agent('noudp1').connect('main', target, { timeout: 20_000 })
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
    const again = await agent('noudp1').connect('main', target, { timeout: 20_000 })
    expect(again.info.relay).toMatchObject({ transport: 'tcp' })
    // (Trying UDP first would cost its 300 ms head start before TCP.)
    expect(again.connectMs).toBeLessThan(300)
    console.log(`[turn-lab] UDP known blocked → TURN over TCP: connect ${Math.round(again.connectMs)} ms`)
  }, 75_000)
})
