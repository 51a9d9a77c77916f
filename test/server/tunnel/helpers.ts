// Shared fixtures of the tunnel tests: a free port range, a tunnel server on loopback,
// local services (echo, HTTP), and small helpers.
import { once } from 'node:events'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import net from 'node:net'
import { TunnelServer } from '../../../src/server/tunnel/tunnel-server.js'
import type { TunnelServerOptions } from '../../../src/server/tunnel/tunnel-server-options.js'
import { createSelfSignedCertificate } from '../../../src/server/tls.js'

export const TOKEN = 'device-token-0123456789'
export const OTHER_TOKEN = 'other-device-token-9876543210'

/** One certificate per test file. */
export const certificate = createSelfSignedCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] })

async function isFree(port: number): Promise<boolean> {
  const server = net.createServer()
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve())
    })
    return true
  } catch {
    return false
  } finally {
    await new Promise((resolve) => server.close(resolve))
  }
}

/** `count` consecutive ports free on 127.0.0.1 right now, as an allow-ports string. */
export async function freePortRange(count: number): Promise<string> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000)
    let ok = true
    for (let port = base; port < base + count && ok; port++) ok = await isFree(port)
    if (ok) return `${base}-${base + count - 1}`
  }
  throw new Error('no free port range found')
}

/** A tunnel server on 127.0.0.1 with port 0 for control and HTTP, a fresh port range and the test token. */
export async function startTunnel(options: Partial<TunnelServerOptions> = {}): Promise<TunnelServer> {
  return TunnelServer.listen({
    listeningIps: '127.0.0.1',
    controlPort: 0,
    httpPort: 0,
    domain: 'example.test',
    publicHost: '127.0.0.1',
    allowPorts: await freePortRange(8),
    tokens: [TOKEN, OTHER_TOKEN],
    ...options,
  })
}

/** The URL devices use for `server`, with its pin when it has TLS. */
export function urlOf(server: TunnelServer): string {
  return `${server.url}${server.certificateHash === undefined ? '' : `#${server.certificateHash}`}`
}

/** A TCP echo server on 127.0.0.1 (half-close aware: it ends after echoing everything). */
export async function startEcho(): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {})
    socket.pipe(socket)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

/** An HTTP server on 127.0.0.1 that answers with the request it got, as JSON. */
export async function startHttpEcho(): Promise<HttpServer> {
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
      res.writeHead(200, { 'content-type': 'application/json', 'x-device': 'yes' })
      res.end(body)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

/** The port a server listens on. */
export function portOf(server: net.Server | HttpServer): number {
  return (server.address() as net.AddressInfo).port
}

/** Closes a server and every connection it has. */
export async function closeServer(server: net.Server | HttpServer): Promise<void> {
  const closed = new Promise((resolve) => server.close(resolve))
  if ('closeAllConnections' in server) server.closeAllConnections()
  await closed
}

/** Polls `check` every 20 ms until it returns true, failing after `ms` (the Beacon tests' helper). */
export { until } from '../../beacon/helpers.js'

/** Connects to 127.0.0.1:port, sends `data`, half-closes, and resolves with everything received until the end. */
export function exchange(port: number, data: Buffer): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('end', () => {
      socket.end()
      resolve(Buffer.concat(chunks))
    })
    socket.on('error', reject)
    socket.on('close', (hadError) => {
      if (!hadError) resolve(Buffer.concat(chunks))
    })
    socket.end(data)
  })
}

/** A control socket driven by hand: logs in with `hello` fields and collects what the server sends. */
export interface RawDevice {
  ws: import('ws').WebSocket
  messages: import('../../../src/tunnel/tunnel-messages.js').TunnelServerMessage[]
  welcome: import('../../../src/tunnel/tunnel-messages.js').TunnelWelcomeMessage | undefined
  error: import('../../../src/tunnel/tunnel-messages.js').TunnelErrorMessage | undefined
  closed: Promise<number>
}

/** Opens a control socket to a plain ws:// server, answers the challenge with `hello` and waits for welcome or error. */
export async function rawDevice(server: TunnelServer, hello: Record<string, unknown> | undefined): Promise<RawDevice> {
  const { default: WebSocket } = await import('ws')
  const messages = await import('../../../src/tunnel/tunnel-messages.js')
  const ws = new WebSocket(`ws://127.0.0.1:${server.controlPort}/v1/control`)
  const device: RawDevice = { ws, messages: [], welcome: undefined, error: undefined, closed: new Promise((resolve) => ws.once('close', (code) => resolve(code))) }
  ws.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (data: Buffer) => {
      let message
      try {
        message = messages.decodeTunnelServerMessage(data)
      } catch {
        return
      }
      device.messages.push(message)
      if (message.type === 'challenge') {
        if (hello === undefined) return resolve()
        ws.send(messages.encodeTunnelClientMessage({ type: 'hello', version: 1, ...hello } as never))
      } else if (message.type === 'welcome') {
        device.welcome = message
        resolve()
      } else if (message.type === 'error' && device.welcome === undefined) {
        device.error = message
        resolve()
      }
    })
    ws.once('close', () => resolve())
    ws.once('error', reject)
  })
  return device
}
