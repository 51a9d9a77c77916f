// Peers through real kernel NATs (the NAT lab): a Beacon on a public lab server is the
// peers' only server (rendezvous and STUN); each lab host runs a peer-agent fixture
// (dist/, built by `npm run build`) that the test drives over IPC. One lab, built once,
// serves every case; each case uses its own pair of sites so NAT state does not carry over.
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { NatLab } from '../../src/testing/index.js'
import { createNatLab } from '../../src/testing/index.js'
import type { ExchangeEvent, LabConnectionInfo } from '../testing/lab-helpers.js'
import { describeLab, forkLabBeacon, nextMessage, PeerAgent, SMALL } from '../testing/lab-helpers.js'

const EIM = 'endpoint-independent'
const SITES = {
  'eif-1': { mapping: EIM, filtering: 'endpoint-independent', hosts: ['eif1'] },
  'eif-2': { mapping: EIM, filtering: 'endpoint-independent', hosts: ['eif2'] },
  'adf-1': { mapping: EIM, filtering: 'address-dependent', hosts: ['adf1'] },
  'adf-2': { mapping: EIM, filtering: 'address-dependent', hosts: ['adf2'] },
  'apdf-1': { mapping: EIM, filtering: 'address-and-port-dependent', hosts: ['apdf1', 'lan2'] },
  'apdf-2': { mapping: EIM, filtering: 'address-and-port-dependent', hosts: ['apdf2'] },
  edm: { mapping: 'endpoint-dependent', filtering: 'address-and-port-dependent', hosts: ['edm1'] },
  public: { mapping: 'none', hosts: ['pub'] },
  'lossy-1': { mapping: EIM, filtering: 'address-and-port-dependent', hosts: ['lossy1'] },
  'lossy-2': { mapping: EIM, filtering: 'address-and-port-dependent', hosts: ['lossy2'] },
} as const
type Host = (typeof SITES)[keyof typeof SITES]['hosts'][number]
const HOSTS = Object.values(SITES).flatMap((site) => site.hosts) as Host[]
const BIG = 5 * 1024 * 1024

type Info = LabConnectionInfo
type AgentEvent = ExchangeEvent
/** The peer-agent fixture in one lab host. */
type Agent = PeerAgent

