// PeerOptions.turn parsing and the peer's shared TURN allocations (TurnRelayPool), on
// loopback against our TURN server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidArgumentError, InvalidServerSpecError } from '../../src/errors.js'
import { TurnRelayPool, turnServerList } from '../../src/peer/turn-relays.js'
import { TurnServer } from '../../src/server/turn/turn-server.js'
import { PeerSocket } from '../../src/transport/peer-socket.js'
import { randomPortRange } from '../server/turn/coturn-tools.js'
import { until } from '../beacon/helpers.js'

describe('turnServerList', () => {
  it('expands urls, keeps long-term credentials, derives REST API ones from a secret', () => {
    const list = turnServerList([
      { urls: ['turn:192.0.2.1:3478', 'turns:192.0.2.1:5349'], username: 'u', credential: 'p' },
      { urls: 'turn:192.0.2.2?transport=tcp', secret: 's3cret', username: 'alice' },
    ])
    expect(list.map((s) => s.url)).toEqual(['turn:192.0.2.1:3478', 'turns:192.0.2.1:5349', 'turn:192.0.2.2?transport=tcp'])
    expect(list[0]!.credentials).toEqual({ username: 'u', password: 'p' })
    expect(list[2]!.credentials.username).toMatch(/^\d+:alice$/)
    expect(list[2]!.credentials.password).not.toBe('s3cret')
    expect(turnServerList(undefined)).toEqual([])
  })

  it('rejects malformed entries at once', () => {
    expect(() => turnServerList([{ urls: 'turn:192.0.2.1' }])).toThrow(InvalidArgumentError)
    expect(() => turnServerList([{ urls: 'stun:192.0.2.1', username: 'u', credential: 'p' }])).toThrow(InvalidServerSpecError)
    expect(() => turnServerList([{ urls: [], username: 'u', credential: 'p' }])).toThrow(InvalidArgumentError)
    expect(() => turnServerList(['turn:192.0.2.1'] as never)).toThrow(InvalidArgumentError)
  })
})

describe('TurnRelayPool', () => {
  let server: TurnServer
  let url: string
  let socket: PeerSocket

  beforeAll(async () => {
    server = await TurnServer.listen({
      listeningIps: ['127.0.0.1'],
      listeningPort: 0,
      relayIps: ['127.0.0.1'],
      ...randomPortRange(50),
      realm: 'peerlink.test',
      users: ['alice:pw'],
      allowLoopbackPeers: true,
    })
    url = `turn:127.0.0.1:${server.addresses.find((a) => a.transport === 'udp')!.port}`
    socket = await PeerSocket.bind({ host: '127.0.0.1' })
  })

  afterAll(async () => {
    await socket?.close()
    await server?.close()
  })

  it('shares one allocation per server between leases and deallocates after the last release', async () => {
    const servers = turnServerList([{ urls: url, username: 'alice', credential: 'pw' }])
    const pool = new TurnRelayPool(socket, servers)
    const created = server.stats.allocationsCreated
    const [a, b] = await Promise.all([pool.acquire(servers[0]!), pool.acquire(servers[0]!)])
    expect(a.relay).toBe(b.relay)
    expect(server.stats.allocationsCreated - created).toBe(1)
    a.release()
    a.release() // idempotent
    expect(a.relay.closed).toBe(false)
    b.release()
    expect(a.relay.closed).toBe(true)
    await until(() => server.stats.allocations === 0, 3000)
    // A new lease makes a new allocation.
    const c = await pool.acquire(servers[0]!)
    expect(c.relay).not.toBe(a.relay)
    await pool.close()
    expect(c.relay.closed).toBe(true)
    await expect(pool.acquire(servers[0]!)).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' })
  })
})
