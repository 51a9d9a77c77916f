/**
 * `peerlink doctor`'s TURN probe: for one configured TURN server, an Allocate over each
 * transport worth trying (UDP and TCP for `turn:`, TLS for `turns:`), reporting whether
 * the server answered at all, whether the allocation succeeded with the credentials
 * given, its relayed address and the round trip. Each allocation is released at once.
 *
 * A server that answers with an authentication error is still *reachable* over that
 * transport: that is what the ladder needs to know; the report says the credentials
 * failed.
 *
 * @module
 */
import dgram from 'node:dgram'
import { once } from 'node:events'
import { isIP } from 'node:net'
import { PeerlinkError } from '../../errors.js'
import type { TurnServerSpec, TurnTransport } from '../../server-spec.js'
import type { TransportAddress } from '../../stun/address.js'
import { resolveStunHost } from '../../stun/binding-client.js'
import { createDgramEndpoint } from '../../stun/datagram-endpoint.js'
import { turnRestCredentials, type TurnCredentials } from '../../turn/credentials.js'
import { TurnClient } from '../../turn/turn-client.js'

/** Credentials a probe uses: long-term ones, a REST-API secret, or none. */
export interface DoctorTurnCredentials {
  /** Long-term user name. */
  username?: string | undefined
  /** Long-term password. */
  credential?: string | undefined
  /** TURN REST API secret (coturn's `static-auth-secret`); used when no user name is given. */
  secret?: string | undefined
}

/** What one transport to a TURN server did. */
export interface DoctorTurnTransportReport {
  /** `udp`, `tcp` or `tls`. */
  transport: TurnTransport
  /** Whether the server answered over this transport (an authentication error counts). */
  reachable: boolean
  /** Whether an allocation was made with the credentials given. */
  allocated: boolean
  /** Round trip of the Allocate exchange (both requests when the first is challenged), ms. */
  ms?: number
  /** The relayed transport address the server gave. */
  relayed?: TransportAddress
  /** Why the transport could not be used or the allocation failed. */
  error?: { code: string; message: string }
}

/** What doctor found out about one TURN server. */
export interface DoctorTurnReport {
  /** The server as given (`turn:HOST:PORT?transport=…` or `turns:HOST:PORT`). */
  server: string
  /** Whether credentials were available (without them only reachability is tested). */
  credentials: boolean
  /** One entry per transport tried. */
  transports: DoctorTurnTransportReport[]
}

/** Options of {@link checkTurnServer}. */
export interface CheckTurnServerOptions {
  /**
   * Give up on one transport after this many ms.
   * @default 4000
   */
  timeout?: number
  /**
   * Pin for `turns:`: base64url SHA-256 of the server's DER certificate (a `#CERT_HASH`
   * after the URI); replaces CA validation.
   * @default undefined (CA validation)
   */
  certHash?: string | undefined
  /**
   * Cancels the probe.
   * @default undefined
   */
  signal?: AbortSignal | undefined
}

// Doctor answers in seconds: UDP requests are sent 4 times over about 2 s.
const UDP_RETRANSMIT = { rto: 250, rc: 4, rm: 4 } as const

/** The transports worth trying for a TURN URI: `turn:` UDP and TCP on its port, `turns:` TLS. */
export function turnTransportsToTry(spec: TurnServerSpec): TurnTransport[] {
  if (spec.transport === 'tls') return ['tls']
  if (spec.transport === 'tcp') return ['tcp']
  return ['udp', 'tcp']
}

/** `turn:HOST:PORT[?transport=tcp]` or `turns:HOST:PORT`. */
export function formatTurnSpec(spec: TurnServerSpec): string {
  const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host
  if (spec.transport === 'tls') return `turns:${host}:${spec.port}`
  return `turn:${host}:${spec.port}${spec.transport === 'tcp' ? '?transport=tcp' : ''}`
}

/** Probes one TURN server over each transport of {@link turnTransportsToTry}. */
export async function checkTurnServer(spec: TurnServerSpec, credentials: DoctorTurnCredentials, options: CheckTurnServerOptions = {}): Promise<DoctorTurnReport> {
  const resolved = credentialsFor(credentials)
  const report: DoctorTurnReport = { server: formatTurnSpec(spec), credentials: resolved !== undefined, transports: [] }
  for (const transport of turnTransportsToTry(spec)) {
    report.transports.push(await checkTransport(spec, transport, resolved, options))
  }
  return report
}

function credentialsFor(given: DoctorTurnCredentials): TurnCredentials | undefined {
  if (given.username !== undefined && given.username !== '') return { username: given.username, password: given.credential ?? '' }
  if (given.secret !== undefined && given.secret !== '') {
    const { username, password } = turnRestCredentials({ secret: given.secret, user: 'peerlink-doctor', ttl: 600 })
    return { username, password }
  }
  return undefined
}

async function checkTransport(
  spec: TurnServerSpec,
  transport: TurnTransport,
  credentials: TurnCredentials | undefined,
  options: CheckTurnServerOptions,
): Promise<DoctorTurnTransportReport> {
  const timeout = options.timeout ?? 4000
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new Error(`no answer over ${transport} within ${timeout} ms`)), timeout)
  const onAbort = (): void => controller.abort(options.signal?.reason)
  options.signal?.addEventListener('abort', onAbort, { once: true })
  let socket: dgram.Socket | undefined
  let client: TurnClient | undefined
  const started = performance.now()
  try {
    const host = await resolveStunHost(spec.host, undefined, controller.signal)
    if (transport === 'udp') {
      socket = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4')
      socket.bind(0)
      await once(socket, 'listening')
    }
    // Without credentials, a made-up user: the server's 401 still proves it answers.
    const auth = credentials ?? { username: 'peerlink-doctor', password: 'peerlink-doctor' }
    client = await TurnClient.connect({
      server: { host, port: spec.port },
      transport,
      credentials: auth,
      ...(socket === undefined ? {} : { endpoint: createDgramEndpoint(socket) }),
      ...UDP_RETRANSMIT,
      requestTimeout: timeout,
      connectTimeout: timeout,
      closeTimeout: 1000,
      tls: options.certHash === undefined ? {} : { certHash: options.certHash },
      signal: controller.signal,
    })
    const allocation = await client.allocate({ signal: controller.signal })
    return { transport, reachable: true, allocated: true, ms: Math.round(performance.now() - started), relayed: allocation.relayed }
  } catch (err) {
    const error = errorOf(err, controller.signal)
    // An answer that refuses us still means the server is there.
    const answered = error.code === 'ERR_TURN_AUTH' || error.code === 'ERR_TURN_ALLOCATION_FAILED'
    return { transport, reachable: answered, allocated: false, ...(answered ? { ms: Math.round(performance.now() - started) } : {}), error }
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', onAbort)
    await client?.close({ timeout: 1000 }).catch(() => {})
    socket?.close()
  }
}

function errorOf(err: unknown, signal: AbortSignal): { code: string; message: string } {
  if (signal.aborted && signal.reason instanceof Error && !(signal.reason instanceof PeerlinkError)) {
    return { code: 'ERR_TIMEOUT', message: signal.reason.message }
  }
  if (err instanceof PeerlinkError) return { code: err.code, message: err.message }
  return { code: 'ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) }
}
