// The NAT lab's options, address plan and nftables rulesets, checked without root (the
// behaviour itself is tested on real namespaces in nat-lab-behavior.test.ts).
import { BlockList } from 'node:net'
import { describe, expect, it } from 'vitest'
import { createNatLab } from '../../src/testing/index.js'
import { resolveLabOptions, type NatLabOptions } from '../../src/testing/nat-lab/lab-options.js'
import { NAMESPACE_PATTERN, planNatLab } from '../../src/testing/nat-lab/lab-plan.js'
import { lossRuleset, natBoxRuleset } from '../../src/testing/nat-lab/nft-rules.js'

const misuse: Array<[string, NatLabOptions]> = [
  ['open filtering behind a NAT', { sites: { a: { filtering: 'open' } } }],
  ['an unknown mapping', { sites: { a: { mapping: 'symmetric' as never } } }],
  ['a name used twice', { servers: { a: {} }, sites: { b: { hosts: ['a'] } } }],
  ['the reserved name internet', { servers: { internet: {} } }],
  ['a name with capitals', { servers: { Stun: {} } }],
  ['a public lanSubnet', { sites: { a: { lanSubnet: '8.8.8.0/24' } } }],
  ['a lanSubnet that is not a /24', { sites: { a: { lanSubnet: '10.1.0.0/16' } } }],
  ['a lanSubnet without NAT', { sites: { a: { mapping: 'none', lanSubnet: '10.9.9.0/24' } } }],
  ['loss above 100', { sites: { a: { loss: 101 } } }],
  ['negative loss', { servers: { s: { loss: -1 } } }],
  ['no hosts', { sites: { a: { hosts: [] } } }],
  ['17 hosts', { sites: { a: { hosts: Array.from({ length: 17 }, (_, i) => `h${i}`) } } }],
  ['9 addresses', { servers: { s: { addresses: 9 } } }],
  ['port 0 in onlyTcp', { sites: { a: { firewall: { onlyTcp: [0] } } } }],
  ['an unknown udp policy', { sites: { a: { firewall: { udp: 'maybe' as never } } } }],
]

