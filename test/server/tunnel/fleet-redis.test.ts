// A fleet of tunnel servers sharing a real redis-server (started for this file on a free
// loopback port, killed at the end): the control handshake redirected to the less loaded
// server, names that follow a device across servers within retention, the names of a
// server that died freed once its registration expires, and HTTP by name forwarded to
// the server holding the device (with the fleet's signed hop header).
import { once } from 'node:events'
import http, { type Server } from 'node:http'
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { FleetHop } from '../../../src/server/tunnel/fleet-http.js'
import { RedisTunnelState } from '../../../src/server/tunnel/redis-tunnel-state.js'
import type { TunnelServer } from '../../../src/server/tunnel/tunnel-server.js'
import type { TunnelServerOptions } from '../../../src/server/tunnel/tunnel-server-options.js'
import { exposeServices, type TunnelClient } from '../../../src/tunnel/tunnel-client.js'
import { type RedisProcess, startRedis } from '../beacon/redis.js'
import { OTHER_TOKEN, TOKEN, closeServer, exchange, portOf, startEcho, startHttpEcho, startTunnel, until, urlOf } from './helpers.js'

let redis: RedisProcess
let echo: net.Server
let fleets = 0

beforeAll(async () => {
  redis = await startRedis()
  echo = await startEcho()
})
afterAll(async () => {
  await closeServer(echo)
  await redis?.stop()
})

/** Two tunnel servers (ids `a` and `b`) sharing Redis under a fresh prefix. */
async function fleet(a: Partial<TunnelServerOptions> = {}, b: Partial<TunnelServerOptions> = {}): Promise<{ a: TunnelServer; b: TunnelServer; prefix: string; close(): Promise<void> }> {
  const prefix = `fleet${++fleets}:`
  const first = await startTunnel({ redis: redis.url, redisPrefix: prefix, serverId: 'a', ...a })
  const second = await startTunnel({ redis: redis.url, redisPrefix: prefix, serverId: 'b', ...b }).catch(async (err: unknown) => {
    await first.close()
    throw err
  })
  return {
    a: first,
    b: second,
    prefix,
    close: async () => {
      await first.close()
      await second.close()
    },
  }
}

