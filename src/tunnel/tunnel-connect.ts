/**
 * Opening a WebSocket to a tunnel server: TCP (`ws://`) or TLS (`wss://`, pinned to
 * `#CERT_HASH` or validated against CAs), then the WebSocket upgrade. The control socket
 * follows HTTP redirects (301, 302, 303, 307, 308) to another server of a fleet, up to
 * {@link MAX_TUNNEL_REDIRECTS} hops, keeping the pin (a fleet shares one certificate)
 * and never moving from `wss://` to `ws://`. Credentials are not part of the upgrade
 * request: they travel in `hello`, after the new server's challenge, so they work at
 * the server the redirect leads to.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http'
import type net from 'node:net'
import { isIP } from 'node:net'
import type WebSocket from 'ws'
import { type AbortError, ConnectFailedError, type HostUnresolvedError, TunnelProtocolError, throwIfAborted } from '../errors.js'
import { type ServerSocketOptions, awaitWebSocket, openPinnedWebSocket, withServerSocket } from '../pinned-websocket.js'
import { CONTROL_PATH, TRANSFER_PATH } from './tunnel-messages.js'
import { NO_CHANNEL_BINDING } from './tunnel-auth.js'
import { upgradeTransferSocket } from './transfer-handshake.js'

/** Redirects a control connection follows at most. */
export const MAX_TUNNEL_REDIRECTS = 5

/** Where a tunnel WebSocket goes. */
export interface TunnelEndpoint {
  /** True for `wss://`. */
  readonly secure: boolean
  /** Host name or IP address (IPv6 without brackets). */
  readonly host: string
  /** Port. */
  readonly port: number
  /** The request path and query (`/v1/control?name=…`). */
  readonly path: string
  /** The pinned certificate hash (`wss://` only), or `undefined` for CA validation. */
  readonly certHash: string | undefined
}

/** Options of {@link openTunnelSocket}. */
export interface OpenTunnelSocketOptions {
  /** Where to connect. */
  endpoint: TunnelEndpoint
  /**
   * Follow HTTP redirects (control sockets).
   * @default false
   */
  followRedirects?: boolean
  /**
   * Largest message accepted from the server, in bytes.
   * @default 65_536
   */
  maxPayload?: number
  /**
   * Certificates to trust besides the system's CAs, for `wss://` without a pin.
   * @default undefined
   */
  ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array>
  /**
   * Milliseconds for TCP, TLS and the upgrade of each hop.
   * @default 10_000
   */
  timeout?: number
  /**
   * Cancels the attempt (rejects with `AbortError`).
   * @default undefined
   */
  signal?: AbortSignal
}

/** An open tunnel WebSocket. */
export interface OpenTunnelSocket {
  /** The WebSocket, open and paused: attach listeners, then `ws.resume()`. */
  ws: WebSocket
  /** Where it ended up (after redirects). */
  endpoint: TunnelEndpoint
  /** SHA-256 of the server's DER certificate (`wss://`), or 32 zero bytes (`ws://`). */
  binding: Uint8Array
}

/** An open transfer socket (see {@link openTransferSocket}). */
export interface OpenTransferSocket {
  /** The upgraded socket (TCP or TLS), paused: hand it to a `WebSocketStream`. */
  socket: net.Socket
  /** Bytes that came after the upgrade response. */
  head: Buffer
}

/** `HOST:PORT` of an endpoint, IPv6 in brackets. */
export function formatTunnelAddress(endpoint: Pick<TunnelEndpoint, 'host' | 'port'>): string {
  return `${isIP(endpoint.host) === 6 ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`
}

/** The URL of an endpoint (no pin). */
export function tunnelEndpointUrl(endpoint: TunnelEndpoint): string {
  return `${endpoint.secure ? 'wss' : 'ws'}://${formatTunnelAddress(endpoint)}${endpoint.path}`
}

/** The control path under a tunnel URL path (`/` → `/v1/control`, `/t/` or `/t` → `/t/v1/control`). */
export function controlPath(basePath: string): string {
  return `${basePath.endsWith('/') ? basePath : `${basePath}/`}${CONTROL_PATH}`
}

/**
 * The transfer path that goes with a control path (`…/v1/control?…` → `…/v1/transfer`).
 *
 * @throws {@link TunnelProtocolError} when `path` is not a control path.
 */
export function transferPathFor(path: string): string {
  const bare = path.split('?')[0]!
  if (!bare.endsWith(`/${CONTROL_PATH}`)) throw new TunnelProtocolError(`${JSON.stringify(bare)} is not a tunnel control path (…/${CONTROL_PATH})`)
  return `${bare.slice(0, -CONTROL_PATH.length)}${TRANSFER_PATH}`
}

/**
 * Opens a tunnel WebSocket (see the module notes).
 *
 * @throws {@link ConnectFailedError} (rejects) when TCP, TLS or the upgrade fails or times out, or a redirect is refused.
 * @throws `CertificatePinMismatchError` (rejects) when a pinned server presents another certificate.
 * @throws {@link HostUnresolvedError} (rejects) when the host name does not resolve.
 * @throws {@link AbortError} (rejects) when `signal` fires first.
 */
