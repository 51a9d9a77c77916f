/**
 * The TURN server's control plane (RFC 8656 §7–§11 over RFC 8489): authenticates
 * requests, answers Binding, Allocate, Refresh, CreatePermission and ChannelBind, and
 * owns the table of allocations with their quotas and lifetimes. Listeners hand it every
 * STUN message; Send indications and ChannelData go straight to the allocation.
 *
 * @module
 */

import type { AddressFamily, TransportAddress } from '../../stun/address.js'
import { parseIp } from '../../stun/address.js'
import type { StunAttribute } from '../../stun/attribute.js'
import { isStunMessage } from '../../stun/classify.js'
import {
  decodeStunMessage,
  encodeStunMessage,
  getAttribute,
  getAttributes,
  type DecodedStunMessage,
} from '../../stun/message.js'
import { RateLimiter } from '../stun/rate-limiter.js'
import { answerBindingRequest } from '../stun/stun-server.js'
import { Allocation, type RelayEndpoint } from './allocation.js'
import type { TurnAuthenticator } from './auth.js'
import type { ClientLink } from './client-link.js'
import { SEND_INDICATION_TYPE } from './data-indication.js'
import type { PeerAddressPolicy } from './peer-address-policy.js'
import type { RelayPort, RelayPortPool } from './relay-port-pool.js'
import type { ResolvedTurnServerOptions } from './turn-server-options.js'
import type { TurnServerStats } from './turn-server-stats.js'

/** RFC 8656 §14.7: REQUESTED-TRANSPORT value for UDP. */
const UDP_PROTOCOL = 17

/** What the handler needs from its server. */
export interface TurnRequestHandlerOptions {
  /** Resolved options. */
  options: ResolvedTurnServerOptions
  /** Credential checks and nonces. */
  auth: TurnAuthenticator
  /** Peer address policy. */
  policy: PeerAddressPolicy
  /** Relay ports. */
  pool: RelayPortPool
  /** Counters to update. */
  stats: TurnServerStats
}

interface Credentials {
  username: string
  key: Uint8Array | undefined
  sha256: boolean
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

function describe(address: TransportAddress): string {
  return address.family === 'IPv6' ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
}

/** The TURN control plane and allocation table. */
export class TurnRequestHandler {
  /** Allocations in force. */
  readonly allocations = new Set<Allocation>()
  readonly #o: ResolvedTurnServerOptions
  readonly #auth: TurnAuthenticator
  readonly #policy: PeerAddressPolicy
  readonly #pool: RelayPortPool
  readonly #stats: TurnServerStats
  readonly #unauthorizedLimiter: RateLimiter
  readonly #bindingLimiter: RateLimiter
  readonly #perUser = new Map<string, number>()
  readonly #nextRelay: Record<AddressFamily, number> = { IPv4: 0, IPv6: 0 }
  readonly #relayIps: Record<AddressFamily, string[]>
  readonly #pending = new Set<Promise<void>>()
  readonly #deleting = new Set<Promise<void>>()
  #closing = false

  constructor(options: TurnRequestHandlerOptions) {
    this.#o = options.options
    this.#auth = options.auth
    this.#policy = options.policy
    this.#pool = options.pool
    this.#stats = options.stats
    this.#unauthorizedLimiter = new RateLimiter({ ratePerSecond: this.#o.unauthorizedPerSecond, burst: this.#o.unauthorizedBurst })
    this.#bindingLimiter = new RateLimiter({ ratePerSecond: this.#o.bindingPerSecond, burst: 2 * this.#o.bindingPerSecond })
    this.#relayIps = {
      IPv4: this.#o.relayIps.filter((ip) => !ip.includes(':')),
      IPv6: this.#o.relayIps.filter((ip) => ip.includes(':')),
    }
  }

