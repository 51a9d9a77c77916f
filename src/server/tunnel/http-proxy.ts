/**
 * The tunnel's HTTP port: a reverse proxy that routes a request for `NAME.<domain>` (the
 * `Host` header) to device NAME's HTTP service through a tunnelled connection, adding
 * `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`, and passing WebSocket
 * (and other) upgrades through as raw streams.
 *
 * Requests reuse idle tunnelled connections to the same device (keep-alive, pooled per
 * device name by {@link DeviceHttpAgent}); an upgrade always gets a connection of its
 * own. `X-Forwarded-*` headers sent by the client are replaced, never trusted.
 *
 * In a fleet, a name online on another server is forwarded to that server's HTTP port
 * with a signed hop header ({@link FLEET_HOP_HEADER}, see `fleet-http.ts`) saying who
 * the client is; a request that carries a hop header is never forwarded again.
 * Errors get an HTML page: 400 bad or missing Host, 404 unknown name (or a device
 * without HTTP service), 503 device offline (within its retention time) or over its
 * connection limit, 502 the device's service refused, 504 the device did not answer.
 *
 * @module
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import { isIP, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { joinStreams } from '../../tunnel/join-streams.js'
import { DeviceHttpAgent, type DeviceRequestOptions } from './device-http-agent.js'
import type { TunnelAddress } from '../../tunnel/tunnel-messages.js'
import { isTunnelName } from '../../tunnel/tunnel-name.js'
import { type TunnelErrorStatus, tunnelErrorPage } from './error-page.js'
import type { PendingFailure } from './pending-connections.js'
import type { TunnelServerStats } from './tunnel-server-stats.js'

/** How a name resolves (`remote`: online on another server of the fleet). */
export type TunnelHttpRoute = 'online' | 'offline' | 'unknown' | 'no-http' | 'remote'

/** The header by which a server of a fleet vouches for the client of a request it forwards. */
export const FLEET_HOP_HEADER = 'x-peerlink-tunnel-hop'

/** Signs and checks hop headers. */
export interface TunnelHttpHop {
  /** The header value for a request from `client`. */
  sign(client: TunnelAddress): string
  /** The client a header value vouches for, or `undefined` when it is not valid. */
  verify(value: string): TunnelAddress | undefined
}

/** A failed attempt to open a connection to a device. */
export class TunnelOpenError extends Error {
  /** Why. */
  readonly reason: PendingFailure | 'limit'
  constructor(reason: PendingFailure | 'limit') {
    super(`tunnel connection failed: ${reason}`)
    this.reason = reason
  }
}

/** What the proxy asks of the tunnel server. */
export interface TunnelHttpHost {
  /** The domain names live under. */
  readonly domain: string
  /** `X-Forwarded-Proto`. */
  readonly scheme: 'http' | 'https'
  /** Counters. */
  readonly stats: TunnelServerStats
  /** Hop headers of the fleet. */
  readonly hop: TunnelHttpHop
  /** How `name` resolves now; `remote` only when `forward` allows it. */
  route(name: string, forward: boolean): Promise<TunnelHttpRoute>
  /**
   * Opens a connection to the HTTP service of device `name` (for a `remote` route: to
   * the HTTP port of the server holding it).
   *
   * @throws {@link TunnelOpenError} (rejects) when the device cannot be reached.
   */
  open(name: string, remote: TunnelAddress, signal: AbortSignal): Promise<Duplex>
}

