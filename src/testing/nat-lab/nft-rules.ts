/**
 * nftables rulesets of the NAT lab: a site's box (NAT mapping, RFC 4787 filtering,
 * firewall) and the random loss on the internet bridge's ports. Pure text generation,
 * so it can be read and tested without root.
 *
 * @module
 */
import type { ResolvedSite } from './lab-options.js'

/** Name of the lab's nftables table in every namespace it configures. */
export const NFT_TABLE = 'peerlink_lab'
/** Name of the bridge table in the internet namespace that drops packets at random. */
export const NFT_LOSS_TABLE = 'peerlink_lab_loss'

/**
 * How long a remembered mapping or contacted address lasts after the last outbound
 * datagram: conntrack's UDP stream timeout (`nf_conntrack_udp_timeout_stream`, 120 s),
 * so it lives about as long as the mapping itself.
 */
const REMEMBER_TIMEOUT = '2m'

/**
 * The box's ruleset. Interface names: `wan` (to the internet bridge), `lan` (the LAN
 * bridge). Hook order on the box: prerouting dstnat (-100) → forward/input filter (0) →
 * postrouting srcnat (100) → postrouting `remember` (110).
 */
export function natBoxRuleset(site: ResolvedSite): string {
  const nat = site.mapping !== 'none'
  const lines: string[] = [`table ip ${NFT_TABLE} {`]
  const add = (line: string): void => {
    lines.push(line)
  }

  // Sets filled from the packet path: which inside endpoint owns a public port (for
  // endpoint-independent and address-dependent filtering) and which remote addresses
  // each public port has sent to (address-dependent filtering).
  if (nat && (site.filtering === 'endpoint-independent' || site.filtering === 'address-dependent')) {
    add(`  map mappings { type inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout ${REMEMBER_TIMEOUT}; }`)
  }
  if (nat && site.filtering === 'address-dependent') {
    add(`  set contacted { type inet_service . ipv4_addr; flags dynamic,timeout; timeout ${REMEMBER_TIMEOUT}; }`)
  }
  if (!nat && site.filtering === 'endpoint-independent') {
    add(`  set sent_from { type ipv4_addr . inet_service; flags dynamic,timeout; timeout ${REMEMBER_TIMEOUT}; }`)
  }
  if (!nat && site.filtering === 'address-dependent') {
    add(`  set contacted { type ipv4_addr . inet_service . ipv4_addr; flags dynamic,timeout; timeout ${REMEMBER_TIMEOUT}; }`)
  }

  if (nat) {
    // RFC 4787 §5: conntrack alone lets in only replies from the exact address and port
    // a mapping was opened to (address-and-port-dependent filtering). The looser
    // behaviours forward the first unsolicited datagram of a flow to the inside endpoint
    // that owns the public port; conntrack then handles the rest of that flow.
    add('  chain prerouting {')
    add('    type nat hook prerouting priority dstnat; policy accept;')
    if (site.filtering === 'endpoint-independent') {
      add('    iifname "wan" meta l4proto udp dnat ip to udp dport map @mappings')
    } else if (site.filtering === 'address-dependent') {
      add('    iifname "wan" meta l4proto udp udp dport . ip saddr @contacted dnat ip to udp dport map @mappings')
    }
    add('  }')
    // RFC 4787 §4.1: masquerade keeps one public port per inside endpoint whatever the
    // destination (endpoint-independent mapping); fully-random picks a fresh random port
    // for every new conntrack entry, i.e. every new destination address and port
    // (endpoint-dependent mapping). Measured on Linux 6.x: `random` behaves the same.
    add('  chain postrouting {')
    add('    type nat hook postrouting priority srcnat; policy accept;')
    add(`    oifname "wan" masquerade${site.mapping === 'endpoint-dependent' ? ' fully-random' : ''}`)
    add('  }')
  }

  // Remember, after NAT has chosen the public port, what the filters above look up.
  const remember: string[] = []
  if (nat && (site.filtering === 'endpoint-independent' || site.filtering === 'address-dependent')) {
    remember.push('oifname "wan" meta l4proto udp update @mappings { ct reply proto-dst : ct original ip saddr . ct original proto-src }')
  }
  if (nat && site.filtering === 'address-dependent') {
    remember.push('oifname "wan" meta l4proto udp update @contacted { ct reply proto-dst . ip daddr }')
  }
  if (!nat && site.filtering === 'endpoint-independent') {
    remember.push('oifname "wan" meta l4proto udp update @sent_from { ip saddr . udp sport }')
  }
  if (!nat && site.filtering === 'address-dependent') {
    remember.push('oifname "wan" meta l4proto udp update @contacted { ip saddr . udp sport . ip daddr }')
  }
  if (remember.length > 0) {
    add('  chain remember {')
    add('    type filter hook postrouting priority srcnat + 10; policy accept;')
    for (const rule of remember) add(`    ${rule}`)
    add('  }')
  }

  // The box itself accepts nothing unsolicited from the internet. Dropping here, in the
  // input hook, keeps conntrack from confirming an entry for the stray packet: such an
  // entry would occupy (remote, public port) and make the next outbound packet to that
  // remote get a different public port, which breaks hole punching.
  add('  chain input {')
  add('    type filter hook input priority filter; policy accept;')
  add('    iifname "wan" ct state established,related accept')
  add('    iifname "wan" drop')
  add('  }')

  add('  chain forward {')
  add('    type filter hook forward priority filter; policy accept;')
  if (site.udp === 'blocked') add('    meta l4proto udp drop')
  if (site.onlyTcp !== undefined) {
    add(`    iifname "lan" oifname "wan" ct state new meta l4proto tcp tcp dport { ${site.onlyTcp.join(', ')} } accept`)
    add('    iifname "lan" oifname "wan" ct state new drop')
  }
  add('    iifname "wan" ct state established,related accept')
  if (nat) {
    add('    iifname "wan" ct status dnat accept')
  } else if (site.filtering === 'open') {
    add('    iifname "wan" ct state new accept')
  } else if (site.filtering === 'endpoint-independent') {
    add('    iifname "wan" meta l4proto udp ip daddr . udp dport @sent_from accept')
  } else if (site.filtering === 'address-dependent') {
    add('    iifname "wan" meta l4proto udp ip daddr . udp dport . ip saddr @contacted accept')
  }
  add('    iifname "wan" drop')
  add('  }')
  add('}')
  return `${lines.join('\n')}\n`
}

