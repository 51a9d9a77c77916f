/**
 * The TURN client (RFC 8656): one allocation on one server, its automatic refreshes,
 * permissions, channel bindings, and data to and from peers through the relay.
 *
 * @module
 */

import { EventEmitter } from 'node:events'
import {
  InvalidArgumentError,
  SocketClosedError,
  StunErrorResponseError,
  TurnAllocationError,
  TurnAuthError,
} from '../errors.js'
import type { TransportAddress } from '../stun/address.js'
import { decodeChannelData, encodeChannelData } from '../stun/channel-data.js'
import { createTransactionId, decodeStunMessage, encodeStunMessage, getAttribute } from '../stun/message.js'
import type { DecodedStunMessage } from '../stun/message.js'
import { StunTransactionManager } from '../stun/transaction.js'
import type { StunRetransmitOptions } from '../stun/transaction.js'
import {
  allocateAttributes,
  checkLifetime,
  lifetimeOf,
  parseAllocateResponse,
  refreshDelay,
  type TurnAllocateOptions,
  type TurnAllocation,
} from './allocation.js'
import { ChannelBindingTable, type ChannelBinding } from './channel-bindings.js'
import { LongTermAuthSession } from './long-term-auth.js'
import { PermissionSet, toPeerAddress, type TurnPeerAddress } from './permissions.js'
import {
  checkClientOptions,
  serverTarget,
  type TurnClientConnectOptions,
  type TurnClientEvents,
  type TurnClientOptions,
  type TurnClientState,
  type TurnCloseOptions,
  type TurnRefreshOptions,
  type TurnRequestSignalOptions,
} from './turn-client-options.js'
import { connectTurnServer, type TurnServerConnection } from './turn-transport.js'

/**
 * A TURN client: allocates a relayed address on a TURN server and relays datagrams to
 * and from peers through it, over UDP (from the peer's one socket), TCP or TLS.
 *
 * 401 challenges and 438 stale nonces are answered transparently; the allocation,
 * permissions and channels are refreshed automatically until {@link TurnClient.close},
 * which deallocates, clears every timer and closes the TCP/TLS connection (never a UDP
 * socket it was given).
 *
 * @example
 * ```ts
 * import { PeerSocket, TurnClient } from 'peerlink'
 *
 * const peerSocket = await PeerSocket.bind()
 * const credentials = { username: 'alice', password: 's3cret' }
 * const client = await TurnClient.connect({ server: 'turn:turn.example.com:3478?transport=udp', endpoint: peerSocket, credentials })
 * const { relayed } = await client.allocate({ signal: AbortSignal.timeout(10_000) })   // tell the remote peer
 * const remote = { host: '198.51.100.7', port: 40000 }
 * await client.createPermission(remote.host)
 * await client.bindChannel(remote)
 * client.onData((data, from) => console.log(from, data))
 * client.send(new TextEncoder().encode('hello'), remote)
 * await client.close()
 * ```
 */
export class TurnClient extends EventEmitter<TurnClientEvents> {
  /** The link to the server. */
  readonly connection: TurnServerConnection
  readonly #tm: StunTransactionManager
  readonly #auth: LongTermAuthSession
  readonly #permissions = new PermissionSet()
  readonly #channels = new ChannelBindingTable()
  readonly #subscriptions: Array<() => void> = []
  readonly #refreshRatio: number
  readonly #permissionInterval: number
  readonly #channelInterval: number
  readonly #closeTimeout: number
  #state: TurnClientState = 'idle'
  #allocation: TurnAllocation | undefined
  #requestedLifetime: number | undefined
  #expiresAt = 0
  #refreshTimer: ReturnType<typeof setTimeout> | undefined
  #permissionTimer: ReturnType<typeof setTimeout> | undefined
  #channelTimer: ReturnType<typeof setTimeout> | undefined
  #closing: Promise<void> | undefined

  /**
   * Opens the link to the server (see `connectTurnServer`) and returns a client that
   * owns it. Rejects like `connectTurnServer`.
   *
   * @throws InvalidArgumentError or InvalidServerSpecError at once on bad options.
   */
  static connect(options: TurnClientConnectOptions): Promise<TurnClient> {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('TurnClient.connect needs options')
    checkClientOptions(options)
    const target = serverTarget(options)
    return connectTurnServer({
      ...target,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.connectTimeout === undefined ? {} : { connectTimeout: options.connectTimeout }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    }).then((connection) => {
      try {
        return new TurnClient({ ...options, connection })
      } catch (err) {
        void connection.close()
        throw err
      }
    })
  }