/** Options of {@link createTunnelHttpServer}. */
export interface TunnelHttpServerOptions {
  /** Milliseconds a client has to send its request headers. */
  headersTimeoutMs: number
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'])
const FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', FLEET_HOP_HEADER])

/** Creates the HTTP server of the proxy (not listening yet). */
export function createTunnelHttpServer(host: TunnelHttpHost, options: TunnelHttpServerOptions): http.Server {
  const server = http.createServer({
    headersTimeout: options.headersTimeoutMs,
    requestTimeout: 0,
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(options.headersTimeoutMs / 2))),
  })
  server.keepAliveTimeout = 5_000
  const agent = new DeviceHttpAgent()
  server.once('close', () => agent.destroy())
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    host.stats.httpRequests++
    handleRequest(host, agent, req, res).catch(() => fail(host, res, 502, 'The tunnel failed.'))
  })
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', ignore)
    host.stats.httpRequests++
    handleUpgrade(host, req, socket, head).catch(() => socket.destroy())
  })
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // Answer once and hang up: a client that is too slow with its headers must not keep the socket.
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request'
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`, () => socket.destroy())
    else socket.destroy()
  })
  return server
}

type Resolved = { ok: true; name: string; client: TunnelAddress; remote: boolean } | { ok: false; status: TunnelErrorStatus; detail: string }

async function resolve(host: TunnelHttpHost, req: IncomingMessage): Promise<Resolved> {
  const name = nameFromHost(req.headers.host, host.domain)
  if (name === undefined) return { ok: false, status: 400, detail: `The Host header must be NAME.${host.domain}.` }
  if (name === '') return { ok: false, status: 404, detail: `No device name in the address: use NAME.${host.domain}.` }
  const hop = req.headers[FLEET_HOP_HEADER]
  const client = (typeof hop === 'string' ? host.hop.verify(hop) : undefined) ?? remoteOf(req.socket)
  switch (await host.route(name, hop === undefined)) {
    case 'online':
      return { ok: true, name, client, remote: false }
    case 'remote':
      return { ok: true, name, client, remote: true }
    case 'offline':
      return { ok: false, status: 503, detail: `Device “${name}” is offline. It keeps its name for a while; try again later.` }
    case 'no-http':
      return { ok: false, status: 404, detail: `Device “${name}” does not publish an HTTP service.` }
    case 'unknown':
      return { ok: false, status: 404, detail: `No device is called “${name}”.` }
  }
}

/** The device name in a Host header: `undefined` when the header is invalid, `''` for the bare domain. */
export function nameFromHost(header: string | undefined, domain: string): string | undefined {
  if (header === undefined || header.length === 0 || header.length > 300) return undefined
  let hostname = header.toLowerCase()
  const port = /:([0-9]{1,5})$/.exec(hostname)
  if (port !== null && !hostname.endsWith(']')) hostname = hostname.slice(0, -port[0].length)
  hostname = hostname.replace(/\.$/, '')
  if (hostname === domain) return ''
  if (!hostname.endsWith(`.${domain}`)) return undefined
  const label = hostname.slice(0, -domain.length - 1)
  return isTunnelName(label) ? label : undefined
}

/**
 * Opens a tunnelled connection for a request whose client connection is `downstream`
 * (given up when that closes first).
 */
async function open(
  host: TunnelHttpHost,
  name: string,
  client: TunnelAddress,
  downstream: NodeJS.EventEmitter,
): Promise<{ ok: true; stream: Duplex } | { ok: false; status: TunnelErrorStatus; detail: string }> {
  const controller = new AbortController()
  const onGone = () => controller.abort()
  downstream.once('close', onGone)
  try {
    return { ok: true, stream: await host.open(name, client, controller.signal) }
  } catch (err) {
    const reason = err instanceof TunnelOpenError ? err.reason : 'unreachable'
    switch (reason) {
      case 'timeout':
        return { ok: false, status: 504, detail: `Device “${name}” did not take the connection in time.` }
      case 'offline':
      case 'closing':
        return { ok: false, status: 503, detail: `Device “${name}” is offline. Try again later.` }
      case 'limit':
        return { ok: false, status: 503, detail: `Device “${name}” has too many open connections. Try again later.` }
      default:
        return { ok: false, status: 502, detail: `Device “${name}” is online, but its web service refused the connection.` }
    }
  } finally {
    downstream.off('close', onGone)
  }
}

async function handleRequest(host: TunnelHttpHost, agent: DeviceHttpAgent, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const target = await resolve(host, req)
  if (!target.ok) return fail(host, res, target.status, target.detail)
  const pool = target.remote ? `${target.name}@remote` : target.name
  let stream: Duplex | undefined
  if (!agent.hasIdle(pool)) {
    const opened = await open(host, target.name, target.client, res)
    if (!opened.ok) return fail(host, res, opened.status, opened.detail)
    stream = opened.stream
    if (res.destroyed) {
      stream.destroy()
      return
    }
  }
  const options: DeviceRequestOptions = {
    method: req.method,
    path: req.url,
    headers: forwardHeaders(host, req, false, target.client, target.remote),
    agent,
    tunnelPool: pool,
    tunnelStream: stream,
    setHost: false,
  }
  const upstream = http.request(options)
  upstream.on('socket', (socket) => {
    // A connection opened for this request but not used (the pool had one after all) is closed.
    if (stream !== undefined && socket !== stream) stream.destroy()
  })
  upstream.on('error', () => {
    if (!res.headersSent) fail(host, res, 502, `Device “${target.name}”'s web service closed the connection.`)
    else res.destroy()
    stream?.destroy()
  })
  upstream.on('response', (answer) => {
    const headers: string[] = []
    const named = connectionTokens(answer.headers.connection)
    for (let i = 0; i < answer.rawHeaders.length; i += 2) {
      const key = answer.rawHeaders[i]!.toLowerCase()
      if (HOP_BY_HOP.has(key) || named.has(key)) continue
      headers.push(answer.rawHeaders[i]!, answer.rawHeaders[i + 1]!)
    }
    res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers)
    answer.pipe(res)
    answer.on('error', () => res.destroy())
  })
  res.once('close', () => {
    if (!res.writableFinished) upstream.destroy()
  })
  req.pipe(upstream)
}

