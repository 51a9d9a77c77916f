// The tunnel step of the ladder through real kernel firewalls (the NAT lab): sites whose
// firewall lets only TCP to ports 80 and 443 out, a Beacon and a tunnel server on port
// 443 of a public lab server, no TURN server anywhere. Each lab host runs the
// tunnel-agent fixture (dist/, built by `npm run build`; PEERLINK_DIST may point at
// another build); the servers run the tunnel-lab-servers fixture.
import type { ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { NatLab } from '../../src/testing/index.js'
import { createNatLab } from '../../src/testing/index.js'
import type { ExchangeEvent, ExchangeResult, LabConnectionInfo } from '../testing/lab-helpers.js'
import { describeLab, nextMessage, PeerAgent } from '../testing/lab-helpers.js'

const EIM = 'endpoint-independent'
const ONLY_WEB = { onlyTcp: [80, 443] }
const SITES = {
  'web-1': { mapping: EIM, firewall: ONLY_WEB, hosts: ['web1'] },
  'web-2': { mapping: EIM, firewall: ONLY_WEB, hosts: ['web2', 'web2b'] },
  'open-1': { mapping: EIM, filtering: 'endpoint-independent', hosts: ['open1'] },
  'open-2': { mapping: EIM, filtering: 'endpoint-independent', hosts: ['open2'] },
} as const
type Host = (typeof SITES)[keyof typeof SITES]['hosts'][number]
const HOSTS = Object.values(SITES).flatMap((site) => site.hosts) as Host[]
const BIG = 5 * 1024 * 1024

interface Info extends LabConnectionInfo {
  server?: string
}
interface ConnectResult extends ExchangeResult<Info> {
  attempts: Array<[string, string | undefined, number]>
}
type AgentEvent = ExchangeEvent<Info>
interface StartOptions {
  tunnels?: string[]
  beacons?: boolean
  beacon?: string
  fallbackDelay?: number
}

/** The tunnel-agent fixture in one lab host. */
type Agent = PeerAgent<AgentEvent, ConnectResult, StartOptions>

/** PEERLINK_DIST, when set, is passed on to the fixtures. */
const forkOptions = process.env.PEERLINK_DIST === undefined ? {} : { env: { ...process.env, PEERLINK_DIST: process.env.PEERLINK_DIST } }

describeLab('Peer over the tunnel through the NAT lab (only TCP 80/443 open)', () => {
  let lab: NatLab
  let servers: ChildProcess
  let specs: { beacon: string; beaconAlt: string; tunnel: string; liar: string }
  const agents = new Map<Host, Agent>()
  const agent = (host: Host): Agent => agents.get(host) as Agent
  /** Connect times, for the report at the end. */
  const timings: Record<string, number> = {}
  /** When the agents' main peers started. */
  let startedAt = 0

  async function tunnelStats(): Promise<{ connections: number }> {
    const reply = nextMessage(servers, (m) => (m as { stats?: { connections: number } }).stats, 5_000, 'tunnel stats')
    servers.send({ stats: true })
    return reply
  }

  beforeAll(async () => {
    lab = await createNatLab({ servers: { edge: { addresses: 2 } }, sites: SITES })
    const [beaconHost, tunnelHost] = lab.node('edge').addresses as [string, string]
    servers = lab.fork('edge', new URL('./fixtures/tunnel-lab-servers.mjs', import.meta.url), [beaconHost, tunnelHost], forkOptions)
    specs = await nextMessage(servers, (m) => ((m as { tunnel?: string }).tunnel === undefined ? undefined : (m as typeof specs)), 20_000, 'lab servers')
    await Promise.all(
      HOSTS.map(async (host) => {
        agents.set(host, await PeerAgent.fork<AgentEvent, ConnectResult, StartOptions>(lab, host, new URL('./fixtures/tunnel-agent.mjs', import.meta.url), { args: [specs.beacon], fork: forkOptions }))
      }),
    )
    // Every peer has the tunnel server and listens (on the Beacon and on the tunnel).
    startedAt = performance.now()
    await Promise.all(HOSTS.map((host) => agent(host).listen('main', { tunnels: [specs.tunnel] })))
  }, 60_000)

  afterAll(async () => {
    if (Object.keys(timings).length > 0) console.log('connect times (ms):', JSON.stringify(timings))
    await lab?.close()
  })

  it('open sites connect directly, without the tunnel (the baseline for the times below)', async () => {
    const direct = await agent('open1').connect(agent('open2').peerId())
    expect(direct.info.path).toBe('direct')
    expect(direct.attempts.some(([step]) => step === 'tunnel')).toBe(false)
    timings.direct = Math.round(direct.connectMs)
    // A fresh peer on an open site, for the direct time of a first connection.
    await agent('open1').start('fresh', { tunnels: [specs.tunnel] })
    const fresh = await agent('open1').connect(agent('open2').peerId(), { name: 'fresh' })
    expect(fresh.info.path).toBe('direct')
    timings.directFresh = Math.round(fresh.connectMs)
  })

  it('both sides behind only-TCP-80/443 firewalls connect over the tunnel: 5 MB each way, a second stream, verified PeerIds', async () => {
    const big = await agent('web2').listen('big', { tunnels: [specs.tunnel], bytes: BIG })
    const dialerId = agent('web1').peerId()
    const result = await agent('web1').connect(big, { bytes: BIG, secondStream: true, timeout: 20_000 })
    expect(result.remotePeerId).toBe(big)
    expect(result.info.path).toBe('tunnel')
    expect(result.info.server).toBe(`${specs.tunnel.split('#')[0]}/`)
    expect(result.info.remote).toMatchObject({ address: lab.node('edge').addresses[1], port: 443, type: 'tunnel' })
    expect(result.echo).toBe('second:ping')
    const accepted = await agent('web2').event((e) => e.event === 'connection' && e.name === 'big')
    expect(accepted.remotePeerId).toBe(dialerId)
    expect(accepted.info?.path).toBe('tunnel')
    const exchanged = await agent('web2').event((e) => e.event === 'exchanged' && e.name === 'big', 60_000)
    expect(exchanged.remotePeerId).toBe(dialerId)
    expect(exchanged.received).toEqual({ hash: result.sent, bytes: BIG })
    expect(result.received).toEqual({ hash: exchanged.sent, bytes: BIG })
    timings.tunnelBothSides = Math.round(result.connectMs)
    timings.tunnelBothSidesStartedAt = result.attempts.find(([step]) => step === 'tunnel')?.[2] ?? -1
  }, 90_000)

  it('connects over the tunnel within 2 s more than a direct connection: at once once UDP is known blocked, after the fallback delay on a fresh peer', async () => {
    // "main" in web1 has gathered when it started: its STUN requests (UDP 443) go
    // unanswered, and the gathering gives up after about 3.75 s.
    const wait = startedAt + 5_000 - performance.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    const warm = await agent('web1').connect(agent('web2').peerId())
    expect(warm.info.path).toBe('tunnel')
    expect(warm.attempts.find(([step]) => step === 'tunnel')).toEqual(['tunnel', 'udp-blocked', expect.any(Number)])
    timings.tunnelUdpKnownBlocked = Math.round(warm.connectMs)
    // A fresh peer does not know yet: the tunnel starts after the fallback delay (1 s).
    await agent('web1').start('fresh', { tunnels: [specs.tunnel] })
    const fresh = await agent('web1').connect(agent('web2').peerId(), { name: 'fresh' })
    expect(fresh.info.path).toBe('tunnel')
    expect(fresh.attempts.find(([step]) => step === 'tunnel')?.[1]).toMatch(/^(deadline|udp-blocked)$/)
    timings.tunnelFresh = Math.round(fresh.connectMs)
    // One side only behind the firewall: the open side connects to it over the tunnel.
    const oneSide = await agent('open1').connect(agent('web2b').peerId())
    expect(oneSide.info.path).toBe('tunnel')
    timings.tunnelOneSide = Math.round(oneSide.connectMs)
    expect(warm.connectMs - timings.direct!).toBeLessThan(2_000)
    expect(fresh.connectMs - timings.directFresh!).toBeLessThan(2_000)
    expect(oneSide.connectMs - timings.direct!).toBeLessThan(2_000)
  }, 60_000)

  it('a peer whose Beacon is on a port the firewall blocks (4264) still connects, over the tunnel', async () => {
    await agent('web1').start('stranded', { beacon: specs.beaconAlt, tunnels: [specs.tunnel] })
    const result = await agent('web1').connect(agent('web2').peerId(), { name: 'stranded' })
    expect(result.info.path).toBe('tunnel')
    expect(result.remotePeerId).toBe(agent('web2').peerId())
    timings.tunnelBeaconBlocked = Math.round(result.connectMs)
    expect(result.connectMs).toBeLessThan(2_500)
  }, 30_000)

  it('rejects an impostor the tunnel server joins us to with ERR_PEER_IDENTITY_MISMATCH', async () => {
    // web2's "impostor" listens honestly under its own PeerId; the lying front of the
    // tunnel server routes connections for `claimed` (open2's PeerId) to it.
    const impostor = await agent('web2').listen('impostor', { tunnels: [specs.tunnel] })
    const claimed = agent('open2').peerId()
    const lying = nextMessage(servers, (m) => (m as { lying?: string }).lying, 5_000, 'the lie')
    servers.send({ lie: { claimed, impostor } })
    await lying
    await agent('web1').start('fooled', { tunnels: [specs.liar] })
    const error = (await agent('web1').connect(claimed, { name: 'fooled', paths: ['tunnel'] }).catch((e: unknown) => e)) as { code: string; message: string }
    expect(error.code).toBe('ERR_PEER_IDENTITY_MISMATCH')
    expect(error.message).toContain(impostor)
    // The impostor failed too (it never got a connection).
    await agent('web2').event((e) => e.event === 'incoming-error' && e.name === 'impostor')
    expect(agent('web2').events.some((e) => e.event === 'connection' && e.name === 'impostor')).toBe(false)
    // With every path allowed the Beacon knows open2, but UDP cannot get out of web1: the
    // only path that answers is the lying tunnel, and it is refused the same way.
    const all = (await agent('web1').connect(claimed, { name: 'fooled', timeout: 8_000 }).catch((e: unknown) => e)) as { code: string }
    expect(all.code).toBe('ERR_PEER_IDENTITY_MISMATCH')
  }, 60_000)

  it("paths: ['direct'] with only TCP 80/443 open fails with ERR_CONNECT_FAILED and never touches the tunnel", async () => {
    const before = await tunnelStats()
    const started = performance.now()
    const error = (await agent('web1').connect(agent('web2').peerId(), { paths: ['direct'], timeout: 4_000 }).catch((e: unknown) => e)) as { code: string; message: string }
    expect(error.code).toBe('ERR_CONNECT_FAILED')
    expect(error.message).not.toContain('"tunnel"')
    expect(performance.now() - started).toBeLessThan(10_000)
    expect((await tunnelStats()).connections).toBe(before.connections)
  }, 30_000)
})