/** A port of the internet bridge and the percentage of packets it drops in each direction. */
export interface LossSetting {
  /** Interface name in the internet namespace. */
  port: string
  /** 0–100. */
  loss: number
}

/**
 * The internet namespace's loss table: frames carrying IPv4 that enter the bridge from
 * a port, or leave it through a port, are dropped with the port's probability. ARP is
 * never dropped. Replaces any previous loss table (declare, flush, define).
 */
export function lossRuleset(settings: readonly LossSetting[]): string {
  const lossy = settings.filter((s) => s.loss > 0)
  // numgen random mod 10000 gives a resolution of 0.01 %.
  const threshold = (loss: number): number => Math.round(loss * 100)
  const lines = [
    `table bridge ${NFT_LOSS_TABLE} {}`,
    `delete table bridge ${NFT_LOSS_TABLE}`,
    `table bridge ${NFT_LOSS_TABLE} {`,
    '  chain from_nodes {',
    '    type filter hook prerouting priority filter; policy accept;',
    ...lossy.map((s) => `    iifname "${s.port}" ether type ip numgen random mod 10000 < ${threshold(s.loss)} drop`),
    '  }',
    '  chain to_nodes {',
    '    type filter hook postrouting priority filter; policy accept;',
    ...lossy.map((s) => `    oifname "${s.port}" ether type ip numgen random mod 10000 < ${threshold(s.loss)} drop`),
    '  }',
    '}',
  ]
  return `${lines.join('\n')}\n`
}