async function handleUpgrade(host: TunnelHttpHost, req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
  host.stats.httpUpgrades++
  const target = await resolve(host, req)
  if (!target.ok) return failRaw(host, socket, target.status, target.detail)
  const opened = await open(host, target.name, target.client, socket)
  if (!opened.ok) return failRaw(host, socket, opened.status, opened.detail)
  const stream = opened.stream
  if (socket.destroyed) {
    stream.destroy()
    return
  }
  const headers = forwardHeaders(host, req, true, target.client, target.remote)
  let text = `${req.method} ${req.url} HTTP/1.1\r\n`
  for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`
  stream.write(`${text}\r\n`)
  if (head.byteLength > 0) stream.write(head)
  joinStreams(socket, stream)
}

/**
 * The request headers for the device: hop-by-hop ones dropped (except for an upgrade),
 * `X-Forwarded-*` set (for `client`), and for another server of the fleet, the hop header.
 */
function forwardHeaders(host: TunnelHttpHost, req: IncomingMessage, upgrade: boolean, client: TunnelAddress, remote: boolean): string[] {
  const out: string[] = []
  const named = upgrade ? new Set<string>() : connectionTokens(req.headers.connection)
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const key = req.rawHeaders[i]!.toLowerCase()
    if (FORWARDED.has(key)) continue
    if (!upgrade && (HOP_BY_HOP.has(key) || named.has(key))) continue
    out.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!)
  }
  out.push('X-Forwarded-For', client.host)
  out.push('X-Forwarded-Proto', host.scheme)
  if (req.headers.host !== undefined) out.push('X-Forwarded-Host', req.headers.host)
  if (remote) out.push('X-Peerlink-Tunnel-Hop', host.hop.sign(client))
  return out
}

function connectionTokens(value: string | undefined): Set<string> {
  return new Set((value ?? '').split(',').map((token) => token.trim().toLowerCase()).filter((token) => token.length > 0))
}

function fail(host: TunnelHttpHost, res: ServerResponse, status: TunnelErrorStatus, detail: string): void {
  host.stats.httpErrors++
  if (res.headersSent || res.destroyed) {
    res.destroy()
    return
  }
  const body = tunnelErrorPage(status, detail)
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...(status === 503 ? { 'retry-after': '30' } : {}) })
  res.end(body)
}

function failRaw(host: TunnelHttpHost, socket: Socket, status: TunnelErrorStatus, detail: string): void {
  host.stats.httpErrors++
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const body = tunnelErrorPage(status, detail)
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}

/** The client's address, with IPv4-mapped IPv6 written as IPv4. */
export function remoteOf(socket: Socket): TunnelAddress {
  let host = socket.remoteAddress ?? '0.0.0.0'
  if (host.toLowerCase().startsWith('::ffff:') && isIP(host.slice(7)) === 4) host = host.slice(7)
  return { host, port: socket.remotePort ?? 0 }
}

function ignore(): void {}
