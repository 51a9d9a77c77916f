/**
 * The NAT lab's plan: namespace names, interface names, addresses, routes, sysctls and
 * nftables rulesets of every node, computed from the validated options before anything
 * is created. Pure, so it can be tested without root.
 *
 * Addresses come from 198.18.0.0/15, the benchmarking range of RFC 2544 (RFC 6890:
 * not forwarded on the real internet), and from the private ranges of RFC 1918; they
 * exist only inside the lab's namespaces.
 *
 * @module
 */
import type { ResolvedLabOptions, ResolvedSite } from './lab-options.js'
import { lossRuleset, natBoxRuleset, type LossSetting } from './nft-rules.js'

/** Prefix of every namespace the lab creates: `pl-<6 hex digits>-<node name>`. */
export const NAMESPACE_PREFIX = 'pl-'
/** Matches a lab namespace name and captures the lab id. */
export const NAMESPACE_PATTERN = /^pl-([0-9a-f]{6})-[a-z][a-z0-9-]*$/

/** What a node of the lab is. */
export type NatLabNodeKind = 'internet' | 'server' | 'nat' | 'host'

/** The internet's own address on its bridge (the router of the lab's internet). */
export const INTERNET_ADDRESS = '198.18.0.1'

/** A node as planned. */
export interface PlannedNode {
  name: string
  kind: NatLabNodeKind
  namespace: string
  /** Its addresses, primary first (a box: public, then LAN). */
  addresses: string[]
  /** The site it belongs to (boxes and hosts). */
  site: string | undefined
  /** Its port on the internet bridge (servers and boxes). */
  internetPort: string | undefined
  /** Loss on its internet link, percent. */
  loss: number
  /** `/proc/sys` settings, applied before its interfaces are created. */
  sysctls: Array<[key: string, value: string]>
  /** `ip -batch` lines run in its namespace once every veth exists. */
  ipCommands: string[]
  /** nftables ruleset loaded into its namespace, if any. */
  nftRuleset: string | undefined
}

/** The whole lab as planned. */
export interface LabPlan {
  id: string
  prefix: string
  /** Every node, the internet first. */
  nodes: PlannedNode[]
  /** `ip -batch` lines, run in the caller's namespace, that create each veth pair directly inside its two namespaces. */
  vethCommands: string[]
}

/** Namespace name of node `name` in lab `id`. */
export function namespaceName(id: string, name: string): string {
  return `${NAMESPACE_PREFIX}${id}-${name}`
}

/** sysctls of every namespace: no IPv6 on the lab's links (no link-local addresses or DAD); `lo` keeps ::1. */
const COMMON_SYSCTLS: Array<[string, string]> = [['net/ipv6/conf/default/disable_ipv6', '1']]

function siteNodes(id: string, site: ResolvedSite, wan: string, port: string): PlannedNode[] {
  const gateway = `${site.lanPrefix}.1`
  const box: PlannedNode = {
    name: site.name,
    kind: 'nat',
    namespace: namespaceName(id, site.name),
    addresses: [wan, gateway],
    site: site.name,
    internetPort: port,
    loss: site.loss,
    sysctls: [...COMMON_SYSCTLS, ['net/ipv4/ip_forward', '1']],
    ipCommands: [
      'link set lo up',
      `addr add ${wan}/16 dev wan`,
      'link set wan up',
      'link add lan type bridge',
      `addr add ${gateway}/24 dev lan`,
      'link set lan up',
      ...site.hosts.flatMap((_, k) => [`link set h${k} master lan`, `link set h${k} up`]),
      `route add default via ${INTERNET_ADDRESS}`,
    ],
    nftRuleset: natBoxRuleset(site),
  }
  const hosts = site.hosts.map((host, k): PlannedNode => {
    const address = `${site.lanPrefix}.${10 + k}`
    return {
      name: host,
      kind: 'host',
      namespace: namespaceName(id, host),
      addresses: [address],
      site: site.name,
      internetPort: undefined,
      loss: 0,
      sysctls: [...COMMON_SYSCTLS],
      ipCommands: ['link set lo up', `addr add ${address}/24 dev eth0`, 'link set eth0 up', `route add default via ${gateway}`],
      nftRuleset: undefined,
    }
  })
  return [box, ...hosts]
}

/** Plans lab `id` (6 hex digits) from validated options. */
export function planNatLab(id: string, options: ResolvedLabOptions): LabPlan {
  const internet: PlannedNode = {
    name: 'internet',
    kind: 'internet',
    namespace: namespaceName(id, 'internet'),
    addresses: [INTERNET_ADDRESS],
    site: undefined,
    internetPort: undefined,
    loss: 0,
    // The internet routes the public LANs of sites without NAT to their boxes; it must
    // not send ICMP redirects (every node is on its bridge, but only it knows those routes).
    sysctls: [
      ...COMMON_SYSCTLS,
      ['net/ipv4/ip_forward', '1'],
      ['net/ipv4/conf/all/send_redirects', '0'],
      ['net/ipv4/conf/default/send_redirects', '0'],
    ],
    ipCommands: ['link set lo up', 'link add br0 type bridge', `addr add ${INTERNET_ADDRESS}/16 dev br0`, 'link set br0 up'],
    nftRuleset: undefined,
  }
  const nodes: PlannedNode[] = [internet]
  const vethCommands: string[] = []
  let nextServerAddress = 10
  for (const server of options.servers) {
    const port = `s${server.index}`
    const addresses = Array.from({ length: server.addresses }, () => `198.18.1.${nextServerAddress++}`)
    const node: PlannedNode = {
      name: server.name,
      kind: 'server',
      namespace: namespaceName(id, server.name),
      addresses,
      site: undefined,
      internetPort: port,
      loss: server.loss,
      sysctls: [...COMMON_SYSCTLS],
      ipCommands: [
        'link set lo up',
        ...addresses.map((a) => `addr add ${a}/16 dev eth0`),
        'link set eth0 up',
        `route add default via ${INTERNET_ADDRESS}`,
      ],
      nftRuleset: undefined,
    }
    nodes.push(node)
    vethCommands.push(`link add name ${port} netns ${internet.namespace} type veth peer name eth0 netns ${node.namespace}`)
    internet.ipCommands.push(`link set ${port} master br0`, `link set ${port} up`)
  }
  for (const site of options.sites) {
    const port = `n${site.index}`
    const wan = `198.18.2.${10 + site.index}`
    const [box, ...hosts] = siteNodes(id, site, wan, port) as [PlannedNode, ...PlannedNode[]]
    nodes.push(box, ...hosts)
    vethCommands.push(`link add name ${port} netns ${internet.namespace} type veth peer name wan netns ${box.namespace}`)
    internet.ipCommands.push(`link set ${port} master br0`, `link set ${port} up`)
    hosts.forEach((host, k) => {
      vethCommands.push(`link add name h${k} netns ${box.namespace} type veth peer name eth0 netns ${host.namespace}`)
    })
    if (site.mapping === 'none') internet.ipCommands.push(`route add ${site.lanPrefix}.0/24 via ${wan}`)
  }
  internet.nftRuleset = lossRuleset(lossSettings(nodes))
  return { id, prefix: `${NAMESPACE_PREFIX}${id}`, nodes, vethCommands }
}

/** The loss of every node with a port on the internet bridge. */
export function lossSettings(nodes: readonly PlannedNode[]): LossSetting[] {
  return nodes.flatMap((n) => (n.internetPort === undefined ? [] : [{ port: n.internetPort, loss: n.loss }]))
}
