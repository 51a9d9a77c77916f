/**
 * Makes a relay for ICE on one TURN server: over UDP from the peer's one socket first
 * (the relayed candidate then shares the socket's NAT mapping toward the server), and
 * when UDP gets no answer quickly, over TCP (`turn:`), or TLS (`turns:` is TLS only).
 *
 * @module
 */

import { AbortError, ConnectFailedError, InvalidArgumentError, TurnAuthError, throwIfAborted } from '../errors.js'
import { parseTurnSpec, type TurnTransport } from '../server-spec.js'
import type { PeerSocket } from '../transport/peer-socket.js'
import type { TurnCredentials } from './credentials.js'
import { TurnClient } from './turn-client.js'
import { TurnRelayEndpoint } from './turn-relay-endpoint.js'
import type { TurnTlsOptions } from './turn-transport.js'

/** One TURN server a peer may relay through. */
export interface TurnRelayServer {
  /** The URI: `turn:HOST:PORT?transport=udp|tcp` or `turns:HOST:PORT`, optionally with a `#CERT_HASH` pin for `turns:`. */
  url: string
  /** Long-term (or TURN REST API) credentials. */
  credentials: TurnCredentials
  /**
   * TLS settings for `turns:` (a `#CERT_HASH` in the URI sets `certHash`).
   * @default {}
   */
  tls?: TurnTlsOptions
}

/** Options of {@link allocateTurnRelay}. */
export interface AllocateTurnRelayOptions {
  /** The peer's one UDP socket (TURN over UDP is sent from it). */
  socket: PeerSocket
  /** The server. */
  server: TurnRelayServer
  /**
   * Milliseconds without an Allocate answer over UDP before UDP is given up.
   * @default 1000
   */
  udpTimeout?: number
  /**
   * Milliseconds without an Allocate answer over UDP before TCP is tried alongside it.
   * @default 300
   */
  tcpHeadStart?: number
  /**
   * Milliseconds for a TCP/TLS connection and its allocation.
   * @default 5000
   */
  streamTimeout?: number
  /**
   * Whether to try UDP at all (false when UDP is known to be blocked: straight to TCP).
   * @default true
   */
  udp?: boolean
  /**
   * Allocation lifetime asked for, seconds.
   * @default the server's default (600 s)
   */
  lifetime?: number
  /**
   * Cancels the allocation.
   * @default undefined
   */
  signal?: AbortSignal
}

/**
 * The transports `allocateTurnRelay` tries for a URI, in order.
 *
 * @example
 * ```ts
 * import { relayTransports } from 'peerlink'
 *
 * relayTransports('turn:turn.example.com:3478')                 // ['udp', 'tcp']: TCP when UDP does not answer
 * relayTransports('turn:turn.example.com:3478?transport=tcp')   // ['tcp']
 * relayTransports('turns:turn.example.com')                     // ['tls']
 * ```
 */
export function relayTransports(url: string): TurnTransport[] {
  const hash = url.indexOf('#')
  const spec = parseTurnSpec(hash < 0 ? url : url.slice(0, hash))
  if (spec.transport === 'tls') return ['tls']
  if (spec.transport === 'tcp') return ['tcp']
  return ['udp', 'tcp']
}

/**
 * Allocates a relayed address on `server` and returns it as a {@link TurnRelayEndpoint}
 * (which owns the client: close it when done). Over UDP the Allocate request comes from
 * `socket`. When UDP has not answered within `tcpHeadStart` ms, TCP to the same port is
 * tried alongside it (the first allocation wins, the other is closed); UDP gives up
 * after `udpTimeout`. No long serial waits: a site that blocks UDP has its relay over TCP
 * about `tcpHeadStart` plus the TCP allocation's round trips after the start.
 *
 * Rejects with `TurnAuthError` (credentials refused: no fallback), `TurnAllocationError`,
 * `ConnectFailedError`, `StunTimeoutError`, `CertificatePinMismatchError` or `AbortError`:
 * the error of the last transport that failed.
 *
 * @throws InvalidArgumentError / InvalidServerSpecError at once on bad options.
 */
