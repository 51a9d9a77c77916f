// Who may log in, limits, heartbeats and timeouts.
import { once } from 'node:events'
import net from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import { createIdentity } from '../../../src/identity/identity.js'
import type { TunnelServer } from '../../../src/server/tunnel/tunnel-server.js'
import { NO_CHANNEL_BINDING, signTunnelChallenge } from '../../../src/tunnel/tunnel-auth.js'
import { exposeServices, TunnelClient } from '../../../src/tunnel/tunnel-client.js'
import { encodeTunnelServerMessage } from '../../../src/tunnel/tunnel-messages.js'
import { OTHER_TOKEN, TOKEN, certificate, closeServer, portOf, rawDevice, startEcho, startTunnel, until, urlOf } from './helpers.js'

let echo: net.Server
const servers: TunnelServer[] = []

beforeAll(async () => {
  echo = await startEcho()
})
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()))
})
afterAll(async () => {
  await closeServer(echo)
})

async function tunnel(options: Parameters<typeof startTunnel>[0] = {}): Promise<TunnelServer> {
  const server = await startTunnel(options)
  servers.push(server)
  return server
}

describe('credentials', () => {
  it('refuses a bad token with ERR_TUNNEL_AUTH', async () => {
    const server = await tunnel()
    const err = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], token: 'not-a-valid-token' }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_TUNNEL_AUTH' })
    expect(server.stats.refusedAuth).toBe(1)
    expect(server.stats.devices).toBe(0)
  })

  it('refuses a hello without credentials, and closes the socket', async () => {
    const server = await tunnel()
    const device = await rawDevice(server, { ports: [portOf(echo)] })
    expect(device.error?.code).toBe('auth')
    expect(await device.closed).toBe(1008)
  })

  it('drops a socket that sends no hello in time', async () => {
    const server = await tunnel({ helloTimeout: 0.2 })
    const device = await rawDevice(server, undefined)
    expect(await device.closed).toBe(1008)
    expect(device.messages.map((m) => m.type)).toEqual(['challenge', 'error'])
  })

  it('accepts an allowed identity over TLS, and gives its name back after a reconnection', async () => {
    const identity = createIdentity()
    const server = await tunnel({ tls: { cert: certificate.cert, key: certificate.key }, tokens: [], allowedPeerIds: [identity.peerId] })
    const first = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], identity })
    const { name, ports } = first.endpoints!
    await first.close()
    const again = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], identity })
    expect(again.endpoints).toMatchObject({ name, ports, resumed: true })
    await again.close()
    const stranger = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], identity: createIdentity() }).catch((e: unknown) => e)
    expect(stranger).toMatchObject({ code: 'ERR_TUNNEL_AUTH' })
  })

  it('refuses a signature bound to another server (channel binding)', async () => {
    const identity = createIdentity()
    const server = await tunnel({ allowedPeerIds: ['*'] })
    const device = await rawDevice(server, undefined)
    const challenge = device.messages[0]
    if (challenge?.type !== 'challenge') throw new Error('no challenge')
    const wrong = signTunnelChallenge(identity, 1, challenge.nonce, new Uint8Array(32).fill(7))
    const { encodeTunnelClientMessage } = await import('../../../src/tunnel/tunnel-messages.js')
    device.ws.send(encodeTunnelClientMessage({ type: 'hello', version: 1, ports: [portOf(echo)], peerId: identity.peerId, signature: wrong }))
    expect(await device.closed).toBe(1008)
    expect(device.messages.at(-1)).toMatchObject({ type: 'error', code: 'auth' })
    // The right binding (none, over ws://) is accepted.
    const good = await rawDevice(server, undefined)
    const nonce = (good.messages[0] as { nonce: Uint8Array }).nonce
    good.ws.send(encodeTunnelClientMessage({ type: 'hello', version: 1, ports: [portOf(echo)], peerId: identity.peerId, signature: signTunnelChallenge(identity, 1, nonce, NO_CHANNEL_BINDING) }))
    await until(() => good.messages.some((m) => m.type === 'welcome'), 5_000, 'welcome')
    good.ws.close()
    await good.closed
  })

  it('replaces an older login of the same device; the older client stops', async () => {
    const server = await tunnel()
    const first = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], name: 'twin', token: TOKEN })
    const stopped = new Promise((resolve) => first.once('close', resolve))
    const second = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], name: 'twin', token: TOKEN })
    expect(await stopped).toMatchObject({ code: 'ERR_TUNNEL_UNAVAILABLE' })
    expect(first.state).toBe('closed')
    expect(second.endpoints).toMatchObject({ name: 'twin', resumed: true })
    expect(server.stats.devices).toBe(1)
    await second.close()
  })
})