  constructor(options: TurnClientOptions) {
    super()
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('TurnClient needs options')
    checkClientOptions(options)
    const { connection } = options
    if (connection === null || typeof connection !== 'object' || typeof connection.send !== 'function' || typeof connection.onStun !== 'function') {
      throw new InvalidArgumentError('TurnClient needs a connection (see connectTurnServer)')
    }
    if (connection.closed) throw new InvalidArgumentError('The TURN connection is already closed')
    this.connection = connection
    this.#refreshRatio = options.refreshRatio ?? 0.8
    this.#permissionInterval = options.permissionRefreshInterval ?? 240_000
    this.#channelInterval = options.channelRefreshInterval ?? 480_000
    this.#closeTimeout = options.closeTimeout ?? 1000
    this.#tm = new StunTransactionManager({ send: (data) => connection.send(data) })
    // RFC 8489 §6.2.2: over TCP/TLS a request is sent once and times out after Ti = 39.5 s.
    const retransmit: StunRetransmitOptions = connection.reliable
      ? { rto: options.requestTimeout ?? 39_500, rc: 1, rm: 1 }
      : {
          ...(options.rto === undefined ? {} : { rto: options.rto }),
          ...(options.rc === undefined ? {} : { rc: options.rc }),
          ...(options.rm === undefined ? {} : { rm: options.rm }),
        }
    this.#auth = new LongTermAuthSession({
      transactions: this.#tm,
      server: connection.server,
      credentials: options.credentials,
      retransmit,
      ...(options.software === undefined ? {} : { software: options.software }),
      fingerprint: options.fingerprint === true,
    })
    this.#subscriptions.push(
      connection.onStun((frame) => this.#onStun(frame)),
      connection.onChannelData((frame) => this.#onChannelData(frame)),
      connection.onClose((error) => this.#fail(error ?? new SocketClosedError('The connection to the TURN server closed'))),
    )
  }

  /** Where the client is in its life. */
  get state(): TurnClientState {
    return this.#state
  }

  /** The relayed transport address, once allocated. */
  get relayedAddress(): TransportAddress | undefined {
    return this.#allocation === undefined ? undefined : { ...this.#allocation.relayed }
  }

  /** Our address as the server sees it (XOR-MAPPED-ADDRESS), once allocated. */
  get mappedAddress(): TransportAddress | undefined {
    const mapped = this.#allocation?.mapped
    return mapped === undefined ? undefined : { ...mapped }
  }

  /** The lifetime last granted, in seconds (0 before allocation). */
  get lifetime(): number {
    return this.#allocation?.lifetime ?? 0
  }

  /** When the allocation expires unless refreshed (ms since the epoch; 0 before allocation). */
  get expiresAt(): number {
    return this.#expiresAt
  }

  /** The realm of the server's credentials, once known. */
  get realm(): string | undefined {
    return this.#auth.realm
  }

  /** Whether a permission for `host` was installed (and is being refreshed). */
  hasPermission(host: string): boolean {
    return this.#permissions.has(host)
  }

  /** The channel number bound to `peer`, if the binding is confirmed. */
  channelOf(peer: { host: string; port: number }): number | undefined {
    const binding = this.#channels.forPeer(toPeerAddress(peer, true, 'channelOf'))
    return binding?.bound === true ? binding.number : undefined
  }

  /** Subscribes to data from peers (the `'data'` event); returns the unsubscribe function. */
  onData(listener: (data: Uint8Array, peer: TransportAddress) => void): () => void {
    if (typeof listener !== 'function') throw new InvalidArgumentError('listener must be a function')
    this.on('data', listener)
    return () => {
      this.off('data', listener)
    }
  }

  /**
   * Creates the allocation (RFC 8656 §7), answering the server's 401 challenge with the
   * credentials. Resolves with the relayed and mapped addresses and the lifetime; the
   * allocation is then refreshed automatically.
   *
   * Rejects with `TurnAuthError`, `TurnAllocationError` (any other error response),
   * `StunTimeoutError`, `AbortError` or `SocketClosedError`.
   *
   * @throws InvalidArgumentError at once on bad options or when already allocating or allocated.
   */
  allocate(options: TurnAllocateOptions = {}): Promise<TurnAllocation> {
    const attributes = allocateAttributes(options)
    if (this.#state === 'closed') return Promise.reject(new SocketClosedError('The TURN client is closed'))
    if (this.#state !== 'idle') throw new InvalidArgumentError(`allocate() called while ${this.#state}`)
    this.#state = 'allocating'
    return this.#runAllocate(attributes, options)
  }

  async #runAllocate(attributes: Parameters<LongTermAuthSession['request']>[1], options: TurnAllocateOptions): Promise<TurnAllocation> {
    let allocation: TurnAllocation
    try {
      const response = await this.#auth.request('allocate', attributes, options.signal === undefined ? {} : { signal: options.signal })
      allocation = parseAllocateResponse(response, this.#auth.realm)
    } catch (err) {
      if (this.#state === 'allocating') this.#state = 'idle'
      if (err instanceof StunErrorResponseError) {
        throw new TurnAllocationError(err.errorCode, `TURN Allocate failed: ${err.errorCode} ${err.reason}`, { cause: err })
      }
      throw err
    }
    if (this.#state !== 'allocating') throw new SocketClosedError('The TURN client was closed during allocation')
    this.#state = 'allocated'
    this.#allocation = allocation
    this.#requestedLifetime = options.lifetime
    this.#setLifetime(allocation.lifetime)
    return { ...allocation, relayedAddresses: [...allocation.relayedAddresses] }
  }

  #setLifetime(lifetime: number): void {
    if (this.#allocation !== undefined) this.#allocation.lifetime = lifetime
    this.#expiresAt = Date.now() + lifetime * 1000
    this.#scheduleRefresh(refreshDelay(lifetime, this.#refreshRatio))
  }

  #scheduleRefresh(delay: number): void {
    clearTimeout(this.#refreshTimer)
    this.#refreshTimer = setTimeout(() => this.#autoRefresh(), delay)
    this.#refreshTimer.unref()
  }

  #autoRefresh(): void {
    this.#refreshTimer = undefined
    this.refresh().catch((err: unknown) => {
      if (this.#state !== 'allocated') return
      const error = err instanceof Error ? err : new Error(String(err))
      this.emit('refresh-error', error, 'allocation')
      // An error response (e.g. 437 Allocation Mismatch) means the allocation is gone;
      // a timeout is retried while the allocation has time left.
      const remaining = this.#expiresAt - Date.now()
      if (err instanceof StunErrorResponseError || err instanceof TurnAuthError || remaining < 2000) this.#fail(error)
      else this.#scheduleRefresh(remaining / 2)
    })
  }

  #requireAllocated(what: string): Promise<never> | undefined {
    if (this.#state === 'closed') return Promise.reject(new SocketClosedError('The TURN client is closed'))
    if (this.#state !== 'allocated') throw new InvalidArgumentError(`${what} needs an allocation: call allocate() first`)
    return undefined
  }

  /**
   * Refreshes the allocation now (RFC 8656 §8) and resolves with the granted lifetime
   * in seconds. Automatic refreshes call this before the lifetime runs out.
   *
   * Rejects with `StunErrorResponseError` (437: the allocation is gone), `TurnAuthError`,
   * `StunTimeoutError`, `AbortError` or `SocketClosedError`.
   */
  refresh(options: TurnRefreshOptions = {}): Promise<number> {
    checkLifetime(options.lifetime, 'refresh')
    if (options.lifetime === 0) throw new InvalidArgumentError('refresh: lifetime 0 deallocates; call close() instead')
    const closed = this.#requireAllocated('refresh()')
    if (closed !== undefined) return closed
    const lifetime = options.lifetime ?? this.#requestedLifetime ?? this.lifetime
    return this.#auth
      .request('refresh', [{ type: 'lifetime', value: lifetime }], options.signal === undefined ? {} : { signal: options.signal })
      .then((response) => {
        const granted = lifetimeOf(response)
        if (this.#state === 'allocated') {
          this.#setLifetime(granted)
          this.emit('refresh', { kind: 'allocation', lifetime: granted })
        }
        return granted
      })
  }

  /**
   * Installs permissions for peer IP addresses (RFC 8656 §9; ports are ignored), so the
   * server relays their datagrams to us and ours to them. They are refreshed every
   * `permissionRefreshInterval` until {@link TurnClient.close}.
   *
   * Rejects with `StunErrorResponseError` (e.g. 403 Forbidden for a peer the server
   * refuses), `TurnAuthError`, `StunTimeoutError`, `AbortError` or `SocketClosedError`.
   */
  createPermission(peers: TurnPeerAddress | TurnPeerAddress[], options: TurnRequestSignalOptions = {}): Promise<void> {
    const list = (Array.isArray(peers) ? peers : [peers]).map((p) => toPeerAddress(p, false, 'createPermission'))
    if (list.length === 0) throw new InvalidArgumentError('createPermission needs at least one peer')
    const closed = this.#requireAllocated('createPermission()')
    if (closed !== undefined) return closed
    return this.#sendCreatePermission(list, options.signal).then(() => {
      if (this.#state !== 'allocated') return
      this.#permissions.add(list)
      if (this.#permissionTimer === undefined) this.#armPermissionTimer(this.#permissionInterval)
    })
  }

  #sendCreatePermission(peers: TransportAddress[], signal: AbortSignal | undefined): Promise<void> {
    const attributes = peers.map((value) => ({ type: 'xor-peer-address' as const, value }))
    return this.#auth.request('create-permission', attributes, signal === undefined ? {} : { signal }).then(() => undefined)
  }

  #armPermissionTimer(delay: number): void {
    clearTimeout(this.#permissionTimer)
    this.#permissionTimer = setTimeout(() => {
      this.#permissionTimer = undefined
      const peers = this.#permissions.list()
      this.#sendCreatePermission(peers, undefined).then(
        () => {
          if (this.#state !== 'allocated') return
          this.emit('refresh', { kind: 'permission', peers })
          this.#armPermissionTimer(this.#permissionInterval)
        },
        (err: unknown) => {
          if (this.#state !== 'allocated') return
          this.emit('refresh-error', err instanceof Error ? err : new Error(String(err)), 'permission')
          this.#armPermissionTimer(this.#permissionInterval / 8)
        },
      )
    }, delay)
    this.#permissionTimer.unref()
  }

  /**
   * Binds a channel to `peer` (RFC 8656 §12) and resolves with its number
   * (0x4000–0x4FFF); from then on {@link TurnClient.send} to that peer uses ChannelData.
   * Binding the same peer again returns the same channel. The binding (which also
   * installs a permission for the peer's IP) is refreshed every `channelRefreshInterval`.
   *
   * Rejects like {@link TurnClient.createPermission}.
   */
  bindChannel(peer: { host: string; port: number }, options: TurnRequestSignalOptions = {}): Promise<number> {
    const address = toPeerAddress(peer, true, 'bindChannel')
    const closed = this.#requireAllocated('bindChannel()')
    if (closed !== undefined) return closed
    const existing = this.#channels.forPeer(address)
    if (existing?.bound === true) return Promise.resolve(existing.number)
    if (existing?.pending !== undefined) return existing.pending
    const binding = this.#channels.reserve(address)
    binding.pending = this.#sendChannelBind(binding, options.signal).then(
      () => {
        binding.pending = undefined
        binding.bound = true
        if (this.#channelTimer === undefined && this.#state === 'allocated') this.#armChannelTimer(this.#channelInterval)
        return binding.number
      },
      (err: unknown) => {
        this.#channels.remove(binding)
        throw err
      },
    )
    return binding.pending
  }

  #sendChannelBind(binding: ChannelBinding, signal: AbortSignal | undefined): Promise<void> {
    return this.#auth
      .request(
        'channel-bind',
        [
          { type: 'channel-number', value: binding.number },
          { type: 'xor-peer-address', value: binding.peer },
        ],
        signal === undefined ? {} : { signal },
      )
      .then(() => undefined)
  }

  #armChannelTimer(delay: number): void {
    clearTimeout(this.#channelTimer)
    this.#channelTimer = setTimeout(() => {
      this.#channelTimer = undefined
      const bindings = this.#channels.bound()
      // RFC 8656 §12.1: a ChannelBind for the same number and peer refreshes the binding.
      Promise.allSettled(bindings.map((b) => this.#sendChannelBind(b, undefined))).then((results) => {
        if (this.#state !== 'allocated') return
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
        const ok = bindings.filter((_, i) => results[i]?.status === 'fulfilled').map((b) => ({ ...b.peer }))
        if (ok.length > 0) this.emit('refresh', { kind: 'channel', peers: ok })
        if (failed !== undefined) {
          const reason: unknown = failed.reason
          this.emit('refresh-error', reason instanceof Error ? reason : new Error(String(reason)), 'channel')
        }
        this.#armChannelTimer(failed === undefined ? this.#channelInterval : this.#channelInterval / 8)
      })
    }, delay)
    this.#channelTimer.unref()
  }

  /**
   * Sends `data` to `peer` through the relay: as ChannelData when a channel is bound to
   * the peer, else in a Send indication (RFC 8656 §11). The server drops it unless a
   * permission for the peer's IP exists. Like UDP, delivery is not confirmed.
   *
   * @throws InvalidArgumentError on bad arguments or before allocation.
   * @throws SocketClosedError once the client or its connection is closed.
   */
  send(data: Uint8Array, peer: { host: string; port: number }): void {
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('data must be a Uint8Array')
    const address = toPeerAddress(peer, true, 'send')
    if (this.#state === 'closed') throw new SocketClosedError('The TURN client is closed')
    if (this.#state !== 'allocated') throw new InvalidArgumentError('send() needs an allocation: call allocate() first')
    const binding = this.#channels.forPeer(address)
    const frame =
      binding?.bound === true
        ? // RFC 8656 §12.5: over TCP/TLS ChannelData MUST be padded to a multiple of 4 bytes.
          encodeChannelData(binding.number, data, { pad: this.connection.reliable })
        : // RFC 8656 §11.1: Send indication with XOR-PEER-ADDRESS and DATA, no integrity.
          encodeStunMessage({
            method: 'send',
            class: 'indication',
            transactionId: createTransactionId(),
            attributes: [
              { type: 'xor-peer-address', value: address },
              { type: 'data', value: data },
            ],
          })
    this.connection.send(frame)
  }

  #onStun(frame: Uint8Array): void {
    let message: DecodedStunMessage
    try {
      message = decodeStunMessage(frame)
    } catch {
      return // RFC 8489 §6.3: malformed messages are silently discarded
    }
    if (message.class === 'indication') {
      if (message.method !== 'data') return
      // RFC 8656 §11.6: a Data indication without XOR-PEER-ADDRESS or DATA is discarded.
      const peer = getAttribute(message, 'xor-peer-address')?.value
      const data = getAttribute(message, 'data')?.value
      if (peer !== undefined && data !== undefined) this.emit('data', data, peer)
      return
    }
    this.#tm.handleResponse(message, this.connection.server)
  }

  #onChannelData(frame: Uint8Array): void {
    let decoded
    try {
      decoded = decodeChannelData(frame, { transport: this.connection.reliable ? 'tcp' : 'udp' })
    } catch {
      return
    }
    // RFC 8656 §12.6: ChannelData on a channel not bound (by us) is discarded.
    const binding = this.#channels.forNumber(decoded.channel)
    if (binding !== undefined) this.emit('data', decoded.data, { ...binding.peer })
  }

  /**
   * Deallocates (a Refresh with LIFETIME 0, best effort, waiting at most
   * `closeTimeout`), clears every timer, rejects pending requests with
   * `SocketClosedError`, and closes the connection: the TCP/TLS socket it opened, never
   * a UDP socket it was given. Idempotent; emits `'close'` once.
   */
  close(options: TurnCloseOptions = {}): Promise<void> {
    if (this.#closing !== undefined) return this.#closing
    const timeout = options.timeout ?? this.#closeTimeout
    if (!(Number.isFinite(timeout) && timeout >= 0)) throw new InvalidArgumentError('timeout must be a number ≥ 0')
    this.#closing = this.#shutdown(undefined, options.signal, timeout)
    return this.#closing
  }

  #fail(error: Error): void {
    if (this.#closing !== undefined) return
    this.#closing = this.#shutdown(error, undefined, 0)
  }

  async #shutdown(error: Error | undefined, signal: AbortSignal | undefined, timeout: number): Promise<void> {
    const wasAllocated = this.#state === 'allocated'
    this.#state = 'closed'
    clearTimeout(this.#refreshTimer)
    clearTimeout(this.#permissionTimer)
    clearTimeout(this.#channelTimer)
    this.#refreshTimer = this.#permissionTimer = this.#channelTimer = undefined
    if (wasAllocated && error === undefined && !this.connection.closed && timeout > 0 && signal?.aborted !== true) {
      await this.#deallocate(signal, timeout)
    }
    this.#tm.close()
    for (const unsubscribe of this.#subscriptions.splice(0)) unsubscribe()
    await this.connection.close()
    this.#channels.clear()
    this.#permissions.clear()
    this.emit('close', error)
  }

  async #deallocate(signal: AbortSignal | undefined, timeout: number): Promise<void> {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), timeout)
    const onAbort = (): void => controller.abort(signal?.reason)
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      // RFC 8656 §8: a Refresh with LIFETIME 0 deletes the allocation.
      await this.#auth.request('refresh', [{ type: 'lifetime', value: 0 }], { signal: controller.signal })
    } catch {
      // Best effort: a lost response, 437 (already gone) or a timeout all end the same way.
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
  }
}