export async function openTunnelSocket(options: OpenTunnelSocketOptions): Promise<OpenTunnelSocket> {
  const { signal } = options
  let endpoint = options.endpoint
  throwIfAborted(signal)
  for (let hop = 0; ; hop++) {
    const outcome = await openOnce(endpoint, options)
    if ('ws' in outcome) return outcome
    if (options.followRedirects !== true) throw new ConnectFailedError(`tunnel server ${formatTunnelAddress(endpoint)} answered ${outcome.status} instead of a WebSocket upgrade`)
    if (hop >= MAX_TUNNEL_REDIRECTS) throw new ConnectFailedError(`more than ${MAX_TUNNEL_REDIRECTS} redirects from tunnel server ${formatTunnelAddress(options.endpoint)}`)
    endpoint = redirectTarget(endpoint, outcome.location)
  }
}

/** The endpoint a `Location` header leads to. */
function redirectTarget(from: TunnelEndpoint, location: string): TunnelEndpoint {
  let url: URL
  try {
    url = new URL(location, tunnelEndpointUrl(from))
  } catch (err) {
    throw new ConnectFailedError(`tunnel server ${formatTunnelAddress(from)} redirected to an invalid URL`, { cause: err })
  }
  const scheme = url.protocol.slice(0, -1)
  const secure = scheme === 'wss' || scheme === 'https'
  if (!secure && scheme !== 'ws' && scheme !== 'http') throw new ConnectFailedError(`tunnel server ${formatTunnelAddress(from)} redirected to a ${scheme}: URL`)
  if (from.secure && !secure) throw new ConnectFailedError(`tunnel server ${formatTunnelAddress(from)} redirected from wss:// to plain ws://; refused`)
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port)
  const path = `${url.pathname}${url.search}`
  transferPathFor(path)
  return { secure, host, port, path, certHash: secure ? from.certHash : undefined }
}

type Outcome = OpenTunnelSocket | { status: number; location: string }

/**
 * Opens a transfer socket: TCP or TLS (pinned or CA-validated, as for control sockets),
 * then the WebSocket upgrade done by hand (`transfer-handshake.ts`), without redirects.
 *
 * @throws {@link ConnectFailedError} (rejects) when TCP, TLS or the upgrade fails or times out (naming the HTTP status and the server's `x-peerlink-error`).
 * @throws `CertificatePinMismatchError` (rejects) when a pinned server presents another certificate.
 * @throws {@link AbortError} (rejects) when `signal` fires first.
 */
export async function openTransferSocket(options: Omit<OpenTunnelSocketOptions, 'followRedirects' | 'maxPayload'>): Promise<OpenTransferSocket> {
  const { endpoint } = options
  throwIfAborted(options.signal)
  return withServerSocket(serverSocketOptions(endpoint, options), async (socket, signal) => {
    // No Nagle: the upgrade request and the first frames must not wait for a delayed ACK.
    socket.setNoDelay(true)
    const onAbort = () => socket.destroy()
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      const head = await upgradeTransferSocket(socket, { host: formatTunnelAddress(endpoint), path: endpoint.path, where: formatTunnelAddress(endpoint) })
      return { socket, head }
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  })
}

/** How {@link withServerSocket} reaches an endpoint, and names it in errors. */
function serverSocketOptions(endpoint: TunnelEndpoint, options: Pick<OpenTunnelSocketOptions, 'ca' | 'timeout' | 'signal'>): ServerSocketOptions {
  const where = formatTunnelAddress(endpoint)
  return {
    host: endpoint.host,
    port: endpoint.port,
    secure: endpoint.secure,
    certHash: endpoint.certHash,
    servername: isIP(endpoint.host) === 0 ? endpoint.host : undefined,
    ca: options.ca,
    serverName: `tunnel server ${where}`,
    connectionName: `connection to tunnel server ${where}`,
    timeout: options.timeout,
    signal: options.signal,
  }
}

async function openOnce(endpoint: TunnelEndpoint, options: OpenTunnelSocketOptions): Promise<Outcome> {
  const settings = { ...serverSocketOptions(endpoint, options), url: tunnelEndpointUrl(endpoint), maxPayload: options.maxPayload ?? 65_536, zeroMask: endpoint.secure }
  return openPinnedWebSocket(settings, async ({ ws, socket, certificateHash }, signal) => {
    const binding = certificateHash === undefined ? NO_CHANNEL_BINDING : new Uint8Array(certificateHash)
    const outcome = await upgrade(ws, endpoint, binding, signal)
    if (!('ws' in outcome)) socket.destroy()
    return outcome
  })
}

function upgrade(ws: WebSocket, endpoint: TunnelEndpoint, binding: Uint8Array, signal: AbortSignal): Promise<Outcome> {
  const where = formatTunnelAddress(endpoint)
  return awaitWebSocket<Outcome>(ws, signal, (resolve, fail) => ({
    open() {
      // Messages that came with the upgrade response would be emitted before the caller
      // can listen: hold them until it resumes.
      ws.pause()
      resolve({ ws, endpoint, binding })
    },
    error: (err: Error) => fail(new ConnectFailedError(`WebSocket to tunnel server ${where} failed: ${err.message}`, { cause: err })),
    close: () => fail(new ConnectFailedError(`tunnel server ${where} closed the connection during the upgrade`)),
    'unexpected-response'(_req: unknown, res: IncomingMessage) {
      const status = res.statusCode ?? 0
      const location = res.headers.location
      res.resume()
      if ([301, 302, 303, 307, 308].includes(status) && typeof location === 'string' && location.length > 0) {
        resolve({ status, location })
        ws.on('error', ignore)
        ws.terminate()
        return
      }
      fail(new ConnectFailedError(`tunnel server ${where} refused the WebSocket: HTTP ${status}${res.headers['x-peerlink-error'] ? ` (${String(res.headers['x-peerlink-error'])})` : ''}`))
    },
  }))
}

function ignore(): void {}
