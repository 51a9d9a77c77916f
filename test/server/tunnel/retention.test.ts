// Retention: an offline device's name gets the 503 page and its ports refuse; coming back
// within the retention time restores name and ports; after it they are gone.
import { randomBytes } from 'node:crypto'
import { execFile } from 'node:child_process'
import type { Server } from 'node:http'
import net from 'node:net'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TunnelServer } from '../../../src/server/tunnel/tunnel-server.js'
import { exposeServices } from '../../../src/tunnel/tunnel-client.js'
import { OTHER_TOKEN, TOKEN, closeServer, exchange, portOf, startEcho, startHttpEcho, startTunnel, until, urlOf } from './helpers.js'

const run = promisify(execFile)

async function status(server: TunnelServer, name: string): Promise<number> {
  const { stdout } = await run('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Host: ${name}.example.test`, `http://127.0.0.1:${server.httpPort}/`])
  return Number(stdout)
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'))
    socket.on('connect', () => {
      socket.on('close', () => resolve(false))
      socket.on('data', () => {})
    })
  })
}

describe('retention', () => {
  let server: TunnelServer
  let echo: net.Server
  let web: Server
  let services: number[]

  beforeAll(async () => {
    server = await startTunnel({ retention: 1.5 })
    echo = await startEcho()
    web = await startHttpEcho()
    services = [portOf(web), portOf(echo)]
  })

  afterAll(async () => {
    await server?.close()
    await closeServer(echo)
    await closeServer(web)
  })

  it('keeps name and ports while the device is away, and gives them back', async () => {
    const first = await exposeServices({ servers: urlOf(server), ports: services, token: TOKEN })
    const { name, ports } = first.endpoints!
    expect(name).toMatch(/^t-[a-z2-7]{10}$/)
    expect(first.endpoints!.resumed).toBe(false)
    await first.close()
    await until(() => server.stats.devices === 0 && server.stats.retainedDevices === 1, 5_000, 'the device to go offline')

    // Offline: the 503 page, and the public port is still held (connections are closed at once).
    expect(await status(server, name)).toBe(503)
    expect(await refused(ports[1]!.public)).toBe(false)
    expect(server.publicPorts.map((p) => p.port).sort()).toEqual(ports.map((p) => p.public).sort())

    // Someone else cannot take the name meanwhile.
    const thief = await exposeServices({ servers: urlOf(server), ports: services, name, token: OTHER_TOKEN }).catch((err: unknown) => err)
    expect(thief).toMatchObject({ code: 'ERR_TUNNEL_NAME_TAKEN' })

    // Back within the retention time: same name, same port, working.
    const again = await exposeServices({ servers: urlOf(server), ports: services, token: TOKEN })
    try {
      expect(again.endpoints!.name).toBe(name)
      expect(again.endpoints!.ports).toEqual(ports)
      expect(again.endpoints!.resumed).toBe(true)
      expect(await status(server, name)).toBe(200)
      const data = randomBytes(1000)
      expect((await exchange(ports[1]!.public, data)).equals(data)).toBe(true)
    } finally {
      await again.close()
    }

    // After the retention time: name and port are freed.
    await until(() => server.stats.retainedDevices === 0, 5_000, 'the retention time to run out')
    expect(await status(server, name)).toBe(404)
    expect(await refused(ports[1]!.public)).toBe(true)
    expect(server.publicPorts).toEqual([])
    const later = await exposeServices({ servers: urlOf(server), ports: services, token: TOKEN })
    try {
      expect(later.endpoints!.name).not.toBe(name)
      expect(later.endpoints!.resumed).toBe(false)
    } finally {
      await later.close()
    }
  })

  it('restores a lost connection by itself (the server dropped the control socket)', async () => {
    const client = await exposeServices({ servers: urlOf(server), ports: services, name: 'comeback', token: TOKEN, minDelayMs: 20, maxDelayMs: 100 })
    try {
      const { ports } = client.endpoints!
      const reconnected = new Promise<{ name: string; resumed: boolean; ports: unknown }>((resolve) => client.once('connected', resolve))
      // Cut the control socket on the server side, as a network failure would.
      expect(server.dropDevice('comeback')).toBe(true)
      const endpoints = await reconnected
      expect(endpoints.name).toBe('comeback')
      expect(endpoints.resumed).toBe(true)
      expect(endpoints.ports).toEqual(ports)
      const data = randomBytes(1000)
      expect((await exchange(ports[1]!.public, data)).equals(data)).toBe(true)
    } finally {
      await client.close()
    }
  })
})