describeLab('Peer through the NAT lab', () => {
  let lab: NatLab
  let beacon: string
  const agents = new Map<Host, Agent>()
  const agent = (host: Host): Agent => agents.get(host) as Agent

  beforeAll(async () => {
    lab = await createNatLab({ servers: { beacon: {} }, sites: SITES })
    beacon = await forkLabBeacon(lab)
    await Promise.all(
      HOSTS.map(async (host) => {
        agents.set(host, await PeerAgent.fork(lab, host, new URL('./fixtures/peer-agent.mjs', import.meta.url), { args: [beacon] }))
      }),
    )
    await Promise.all(HOSTS.map((host) => agent(host).listen()))
  }, 60_000)

  afterAll(async () => {
    await lab?.close()
  })

  /** Connects `from` to `to`'s main peer, checks both ends and the data, returns both views. */
  async function connectAndCheck(from: Host, to: Host): Promise<{ dialer: Info; listener: Info }> {
    const result = await agent(from).connect(agent(to).peerId())
    expect(result.remotePeerId).toBe(agent(to).peerId())
    expect(result.info.path).toBe('direct')
    const dialerId = agent(from).peerId()
    const accepted = await agent(to).event((e) => e.event === 'connection' && e.remotePeerId === dialerId)
    const exchanged = await agent(to).event((e) => e.event === 'exchanged' && e.remotePeerId === dialerId)
    // Each side received exactly what the other sent.
    expect(exchanged.received).toEqual({ hash: result.sent, bytes: SMALL })
    expect(result.received).toEqual({ hash: exchanged.sent, bytes: SMALL })
    return { dialer: result.info, listener: accepted.info as Info }
  }

  const FILTERINGS = ['eif', 'adf', 'apdf'] as const
  const MATRIX = FILTERINGS.flatMap((a) => FILTERINGS.map((b) => [a, b] as const))

  it.each(MATRIX)('EIM+%s connects to EIM+%s directly, by server-reflexive addresses', async (a, b) => {
    const { dialer, listener } = await connectAndCheck(`${a}1` as Host, `${b}2` as Host)
    expect(dialer.remote.address).toBe(lab.site(`${b}-2`).publicAddress)
    expect(listener.remote.address).toBe(lab.site(`${a}-1`).publicAddress)
    // The listener is learnt by its signalled srflx candidate or, when its check came
    // first, as peer-reflexive at the same address: never a host (LAN) address.
    expect(['srflx', 'prflx']).toContain(dialer.remote.type)
  })

  it('EIM+EIF connects to an endpoint-dependent NAT through the peer-reflexive candidate its checks reveal', async () => {
    const { dialer, listener } = await connectAndCheck('eif1', 'edm1')
    expect(dialer.remote).toMatchObject({ type: 'prflx', address: lab.site('edm').publicAddress })
    expect(listener.remote.address).toBe(lab.site('eif-1').publicAddress)
  })

  it('an endpoint-dependent NAT connects to EIM+ADF (the listener learns it as peer-reflexive)', async () => {
    const { dialer, listener } = await connectAndCheck('edm1', 'adf1')
    expect(listener.remote).toMatchObject({ type: 'prflx', address: lab.site('edm').publicAddress })
    expect(dialer.remote.address).toBe(lab.site('adf-1').publicAddress)
  })

  it('two hosts on one LAN behind one NAT connect by their host candidates', async () => {
    const { dialer, listener } = await connectAndCheck('apdf1', 'lan2')
    expect(dialer.local).toMatchObject({ type: 'host', address: lab.address('apdf1') })
    expect(dialer.remote).toMatchObject({ type: 'host', address: lab.address('lan2') })
    expect(listener.remote).toMatchObject({ type: 'host', address: lab.address('apdf1') })
  })

  it('a peer without NAT connects to one behind a NAT, and an endpoint-dependent NAT to it', async () => {
    const toNat = await connectAndCheck('pub', 'apdf2')
    expect(toNat.dialer.remote.address).toBe(lab.site('apdf-2').publicAddress)
    expect(toNat.dialer.local.address).toBe(lab.address('pub'))
    const fromEdm = await connectAndCheck('edm1', 'pub')
    expect(fromEdm.dialer.remote).toMatchObject({ type: 'host', address: lab.address('pub') })
    expect(fromEdm.listener.remote).toMatchObject({ type: 'prflx', address: lab.site('edm').publicAddress })
  })

  it('carries 5 MB each way intact, a second stream works, and the listener sees the verified PeerId', async () => {
    const big = await agent('apdf2').listen('big', { bytes: BIG })
    const dialerId = agent('apdf1').peerId()
    const result = await agent('apdf1').connect(big, { bytes: BIG, secondStream: true, timeout: 15_000 })
    expect(result.remotePeerId).toBe(big)
    expect(result.info.path).toBe('direct')
    expect(result.echo).toBe('second:ping')
    const accepted = await agent('apdf2').event((e) => e.event === 'connection' && e.name === 'big')
    expect(accepted.remotePeerId).toBe(dialerId)
    const exchanged = await agent('apdf2').event((e) => e.event === 'exchanged' && e.name === 'big', 30_000)
    expect(exchanged.remotePeerId).toBe(dialerId)
    expect(exchanged.received).toEqual({ hash: result.sent, bytes: BIG })
    expect(result.received).toEqual({ hash: exchanged.sent, bytes: BIG })
  }, 60_000)

  it('rejects a peer that answers for another PeerId (a lying Beacon) with ERR_PEER_IDENTITY_MISMATCH', async () => {
    // The liar is registered at the Beacon as `claimed` but its session key is another one.
    const claimed = await agent('eif2').listen('liar', { liar: true })
    await expect(agent('adf2').connect(claimed)).rejects.toMatchObject({ code: 'ERR_PEER_IDENTITY_MISMATCH' })
    // The liar got as far as the handshake (the path was found) and failed there too.
    const failed = await agent('eif2').event((e) => e.event === 'incoming-error' && e.name === 'liar')
    expect(failed.peerId).toBe(agent('adf2').peerId())
  })

  it('connects with 10% random loss on both NATs', async () => {
    await lab.setLoss('lossy-1', 10)
    await lab.setLoss('lossy-2', 10)
    try {
      const result = await agent('lossy1').connect(agent('lossy2').peerId(), { timeout: 25_000 })
      expect(result.info.path).toBe('direct')
      expect(result.info.remote.address).toBe(lab.site('lossy-2').publicAddress)
      expect(result.received.bytes).toBe(SMALL)
      const exchanged = await agent('lossy2').event((e) => e.event === 'exchanged' && e.remotePeerId === agent('lossy1').peerId())
      expect(exchanged.received).toEqual({ hash: result.sent, bytes: SMALL })
    } finally {
      await lab.setLoss('lossy-1', 0)
      await lab.setLoss('lossy-2', 0)
    }
  }, 45_000)

  it('fails fast with ERR_PEER_NOT_FOUND, and an aborted attempt stops everything and leaks nothing', async () => {
    const target = agent('eif2').peerId()
    const probe = lab.fork('adf1', new URL('./fixtures/abort-probe.mjs', import.meta.url), [beacon, target])
    const exited = new Promise<number | null>((resolve) => probe.once('exit', (code) => resolve(code)))
    const { result } = await nextMessage(probe, (m) => ((m as { result?: unknown }).result === undefined ? undefined : (m as { result: ProbeResult })), 30_000, 'abort probe')
    expect(result.notFound.code).toBe('ERR_PEER_NOT_FOUND')
    expect(result.notFound.ms).toBeLessThan(2_000)
    expect(result.aborts.map((a) => [a.when, a.code])).toEqual([
      ['at-once', 'ERR_ABORTED'],
      ['answer', 'ERR_ABORTED'],
      ['selected', 'ERR_ABORTED'],
    ])
    for (const a of result.aborts) expect(a.ms).toBeLessThan(5_000)
    expect(result.leaked).toEqual({})
    // Nothing but the IPC channel (and stdio) is left once the peer is closed…
    expect(result.afterClose.filter((type) => !['PipeWrap', 'TTYWrap'].includes(type))).toEqual([])
    // …and the process exits by itself: udx-native's native handles are gone too.
    let timer: ReturnType<typeof setTimeout> | undefined
    const stillRunning = new Promise((resolve) => (timer = setTimeout(resolve, 5_000, 'still running')))
    await expect(Promise.race([exited, stillRunning]).finally(() => clearTimeout(timer))).resolves.toBe(0)
    // The listener abandoned the two attempts whose offer it had (told by a close signal).
    const abandoned = (): AgentEvent[] => agent('eif2').events.filter((e) => e.event === 'incoming-error' && e.peerId === result.peerId)
    await agent('eif2').event(() => abandoned().length >= 2)
    expect(abandoned().length).toBe(2)
  }, 45_000)
})

interface ProbeResult {
  peerId: string
  notFound: { code: string; ms: number }
  aborts: { when: string; code: string; ms: number }[]
  leaked: Record<string, number>
  afterClose: string[]
}
