/**
 * `peerlink doctor`'s tunnel probe: opens a TCP connection (TLS for `wss://`, with the
 * certificate pin when the URL has one) to a tunnel server's control port and sends one
 * plain HTTP request to its path. Any HTTP answer (the control port answers
 * `426 Upgrade Required` to a request without a WebSocket upgrade) proves that the
 * server is reachable from here; no login is attempted and no credential is sent.
 *
 * @module
 */
import net from 'node:net'
import tls from 'node:tls'
import { connectTlsPinned } from '../../cert-pin.js'
import { PeerlinkError } from '../../errors.js'
import type { TunnelServerSpec } from '../../server-spec.js'

/** What doctor found out about one tunnel server. */
export interface DoctorTunnelReport {
  /** The server as given (`ws://…` or `wss://…`). */
  server: string
  /** Whether it answered an HTTP request on its control port. */
  reachable: boolean
  /** The HTTP status it answered with. */
  status?: number
  /** Time from connecting to the status line, ms. */
  ms?: number
  /** Why it could not be reached. */
  error?: { code: string; message: string }
}

/** Options of {@link checkTunnelServer}. */
export interface CheckTunnelServerOptions {
  /**
   * Give up after this many ms.
   * @default 4000
   */
  timeout?: number
  /**
   * Cancels the probe.
   * @default undefined
   */
  signal?: AbortSignal | undefined
}

/** Largest answer head read before giving up on finding a status line. */
const MAX_HEAD_BYTES = 8192

/** Probes one tunnel server's control port with a plain HTTP request. */
export async function checkTunnelServer(spec: TunnelServerSpec, options: CheckTunnelServerOptions = {}): Promise<DoctorTunnelReport> {
  const server = spec.certHash === undefined ? spec.url : `${spec.url}#${spec.certHash}`
  const timeout = options.timeout ?? 4000
  const started = performance.now()
  let socket: net.Socket | undefined
  try {
    socket = await open(spec, timeout, options.signal)
    const status = await requestStatus(socket, spec, timeout, options.signal)
    return { server, reachable: true, status, ms: Math.round(performance.now() - started) }
  } catch (err) {
    if (err instanceof PeerlinkError && err.code === 'ERR_ABORTED') throw err
    const error =
      err instanceof PeerlinkError ? { code: err.code, message: err.message } : { code: 'ERR_CONNECT_FAILED', message: messageOf(err) }
    return { server, reachable: false, error }
  } finally {
    socket?.destroy()
  }
}

async function open(spec: TunnelServerSpec, timeout: number, signal: AbortSignal | undefined): Promise<net.Socket> {
  if (spec.secure && spec.certHash !== undefined) {
    return connectTlsPinned({ host: spec.host, port: spec.port, certHash: spec.certHash, timeout, ...(signal === undefined ? {} : { signal }) })
  }
  return new Promise((resolve, reject) => {
    const servername = net.isIP(spec.host) === 0 ? spec.host : undefined
    const socket = spec.secure
      ? tls.connect({ host: spec.host, port: spec.port, ...(servername === undefined ? {} : { servername }) })
      : net.connect({ host: spec.host, port: spec.port })
    const ready = spec.secure ? 'secureConnect' : 'connect'
    const timer = setTimeout(() => done(new Error(`no connection within ${timeout} ms`)), timeout)
    const onAbort = (): void => done(signal?.reason instanceof Error ? signal.reason : new Error('aborted'))
    const onError = (err: Error): void => done(err)
    const onReady = (): void => done(undefined)
    function done(err: Error | undefined): void {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      socket.off('error', onError)
      socket.off(ready, onReady)
      if (err === undefined) {
        resolve(socket)
      } else {
        socket.destroy()
        reject(err)
      }
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    socket.once('error', onError)
    socket.once(ready, onReady)
  })
}

function requestStatus(socket: net.Socket, spec: TunnelServerSpec, timeout: number, signal: AbortSignal | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    let head = ''
    const timer = setTimeout(() => done(new Error(`no HTTP answer within ${timeout} ms`)), timeout)
    const onAbort = (): void => done(signal?.reason instanceof Error ? signal.reason : new Error('aborted'))
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1')
      const line = head.indexOf('\r\n')
      if (line < 0) {
        if (head.length > MAX_HEAD_BYTES) done(new Error('the answer is not HTTP'))
        return
      }
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(head.slice(0, line))
      if (match === null) done(new Error('the answer is not HTTP'))
      else done(undefined, Number(match[1]))
    }
    const onEnd = (): void => done(new Error('the server closed the connection without an HTTP answer'))
    const onError = (err: Error): void => done(err)
    function done(err: Error | undefined, status?: number): void {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('error', onError)
      if (err === undefined) resolve(status as number)
      else reject(err)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    socket.on('data', onData)
    socket.once('end', onEnd)
    socket.once('error', onError)
    const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host
    socket.write(`GET ${spec.path} HTTP/1.1\r\nHost: ${host}:${spec.port}\r\nUser-Agent: peerlink-doctor\r\nConnection: close\r\n\r\n`)
  })
}

/** The error's message, with the system error code (`ECONNREFUSED`, …) when there is one. */
function messageOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  const code = (err as { code?: unknown } | undefined)?.code
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message
}