describe('createNatLab options', () => {
  it.each(misuse)('throws InvalidArgumentError at once for %s', (_, options) => {
    expect(() => createNatLab(options)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
  })

  it('fills in defaults: EIM, port-dependent filtering, one host named after the site, a distinct 10.0.N.0/24 per site', () => {
    const r = resolveLabOptions({ sites: { a: {}, b: {}, c: { mapping: 'none' } } })
    expect(r.sites.map((s) => [s.mapping, s.filtering, s.hosts, s.lanPrefix])).toEqual([
      ['endpoint-independent', 'address-and-port-dependent', ['a-host'], '10.0.1'],
      ['endpoint-independent', 'address-and-port-dependent', ['b-host'], '10.0.2'],
      ['none', 'open', ['c-host'], '198.19.3'],
    ])
  })
})

describe('the lab plan', () => {
  const options = resolveLabOptions({
    servers: { stun: { addresses: 2 }, web: {} },
    sites: {
      home: { hosts: ['alice', 'alice2'], lanSubnet: '192.168.1.0/24' },
      office: { mapping: 'endpoint-dependent', hosts: ['bob'], lanSubnet: '192.168.1.0/24' },
      dc: { mapping: 'none', hosts: ['carol'] },
    },
  })
  const plan = planNatLab('0a1b2c', options)

  it('names namespaces pl-<id>-<node> and keeps every interface name within 15 characters', () => {
    expect(plan.nodes.map((n) => n.namespace)).toEqual(
      ['internet', 'stun', 'web', 'home', 'alice', 'alice2', 'office', 'bob', 'dc', 'carol'].map((n) => `pl-0a1b2c-${n}`),
    )
    for (const n of plan.nodes) expect(n.namespace).toMatch(NAMESPACE_PATTERN)
    const names = [...plan.vethCommands.join(' ').matchAll(/name (\S+)/g), ...plan.nodes.flatMap((n) => [...n.ipCommands.join(' ').matchAll(/link add (\S+)/g)])]
    expect(names.length).toBeGreaterThan(10)
    for (const [, name] of names) expect((name as string).length).toBeLessThanOrEqual(15)
  })

  it('uses only 198.18.0.0/15 and private addresses, one per interface, a shared private LAN where asked', () => {
    const allowed = new BlockList()
    allowed.addSubnet('198.18.0.0', 15)
    allowed.addSubnet('10.0.0.0', 8)
    allowed.addSubnet('192.168.0.0', 16)
    const all = plan.nodes.flatMap((n) => n.addresses)
    for (const a of all) expect(allowed.check(a), a).toBe(true)
    const byNode = Object.fromEntries(plan.nodes.map((n) => [n.name, n.addresses]))
    expect(byNode).toMatchObject({
      internet: ['198.18.0.1'],
      stun: ['198.18.1.10', '198.18.1.11'],
      web: ['198.18.1.12'],
      home: ['198.18.2.10', '192.168.1.1'],
      alice: ['192.168.1.10'],
      alice2: ['192.168.1.11'],
      office: ['198.18.2.11', '192.168.1.1'],
      bob: ['192.168.1.10'],
      dc: ['198.18.2.12', '198.19.3.1'],
      carol: ['198.19.3.10'],
    })
    // Public (non-NAT) LANs are routed by the internet to their box.
    expect(plan.nodes[0]?.ipCommands).toContain('route add 198.19.3.0/24 via 198.18.2.12')
  })
})

describe('nftables rulesets', () => {
  const site = (o: NatLabOptions['sites']) => resolveLabOptions({ sites: o }).sites[0] as Parameters<typeof natBoxRuleset>[0]

  it('maps with masquerade (EIM) or masquerade fully-random (EDM)', () => {
    expect(natBoxRuleset(site({ a: {} }))).toMatch(/oifname "wan" masquerade\n/)
    expect(natBoxRuleset(site({ a: { mapping: 'endpoint-dependent' } }))).toContain('masquerade fully-random')
    expect(natBoxRuleset(site({ a: { mapping: 'none' } }))).not.toContain('masquerade')
  })

  it('filters with conntrack alone (APDF), or forwards to the owner of the public port from anyone (EIF) or from contacted addresses (ADF)', () => {
    const apdf = natBoxRuleset(site({ a: {} }))
    const eif = natBoxRuleset(site({ a: { filtering: 'endpoint-independent' } }))
    const adf = natBoxRuleset(site({ a: { filtering: 'address-dependent' } }))
    expect(apdf).not.toContain('dnat ip to')
    expect(eif).toContain('dnat ip to udp dport map @mappings')
    expect(eif).not.toContain('@contacted')
    expect(adf).toContain('udp dport . ip saddr @contacted dnat ip to udp dport map @mappings')
    // Every box drops unsolicited packets in its input hook.
    for (const rules of [apdf, eif, adf]) expect(rules).toMatch(/chain input \{[^}]*iifname "wan" drop/)
  })

  it('blocks UDP or allows only the listed TCP ports', () => {
    expect(natBoxRuleset(site({ a: { firewall: { udp: 'blocked' } } }))).toContain('meta l4proto udp drop')
    const web = natBoxRuleset(site({ a: { firewall: { onlyTcp: [80, 443] } } }))
    expect(web).toContain('tcp dport { 80, 443 } accept')
    expect(web).toContain('iifname "lan" oifname "wan" ct state new drop')
  })

  it('drops IPv4 frames at random on lossy bridge ports only, to 0.01 %', () => {
    const rules = lossRuleset([
      { port: 's0', loss: 12.5 },
      { port: 'n0', loss: 0 },
    ])
    expect(rules).toContain('iifname "s0" ether type ip numgen random mod 10000 < 1250 drop')
    expect(rules).toContain('oifname "s0" ether type ip numgen random mod 10000 < 1250 drop')
    expect(rules).not.toContain('"n0"')
  })
})
