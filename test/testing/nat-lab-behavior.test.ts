// The NAT lab on real namespaces: each RFC 4787 behaviour, the firewalls and loss are
// observed from outside (an echo server that reports the source it sees, unsolicited
// datagrams, TCP connects), and cross-checked with peerlink's own RFC 5780 discovery
// against peerlink's StunServer. Fixtures run dist/ (built by `npm test`'s pretest).
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createNatLab, type NatLab } from '../../src/testing/index.js'
import { Agent, describeLab, fixture, nextMessage } from './lab-helpers.js'

// Sites by behaviour. Hosts are named after their site.
const SITES = {
  'eim-eif': { mapping: 'endpoint-independent', filtering: 'endpoint-independent', hosts: ['eim-eif-h'] },
  'eim-adf': { mapping: 'endpoint-independent', filtering: 'address-dependent', hosts: ['eim-adf-h'] },
  'eim-apdf': { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hosts: ['eim-apdf-h', 'eim-apdf-h2'] },
  'eim-apdf-b': { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hosts: ['eim-apdf-b-h'] },
  'edm-apdf': { mapping: 'endpoint-dependent', filtering: 'address-and-port-dependent', hosts: ['edm-apdf-h', 'edm-apdf-h2'] },
  'edm-eif': { mapping: 'endpoint-dependent', filtering: 'endpoint-independent', hosts: ['edm-eif-h'] },
  public: { mapping: 'none', hosts: ['public-h'] },
  'no-udp': { firewall: { udp: 'blocked' }, hosts: ['no-udp-h'] },
  'web-only': { firewall: { onlyTcp: [80, 443] }, hosts: ['web-only-h'] },
  lossy: { loss: 20, hosts: ['lossy-h'] },
} as const

const P = 5000 // echo ports on the server: p and q
const Q = 5001

