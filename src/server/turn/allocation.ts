/**
 * A TURN allocation (RFC 8656 §2.2, §7): the relayed transport address(es) a client holds
 * on the server, with its lifetime, permissions, channel bindings and bandwidth limit,
 * and the data path between the client and its peers.
 *
 * The data path is written for speed: lookups are Map gets keyed by the peer IP text
 * Node already gives and the channel number, data to peers is sent from the buffer it
 * arrived in (offset and length), data to the client is copied once behind its
 * ChannelData or Data indication header, and nothing is logged.
 *
 * @module
 */

import type { AddressFamily, TransportAddress } from '../../stun/address.js'
import { ChannelBinding } from './channel-binding.js'
import type { ClientLink } from './client-link.js'
import { dataIndication, parseSendIndication } from './data-indication.js'
import { Permission } from './permission.js'
import type { RelayPort } from './relay-port-pool.js'
import type { TurnServerStats } from './turn-server-stats.js'
import { TurnUdpSocket, type UdpRemote } from './udp-socket.js'

/** A relayed transport address of an allocation. */
export interface RelayEndpoint extends RelayPort {
  /** Address family. */
  family: AddressFamily
  /** The address reported in XOR-RELAYED-ADDRESS (the external IP when mapped). */
  relayed: TransportAddress
}

/** Options of {@link Allocation}. */
export interface AllocationOptions {
  /** The client 5-tuple. */
  link: ClientLink
  /** USERNAME that created it ('' without authentication). */
  username: string
  /** The long-term key of that username (undefined without authentication). */
  key: Uint8Array | undefined
  /** Relay sockets: one, or an IPv4 and an IPv6 one (RFC 8656 §7.2 ADDITIONAL-ADDRESS-FAMILY). */
  relays: RelayEndpoint[]
  /** Monotonic time now, ms. */
  now: number
  /** Lifetime, ms. */
  lifetimeMs: number
  /** Bytes per second per direction (0: unlimited). */
  maxBps: number
  /** Server counters updated by the data path. */
  stats: TurnServerStats
}

/** Largest data a Data indication can carry: the STUN length field is 16 bits. */
const MAX_INDICATION_DATA = 0xffff - 4 - 20 - 4 - 3

/**
 * A ChannelData message (RFC 8656 §12.4) carrying `data`, in one new buffer: one copy of
 * the data is cheaper than sending a header and the data as two buffers (measured).
 * RFC 8656 §12.5: padded to 4 bytes over TCP/TLS only.
 */
function channelData(number: number, data: Uint8Array, padded: boolean): Buffer {
  const length = data.length
  const message = Buffer.allocUnsafe(4 + (padded ? (length + 3) & ~3 : length))
  message.writeUInt16BE(number, 0)
  message.writeUInt16BE(length, 2)
  message.set(data, 4)
  if (padded) message.fill(0, 4 + length)
  return message
}

/** Removes the native fast-path route of `binding`, if it has one. */
function dropRoute(binding: ChannelBinding): void {
  if (binding.route !== 0) TurnUdpSocket.removeChannelRoute(binding.route)
  binding.route = 0
}

/** One allocation. */
export class Allocation {
  /** The client 5-tuple. */
  readonly link: ClientLink
  /** USERNAME that created it. */
  readonly username: string
  /** Long-term key (responses to this allocation's requests are signed with it). */
  readonly key: Uint8Array | undefined
  /** Relayed transport addresses. */
  readonly relays: RelayEndpoint[]
  /** Permissions by peer IP. */
  readonly permissions = new Map<string, Permission>()
  /** Channel bindings by channel number. */
  readonly channels = new Map<number, ChannelBinding>()
  /** Expiry on the monotonic clock (ms). */
  expiresAt: number
  /** Transaction ID of the Allocate that created it (RFC 8656 §7.2: retransmissions get the same answer). */
  createTransactionId: Uint8Array | undefined
  /** The success response sent to that Allocate. */
  createResponse: Uint8Array | undefined
  #relay4: TurnUdpSocket | undefined
  #relay6: TurnUdpSocket | undefined
  readonly #stats: TurnServerStats
  readonly #maxBps: number
  // Token buckets (bytes) for maxBps: to peers, to the client.
  #toPeerTokens: number
  #toPeerAt: number
  #toClientTokens: number
  #toClientAt: number
  #closed: Promise<void> | undefined

