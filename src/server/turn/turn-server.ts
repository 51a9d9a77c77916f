/**
 * peerlink's TURN server (RFC 8656 over RFC 8489): Allocate, Refresh, CreatePermission,
 * ChannelBind, Send/Data indications and ChannelData over UDP, TCP and TLS, IPv4 and IPv6
 * relayed addresses, long-term and TURN REST API credentials, quotas, a relay port
 * range, a peer address policy that keeps relays out of the server's own network, and
 * STUN Binding for everyone.
 *
 * @module
 */

import { AbortError, InvalidArgumentError, SocketBindError } from '../../errors.js'
import type { TransportAddress } from '../../stun/address.js'
import { TurnAuthenticator } from './auth.js'
import type { ClientTransport } from './client-link.js'
import { PeerAddressPolicy } from './peer-address-policy.js'
import { RelayPortPool } from './relay-port-pool.js'
import { listenTcp, STREAM_IDLE_TIMEOUT_MS, type StreamContext, type StreamListener } from './tcp-listener.js'
import { listenTls } from './tls-listener.js'
import { TurnRequestHandler } from './turn-request-handler.js'
import { resolveTurnServerOptions, type ResolvedTurnServerOptions, type TurnServerOptions } from './turn-server-options.js'
import { createTurnServerStats, type TurnServerStats } from './turn-server-stats.js'
import { UdpListener } from './udp-listener.js'
import { nativeUdpRelay } from './native-udp-relay.js'

/** A listening address of a {@link TurnServer}. */
export interface TurnServerAddress extends TransportAddress {
  /** `'udp'`, `'tcp'` or `'tls'`. */
  transport: ClientTransport
}

type Listener = UdpListener | StreamListener

/** Attempts at finding one free port number for UDP and TCP when `listeningPort` is 0. */
const PORT_ATTEMPTS = 10

function inUse(err: unknown): boolean {
  return err instanceof SocketBindError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE'
}

/**
 * A running TURN server. Start one with {@link TurnServer.listen}; stop it with
 * {@link TurnServer.close}.
 *
 * @example
 * ```ts
 * const turn = await TurnServer.listen({
 *   listeningIps: ['0.0.0.0'],
 *   realm: 'example.com',
 *   staticAuthSecrets: [process.env.TURN_SECRET!],
 *   externalIp: '203.0.113.7/10.0.0.5',
 * })
 * process.once('SIGTERM', () => turn.close())
 * ```
 */
export class TurnServer {
  readonly #stats: TurnServerStats
  readonly #listeners: Listener[]
  readonly #handler: TurnRequestHandler
  readonly #sweep: NodeJS.Timeout
  readonly #logger: ResolvedTurnServerOptions['logger']
  #closed: Promise<void> | undefined

  private constructor(listeners: Listener[], handler: TurnRequestHandler, stats: TurnServerStats, options: ResolvedTurnServerOptions) {
    this.#listeners = listeners
    this.#handler = handler
    this.#stats = stats
    this.#logger = options.logger
    // Lifetimes are enforced by a periodic sweep, so the data path never reads the clock.
    const shortest = Math.min(options.permissionLifetimeMs, options.channelLifetimeMs, options.defaultLifetimeMs)
    this.#sweep = setInterval(() => handler.sweep(), Math.max(100, Math.min(1000, shortest / 4)))
    this.#sweep.unref()
  }

