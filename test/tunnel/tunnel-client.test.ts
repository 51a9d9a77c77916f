// The tunnel client: several servers, redirects (a fake one and a fleet of two servers
// sharing state), AbortSignal, option checks.
import { once } from 'node:events'
import http from 'node:http'
import type net from 'node:net'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryTunnelState } from '../../src/server/tunnel/memory-tunnel-state.js'
import { exposeServices, TunnelClient } from '../../src/tunnel/tunnel-client.js'
import { OTHER_TOKEN, TOKEN, closeServer, exchange, portOf, startEcho, startTunnel, until, urlOf } from '../server/tunnel/helpers.js'

let echo: net.Server

beforeAll(async () => {
  echo = await startEcho()
})
afterAll(async () => {
  await closeServer(echo)
})

async function deadUrl(): Promise<string> {
  const server = http.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = portOf(server)
  await closeServer(server)
  return `ws://127.0.0.1:${port}`
}

describe('TunnelClient', () => {
  it('checks its options at once', () => {
    const servers = 'ws://127.0.0.1:1'
    expect(() => new TunnelClient({ servers, ports: [], token: TOKEN })).toThrow(/ports/)
    expect(() => new TunnelClient({ servers, ports: [80, 80], token: TOKEN })).toThrow(/twice/)
    expect(() => new TunnelClient({ servers, ports: [80] })).toThrow(/token, an identity/)
    expect(() => new TunnelClient({ servers, ports: [80], token: TOKEN, name: 'not a name' })).toThrow(/DNS label/)
    expect(() => new TunnelClient({ servers, ports: [80], token: TOKEN, http: 81 })).toThrow(/http/)
    expect(() => new TunnelClient({ servers: 'http://x', ports: [80], token: TOKEN })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_SERVER_SPEC' }))
    expect(() => new TunnelClient({ servers: [], ports: [80], token: TOKEN })).toThrow(/at least one/)
  })

  it('tries the next server when one is down', async () => {
    const server = await startTunnel()
    const client = await exposeServices({ servers: [await deadUrl(), urlOf(server)], ports: [portOf(echo)], token: TOKEN, minDelayMs: 10, maxDelayMs: 20 })
    try {
      expect(client.endpoints!.server).toBe(server.url)
    } finally {
      await client.close()
      await server.close()
    }
  })

  it('works under a URL path (a reverse proxy may mount the server anywhere)', async () => {
    const server = await startTunnel()
    const client = await exposeServices({ servers: `ws://127.0.0.1:${server.controlPort}/tunnel/x`, ports: [portOf(echo)], token: TOKEN })
    try {
      expect(client.endpoints!.server).toBe(`ws://127.0.0.1:${server.controlPort}/tunnel/x/`)
      const data = randomBytes(1_000)
      expect((await exchange(client.endpoints!.ports[0]!.public, data)).equals(data)).toBe(true)
    } finally {
      await client.close()
      await server.close()
    }
  })

  it('rejects when every server failed once', async () => {
    const err = await exposeServices({ servers: [await deadUrl(), await deadUrl()], ports: [portOf(echo)], token: TOKEN, minDelayMs: 10, maxDelayMs: 20 }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_CONNECT_FAILED' })
  })

  it('follows an HTTP redirect on the control handshake, keeping its credentials', async () => {
    const server = await startTunnel()
    const redirector = http.createServer()
    redirector.on('upgrade', (_req, socket: net.Socket) => {
      socket.end(`HTTP/1.1 302 Found\r\nlocation: ws://127.0.0.1:${server.controlPort}/v1/control?redirected=1\r\ncontent-length: 0\r\n\r\n`)
    })
    redirector.listen(0, '127.0.0.1')
    await once(redirector, 'listening')
    const client = await exposeServices({ servers: `ws://127.0.0.1:${portOf(redirector)}`, ports: [portOf(echo)], name: 'moved', token: TOKEN })
    try {
      expect(client.endpoints).toMatchObject({ name: 'moved', server: server.url })
      const data = randomBytes(2_000)
      expect((await exchange(client.endpoints!.ports[0]!.public, data)).equals(data)).toBe(true)
    } finally {
      await client.close()
      await server.close()
      await closeServer(redirector)
    }
  })

  it('is redirected by a loaded server of a fleet to the less loaded one (shared state)', async () => {
    const state = new MemoryTunnelState()
    const busy = await startTunnel({ state, serverId: 'busy' })
    const idle = await startTunnel({ state, serverId: 'idle' })
    const first = await exposeServices({ servers: urlOf(busy), ports: [portOf(echo)], name: 'one', token: TOKEN })
    try {
      // `busy` has a device, `idle` none: the next device is sent to `idle`.
      expect(first.endpoints!.server).toBe(busy.url)
      const second = await exposeServices({ servers: urlOf(busy), ports: [portOf(echo)], name: 'two', token: OTHER_TOKEN })
      try {
        expect(second.endpoints!.server).toBe(idle.url)
        expect(busy.stats.redirects).toBe(1)
        expect(idle.stats.devices).toBe(1)
        // A device asking for a name goes where the name lives.
        await first.close()
        const back = await exposeServices({ servers: urlOf(idle), ports: [portOf(echo)], name: 'one', token: TOKEN })
        expect(back.endpoints).toMatchObject({ server: busy.url, name: 'one', resumed: true })
        await back.close()
      } finally {
        await second.close()
      }
    } finally {
      await first.close()
      await busy.close()
      await idle.close()
      await state.close()
    }
  })

  it('takes a new name when the one the server gave it was taken while it was away; a fixed name stays fatal', async () => {
    const first = await startTunnel()
    const port = first.controlPort
    const client = await exposeServices({ servers: urlOf(first), ports: [portOf(echo)], token: TOKEN, minDelayMs: 400, maxDelayMs: 400 })
    const given = client.endpoints!.name
    await first.close() // the client is disconnected and retries in 400 ms
    const second = await startTunnel({ controlPort: port })
    const squatter = await exposeServices({ servers: urlOf(second), ports: [portOf(echo)], token: OTHER_TOKEN, name: given })
    try {
      await until(() => client.state === 'connected' && client.endpoints!.server === second.url, 5_000)
      expect(client.endpoints!.name).not.toBe(given)
      const data = randomBytes(1_000)
      expect((await exchange(client.endpoints!.ports[0]!.public, data)).equals(data)).toBe(true)
      // Someone asking for the squatter's name explicitly is refused for good.
      await expect(exposeServices({ servers: urlOf(second), ports: [portOf(echo)], token: TOKEN, name: given, minDelayMs: 10, maxDelayMs: 20 })).rejects.toMatchObject({ code: 'ERR_TUNNEL_NAME_TAKEN' })
    } finally {
      await client.close()
      await squatter.close()
      await second.close()
    }
  })

  it('closes when its signal is aborted, and refuses an aborted signal', async () => {
    const server = await startTunnel()
    const controller = new AbortController()
    const client = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], token: TOKEN, signal: controller.signal })
    const closed = once(client, 'close')
    controller.abort()
    await closed
    expect(client.state).toBe('closed')
    await until(() => server.stats.devices === 0, 5_000, 'the server to see the device go')
    const err = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], token: TOKEN, signal: AbortSignal.abort() }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_ABORTED' })
    await server.close()
  })

  it('close() ends open tunnelled connections', async () => {
    const server = await startTunnel()
    const client = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], token: TOKEN })
    const { createConnection } = await import('node:net')
    const socket = createConnection({ host: '127.0.0.1', port: client.endpoints!.ports[0]!.public })
    socket.on('error', () => {})
    socket.write('hello')
    await once(socket, 'data')
    expect(client.activeConnections).toBe(1)
    const closed = once(socket, 'close')
    await client.close()
    await closed
    expect(client.activeConnections).toBe(0)
    await until(() => server.stats.activeConnections === 0, 5_000, 'the server to drop the connection')
    await server.close()
  })
})