/** Sends a WebSocket upgrade for the control path by hand and returns the status line and Location. */
async function rawControlUpgrade(port: number): Promise<{ status: number; location: string | undefined }> {
  const socket = net.connect({ host: '127.0.0.1', port })
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(
    `GET /v1/control HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  )
  let text = ''
  for await (const chunk of socket) {
    text += String(chunk)
    if (text.includes('\r\n\r\n')) break
  }
  socket.destroy()
  return { status: Number(/^HTTP\/1\.1 ([0-9]{3})/.exec(text)?.[1]), location: /\r\nlocation: ([^\r]+)/i.exec(text)?.[1] }
}

/** An HTTP request; resolves with status and body. */
function request(options: http.RequestOptions, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...options, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('tunnel fleet with Redis', () => {
  it('redirects the control handshake (302) to the less loaded server, where the device ends up connected', async () => {
    const { a: busy, b: idle, close } = await fleet()
    const clients: TunnelClient[] = []
    try {
      clients.push(await exposeServices({ servers: urlOf(busy), ports: [portOf(echo)], name: 'one', token: TOKEN }))
      expect(clients[0]!.endpoints!.server).toBe(busy.url)
      // `busy` has a device, `idle` none: the handshake is answered 302 towards `idle`.
      const probe = await rawControlUpgrade(busy.controlPort)
      expect(probe.status).toBe(302)
      expect(probe.location).toBe(`${idle.url}v1/control?redirected=1`)
      const redirectsBefore = busy.stats.redirects
      clients.push(await exposeServices({ servers: urlOf(busy), ports: [portOf(echo)], name: 'two', token: OTHER_TOKEN }))
      expect(busy.stats.redirects).toBe(redirectsBefore + 1)
      expect(clients[1]!.endpoints).toMatchObject({ server: idle.url, name: 'two' })
      expect(idle.stats.devices).toBe(1)
      expect(busy.stats.devices).toBe(1)
      // …and it is served there.
      const data = randomBytes(4_000)
      expect((await exchange(clients[1]!.endpoints!.ports[0]!.public, data)).equals(data)).toBe(true)
      expect(idle.publicPorts.map((p) => p.name)).toEqual(['two'])
    } finally {
      for (const client of clients) await client.close()
      await close()
    }
  })

  it('keeps a name across servers within the retention time', async () => {
    const { a, b, close } = await fleet({ retention: 60 }, { retention: 60 })
    const clients: TunnelClient[] = []
    try {
      const first = await exposeServices({ servers: urlOf(a), ports: [portOf(echo)], name: 'keep', token: TOKEN })
      expect(first.endpoints!.server).toBe(a.url)
      await first.close()
      await until(() => a.stats.retainedDevices === 1, 5_000, 'a to retain the device')
      // Asking server b for its name, the device is sent where its name and ports are.
      const back = await exposeServices({ servers: urlOf(b), ports: [portOf(echo)], name: 'keep', token: TOKEN })
      clients.push(back)
      expect(back.endpoints).toMatchObject({ server: a.url, name: 'keep', resumed: true })
      await back.close()
      await until(() => a.stats.retainedDevices === 1, 5_000, 'a to retain the device again')
      // Server a stops (gracefully): the retained name keeps its time in Redis.
      await a.close()
      const thief = await exposeServices({ servers: urlOf(b), ports: [portOf(echo)], name: 'keep', token: OTHER_TOKEN }).catch((e: unknown) => e)
      expect(thief).toMatchObject({ code: 'ERR_TUNNEL_NAME_TAKEN' })
      // The device comes back on server b, without naming itself: it gets its name there.
      const moved = await exposeServices({ servers: urlOf(b), ports: [portOf(echo)], token: TOKEN })
      clients.push(moved)
      expect(moved.endpoints).toMatchObject({ server: b.url, name: 'keep' })
      const data = randomBytes(3_000)
      expect((await exchange(moved.endpoints!.ports[0]!.public, data)).equals(data)).toBe(true)
    } finally {
      for (const client of clients) await client.close()
      await close()
    }
  })

  it('frees the names of a server that died once its registration expires', async () => {
    const prefix = `fleet${++fleets}:`
    const stateA = await RedisTunnelState.connect({ url: redis.url, prefix })
    const observer = await RedisTunnelState.connect({ url: redis.url, prefix })
    const a = await startTunnel({ state: stateA, serverId: 'a', registrationTtl: 2 })
    const b = await startTunnel({ redis: redis.url, redisPrefix: prefix, serverId: 'b', registrationTtl: 2 })
    let thief: TunnelClient | undefined
    try {
      const device = await exposeServices({ servers: urlOf(a), ports: [portOf(echo)], name: 'crash', token: TOKEN })
      expect((await observer.getName('crash'))?.server).toBe('a')
      // The crash: server a loses Redis, then stops without writing anything there.
      await stateA.close()
      await a.close()
      await device.close()
      // Its registration has not expired yet: the name is still held…
      expect(await observer.getName('crash')).toMatchObject({ server: 'a', expiresAt: null })
      expect(await observer.claimName('crash', 'someone-else', 'b', null)).toBe(false)
      expect((await observer.listServers()).map((s) => s.id).sort()).toEqual(['a', 'b'])
      // …until it does (at most 2 s after a's last refresh).
      const killedAt = Date.now()
      await until(async () => (await observer.getName('crash')) === undefined, 5_000, "a's names to be freed")
      expect(Date.now() - killedAt).toBeLessThan(3_000)
      expect((await observer.listServers()).map((s) => s.id)).toEqual(['b'])
      thief = await exposeServices({ servers: urlOf(b), ports: [portOf(echo)], name: 'crash', token: OTHER_TOKEN })
      expect(thief.endpoints).toMatchObject({ server: b.url, name: 'crash', resumed: false })
    } finally {
      await thief?.close()
      await a.close()
      await b.close()
      await observer.close()
    }
  })

  describe('HTTP by name across the fleet', () => {
    let a: TunnelServer
    let b: TunnelServer
    let closeFleet: () => Promise<void>
    let web: Server
    let wsServer: WebSocketServer
    let device: TunnelClient

    beforeAll(async () => {
      // b also listens on ::1, so that a client there is told apart from a (127.0.0.1).
      ;({ a, b, close: closeFleet } = await fleet({}, { listeningIps: ['127.0.0.1', '::1'] }))
      web = await startHttpEcho()
      wsServer = new WebSocketServer({ server: web })
      wsServer.on('connection', (ws, req) => {
        ws.send(`hello ${req.headers['x-forwarded-for']}`)
        ws.on('message', (data) => ws.send(`echo ${String(data)}`))
      })
      device = await exposeServices({ servers: urlOf(a), ports: [portOf(web)], name: 'web', token: TOKEN })
      expect(device.endpoints!.server).toBe(a.url)
    })

    afterAll(async () => {
      await device?.close()
      await closeFleet?.()
      wsServer?.close()
      await closeServer(web)
    })

    it('forwards a request for a device on another server, vouching for the client', async () => {
      const answer = await request({ host: '::1', port: b.httpPort, method: 'POST', path: '/via/b?q=1', headers: { host: `web.example.test:${b.httpPort}`, 'x-forwarded-for': '6.6.6.6' } }, 'payload')
      expect(answer.status).toBe(200)
      const seen = JSON.parse(answer.body) as { method: string; url: string; body: string; headers: Record<string, string> }
      expect(seen).toMatchObject({ method: 'POST', url: '/via/b?q=1', body: 'payload' })
      expect(seen.headers['x-forwarded-for']).toBe('::1')
      expect(seen.headers['x-forwarded-host']).toBe(`web.example.test:${b.httpPort}`)
      expect(seen.headers['x-peerlink-tunnel-hop']).toBeUndefined()
    })

    it('passes WebSocket upgrades through the other server', async () => {
      const ws = new WebSocket(`ws://[::1]:${b.httpPort}/chat`, { headers: { host: 'web.example.test' } })
      const received: string[] = []
      ws.on('message', (data) => received.push(String(data)))
      await once(ws, 'open')
      ws.send('ping')
      await until(() => received.length === 2, 5_000, 'greeting and echo')
      expect(received).toEqual(['hello ::1', 'echo ping'])
      ws.close()
      await once(ws, 'close')
    })

    it('neither forwards nor believes a forged hop header', async () => {
      const forged = new FleetHop(new Uint8Array(32), 'a').sign({ host: '9.9.9.9', port: 1 })
      // At b: a request that claims to come from the fleet is not forwarded again.
      const atB = await request({ host: '127.0.0.1', port: b.httpPort, path: '/', headers: { host: 'web.example.test', 'x-peerlink-tunnel-hop': forged } })
      expect(atB.status).toBe(503)
      // At a (which holds the device): served, but the forged client address is ignored.
      const atA = await request({ host: '127.0.0.1', port: a.httpPort, path: '/', headers: { host: 'web.example.test', 'x-peerlink-tunnel-hop': forged } })
      expect(atA.status).toBe(200)
      const seen = JSON.parse(atA.body) as { headers: Record<string, string> }
      expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1')
      expect(seen.headers['x-peerlink-tunnel-hop']).toBeUndefined()
    })

    it('answers 404 for an unknown name and 503 for a device retained by another server', async () => {
      expect((await request({ host: '127.0.0.1', port: b.httpPort, path: '/', headers: { host: 'nobody.example.test' } })).status).toBe(404)
      // b has fewer devices than a: it keeps this one, and a forwards to it.
      const other = await exposeServices({ servers: urlOf(b), ports: [portOf(web)], name: 'gone', token: OTHER_TOKEN })
      expect(other.endpoints!.server).toBe(b.url)
      expect((await request({ host: '127.0.0.1', port: a.httpPort, path: '/', headers: { host: 'gone.example.test' } })).status).toBe(200)
      await other.close()
      await until(() => b.stats.retainedDevices === 1, 5_000, 'b to retain the device')
      const offline = await request({ host: '127.0.0.1', port: a.httpPort, path: '/', headers: { host: 'gone.example.test' } })
      expect(offline.status).toBe(503)
      expect(offline.body).toContain('offline')
    })
  })
})

describe('FleetHop', () => {
  it('vouches for a client only with the fleet key, for a minute', () => {
    const key = new Uint8Array(randomBytes(32))
    const hop = new FleetHop(key, 'srv-1')
    const now = 1_700_000_000_000
    const value = hop.sign({ host: '2001:db8::1', port: 4433 }, now)
    expect(new FleetHop(key, 'srv-2').verify(value, now + 59_000)).toEqual({ host: '2001:db8::1', port: 4433 })
    expect(hop.verify(value, now + 61_000)).toBeUndefined()
    expect(new FleetHop(new Uint8Array(32), 'srv-1').verify(value, now)).toBeUndefined()
    expect(hop.verify(value.replace('2001:db8::1', '2001:db8::2'), now)).toBeUndefined()
    expect(hop.verify(value.replace(';4433;', ';4434;'), now)).toBeUndefined()
    for (const bad of ['', 'v1', 'v2;srv-1;1.2.3.4;1;1;x', 'v1;srv 1;1.2.3.4;1;1700000000;x', 'v1;srv-1;not-ip;1;1700000000;x', 'v1;srv-1;1.2.3.4;99999;1700000000;x']) {
      expect(hop.verify(bad, now)).toBeUndefined()
    }
  })
})