export async function allocateTurnRelay(options: AllocateTurnRelayOptions): Promise<TurnRelayEndpoint> {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('allocateTurnRelay needs options')
  const { signal } = options
  const udpTimeout = options.udpTimeout ?? 1000
  const streamTimeout = options.streamTimeout ?? 5000
  const headStart = options.tcpHeadStart ?? 300
  for (const [name, value] of [['udpTimeout', udpTimeout], ['streamTimeout', streamTimeout]] as const) {
    if (!(Number.isFinite(value) && value > 0)) throw new InvalidArgumentError(`${name} must be a positive number of ms`)
  }
  if (!(Number.isFinite(headStart) && headStart >= 0)) throw new InvalidArgumentError('tcpHeadStart must be a number ≥ 0')
  const all = relayTransports(options.server.url)
  const transports = options.udp === false && all.length > 1 ? all.filter((t) => t !== 'udp') : all
  throwIfAborted(signal)
  const controllers = transports.map(() => new AbortController())
  const started = transports.map(() => false)
  return new Promise<TurnRelayEndpoint>((resolve, reject) => {
    let settled = false
    let pending = 0
    let lastError: unknown
    let timer: ReturnType<typeof setTimeout> | undefined
    const finish = (): void => {
      settled = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
    const onAbort = (): void => {
      if (settled) return
      finish()
      for (const controller of controllers) controller.abort()
      reject(new AbortError('The TURN allocation was aborted', { cause: signal?.reason }))
    }
    const start = (index: number): void => {
      if (settled || index >= transports.length || started[index] === true) return
      started[index] = true
      pending++
      const transport = transports[index] as TurnTransport
      const limit = transport === 'udp' ? udpTimeout : streamTimeout
      allocateOver(options, transport, limit, (controllers[index] as AbortController).signal).then(
        (relay) => {
          pending--
          if (settled) {
            void relay.close()
            return
          }
          finish()
          controllers.forEach((controller, other) => other !== index && controller.abort())
          resolve(relay)
        },
        (err: unknown) => {
          pending--
          if (settled) return
          lastError = err
          // Wrong credentials are wrong over every transport.
          if (err instanceof TurnAuthError) {
            finish()
            for (const controller of controllers) controller.abort()
            reject(err)
            return
          }
          start(index + 1)
          if (pending === 0) {
            finish()
            reject(lastError)
          }
        },
      )
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    start(0)
    if (transports.length > 1) timer = setTimeout(() => start(1), headStart)
  })
}

/** One allocation attempt over one transport, bounded by `limit` ms. */
async function allocateOver(options: AllocateTurnRelayOptions, transport: TurnTransport, limit: number, cancel: AbortSignal): Promise<TurnRelayEndpoint> {
  const { socket, server } = options
  const timeout = AbortSignal.timeout(limit)
  const signal = AbortSignal.any([cancel, timeout])
  let client: TurnClient | undefined
  try {
    client = await TurnClient.connect({
      server: server.url,
      transport,
      credentials: server.credentials,
      ...(server.tls === undefined ? {} : { tls: server.tls }),
      ...(transport === 'udp' ? { endpoint: socket, rto: 100, rc: 5 } : { connectTimeout: limit, requestTimeout: limit }),
      signal,
    })
    await client.allocate({ signal, ...(options.lifetime === undefined ? {} : { lifetime: options.lifetime }) })
    return new TurnRelayEndpoint({ client, url: server.url })
  } catch (err) {
    void client?.close({ timeout: 0 })
    if (timeout.aborted) throw new ConnectFailedError(`No allocation from the TURN server over ${transport.toUpperCase()} within ${limit} ms`, { cause: err })
    throw err
  }
}