  /**
   * Counters (see {@link TurnServerStats}); read them at any time, e.g. for Prometheus.
   * Reading folds in what the native data path relayed since the last read.
   */
  get stats(): TurnServerStats {
    for (const listener of this.#listeners) if (listener instanceof UdpListener) listener.foldFastPathStats()
    return this.#stats
  }

  /**
   * Validates the options, binds every listener and starts serving.
   *
   * @throws InvalidArgumentError on impossible options.
   * @throws SocketBindError if a listening address cannot be bound.
   * @throws AbortError if `options.signal` aborts first.
   */
  static async listen(options: TurnServerOptions = {}): Promise<TurnServer> {
    const resolved = resolveTurnServerOptions(options)
    const policy = new PeerAddressPolicy({
      denied: resolved.deniedPeerIps,
      allowed: resolved.allowedPeerIps,
      allowLoopback: resolved.allowLoopbackPeers,
    })
    const stats = createTurnServerStats()
    const auth = new TurnAuthenticator({
      realm: resolved.realm,
      users: resolved.users,
      staticAuthSecrets: resolved.staticAuthSecrets,
      restApiSeparator: resolved.restApiSeparator,
      nonceLifetimeMs: resolved.nonceLifetimeMs,
      nonceSecret: resolved.nonceSecret,
    })
    const pool = new RelayPortPool({ minPort: resolved.minPort, maxPort: resolved.maxPort })
    const handler = new TurnRequestHandler({ options: resolved, auth, policy, pool, stats })
    const context: StreamContext = {
      handler,
      stats,
      framing: { legacyChannelNumbers: resolved.maxChannelNumber > 0x4fff },
      idleTimeoutMs: STREAM_IDLE_TIMEOUT_MS,
    }
    const signal = options.signal
    const listeners: Listener[] = []
    const check = (): void => {
      if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
    }
    try {
      check()
      await bindPlain(resolved, handler, stats, context, listeners, check)
      for (const tlsPort of resolved.tlsPorts) {
        let port = tlsPort
        for (const host of resolved.listeningIps) {
          const listener = await listenTls(host, port, resolved.tls!, context).catch((err: unknown) => {
            if (err instanceof SocketBindError) throw err
            throw new InvalidArgumentError('TurnServer: tls.cert / tls.key could not be used', { cause: err })
          })
          listeners.push(listener)
          port = listener.address.port
          check()
        }
      }
    } catch (err) {
      await Promise.all(listeners.map((listener) => listener.close()))
      await handler.close()
      throw err
    }
    const server = new TurnServer(listeners, handler, stats, resolved)
    resolved.logger.info(
      {
        event: 'turn-listening',
        addresses: server.addresses.map((a) => `${a.transport}:${a.host}:${a.port}`),
        stunOnly: resolved.stunOnly,
        // 'native': ChannelData of UDP clients is relayed in C (docs/turn-server.md).
        dataPath: server.dataPath,
      },
      'TURN server listening',
    )
    return server
  }

  /**
   * How UDP packets are relayed: `'native'` when the optional addon (`native/udp_relay.c`,
   * built by `npm install` with a C compiler) is loaded, else `'javascript'` (the same
   * behaviour at about 1.7× the CPU per packet; see `docs/turn-server.md`).
   *
   * @example
   * ```ts
   * if (turn.dataPath === 'javascript') console.warn('TURN relays in JavaScript: run `npm rebuild peerlink` with a C compiler installed')
   * ```
   */
  get dataPath(): 'native' | 'javascript' {
    return nativeUdpRelay === undefined ? 'javascript' : 'native'
  }

  /** Every listening address. */
  get addresses(): TurnServerAddress[] {
    return this.#listeners.map((listener) => ({
      ...listener.address,
      transport: listener instanceof UdpListener ? 'udp' : listener.transport,
    }))
  }

  /** Number of allocations in force. */
  get allocationCount(): number {
    return this.#handler.allocations.size
  }

  /**
   * Graceful shutdown: stops accepting, closes client connections, deletes every
   * allocation (closing its relay sockets) and stops the timers. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#sweep)
      await Promise.all(this.#listeners.map((listener) => listener.close()))
      await this.#handler.close()
      this.#logger.info({ event: 'turn-closed' }, 'TURN server closed')
    })()
    return this.#closed
  }
}

/**
 * Binds UDP and TCP on every listening IP. With port 0, the first socket's port number is
 * used for all of them, retrying with a new number when one is taken.
 */
async function bindPlain(
  o: ResolvedTurnServerOptions,
  handler: TurnRequestHandler,
  stats: TurnServerStats,
  context: StreamContext,
  listeners: Listener[],
  check: () => void,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const bound: Listener[] = []
    let port = o.listeningPort
    try {
      for (const host of o.listeningIps) {
        if (o.udp) {
          const udp = await UdpListener.bind(host, port, handler, stats)
          bound.push(udp)
          port = udp.address.port
          check()
        }
        if (o.tcp) {
          const tcp = await listenTcp(host, port, context)
          bound.push(tcp)
          port = tcp.address.port
          check()
        }
      }
      listeners.push(...bound)
      return
    } catch (err) {
      await Promise.all(bound.map((listener) => listener.close()))
      if (o.listeningPort !== 0 || !inUse(err) || attempt + 1 >= PORT_ATTEMPTS) throw err
    }
  }
}
