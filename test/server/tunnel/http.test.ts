// HTTP by name through the tunnel, checked with curl: Host routing, X-Forwarded-*,
// WebSocket upgrades, and the error pages (400, 404, 502, 503).
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { createServer, get as httpGet, type Server } from 'node:http'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import type { TunnelServer } from '../../../src/server/tunnel/tunnel-server.js'
import { exposeServices, type TunnelClient } from '../../../src/tunnel/tunnel-client.js'
import { OTHER_TOKEN, TOKEN, closeServer, portOf, startHttpEcho, startTunnel, until, urlOf } from './helpers.js'

const run = promisify(execFile)

/** curl against the tunnel's HTTP port with a Host header; resolves with status, headers and body. */
async function curl(server: TunnelServer, host: string, path = '/', extra: string[] = []): Promise<{ status: number; headers: string; body: string }> {
  const { stdout } = await run('curl', ['-sS', '--max-time', '10', '-D', '-', '-H', `Host: ${host}`, ...extra, `http://127.0.0.1:${server.httpPort}${path}`])
  const split = stdout.indexOf('\r\n\r\n')
  const headers = stdout.slice(0, split)
  return { status: Number(/^HTTP\/[0-9.]+ ([0-9]{3})/.exec(headers)?.[1]), headers, body: stdout.slice(split + 4) }
}

