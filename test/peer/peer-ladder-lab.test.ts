// The connection ladder's matrix through real kernel NATs and firewalls (issue 7): each
// peer behind one of {no NAT; endpoint-independent mapping; endpoint-dependent mapping;
// UDP blocked; only TCP 80/443 open}. Every pair of kinds connects, on the path the ladder
// should pick, and carries 5 MB each way intact. One lab server runs a Beacon (4264), our
// TURN server (3478 UDP/TCP) and a tunnel server (443); every peer is configured with all
// three and lets the ladder decide (the tunnel-agent fixture, from dist/: `npm run build`).
import type { ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { NatLab } from '../../src/testing/index.js'
import { createNatLab } from '../../src/testing/index.js'
import type { ExchangeResult } from '../testing/lab-helpers.js'
import { describeLab, nextMessage, PeerAgent } from '../testing/lab-helpers.js'

/** The kinds of network, each as two sites (two different boxes) with one host. */
const KINDS = {
  none: { mapping: 'none' },
  eim: { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent' },
  edm: { mapping: 'endpoint-dependent', filtering: 'address-and-port-dependent' },
  noudp: { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', firewall: { udp: 'blocked' } },
  web: { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', firewall: { onlyTcp: [80, 443] } },
} as const
type Kind = keyof typeof KINDS
const KIND_NAMES = Object.keys(KINDS) as Kind[]
const SITES = Object.fromEntries(KIND_NAMES.flatMap((kind) => [1, 2].map((n) => [`${kind}-${n}`, { ...KINDS[kind], hosts: [`${kind}${n}`] }])))
const USER = { username: 'lab', credential: 'lab-password' }
const BIG = 5 * 1024 * 1024

/**
 * The path each pair must take. Direct where both sides map endpoint-independently or one
 * side has no NAT (UDP allowed on both); TURN where the pair cannot be punched without
 * port prediction (endpoint-dependent mapping against address-and-port-dependent
 * filtering) or UDP is blocked (TURN over TCP gets through); the tunnel where only
 * TCP 80/443 is open (TURN listens on 3478 only).
 */
function expectedPath(a: Kind, b: Kind): 'direct' | 'turn' | 'tunnel' {
  if (a === 'web' || b === 'web') return 'tunnel'
  if (a === 'noudp' || b === 'noudp') return 'turn'
  if (a === 'none' || b === 'none') return 'direct'
  if (a === 'edm' || b === 'edm') return 'turn'
  return 'direct'
}

/** The tunnel-agent fixture in one lab host. */
type Agent = PeerAgent

const forkOptions = process.env.PEERLINK_DIST === undefined ? {} : { env: { ...process.env, PEERLINK_DIST: process.env.PEERLINK_DIST } }

describeLab('The connection ladder: every pair of network kinds connects on the right path', () => {
  let lab: NatLab
  let servers: ChildProcess
  const agents = new Map<string, Agent>()
  const results: Array<{ cell: string; path: string; ms: number }> = []

  beforeAll(async () => {
    lab = await createNatLab({ servers: { infra: { addresses: 3 } }, sites: SITES as never })
    const [beaconHost, turnHost, tunnelHost] = lab.node('infra').addresses as string[]
    servers = lab.fork('infra', new URL('./fixtures/ladder-servers.mjs', import.meta.url), [beaconHost!, turnHost!, tunnelHost!, USER.username, USER.credential], forkOptions)
    const specs = await nextMessage(servers, (m) => ((m as { tunnel?: string }).tunnel ? (m as { beacon: string; turn: string; tunnel: string }) : undefined), 20_000, 'ladder servers')
    await Promise.all(
      Object.keys(SITES).map(async (site) => {
        const host = (SITES[site] as { hosts: string[] }).hosts[0]!
        const agent = await PeerAgent.fork(lab, host, new URL('./fixtures/tunnel-agent.mjs', import.meta.url), {
          args: [specs.beacon],
          fork: forkOptions,
          callTimeout: 30_000,
          eventTimeout: 30_000,
        })
        await agent.start('main', {
          tunnels: [specs.tunnel],
          turn: [{ urls: [specs.turn, `${specs.turn}?transport=tcp`], ...USER }],
          fallbackDelay: 1500,
        })
        await agent.call('listen', { name: 'main', bytes: BIG }, 40_000)
        agents.set(host, agent)
      }),
    )
  }, 120_000)

  afterAll(async () => {
    if (results.length > 0) console.log(`ladder matrix: ${results.map((r) => `${r.cell}=${r.path}/${Math.round(r.ms)}ms`).join(' ')}`)
    for (const agent of agents.values()) agent.child.disconnect()
    servers?.disconnect()
    await lab?.close()
  }, 60_000)

  const cells: Array<[Kind, Kind]> = []
  for (const [i, a] of KIND_NAMES.entries()) for (const b of KIND_NAMES.slice(i)) cells.push([a, b])

  it.each(cells)('%s ↔ %s', async (a, b) => {
    // The listener is the first site of kind a, the connector the second site of kind b.
    const listener = agents.get(`${a}1`)!
    const connector = agents.get(`${b}2`)!
    const result = await connector.call<ExchangeResult>('connect', { name: 'main', target: listener.peerId(), bytes: BIG, timeout: 20_000 }, 60_000)
    results.push({ cell: `${a}-${b}`, path: result.info.path, ms: result.connectMs })
    expect(result.remotePeerId).toBe(listener.peerId())
    expect(result.info.path).toBe(expectedPath(a, b))
    expect(result.received.bytes).toBe(BIG)
    const exchanged = await listener.event((e) => e.event === 'exchanged' && e.remotePeerId === connector.peerId() && e.received?.hash === result.sent, 60_000)
    expect(exchanged.received?.bytes).toBe(BIG)
    expect(result.received.hash).toBe(exchanged.sent)
  }, 90_000)
})
