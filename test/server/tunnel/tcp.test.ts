// Raw TCP through the tunnel: an echo service reached at its public port, 50 concurrent
// connections carrying 256 KiB each, half-close, and connections nobody claims.
import { createHash, randomBytes } from 'node:crypto'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TunnelServer } from '../../../src/server/tunnel/tunnel-server.js'
import { exposeServices, type TunnelClient } from '../../../src/tunnel/tunnel-client.js'
import { OTHER_TOKEN, TOKEN, certificate, closeServer, exchange, portOf, startEcho, startTunnel, until, urlOf } from './helpers.js'

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex')

describe('TCP through the tunnel (wss, pinned)', () => {
  let server: TunnelServer
  let echo: net.Server
  let client: TunnelClient

  beforeAll(async () => {
    server = await startTunnel({ tls: { cert: certificate.cert, key: certificate.key } })
    echo = await startEcho()
    client = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], name: 'echo', token: TOKEN })
  })

  afterAll(async () => {
    await client?.close()
    await server?.close()
    await closeServer(echo)
  })

  it('reports its endpoints', () => {
    const endpoints = client.endpoints!
    expect(endpoints.name).toBe('echo')
    expect(endpoints.ports).toHaveLength(1)
    expect(endpoints.ports[0]!.local).toBe(portOf(echo))
    expect(endpoints.httpUrl).toBe(`http://echo.example.test:${server.httpPort}/`)
    expect(server.stats.devices).toBe(1)
  })

  it('echoes through the public port, with half-close', async () => {
    const data = randomBytes(10_000)
    const back = await exchange(client.endpoints!.ports[0]!.public, data)
    expect(back.equals(data)).toBe(true)
  })

  it('keeps 50 concurrent connections of 256 KiB each intact', async () => {
    const port = client.endpoints!.ports[0]!.public
    const payloads = Array.from({ length: 50 }, () => randomBytes(256 * 1024))
    const results = await Promise.all(payloads.map((data) => exchange(port, data)))
    results.forEach((back, i) => expect(sha(back)).toBe(sha(payloads[i]!)))
    expect(server.stats.bytesToDevices).toBeGreaterThanOrEqual(50 * 256 * 1024)
    await until(() => server.stats.activeConnections === 0 && client.activeConnections === 0, 5_000, 'connections to close')
  })

  it('lets data flow back after the public side half-closed (server speaks last)', async () => {
    // A service that waits for the client's FIN, then answers and closes.
    const late = net.createServer({ allowHalfOpen: true }, (socket) => {
      const chunks: Buffer[] = []
      socket.on('data', (chunk: Buffer) => chunks.push(chunk))
      socket.on('end', () => socket.end(`got ${Buffer.concat(chunks).length} bytes`))
    })
    late.listen(0, '127.0.0.1')
    await new Promise((resolve) => late.once('listening', resolve))
    const other = await exposeServices({ servers: urlOf(server), ports: [portOf(late)], name: 'late', token: OTHER_TOKEN })
    try {
      const data = randomBytes(50_000)
      const back = await exchange(other.endpoints!.ports[0]!.public, data)
      expect(back.toString()).toBe('got 50000 bytes')
    } finally {
      await other.close()
    }
    await closeServer(late)
  })
})