describeLab('NAT lab behaviour', () => {
  let lab: NatLab
  const agents = new Map<string, Agent>()
  const agent = (node: string): Agent => agents.get(node) as Agent
  let A: string // the echo server's two addresses
  let B: string

  beforeAll(async () => {
    lab = await createNatLab({ servers: { srv: { addresses: 2 }, stun: { addresses: 2 } }, sites: SITES })
    ;[A, B] = lab.node('srv').addresses as [string, string]
    const nodes = ['srv', ...Object.values(SITES).flatMap((s) => s.hosts)]
    await Promise.all(nodes.map(async (node) => agents.set(node, await Agent.start(lab, node))))
    const srv = agent('srv')
    for (const [host, port, name] of [
      [A, P, 'Ap'],
      [A, Q, 'Aq'],
      [B, P, 'Bp'],
      [B, Q, 'Bq'],
    ] as const) {
      await srv.call('bind', { name, host, port, echo: true })
    }
    await srv.call('bind', { name: 'count', host: A, port: 6000 })
    await srv.call('tcp-listen', { port: 443 })
    await srv.call('tcp-listen', { port: 3478 })
  }, 30_000)

  afterAll(async () => {
    await lab?.close()
  })

  it('builds the planned topology: addresses from 198.18.0.0/15 and private LANs, reachable', async () => {
    expect(lab.node('srv').addresses).toEqual(['198.18.1.10', '198.18.1.11'])
    expect(lab.site('eim-eif').lanSubnet).toBe('10.0.1.0/24')
    expect(lab.node('eim-eif-h').address).toBe('10.0.1.10')
    expect(lab.site('public').lanSubnet).toMatch(/^198\.19\.\d+\.0\/24$/)
    const out = await lab.exec('eim-eif-h', 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0'])
    expect(out).toContain('10.0.1.10/24')
    // A host of a site without NAT is reached at its own public address, through the internet's router.
    await agent('public-h').call('bind', { name: 'reach' })
    expect(await agent('public-h').publicAddress('reach', A, P)).toMatch(/^198\.19\.\d+\.10:\d+$/)
  })

  it('mapping: endpoint-independent keeps one public port for every destination; endpoint-dependent does not', async () => {
    const observe = async (host: string): Promise<string[]> => {
      const a = agent(host)
      await a.call('bind', { name: 'map' })
      const seen: string[] = []
      for (const [h, p] of [
        [A, P],
        [B, P],
        [A, Q],
      ] as const) {
        seen.push((await a.publicAddress('map', h, p)) as string)
      }
      return seen
    }
    const eim = await observe('eim-apdf-h')
    const edm = await observe('edm-eif-h')
    const boxEim = lab.site('eim-apdf').publicAddress
    const boxEdm = lab.site('edm-eif').publicAddress
    expect(eim.every((s) => s.startsWith(`${boxEim}:`))).toBe(true)
    expect(new Set(eim).size).toBe(1)
    expect(edm.every((s) => s.startsWith(`${boxEdm}:`))).toBe(true)
    expect(new Set(edm).size).toBe(3)
  })

  it('an unsolicited datagram to a mapped port does not change the mapping (the box drops it in its input hook)', async () => {
    const a = agent('eim-apdf-b-h')
    await a.call('bind', { name: 'stray' })
    const first = (await a.publicAddress('stray', A, P)) as string
    const [mh, mp] = first.split(':') as [string, string]
    await agent('srv').call('send', { name: 'Bp', host: mh, port: Number(mp), data: 'stray' })
    await new Promise((r) => setTimeout(r, 100))
    expect(await a.publicAddress('stray', B, P)).toBe(first)
    expect((await a.call<{ received: string[] }>('log', { name: 'stray' })).received).not.toContain(`${B}:${P} stray`)
  })

  it('filtering: unsolicited datagrams from A:q, B:p, B:q get in exactly as the filtering type says', async () => {
    const expected: Record<string, string[]> = {
      'eim-eif-h': ['Aq', 'Bp', 'Bq'],
      'eim-adf-h': ['Aq'],
      'eim-apdf-h': [],
      'edm-eif-h': ['Aq', 'Bp', 'Bq'],
      'public-h': ['Aq', 'Bp', 'Bq'], // no NAT, no firewall
    }
    const results = await Promise.all(
      Object.keys(expected).map(async (host) => {
        const a = agent(host)
        await a.call('bind', { name: 'filt' })
        const mapped = (await a.publicAddress('filt', A, P)) as string
        expect(mapped).not.toBeNull()
        const [mh, mp] = mapped.split(':') as [string, string]
        for (const from of ['Aq', 'Bp', 'Bq']) await agent('srv').call('send', { name: from, host: mh, port: Number(mp), data: from })
        await new Promise((r) => setTimeout(r, 300))
        const { received } = await a.call<{ received: string[] }>('log', { name: 'filt' })
        const unsolicited = received.map((line) => line.split(' ')[1]).filter((d) => d !== `${mapped}`)
        return [host, unsolicited.sort()] as const
      }),
    )
    expect(Object.fromEntries(results)).toEqual(expected)
  })

  it("peerlink's RFC 5780 discovery against peerlink's StunServer classifies every lab NAT as built", async () => {
    const [primary, alternate] = lab.node('stun').addresses as [string, string]
    const server = lab.fork('stun', fixture('stun-server.mjs'), [primary, alternate])
    await nextMessage(server, (m) => ((m as { ready?: boolean }).ready === true ? true : undefined), 10_000, 'stun server')
    const expected: Record<string, { mapping: string; filtering: string }> = {
      'eim-eif-h': { mapping: 'endpoint-independent', filtering: 'endpoint-independent' },
      'eim-adf-h': { mapping: 'endpoint-independent', filtering: 'address-dependent' },
      'eim-apdf-h2': { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent' },
      'edm-apdf-h2': { mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent' },
      'edm-eif-h': { mapping: 'address-and-port-dependent', filtering: 'endpoint-independent' },
      'public-h': { mapping: 'no-nat', filtering: 'endpoint-independent' },
    }
    const found = await Promise.all(
      Object.keys(expected).map(async (host) => {
        const child = lab.fork(host, fixture('nat-discovery.mjs'), [primary, '3478'])
        const r = await nextMessage(child, (m) => m as { ok: boolean; result?: { mapping: string; filtering: string }; message?: string }, 15_000, `discovery in ${host}`)
        expect(r.ok, r.message).toBe(true)
        return [host, { mapping: r.result?.mapping, filtering: r.result?.filtering }] as const
      }),
    )
    server.kill()
    expect(Object.fromEntries(found)).toEqual(expected)
  }, 30_000)

  it('firewall udp blocked: no UDP gets through, TCP does', async () => {
    const a = agent('no-udp-h')
    await a.call('bind', { name: 'u' })
    expect(await a.publicAddress('u', A, P)).toBeNull()
    expect(await a.call('tcp-connect', { host: A, port: 443 })).toMatchObject({ connected: true, greeting: 'hello\n' })
    expect(await a.call('tcp-connect', { host: A, port: 3478 })).toMatchObject({ connected: true })
  })

  it('firewall only TCP 80/443: TCP to 443 works, TCP to 3478 and UDP do not', async () => {
    const a = agent('web-only-h')
    expect(await a.call('tcp-connect', { host: A, port: 443 })).toMatchObject({ connected: true, greeting: 'hello\n' })
    expect(await a.call('tcp-connect', { host: A, port: 3478, timeout: 1000 })).toMatchObject({ connected: false })
    await a.call('bind', { name: 'u' })
    expect(await a.publicAddress('u', A, P)).toBeNull()
  })

  it('loss: about 20% of 1000 datagrams are lost one way on a 20% lossy site, none on a clean one', async () => {
    const srv = agent('srv')
    const countAfter = async (host: string): Promise<number> => {
      const before = (await srv.call<{ count: number }>('log', { name: 'count' })).count
      await agent(host).call('bind', { name: 'blast' })
      await agent(host).call('send', { name: 'blast', host: A, port: 6000, count: 1000 })
      await new Promise((r) => setTimeout(r, 300))
      return (await srv.call<{ count: number }>('log', { name: 'count' })).count - before
    }
    const lossy = await countAfter('lossy-h')
    // Binomial(1000, 0.8): mean 800, sd 12.6; ±6 sd.
    expect(lossy).toBeGreaterThan(720)
    expect(lossy).toBeLessThan(880)
    expect(await countAfter('eim-eif-h')).toBeGreaterThanOrEqual(995)
    // setLoss changes it at runtime.
    await lab.setLoss('lossy', 0)
    expect(await countAfter('lossy-h')).toBeGreaterThanOrEqual(995)
  })

  it('hole punching: EIM behind EIM punches (even with port-dependent filtering); EDM vs port-dependent filtering does not; EDM vs EIF does', async () => {
    const pair = async (x: string, y: string): Promise<[string[], string[], string, string]> => {
      const [ax, ay] = [agent(x), agent(y)]
      await ax.call('bind', { name: 'punch' })
      await ay.call('bind', { name: 'punch' })
      const mx = (await ax.publicAddress('punch', A, P)) as string
      const my = (await ay.publicAddress('punch', A, P)) as string
      const [hx, px] = mx.split(':') as [string, string]
      const [hy, py] = my.split(':') as [string, string]
      const [rx, ry] = await Promise.all([
        ax.call<{ from: string[] }>('punch', { name: 'punch', host: hy, port: Number(py), duration: 1500 }),
        ay.call<{ from: string[] }>('punch', { name: 'punch', host: hx, port: Number(px), duration: 1500 }),
      ])
      return [rx.from, ry.from, mx, my]
    }
    const [easy, hard, mixed] = await Promise.all([
      pair('eim-apdf-h', 'eim-apdf-b-h'),
      pair('edm-apdf-h', 'eim-apdf-h2'),
      pair('edm-apdf-h2', 'eim-eif-h'),
    ])
    // Both sides hear each other at the very public mapping the echo server saw.
    expect(easy[0]).toEqual([easy[3]])
    expect(easy[1]).toEqual([easy[2]])
    expect(hard[0]).toEqual([])
    expect(hard[1]).toEqual([])
    // EIF lets the EDM side's new mapping in; the answer goes back to it (peer-reflexive).
    expect(mixed[1].length).toBe(1)
    expect(mixed[1][0]).not.toBe(mixed[2])
    expect(mixed[0]).toEqual([mixed[3]])
  })

  it('hosts behind one box reach each other on their LAN addresses', async () => {
    const h2 = agent('eim-apdf-h2')
    await h2.call('bind', { name: 'lan', port: 7000, echo: true })
    const a = agent('eim-apdf-h')
    await a.call('bind', { name: 'lan' })
    const reply = (await a.publicAddress('lan', lab.address('eim-apdf-h2'), 7000)) as string
    expect(reply.startsWith(`${lab.address('eim-apdf-h')}:`)).toBe(true)
  })

  it('refuses misuse at once: unknown nodes, loss on a host, a link for the internet', () => {
    expect(() => lab.node('nobody')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    expect(() => lab.fork('nobody', fixture('net-agent.mjs'))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    expect(() => lab.setLoss('eim-eif-h', 5)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    expect(() => lab.setLoss('lossy', 150)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    expect(() => lab.setLinkState('internet', 'down')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
  })

  it('setLinkState takes a host off its LAN and back', async () => {
    const a = agent('eim-adf-h')
    await a.call('bind', { name: 'link' })
    await lab.setLinkState('eim-adf-h', 'down')
    const { reply } = await a.call<{ reply: string | null }>('request', { name: 'link', host: A, port: P, timeout: 500 })
    expect(reply).toBeNull()
    await lab.setLinkState('eim-adf-h', 'up')
    expect(await a.publicAddress('link', A, P)).not.toBeNull()
  })
})