  /**
   * A STUN frame from a client (a UDP datagram or a frame cut from a stream). Send
   * indications take the data path; everything else is decoded and answered.
   */
  onStunFrame(link: ClientLink, frame: Buffer): void {
    if (!isStunMessage(frame)) {
      this.#stats.malformed++
      return
    }
    if (((frame[0] as number) << 8) + (frame[1] as number) === SEND_INDICATION_TYPE) {
      const allocation = link.allocation
      if (allocation === undefined) this.#stats.droppedPackets++
      else allocation.onSendIndication(frame)
      return
    }
    let request: DecodedStunMessage
    try {
      request = decodeStunMessage(frame)
    } catch {
      this.#stats.malformed++
      return
    }
    // RFC 8489 §6.3: indications other than Send and responses get no answer.
    if (request.class !== 'request' || this.#closing) return
    try {
      this.#dispatch(link, request)
    } catch (err) {
      this.#o.logger.error({ event: 'turn-request-failed', method: request.method, err }, 'TURN request failed')
      this.#error(link, request, 500, 'Server Error')
    }
  }

  #dispatch(link: ClientLink, request: DecodedStunMessage): void {
    if (request.method === 'binding') {
      // STUN Binding for everyone, authenticated or not. UDP answers are rate limited per IP
      // (a reflector must not amplify spoofed floods).
      if (link.transport === 'udp' && !this.#bindingLimiter.take(link.client.host)) {
        this.#stats.rateLimited++
        return
      }
      const { response, success } = answerBindingRequest(request, link.client, this.#o.software)
      if (success) this.#stats.bindingResponses++
      else this.#stats.errorResponses++
      link.sendMessage(response)
      return
    }
    if (this.#o.stunOnly) {
      this.#error(link, request, 400, 'Bad Request: STUN only')
      return
    }
    if (request.method !== 'allocate' && request.method !== 'refresh' && request.method !== 'create-permission' && request.method !== 'channel-bind') {
      this.#error(link, request, 400, 'Bad Request')
      return
    }
    const credentials = this.#authenticate(link, request)
    if (credentials === undefined) return
    // RFC 8489 §6.3.1 (after authentication): unknown comprehension-required attributes → 420.
    if (request.unknownRequired.length > 0) {
      this.#error(link, request, 420, 'Unknown Attribute', credentials, [{ type: 'unknown-attributes', value: request.unknownRequired }])
      return
    }
    if (request.method === 'allocate') {
      const pending = this.#allocate(link, request, credentials)
        .catch((err: unknown) => {
          this.#o.logger.error({ event: 'turn-allocate-failed', err }, 'TURN Allocate failed')
        })
        .finally(() => this.#pending.delete(pending))
      this.#pending.add(pending)
      return
    }
    const allocation = link.allocation
    // RFC 8656 §7.3, §9.2, §11.2: requests other than Allocate need an allocation on this 5-tuple.
    if (allocation === undefined) {
      this.#error(link, request, 437, 'Allocation Mismatch', credentials)
      return
    }
    // RFC 8656 §5: the credentials must be those that created the allocation.
    if (allocation.username !== credentials.username) {
      this.#error(link, request, 441, 'Wrong Credentials', credentials)
      return
    }
    if (request.method === 'refresh') this.#refresh(link, request, credentials, allocation)
    else if (request.method === 'create-permission') this.#createPermission(link, request, credentials, allocation)
    else this.#channelBind(link, request, credentials, allocation)
  }

  /** RFC 8489 §9.2.4 long-term credential checks; undefined when answered or dropped. */
  #authenticate(link: ClientLink, request: DecodedStunMessage): Credentials | undefined {
    if (this.#o.noAuth) return { username: '', key: undefined, sha256: false }
    const ip = link.client.host
    const result = this.#auth.authenticate(request, ip)
    if (result.ok) return { username: result.username, key: result.key, sha256: request.integritySha256Offset !== undefined }
    if (result.code === 400) {
      this.#error(link, request, 400, 'Bad Request')
      return undefined
    }
    const challenge: StunAttribute[] = [
      { type: 'realm', value: this.#auth.realm },
      { type: 'nonce', value: this.#auth.createNonce(ip) },
    ]
    if (result.code === 438) {
      this.#error(link, request, 438, 'Stale Nonce', undefined, challenge)
      return undefined
    }
    if (!this.#unauthorizedLimiter.take(ip)) {
      this.#stats.rateLimited++
      return undefined
    }
    if (result.failure !== 'challenge') {
      this.#stats.authFailures++
      // The username is logged; passwords, keys and secrets never are.
      this.#o.logger.warn(
        { event: 'turn-auth-failed', client: describe(link.client), transport: link.transport, username: result.username, reason: result.failure },
        'TURN authentication failed',
      )
    }
    this.#error(link, request, 401, 'Unauthorized', undefined, challenge)
    return undefined
  }

  /** RFC 8656 §7.2 / §7.3: requested lifetime, capped at the maximum, at least the default. */
  #lifetimeMs(request: DecodedStunMessage): number {
    const requested = getAttribute(request, 'lifetime')?.value
    if (requested === undefined) return this.#o.defaultLifetimeMs
    return Math.max(Math.min(requested * 1000, this.#o.maxLifetimeMs), this.#o.defaultLifetimeMs)
  }

  #relayedAddress(ip: string, port: number): TransportAddress {
    const family: AddressFamily = ip.includes(':') ? 'IPv6' : 'IPv4'
    const mapping =
      this.#o.externalIps.find((m) => m.private === ip) ??
      this.#o.externalIps.find((m) => m.private === undefined && m.public.includes(':') === (family === 'IPv6'))
    return { family, host: mapping?.public ?? ip, port }
  }

  #endpoint(port: RelayPort): RelayEndpoint {
    const relayed = this.#relayedAddress(port.ip, port.port)
    return { ...port, family: relayed.family, relayed }
  }

  async #bindRelay(family: AddressFamily, even: boolean, reserveNext: boolean): Promise<(RelayEndpoint & { token?: Uint8Array }) | undefined> {
    const ips = this.#relayIps[family]
    for (let i = 0; i < ips.length; i++) {
      const ip = ips[this.#nextRelay[family]++ % ips.length] as string
      const bound = await this.#pool.bind(ip, { even, reserveNext })
      if (bound !== undefined) return { ...this.#endpoint(bound), token: bound.reservationToken }
    }
    return undefined
  }

  /** RFC 8656 §7.2 Receiving an Allocate Request. */
  async #allocate(link: ClientLink, request: DecodedStunMessage, credentials: Credentials): Promise<void> {
    const existing = link.allocation
    if (existing !== undefined) {
      // §7.2 step 2: a retransmission of the Allocate that created it gets the same answer;
      // any other Allocate on a 5-tuple in use gets 437.
      if (existing.createResponse !== undefined && sameBytes(existing.createTransactionId, request.transactionId)) {
        link.sendMessage(existing.createResponse)
      } else {
        this.#error(link, request, 437, 'Allocation Mismatch', credentials)
      }
      return
    }
    if (link.allocating) return // the first transmission is still binding; the client retransmits
    // §7.2 step 3: REQUESTED-TRANSPORT is mandatory and must be UDP (RFC 6062 TCP relaying is not offered).
    const transport = getAttribute(request, 'requested-transport')
    if (transport === undefined) return this.#error(link, request, 400, 'Bad Request: no REQUESTED-TRANSPORT', credentials)
    if (transport.value !== UDP_PROTOCOL) return this.#error(link, request, 442, 'Unsupported Transport Protocol', credentials)
    // §7.2 step 4: DONT-FRAGMENT is accepted (the relay does not fragment on its own).
    const token = getAttribute(request, 'reservation-token')?.value
    const evenPort = getAttribute(request, 'even-port')?.value
    const requestedFamily = getAttribute(request, 'requested-address-family')?.value
    const additionalFamily = getAttribute(request, 'additional-address-family')?.value
    // §7.2 steps 5–8: RESERVATION-TOKEN excludes EVEN-PORT and the family attributes;
    // ADDITIONAL-ADDRESS-FAMILY excludes REQUESTED-ADDRESS-FAMILY and can only ask for IPv6.
    if (token !== undefined && (evenPort !== undefined || requestedFamily !== undefined || additionalFamily !== undefined)) {
      return this.#error(link, request, 400, 'Bad Request: RESERVATION-TOKEN with EVEN-PORT or an address family', credentials)
    }
    if (additionalFamily !== undefined && (requestedFamily !== undefined || additionalFamily !== 'IPv6')) {
      return this.#error(link, request, 400, 'Bad Request: ADDITIONAL-ADDRESS-FAMILY', credentials)
    }
    const family: AddressFamily = requestedFamily ?? 'IPv4'
    if (token === undefined && this.#relayIps[family].length === 0) {
      return this.#error(link, request, 440, 'Address Family not Supported', credentials)
    }
    // §7.2 step 9: quotas.
    if (this.#o.totalQuota > 0 && this.allocations.size >= this.#o.totalQuota) {
      return this.#error(link, request, 486, 'Allocation Quota Reached', credentials)
    }
    const used = this.#perUser.get(credentials.username) ?? 0
    if (this.#o.userQuota > 0 && used >= this.#o.userQuota) {
      return this.#error(link, request, 486, 'Allocation Quota Reached', credentials)
    }
    this.#perUser.set(credentials.username, used + 1) // held while binding, so parallel Allocates count
    link.setAllocating(true)
    const relays: RelayEndpoint[] = []
    let reservationToken: Uint8Array | undefined
    let ipv6Error = false
    try {
      if (token !== undefined) {
        // §7.2: the relayed address is the port reserved under the token; an unknown token → 508.
        const claimed = this.#pool.claim(token)
        if (claimed !== undefined) relays.push(this.#endpoint(claimed))
      } else {
        const first = await this.#bindRelay(family, evenPort !== undefined, evenPort?.reserve === true)
        if (first !== undefined) {
          reservationToken = first.token
          delete first.token
          relays.push(first)
          if (additionalFamily === 'IPv6') {
            const second = this.#relayIps.IPv6.length > 0 ? await this.#bindRelay('IPv6', false, false) : undefined
            if (second !== undefined) {
              delete second.token
              relays.push(second)
            } else {
              ipv6Error = true
            }
          }
        }
      }
    } finally {
      link.setAllocating(false)
    }
    if (relays.length === 0 || this.#closing || link.closed || link.allocation !== undefined) {
      this.#releaseUser(credentials.username)
      await Promise.all(relays.map((relay) => this.#releaseRelay(relay)))
      if (relays.length === 0 && !this.#closing) this.#error(link, request, 508, 'Insufficient Capacity', credentials)
      return
    }
    const lifetimeMs = this.#lifetimeMs(request)
    const allocation = new Allocation({
      link,
      username: credentials.username,
      key: credentials.key,
      relays,
      now: performance.now(),
      lifetimeMs,
      maxBps: this.#o.maxBps,
      stats: this.#stats,
    })
    this.allocations.add(allocation)
    this.#stats.allocations = this.allocations.size
    this.#stats.allocationsCreated++
    link.setAllocation(allocation)
    const attributes: StunAttribute[] = relays.map((relay) => ({ type: 'xor-relayed-address', value: relay.relayed }))
    attributes.push({ type: 'lifetime', value: Math.round(lifetimeMs / 1000) })
    if (reservationToken !== undefined) attributes.push({ type: 'reservation-token', value: reservationToken })
    // RFC 8656 §7.2: a dual allocation that could not get IPv6 says so in ADDRESS-ERROR-CODE.
    if (ipv6Error) attributes.push({ type: 'address-error-code', value: { family: 'IPv6', code: 440, reason: 'Address Family not Supported' } })
    attributes.push({ type: 'xor-mapped-address', value: link.client })
    allocation.createTransactionId = request.transactionId
    allocation.createResponse = this.#respond(link, request, 'success', attributes, credentials)
    this.#o.logger.info(
      {
        event: 'turn-allocation-created',
        client: describe(link.client),
        transport: link.transport,
        username: credentials.username,
        relayed: relays.map((relay) => describe(relay.relayed)),
        lifetime: Math.round(lifetimeMs / 1000),
      },
      'TURN allocation created',
    )
  }

  #releaseUser(username: string): void {
    const n = (this.#perUser.get(username) ?? 1) - 1
    if (n <= 0) this.#perUser.delete(username)
    else this.#perUser.set(username, n)
  }

  async #releaseRelay(relay: RelayPort): Promise<void> {
    await relay.socket.close()
    this.#pool.release(relay.ip, relay.port)
  }

  /** RFC 8656 §7.3 Receiving a Refresh Request. */
  #refresh(link: ClientLink, request: DecodedStunMessage, credentials: Credentials, allocation: Allocation): void {
    const family = getAttribute(request, 'requested-address-family')?.value
    // §7.3: a family the allocation does not have → 443 Peer Address Family Mismatch.
    if (family !== undefined && !allocation.hasFamily(family)) {
      return this.#error(link, request, 443, 'Peer Address Family Mismatch', credentials)
    }
    const requested = getAttribute(request, 'lifetime')?.value
    if (requested === 0) {
      // §7.3: LIFETIME 0 deletes the allocation (or only one family of a dual allocation).
      this.#respond(link, request, 'success', [{ type: 'lifetime', value: 0 }], credentials)
      if (family !== undefined && allocation.relays.length > 1) {
        const relay = allocation.relays.find((r) => r.family === family)
        void allocation.removeFamily(family).then(() => {
          if (relay !== undefined) this.#pool.release(relay.ip, relay.port)
        })
      } else {
        void this.deleteAllocation(allocation, 'refresh')
      }
      return
    }
    const lifetimeMs = this.#lifetimeMs(request)
    allocation.refresh(performance.now(), lifetimeMs)
    this.#respond(link, request, 'success', [{ type: 'lifetime', value: Math.round(lifetimeMs / 1000) }], credentials)
  }

  /**
   * Checks a peer address for CreatePermission/ChannelBind: policy (403) first, then the
   * allocation's families (443). Returns the IP bytes, or undefined when answered.
   */
  #checkPeer(link: ClientLink, request: DecodedStunMessage, credentials: Credentials, allocation: Allocation, peer: TransportAddress): Uint8Array | undefined {
    if (!this.#policy.isAllowed(peer.host)) {
      this.#error(link, request, 403, 'Forbidden', credentials)
      return undefined
    }
    if (!allocation.hasFamily(peer.family)) {
      this.#error(link, request, 443, 'Peer Address Family Mismatch', credentials)
      return undefined
    }
    return parseIp(peer.host)?.bytes
  }

  /** RFC 8656 §9.2 Receiving a CreatePermission Request: all addresses or none. */
  #createPermission(link: ClientLink, request: DecodedStunMessage, credentials: Credentials, allocation: Allocation): void {
    const peers = getAttributes(request, 'xor-peer-address').map((a) => a.value)
    if (peers.length === 0) return this.#error(link, request, 400, 'Bad Request: no XOR-PEER-ADDRESS', credentials)
    const ips: Uint8Array[] = []
    const added = new Set<string>()
    for (const peer of peers) {
      const ip = this.#checkPeer(link, request, credentials, allocation, peer)
      if (ip === undefined) return
      ips.push(ip)
      if (!allocation.hasActivePermission(peer.host)) added.add(peer.host)
    }
    // §9.2: a server may refuse for lack of capacity with 508.
    if (allocation.activePermissions + added.size > this.#o.maxPermissionsPerAllocation) {
      return this.#error(link, request, 508, 'Insufficient Capacity: too many permissions', credentials)
    }
    const now = performance.now()
    peers.forEach((peer, i) => allocation.installPermission(peer, ips[i] as Uint8Array, now, this.#o.permissionLifetimeMs))
    this.#respond(link, request, 'success', [], credentials)
  }

  /** RFC 8656 §11.2 Receiving a ChannelBind Request. */
  #channelBind(link: ClientLink, request: DecodedStunMessage, credentials: Credentials, allocation: Allocation): void {
    const number = getAttribute(request, 'channel-number')?.value
    const peer = getAttribute(request, 'xor-peer-address')?.value
    if (number === undefined || peer === undefined) {
      return this.#error(link, request, 400, 'Bad Request: CHANNEL-NUMBER and XOR-PEER-ADDRESS are required', credentials)
    }
    // §11.2: channel numbers 0x4000–0x4FFF (0x7FFF under RFC 5766, accepted unless strict).
    if (number < 0x4000 || number > this.#o.maxChannelNumber || peer.port === 0) {
      return this.#error(link, request, 400, 'Bad Request: invalid channel number or peer port', credentials)
    }
    const ip = this.#checkPeer(link, request, credentials, allocation, peer)
    if (ip === undefined) return
    // §11.2: a number bound to another address, or an address bound to another number, → 400
    // (expired bindings keep both reserved for 5 minutes, §11).
    const byNumber = allocation.channels.get(number)
    if (byNumber !== undefined && (byNumber.peer.host !== peer.host || byNumber.peer.port !== peer.port)) {
      return this.#error(link, request, 400, 'Bad Request: channel bound to another peer', credentials)
    }
    const byPeer = allocation.channelForPeer(peer)
    if (byPeer !== undefined && byPeer.number !== number) {
      return this.#error(link, request, 400, 'Bad Request: peer bound to another channel', credentials)
    }
    if (!allocation.hasActivePermission(peer.host) && allocation.activePermissions >= this.#o.maxPermissionsPerAllocation) {
      return this.#error(link, request, 508, 'Insufficient Capacity: too many permissions', credentials)
    }
    allocation.bindChannel(number, peer, ip, performance.now(), this.#o.channelLifetimeMs, this.#o.permissionLifetimeMs)
    this.#respond(link, request, 'success', [], credentials)
  }

  #respond(link: ClientLink, request: DecodedStunMessage, cls: 'success' | 'error', attributes: StunAttribute[], credentials?: Credentials): Uint8Array {
    if (this.#o.software.length > 0) attributes.push({ type: 'software', value: this.#o.software })
    const key = credentials?.key
    // RFC 8489 §9.2.4: responses to authenticated requests carry integrity of the same kind.
    const message = encodeStunMessage(
      { method: request.method, class: cls, transactionId: request.transactionId, attributes },
      {
        integrity: key !== undefined && credentials?.sha256 !== true ? key : undefined,
        integritySha256: key !== undefined && credentials?.sha256 === true ? key : undefined,
        fingerprint: true,
      },
    )
    link.sendMessage(message)
    return message
  }

  #error(link: ClientLink, request: DecodedStunMessage, code: number, reason: string, credentials?: Credentials, extra: StunAttribute[] = []): void {
    const stats = this.#stats
    stats.errorResponses++
    if (code === 401) stats.unauthorized++
    else if (code === 438) stats.staleNonces++
    else if (code === 403) stats.forbidden++
    else if (code === 486) stats.quotaRejections++
    else if (code === 508) stats.capacityRejections++
    this.#respond(link, request, 'error', [{ type: 'error-code', value: { code, reason } }, ...extra], credentials)
  }

  /** Deletes an allocation: closes its relay sockets and frees its ports and quota. */
  deleteAllocation(allocation: Allocation, reason: 'refresh' | 'expired' | 'connection-closed' | 'shutdown'): Promise<void> {
    if (!this.allocations.delete(allocation)) return allocation.close()
    const deleting = this.#delete(allocation, reason).finally(() => this.#deleting.delete(deleting))
    this.#deleting.add(deleting)
    return deleting
  }

  async #delete(allocation: Allocation, reason: string): Promise<void> {
    this.#stats.allocations = this.allocations.size
    this.#releaseUser(allocation.username)
    if (allocation.link.allocation === allocation) allocation.link.setAllocation(undefined)
    this.#o.logger.info(
      { event: 'turn-allocation-deleted', client: describe(allocation.link.client), transport: allocation.link.transport, username: allocation.username, reason },
      'TURN allocation deleted',
    )
    const relays = [...allocation.relays]
    await allocation.close()
    for (const relay of relays) this.#pool.release(relay.ip, relay.port)
  }

  /** Expires permissions, channels, allocations and reservations. */
  sweep(): void {
    const now = performance.now()
    for (const allocation of this.allocations) {
      if (allocation.sweep(now)) void this.deleteAllocation(allocation, 'expired')
    }
    void this.#pool.sweep()
  }

  /** Stops answering and deletes every allocation. */
  async close(): Promise<void> {
    this.#closing = true
    await Promise.all([...this.#pending])
    await Promise.all([...this.allocations].map((allocation) => this.deleteAllocation(allocation, 'shutdown')))
    await Promise.all([...this.#deleting])
    await this.#pool.close()
  }
}
