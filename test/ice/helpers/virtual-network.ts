/**
 * An in-memory datagram network for fast, deterministic ICE tests (in the spirit of
 * pion's vnet): public hosts, NAT boxes with RFC 4787 mapping and filtering behaviours, a
 * STUN server, seeded random loss, latency, and a switch to black-hole traffic.
 */
import type { DatagramEndpoint, DatagramListener } from '../../../src/stun/datagram-endpoint.js'
import { isStunMessage } from '../../../src/stun/classify.js'
import { decodeStunMessage, encodeStunMessage } from '../../../src/stun/message.js'

export type Mapping = 'endpoint-independent' | 'endpoint-dependent'
export type Filtering = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent'

export interface Addr {
  ip: string
  port: number
}

interface Packet {
  src: Addr
  dst: Addr
  data: Uint8Array
}

/** A small seeded PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const key = (a: Addr): string => `${a.ip}:${a.port}`

export class VirtualEndpoint implements DatagramEndpoint {
  readonly listeners = new Set<DatagramListener>()
  closed = false
  constructor(
    readonly address: Addr,
    private readonly route: (packet: Packet) => void,
  ) {}
  send(data: Uint8Array, port: number, host: string): void {
    if (this.closed) throw new Error('endpoint closed')
    const ip = host.startsWith('::ffff:') ? host.slice(7) : host
    this.route({ src: this.address, dst: { ip, port }, data: new Uint8Array(data) })
  }
  onMessage(listener: DatagramListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }
  localAddress(): { family: 'IPv4'; host: string; port: number } {
    return { family: 'IPv4', host: this.address.ip, port: this.address.port }
  }
  deliver(data: Uint8Array, from: Addr): void {
    if (this.closed) return
    for (const l of [...this.listeners]) l(data, { host: from.ip, port: from.port })
  }
  close(): void {
    this.closed = true
    this.listeners.clear()
  }
}

interface NatMappingEntry {
  publicPort: number
  inside: Addr
  permitted: Set<string>
}

export class VirtualNat {
  readonly lan = new Map<string, VirtualEndpoint>()
  readonly #mappings = new Map<string, NatMappingEntry>() // by mapping key
  readonly #byPort = new Map<number, NatMappingEntry>()
  #nextPort = 40000
  constructor(
    readonly net: VirtualNetwork,
    readonly publicIp: string,
    readonly mapping: Mapping,
    readonly filtering: Filtering,
  ) {}

  /** A host on this NAT's LAN. */
  bind(ip: string, port = 0): VirtualEndpoint {
    const address = { ip, port: port || this.net.allocatePort() }
    const endpoint = new VirtualEndpoint(address, (p) => this.#outbound(p))
    this.lan.set(key(address), endpoint)
    return endpoint
  }

  /** Number of public mappings made. */
  get mappingCount(): number {
    return this.#byPort.size
  }

  #outbound(packet: Packet): void {
    const local = this.lan.get(key(packet.dst))
    if (local !== undefined) return this.net.schedule(() => local.deliver(packet.data, packet.src))
    const mapKey = this.mapping === 'endpoint-independent' ? key(packet.src) : `${key(packet.src)}>${key(packet.dst)}`
    let entry = this.#mappings.get(mapKey)
    if (entry === undefined) {
      entry = { publicPort: this.#nextPort++, inside: packet.src, permitted: new Set() }
      this.#mappings.set(mapKey, entry)
      this.#byPort.set(entry.publicPort, entry)
    }
    entry.permitted.add(this.filtering === 'address-dependent' ? packet.dst.ip : key(packet.dst))
    this.net.route({ src: { ip: this.publicIp, port: entry.publicPort }, dst: packet.dst, data: packet.data })
  }

  /** A packet from the internet to our public IP. */
  inbound(packet: Packet): void {
    const entry = this.#byPort.get(packet.dst.port)
    if (entry === undefined) return this.net.count('filtered')
    if (this.filtering === 'address-dependent' && !entry.permitted.has(packet.src.ip)) return this.net.count('filtered')
    if (this.filtering === 'address-and-port-dependent' && !entry.permitted.has(key(packet.src))) return this.net.count('filtered')
    const endpoint = this.lan.get(key(entry.inside))
    if (endpoint === undefined) return
    endpoint.deliver(packet.data, packet.src)
  }
}

export interface VirtualNetworkOptions {
  /** Drop probability of each packet crossing the internet. @default 0 */
  loss?: number
  /** One-way latency in ms. @default 1 */
  latency?: number
  /** PRNG seed. @default 1 */
  seed?: number
}

export class VirtualNetwork {
  readonly #hosts = new Map<string, VirtualEndpoint>()
  readonly #nats = new Map<string, VirtualNat>()
  readonly #timers = new Set<ReturnType<typeof setTimeout>>()
  readonly #random: () => number
  loss: number
  latency: number
  /** Return true to drop a packet (tests black-hole paths with it). */
  dropIf: ((src: Addr, dst: Addr, data: Uint8Array) => boolean) | undefined
  readonly counters = { delivered: 0, lost: 0, filtered: 0, blackholed: 0, unroutable: 0 }
  #port = 10000

  constructor(options: VirtualNetworkOptions = {}) {
    this.loss = options.loss ?? 0
    this.latency = options.latency ?? 1
    this.#random = seededRandom(options.seed ?? 1)
  }

  allocatePort(): number {
    return this.#port++
  }

  count(what: keyof VirtualNetwork['counters']): void {
    this.counters[what]++
  }

  /** A host with a public address. */
  bind(ip: string, port = 0): VirtualEndpoint {
    const address = { ip, port: port || this.allocatePort() }
    const endpoint = new VirtualEndpoint(address, (p) => this.route(p))
    this.#hosts.set(key(address), endpoint)
    return endpoint
  }

  createNat(publicIp: string, mapping: Mapping, filtering: Filtering): VirtualNat {
    const nat = new VirtualNat(this, publicIp, mapping, filtering)
    this.#nats.set(publicIp, nat)
    return nat
  }

  /** A STUN server answering Binding requests with XOR-MAPPED-ADDRESS. */
  createStunServer(ip: string, port = 3478): VirtualEndpoint {
    const endpoint = this.bind(ip, port)
    endpoint.onMessage((data, from) => {
      if (!isStunMessage(data)) return
      let msg
      try {
        msg = decodeStunMessage(data)
      } catch {
        return
      }
      if (msg.method !== 'binding' || msg.class !== 'request') return
      const response = encodeStunMessage({
        method: 'binding',
        class: 'success',
        transactionId: msg.transactionId,
        attributes: [{ type: 'xor-mapped-address', value: { family: 'IPv4', host: from.host, port: from.port } }],
      })
      endpoint.send(response, from.port, from.host)
    })
    return endpoint
  }

  schedule(fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      fn()
    }, this.latency)
    this.#timers.add(timer)
  }

  /** Routes a packet across the internet (public source). */
  route(packet: Packet): void {
    if (this.dropIf?.(packet.src, packet.dst, packet.data) === true) return this.count('blackholed')
    if (this.loss > 0 && this.#random() < this.loss) return this.count('lost')
    this.schedule(() => {
      const host = this.#hosts.get(key(packet.dst))
      if (host !== undefined) {
        this.count('delivered')
        return host.deliver(packet.data, packet.src)
      }
      const nat = this.#nats.get(packet.dst.ip)
      if (nat !== undefined) {
        this.count('delivered')
        return nat.inbound(packet)
      }
      this.count('unroutable')
    })
  }

  /** Clears every pending delivery. */
  close(): void {
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
  }
}