  constructor(options: AllocationOptions) {
    this.link = options.link
    this.username = options.username
    this.key = options.key
    this.relays = options.relays
    this.expiresAt = options.now + options.lifetimeMs
    this.#stats = options.stats
    this.#maxBps = options.maxBps
    this.#toPeerTokens = this.#toClientTokens = options.maxBps
    this.#toPeerAt = this.#toClientAt = options.now
    for (const relay of options.relays) {
      if (relay.family === 'IPv4') this.#relay4 = relay.socket
      else this.#relay6 = relay.socket
      relay.socket.onMessage(this.#onPeerMessage)
    }
  }

  /** Whether the allocation has a relayed address of `family`. */
  hasFamily(family: AddressFamily): boolean {
    return (family === 'IPv4' ? this.#relay4 : this.#relay6) !== undefined
  }

  /** Whether it has been deleted. */
  get closed(): boolean {
    return this.#closed !== undefined
  }

  /** Extends the lifetime to `now + lifetimeMs` (RFC 8656 §7.3). */
  refresh(now: number, lifetimeMs: number): void {
    this.expiresAt = now + lifetimeMs
  }

  /** Number of peer IPs with a permission in force. */
  get activePermissions(): number {
    let n = 0
    for (const permission of this.permissions.values()) if (permission.active) n++
    return n
  }

  /** Whether a permission is in force for `host`. */
  hasActivePermission(host: string): boolean {
    return this.permissions.get(host)?.active === true
  }

  /** Installs or refreshes the permission for a peer IP (RFC 8656 §9.2). */
  installPermission(peer: TransportAddress, ip: Uint8Array, now: number, lifetimeMs: number): Permission {
    let permission = this.permissions.get(peer.host)
    if (permission === undefined) {
      permission = new Permission(peer.host, peer.family, ip)
      this.permissions.set(peer.host, permission)
    }
    permission.refresh(now, lifetimeMs)
    for (const binding of permission.channels.values()) this.#syncRoute(binding, now)
    return permission
  }

  /** The channel bound (or in its post-expiry guard time) to a peer transport address. */
  channelForPeer(peer: TransportAddress): ChannelBinding | undefined {
    return this.permissions.get(peer.host)?.channels.get(peer.port)
  }

  /**
   * Binds or refreshes channel `number` to `peer` and refreshes the peer's permission
   * (RFC 8656 §11.2). The caller has checked the rebinding rules.
   */
  bindChannel(number: number, peer: TransportAddress, ip: Uint8Array, now: number, channelLifetimeMs: number, permissionLifetimeMs: number): void {
    const permission = this.installPermission(peer, ip, now, permissionLifetimeMs)
    let binding = this.channels.get(number)
    if (binding === undefined) {
      const relay = (peer.family === 'IPv4' ? this.#relay4 : this.#relay6) as TurnUdpSocket
      binding = new ChannelBinding(number, peer, permission, relay)
      this.channels.set(number, binding)
      permission.channels.set(peer.port, binding)
    }
    binding.refresh(now, channelLifetimeMs)
    this.#syncRoute(binding, now)
  }

  /**
   * Makes the native fast-path route of `binding` match its state: installed while the
   * binding and its permission are in force (for a UDP client with a native listening
   * socket and no bandwidth limit, which only JavaScript enforces), with their shorter
   * remaining lifetime; removed otherwise.
   */
  #syncRoute(binding: ChannelBinding, now: number): void {
    if (!binding.active || !binding.permission.active || this.#closed !== undefined) {
      dropRoute(binding)
      return
    }
    const ttlMs = Math.min(binding.expiresAt, binding.permission.expiresAt) - now
    if (binding.route !== 0) {
      TurnUdpSocket.refreshChannelRoute(binding.route, ttlMs)
      return
    }
    if (this.#maxBps > 0) return
    const listener = this.link.fastPathSocket()
    if (listener === undefined) return
    binding.route = listener.addChannelRoute(this.link.client, binding.number, binding.relay, binding.peer, ttlMs)
  }


  // RFC 8656 §7.3: a Refresh with REQUESTED-ADDRESS-FAMILY and LIFETIME 0 deletes only
  // that family's relayed address of a dual allocation.
  /** Drops the relayed address of `family` with its permissions and channels. */
  async removeFamily(family: AddressFamily): Promise<void> {
    const relay = this.relays.find((r) => r.family === family)
    if (relay === undefined) return
    this.relays.splice(this.relays.indexOf(relay), 1)
    if (family === 'IPv4') this.#relay4 = undefined
    else this.#relay6 = undefined
    for (const [host, permission] of this.permissions) {
      if (permission.family !== family) continue
      this.permissions.delete(host)
      for (const binding of permission.channels.values()) dropRoute(binding)
      for (const binding of permission.channels.values()) this.channels.delete(binding.number)
    }
    await relay.socket.close()
  }

  #allowToPeer(bytes: number): boolean {
    const now = performance.now()
    this.#toPeerTokens = Math.min(this.#maxBps, this.#toPeerTokens + ((now - this.#toPeerAt) * this.#maxBps) / 1000)
    this.#toPeerAt = now
    if (this.#toPeerTokens < bytes) return false
    this.#toPeerTokens -= bytes
    return true
  }

  #allowToClient(bytes: number): boolean {
    const now = performance.now()
    this.#toClientTokens = Math.min(this.#maxBps, this.#toClientTokens + ((now - this.#toClientAt) * this.#maxBps) / 1000)
    this.#toClientAt = now
    if (this.#toClientTokens < bytes) return false
    this.#toClientTokens -= bytes
    return true
  }

  /**
   * ChannelData from the client (RFC 8656 §12.6): relayed to the bound peer if the
   * channel and the peer's permission are in force, else dropped.
   */
  onChannelData(frame: Buffer): void {
    const number = ((frame[0] as number) << 8) | (frame[1] as number)
    const length = ((frame[2] as number) << 8) | (frame[3] as number)
    const binding = this.channels.get(number)
    // RFC 8656 §12.5: a message shorter than its length field says is discarded.
    if (binding === undefined || !binding.active || !binding.permission.active || 4 + length > frame.length) {
      this.#stats.droppedPackets++
      return
    }
    if (this.#maxBps > 0 && !this.#allowToPeer(length)) {
      this.#stats.droppedPackets++
      return
    }
    if (!binding.relay.send(frame.subarray(4, 4 + length), binding.peer.port, binding.peer.host)) {
      this.#stats.droppedPackets++
      return
    }
    this.#stats.packetsToPeers++
    this.#stats.bytesToPeers += length
  }

  /**
   * A Send indication from the client (RFC 8656 §10.2): its DATA is relayed to
   * XOR-PEER-ADDRESS if a permission is in force for that IP, else it is dropped.
   */
  onSendIndication(message: Buffer): void {
    const send = parseSendIndication(message)
    const relay = send === undefined ? undefined : send.family === 'IPv4' ? this.#relay4 : this.#relay6
    if (send === undefined || relay === undefined || this.permissions.get(send.host)?.active !== true) {
      this.#stats.droppedPackets++
      return
    }
    if (this.#maxBps > 0 && !this.#allowToPeer(send.dataLength)) {
      this.#stats.droppedPackets++
      return
    }
    if (!relay.send(message.subarray(send.dataOffset, send.dataOffset + send.dataLength), send.port, send.host)) {
      this.#stats.droppedPackets++
      return
    }
    this.#stats.packetsToPeers++
    this.#stats.bytesToPeers += send.dataLength
  }

  /**
   * Data from a peer (RFC 8656 §10.3, §12.6): only from IPs with a permission in force;
   * as ChannelData when a channel is bound to the peer's transport address, else as a
   * Data indication.
   */
  readonly #onPeerMessage = (data: Buffer, rinfo: UdpRemote): void => {
    const permission = this.permissions.get(rinfo.host)
    if (permission === undefined || !permission.active) {
      this.#stats.droppedPackets++
      return
    }
    const length = data.length
    if (this.#maxBps > 0 && !this.#allowToClient(length)) {
      this.#stats.droppedPackets++
      return
    }
    const link = this.link
    const binding = permission.channels.size === 0 ? undefined : permission.channels.get(rinfo.port)
    let sent: boolean
    if (binding !== undefined && binding.active) {
      sent = link.sendData(channelData(binding.number, data, link.stream))
    } else if (length <= MAX_INDICATION_DATA) {
      sent = link.sendData(dataIndication(permission.ip, rinfo.port, data))
    } else {
      sent = false
    }
    if (!sent) {
      this.#stats.droppedPackets++
      return
    }
    this.#stats.packetsFromPeers++
    this.#stats.bytesFromPeers += length
  }

  /**
   * Expires permissions and channel bindings; returns true when the allocation itself
   * has expired (RFC 8656 §7: the caller deletes it).
   */
  sweep(now: number): boolean {
    for (const [number, binding] of this.channels) {
      if (binding.sweep(now)) {
        dropRoute(binding)
        this.channels.delete(number)
        binding.permission.channels.delete(binding.peer.port)
      }
    }
    for (const [host, permission] of this.permissions) {
      if (permission.sweep(now)) this.permissions.delete(host)
    }
    // A native route lives only while its binding and its permission are in force.
    for (const binding of this.channels.values()) if (!binding.active || !binding.permission.active) dropRoute(binding)
    return this.expiresAt <= now
  }

  /** Closes the relay sockets (idempotent); the caller does the bookkeeping. */
  close(): Promise<void> {
    // Routes go before the relay sockets close.
    if (this.#closed === undefined) for (const binding of this.channels.values()) dropRoute(binding)
    this.#closed ??= Promise.all(
      this.relays.map((relay) => relay.socket.close()),
    ).then(() => {})
    return this.#closed
  }
}