describe('HTTP by name', () => {
  let server: TunnelServer
  let web: Server
  let wsServer: WebSocketServer
  let client: TunnelClient

  beforeAll(async () => {
    server = await startTunnel()
    web = await startHttpEcho()
    wsServer = new WebSocketServer({ server: web })
    wsServer.on('connection', (ws, req) => {
      ws.send(`hello ${req.headers['x-forwarded-for']}`)
      ws.on('message', (data) => ws.send(`echo ${String(data)}`))
    })
    client = await exposeServices({ servers: urlOf(server), ports: [portOf(web)], name: 'web', token: TOKEN })
  })

  afterAll(async () => {
    await client?.close()
    await server?.close()
    wsServer?.close()
    await closeServer(web)
  })

  it('routes NAME.<domain> to the device, with X-Forwarded-For/Proto/Host', async () => {
    const answer = await curl(server, 'web.example.test', '/some/path?q=1', ['-H', 'X-Forwarded-For: 6.6.6.6', '-d', 'payload'])
    expect(answer.status).toBe(200)
    expect(answer.headers).toMatch(/x-device: yes/i)
    const seen = JSON.parse(answer.body) as { method: string; url: string; body: string; headers: Record<string, string> }
    expect(seen.method).toBe('POST')
    expect(seen.url).toBe('/some/path?q=1')
    expect(seen.body).toBe('payload')
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1')
    expect(seen.headers['x-forwarded-proto']).toBe('http')
    expect(seen.headers['x-forwarded-host']).toBe('web.example.test')
    expect(seen.headers.host).toBe('web.example.test')
  })

  it('works with --resolve and the port in the Host header', async () => {
    const { stdout } = await run('curl', ['-sS', '--max-time', '10', '--resolve', `web.example.test:${server.httpPort}:127.0.0.1`, `http://web.example.test:${server.httpPort}/x`])
    expect(JSON.parse(stdout).url).toBe('/x')
  })

  it('serves several requests on one client connection (keep-alive)', async () => {
    const url = `http://127.0.0.1:${server.httpPort}/`
    const { stdout } = await run('curl', ['-sS', '--max-time', '10', '-H', 'Host: web.example.test', url, url, url])
    expect(stdout.match(/"method":"GET"/g)).toHaveLength(3)
  })

  it('passes WebSocket upgrades through', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.httpPort}/chat`, { headers: { host: 'web.example.test' } })
    const received: string[] = []
    ws.on('message', (data) => received.push(String(data)))
    await once(ws, 'open')
    await until(() => received.length === 1, 5_000, 'greeting')
    ws.send('ping')
    await until(() => received.length === 2, 5_000, 'echo')
    expect(received).toEqual(['hello 127.0.0.1', 'echo ping'])
    ws.close()
    await once(ws, 'close')
  })

  it('answers 404 for an unknown name and 400 for a bad Host', async () => {
    const unknown = await curl(server, 'nobody.example.test')
    expect(unknown.status).toBe(404)
    expect(unknown.body).toMatch(/<html/)
    expect(unknown.body).toContain('nobody')
    expect((await curl(server, 'web.other.test')).status).toBe(400)
    expect((await curl(server, 'bad_name.example.test')).status).toBe(400)
    expect((await curl(server, 'example.test')).status).toBe(404)
  })

  it('answers 502 when the device is online but its service refuses', async () => {
    const gone = createServer()
    gone.listen(0, '127.0.0.1')
    await once(gone, 'listening')
    const port = portOf(gone)
    await closeServer(gone)
    const device = await exposeServices({ servers: urlOf(server), ports: [port], name: 'down', token: OTHER_TOKEN })
    try {
      const answer = await curl(server, 'down.example.test')
      expect(answer.status).toBe(502)
      expect(answer.body).toMatch(/<html/)
      expect(server.stats.rejectedConnections).toBeGreaterThan(0)
    } finally {
      await device.close()
    }
    // Closed: the name is retained, the device offline.
    const offline = await curl(server, 'down.example.test')
    expect(offline.status).toBe(503)
    expect(offline.headers).toMatch(/content-type: text\/html/i)
    expect(offline.body).toContain('offline')
  })
})

describe('HTTP keep-alive towards the device (pooled tunnelled connections)', () => {
  let server: TunnelServer
  let web: Server
  let client: TunnelClient
  let keepAliveHint: string | undefined

  beforeAll(async () => {
    server = await startTunnel()
    // Answers with the port its request came from: the same port means the same tunnelled connection.
    web = createServer((req, res) => {
      res.setHeader('content-type', 'text/plain')
      if (keepAliveHint !== undefined) res.setHeader('keep-alive', keepAliveHint)
      res.end(String(req.socket.remotePort))
    })
    web.listen(0, '127.0.0.1')
    await once(web, 'listening')
    client = await exposeServices({ servers: urlOf(server), ports: [portOf(web)], name: 'pooled', token: TOKEN })
  })

  afterAll(async () => {
    await client?.close()
    await server?.close()
    await closeServer(web)
  })

  it('reuses one tunnelled connection for requests of different client connections', async () => {
    keepAliveHint = undefined
    const first = await curl(server, 'pooled.example.test')
    const second = await curl(server, 'pooled.example.test')
    expect(first.status).toBe(200)
    expect(second.status).toBe(200)
    expect(second.body).toBe(first.body)
  })

  it('keeps no per-request listeners on a pooled connection (no MaxListenersExceededWarning over 30 requests)', async () => {
    keepAliveHint = undefined
    const warnings: string[] = []
    const onWarning = (warning: Error) => warnings.push(warning.name)
    process.on('warning', onWarning)
    try {
      const ports = new Set<string>()
      for (let i = 0; i < 30; i++) {
        const body = await new Promise<string>((resolve, reject) => {
          const req = httpGet({ host: '127.0.0.1', port: server.httpPort, path: '/', headers: { host: 'pooled.example.test' }, agent: false }, (res) => {
            let text = ''
            res.on('data', (chunk: Buffer) => (text += chunk))
            res.on('end', () => resolve(text))
          })
          req.on('error', reject)
        })
        ports.add(body)
      }
      expect(ports.size).toBe(1)
      await new Promise((resolve) => setImmediate(resolve))
      expect(warnings).not.toContain('MaxListenersExceededWarning')
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('does not pool when the service announces a keep-alive timeout too short to use safely', async () => {
    keepAliveHint = 'timeout=1'
    const first = await curl(server, 'pooled.example.test')
    const second = await curl(server, 'pooled.example.test')
    expect(first.status).toBe(200)
    expect(second.status).toBe(200)
    expect(second.body).not.toBe(first.body)
  })
})
