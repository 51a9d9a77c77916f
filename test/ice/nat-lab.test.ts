// ICE through real kernel NATs (the NAT lab): two agents in lab hosts, a STUN server on
// the lab internet, candidates relayed through this process over IPC as a Beacon would.
// Fixtures run dist/ (built by `npm test`'s pretest).
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { ChildProcess } from 'node:child_process'
import { createNatLab, type NatLab } from '../../src/testing/index.js'
import { describeLab, fixture as labFixture, nextMessage } from '../testing/lab-helpers.js'

const SITES = {
  'eim-apdf-a': { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hosts: ['alice'] },
  'eim-apdf-b': { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hosts: ['bob'] },
  'eim-adf': { mapping: 'endpoint-independent', filtering: 'address-dependent', hosts: ['carol'] },
  'edm-apdf': { mapping: 'endpoint-dependent', filtering: 'address-and-port-dependent', hosts: ['dave'] },
} as const

interface Selected {
  local: { address: string; port: number; type: string }
  remote: { address: string; port: number; type: string }
  rttMs: number
}

describeLab('ICE through the NAT lab', () => {
  let lab: NatLab
  let stun: { host: string; port: number }

  beforeAll(async () => {
    lab = await createNatLab({ servers: { stun: { addresses: 2 } }, sites: SITES })
    const [primary, alternate] = lab.node('stun').addresses as [string, string]
    const server = lab.fork('stun', labFixture('stun-server.mjs'), [primary, alternate])
    await nextMessage(server, (m) => ((m as { ready?: boolean }).ready === true ? true : undefined), 10_000, 'stun server')
    stun = { host: primary, port: 3478 }
  }, 30_000)

  afterAll(async () => {
    await lab?.close()
  })

  /** Starts two peers and relays their signals; resolves with both selections. */
  async function connect(controlling: string, controlled: string): Promise<[Selected, Selected]> {
    const start = (node: string, role: string): ChildProcess =>
      lab.fork(node, new URL('./fixtures/ice-peer.mjs', import.meta.url), [role, stun.host, String(stun.port)])
    const a = start(controlling, 'controlling')
    const b = start(controlled, 'controlled')
    const relay = (from: ChildProcess, to: ChildProcess): void => {
      from.on('message', (m: Record<string, unknown>) => {
        if (m.credentials !== undefined || m.candidate !== undefined || m.end !== undefined) to.send(m)
      })
    }
    relay(a, b)
    relay(b, a)
    const outcome = (child: ChildProcess, name: string): Promise<Selected> =>
      nextMessage(
        child,
        (m) => {
          const msg = m as { selected?: Selected; error?: { code: string; message: string; pairs?: unknown } }
          if (msg.error !== undefined) return Promise.reject(new Error(`${name}: ${msg.error.code} ${msg.error.message} ${JSON.stringify(msg.error.pairs)}`))
          return msg.selected
        },
        20_000,
        name,
      ) as Promise<Selected>
    try {
      return await Promise.all([outcome(a, controlling), outcome(b, controlled)])
    } finally {
      a.disconnect()
      b.disconnect()
    }
  }

  it('two hosts behind endpoint-independent, port-restricted NATs select a server-reflexive pair', async () => {
    const [sa, sb] = await connect('alice', 'bob')
    const [pubA, pubB] = [lab.site('eim-apdf-a').publicAddress, lab.site('eim-apdf-b').publicAddress]
    expect(sa.remote.address).toBe(pubB)
    expect(sb.remote.address).toBe(pubA)
    expect(sa.local).toMatchObject({ type: 'srflx', address: pubA })
    expect(sa.remote.type).toBe('srflx')
    expect(sb.local.address).toBe(pubB)
  }, 30_000)

  it('an address-dependent NAT reaches an endpoint-dependent one through a peer-reflexive candidate', async () => {
    const [sc, sd] = await connect('carol', 'dave')
    expect(sc.remote).toMatchObject({ type: 'prflx', address: lab.site('edm-apdf').publicAddress })
    expect(sd.remote.address).toBe(lab.site('eim-adf').publicAddress)
  }, 30_000)
})