describe('limits', () => {
  it('refuses more ports than allowed per device', async () => {
    const server = await tunnel({ maxPortsPerDevice: 1 })
    const many = await exposeServices({ servers: urlOf(server), ports: [portOf(echo), 1], http: false, token: TOKEN }).catch((e: unknown) => e)
    expect(many).toMatchObject({ code: 'ERR_TUNNEL_LIMIT' })
    expect(server.publicPorts).toEqual([])
  })

  it('checks its options at once', async () => {
    await expect(tunnel({ allowPorts: '0' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(tunnel({ allowPorts: '20-10' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(tunnel({ tokens: ['short'] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(tunnel({ allowedPeerIds: ['nope'] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(tunnel({ domain: 'bad domain' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
  })

  it('refuses a device when the port range is used up', async () => {
    const { freePortRange } = await import('./helpers.js')
    const server = await tunnel({ allowPorts: await freePortRange(1) })
    const first = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], token: TOKEN })
    const second = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], token: OTHER_TOKEN, minDelayMs: 10, maxDelayMs: 20 }).catch((e: unknown) => e)
    expect(second).toMatchObject({ code: 'ERR_TUNNEL_LIMIT' })
    expect(server.stats.devices).toBe(1)
    await first.close()
  })

  it('refuses devices beyond maxDevices', async () => {
    const server = await tunnel({ maxDevices: 1 })
    const first = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], token: TOKEN })
    const second = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], token: OTHER_TOKEN, minDelayMs: 10, maxDelayMs: 20 }).catch((e: unknown) => e)
    expect(second).toMatchObject({ code: 'ERR_TUNNEL_LIMIT' })
    // The same device logging in again is not a new device.
    const again = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], token: TOKEN })
    expect(server.stats.devices).toBe(1)
    await again.close()
    await first.close()
  })

  it('refuses control sockets beyond the per-IP limit', async () => {
    const server = await tunnel({ maxConnectionsPerIp: 2 })
    const a = await rawDevice(server, undefined)
    const b = await rawDevice(server, undefined)
    const c = await rawDevice(server, undefined)
    expect(c.messages).toEqual([{ type: 'error', code: 'limit', message: expect.stringContaining('127.0.0.1') }])
    expect(await c.closed).toBe(1008)
    for (const d of [a, b]) d.ws.close()
    await Promise.all([a.closed, b.closed])
  })
})

describe('timeouts and heartbeats', () => {
  it('closes a connection nobody claims after the timeout', async () => {
    const server = await tunnel({ connectTimeout: 0.3 })
    const device = await rawDevice(server, { ports: [portOf(echo)], token: TOKEN })
    const port = device.welcome!.ports[0]!.public
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.on('error', () => {})
    const started = Date.now()
    await once(socket, 'close')
    const waited = Date.now() - started
    expect(waited).toBeGreaterThanOrEqual(250)
    expect(waited).toBeLessThan(3_000)
    expect(device.messages.some((m) => m.type === 'connection')).toBe(true)
    expect(server.stats.unclaimedConnections).toBe(1)
    device.ws.close()
    await device.closed
  })

  it('detects a dead control socket (the device stopped reading)', async () => {
    const server = await tunnel({ heartbeatInterval: 0.2 })
    const device = await rawDevice(server, { ports: [portOf(echo)], token: TOKEN })
    expect(server.stats.devices).toBe(1)
    const started = Date.now()
    ;(device.ws as unknown as { _socket: net.Socket })._socket.pause()
    await until(() => server.stats.devices === 0, 5_000, 'the server to drop the device')
    expect(Date.now() - started).toBeLessThan(1_500)
    expect(server.stats.retainedDevices).toBe(1)
    device.ws.terminate()
    await device.closed
  })

  it('the client replaces a control socket whose server went silent', async () => {
    // A fake server: logs the device in, then never answers pings.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong: false })
    await once(wss, 'listening')
    let logins = 0
    wss.on('connection', (ws) => {
      ws.on('error', () => {})
      ws.send(encodeTunnelServerMessage({ type: 'challenge', version: 1, nonce: new Uint8Array(32), server: 'fake' }))
      ws.once('message', () => {
        logins++
        ws.send(
          encodeTunnelServerMessage({
            type: 'welcome',
            version: 1,
            name: 'fake',
            host: '127.0.0.1',
            ports: [{ local: portOf(echo), public: 1 }],
            secret: new Uint8Array(32),
            resumed: false,
            limits: { maxMessageBytes: 16384, messagesPerSecond: 50, heartbeatMs: 10_000, connectTimeoutMs: 10_000, retentionMs: 0 },
          }),
        )
      })
    })
    const port = (wss.address() as net.AddressInfo).port
    const client = new TunnelClient({ servers: `ws://127.0.0.1:${port}`, ports: [portOf(echo)], token: TOKEN, heartbeatMs: 100, minDelayMs: 10, maxDelayMs: 50 })
    const errors: unknown[] = []
    client.on('disconnected', (error) => errors.push(error))
    client.start()
    await until(() => logins >= 2, 5_000, 'a second login')
    expect(errors[0]).toMatchObject({ code: 'ERR_TUNNEL_UNAVAILABLE', message: expect.stringContaining('silent') })
    await client.close()
    for (const ws of wss.clients) ws.terminate()
    await new Promise((resolve) => wss.close(resolve))
  })
})
