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
import { describeLab, nextMessage } from '../testing/lab-helpers.js'

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

interface ConnectResult {
  info: { path: string; remote: { type: string } }
  remotePeerId: string
  connectMs: number
  sent: string
  received: { hash: string; bytes: number }
}
type AgentEvent = { event: string; name: string; remotePeerId?: string; sent?: string; received?: { hash: string; bytes: number } }

class Agent {
  readonly events: AgentEvent[] = []
  #nextId = 1
  peerId = ''

  constructor(
    readonly host: string,
    readonly child: ChildProcess,
  ) {
    child.on('message', (m: AgentEvent) => {
      if (m.event !== undefined) this.events.push(m)
    })
  }

  async call<T>(op: string, args: Record<string, unknown> = {}, timeout = 30_000): Promise<T> {
    const id = this.#nextId++
    const reply = nextMessage(this.child, (m) => ((m as { id?: number }).id === id ? (m as { ok: boolean; code?: string; message?: string }) : undefined), timeout, `${op} in ${this.host}`)
    this.child.send({ id, op, ...args })
    const r = await reply
    if (!r.ok) throw Object.assign(new Error(`${op} in ${this.host}: ${r.code} ${r.message}`), { code: r.code })
    return r as T
  }

  async event(match: (e: AgentEvent) => boolean, timeout = 30_000): Promise<AgentEvent> {
    const deadline = Date.now() + timeout
    for (;;) {
      const found = this.events.find(match)
      if (found !== undefined) return found
      if (Date.now() > deadline) throw new Error(`${this.host}: no matching event within ${timeout} ms`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
}

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
        const child = lab.fork(host, new URL('./fixtures/tunnel-agent.mjs', import.meta.url), [specs.beacon], forkOptions)
        await nextMessage(child, (m) => ((m as { ready?: boolean }).ready ? true : undefined), 20_000, `agent ${host}`)
        const agent = new Agent(host, child)
        agent.peerId = (
          await agent.call<{ peerId: string }>('start', {
            name: 'main',
            tunnels: [specs.tunnel],
            turn: [{ urls: [specs.turn, `${specs.turn}?transport=tcp`], ...USER }],
            fallbackDelay: 1500,
          })
        ).peerId
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
    const result = await connector.call<ConnectResult>('connect', { name: 'main', target: listener.peerId, bytes: BIG, timeout: 20_000 }, 60_000)
    results.push({ cell: `${a}-${b}`, path: result.info.path, ms: result.connectMs })
    expect(result.remotePeerId).toBe(listener.peerId)
    expect(result.info.path).toBe(expectedPath(a, b))
    expect(result.received.bytes).toBe(BIG)
    const exchanged = await listener.event((e) => e.event === 'exchanged' && e.remotePeerId === connector.peerId && e.received?.hash === result.sent, 60_000)
    expect(exchanged.received?.bytes).toBe(BIG)
    expect(result.received.hash).toBe(exchanged.sent)
  }, 90_000)
})
