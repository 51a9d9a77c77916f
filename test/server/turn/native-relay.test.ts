/**
 * The TURN server's native data path (native/udp_relay.c): the routes it relays
 * ChannelData through, their lifetimes, and hostile input on them. The same tests run
 * in the `js-relay` project (PEERLINK_NATIVE_RELAY=0), where the JavaScript path must
 * give the same observable results.
 */
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { nativeUdpRelay } from '../../../src/server/turn/native-udp-relay.js'
import { TurnServer } from '../../../src/server/turn/turn-server.js'
import { TurnUdpSocket } from '../../../src/server/turn/udp-socket.js'
import type { TurnServerOptions } from '../../../src/server/turn/turn-server-options.js'
import { getAttribute, type TransportAddress } from '../../../src/stun/index.js'
import { randomPortRange } from './coturn-tools.js'
import { TestPeer, TestTurnClient, sleep } from './turn-test-client.js'

const USER = { name: 'alice', password: 'alice-password' }
const jsOnly = process.env.PEERLINK_NATIVE_RELAY === '0'
const routes = (): number => nativeUdpRelay?.routeCount() ?? 0

const open: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()))
})

async function setUp(options: TurnServerOptions = {}): Promise<{ server: TurnServer; client: TestTurnClient; peer: TestPeer; relayed: TransportAddress }> {
  const server = await TurnServer.listen({
    listeningIps: ['127.0.0.1'],
    listeningPort: 0,
    relayIps: ['127.0.0.1'],
    ...randomPortRange(50),
    realm: 'peerlink.test',
    users: [USER],
    allowLoopbackPeers: true,
    noTls: true,
    ...options,
  })
  const udp = server.addresses.find((a) => a.transport === 'udp')!
  const client = (await TestTurnClient.udp(udp)).useCredentials(USER.name, USER.password)
  const peer = await TestPeer.create()
  open.push(client, peer, server)
  const relayed = getAttribute(await client.allocate(), 'xor-relayed-address')!.value
  return { server, client, peer, relayed }
}

describe('TURN native data path', () => {
  it(jsOnly ? 'is off with PEERLINK_NATIVE_RELAY=0' : 'is built and loaded (CI builds it with PEERLINK_NATIVE_REQUIRED=1)', () => {
    if (jsOnly) expect(nativeUdpRelay).toBeUndefined()
    else if (process.env.CI) expect(nativeUdpRelay).toBeDefined()
    else if (nativeUdpRelay === undefined) console.warn('native TURN data path not built: run `node scripts/build-native.mjs`')
  })

  it('relays ChannelData both ways intact, counts it, and drops the route with the allocation', async () => {
    const before = routes()
    const { server, client, peer, relayed } = await setUp()
    expect(server.dataPath).toBe(nativeUdpRelay === undefined ? 'javascript' : 'native')
    expect((await client.request('channel-bind', [{ type: 'channel-number', value: 0x4123 }, { type: 'xor-peer-address', value: peer.address }])).class).toBe('success')
    if (nativeUdpRelay !== undefined) expect(routes()).toBe(before + 1)
    const payloads = Array.from({ length: 50 }, (_, i) => Buffer.alloc(100 + i * 17, i))
    for (const data of payloads) client.sendChannelData(0x4123, data)
    await peer.waitReceived(50)
    expect(peer.received.map((r) => r.data)).toEqual(payloads)
    for (const data of payloads) peer.send(data, relayed)
    const got = await client.waitReceived(50)
    expect(got.map((r) => [r.kind, r.channel])).toEqual(payloads.map(() => ['channel-data', 0x4123]))
    expect(got.map((r) => r.data)).toEqual(payloads)
    const bytes = payloads.reduce((n, p) => n + p.length, 0)
    expect(server.stats).toMatchObject({ packetsToPeers: 50, bytesToPeers: bytes, packetsFromPeers: 50, bytesFromPeers: bytes, droppedPackets: 0 })
    expect((await client.request('refresh', [{ type: 'lifetime', value: 0 }])).class).toBe('success')
    expect(routes()).toBe(before)
  })

  it('keeps relaying while CreatePermission refreshes the permission, and stops once it expires', async () => {
    const { client, peer, relayed } = await setUp({ permissionLifetime: 0.4, channelLifetime: 5 })
    await client.request('channel-bind', [{ type: 'channel-number', value: 0x4000 }, { type: 'xor-peer-address', value: peer.address }])
    await sleep(250)
    await client.request('create-permission', [{ type: 'xor-peer-address', value: peer.address }])
    await sleep(250)
    // 500 ms after the ChannelBind: alive only because the permission was refreshed.
    client.sendChannelData(0x4000, Buffer.from('refreshed'))
    peer.send(Buffer.from('refreshed back'), relayed)
    await peer.waitReceived(1)
    await client.waitReceived(1)
    expect(peer.received.map((r) => r.data.toString())).toEqual(['refreshed'])
    expect(client.received.map((r) => r.data.toString())).toEqual(['refreshed back'])
    await sleep(450)
    client.sendChannelData(0x4000, Buffer.from('expired'))
    peer.send(Buffer.from('expired back'), relayed)
    await sleep(150)
    expect(peer.received).toHaveLength(1)
    expect(client.received).toHaveLength(1)
  })

  it('drops ChannelData shorter than its length field, or on an unbound channel, and keeps relaying', async () => {
    const { server, client, peer } = await setUp()
    await client.request('channel-bind', [{ type: 'channel-number', value: 0x4001 }, { type: 'xor-peer-address', value: peer.address }])
    const short = Buffer.from([0x40, 0x01, 0x01, 0x00, 1, 2, 3]) // says 256 bytes, carries 3
    client.sendRaw(short)
    client.sendRaw(Buffer.from([0x40, 0x01])) // no length at all
    client.sendChannelData(0x4002, Buffer.from('unbound'))
    client.sendChannelData(0x4001, Buffer.from('after'))
    await peer.waitReceived(1)
    await sleep(100)
    expect(peer.received.map((r) => r.data.toString())).toEqual(['after'])
    expect(server.stats.droppedPackets).toBeGreaterThanOrEqual(2)
  })

  it('survives random ChannelData-looking datagrams from a client with a bound channel, and from peers', async () => {
    const { client, peer, relayed } = await setUp()
    await client.request('channel-bind', [{ type: 'channel-number', value: 0x4001 }, { type: 'xor-peer-address', value: peer.address }])
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 1400 }), { minLength: 1, maxLength: 40 }),
        fc.uint8Array({ minLength: 0, maxLength: 1400 }),
        async (datagrams, fromPeer) => {
          // First byte 0x40–0x4F with the bound channel's second byte: exercises the fast path's checks.
          for (const d of datagrams) client.sendRaw(d.length >= 2 ? Buffer.from([0x40, 0x01, ...d.subarray(2)]) : d)
          peer.send(fromPeer, relayed)
        },
      ),
      { numRuns: 25 },
    )
    const marker = Buffer.from('still relaying')
    const seen = peer.received.length
    client.sendChannelData(0x4001, marker)
    await peer.waitReceived(seen + 1)
    expect(peer.received.at(-1)!.data).toEqual(marker)
  })

  it.skipIf(nativeUdpRelay === undefined)('ignores a route handle kept after its socket closed (the slot is reused)', async () => {
    const before = routes()
    const relay = TurnUdpSocket.bind('127.0.0.1', 0, 0, 'relay')
    const first = TurnUdpSocket.bind('127.0.0.1', 0, 0, 'listener')
    const second = TurnUdpSocket.bind('127.0.0.1', 0, 0, 'listener')
    const client = { host: '127.0.0.1', port: 40000 }
    const peer = { host: '127.0.0.1', port: 40001 }
    try {
      const stale = first.addChannelRoute(client, 0x4000, relay, peer, 60_000)
      expect(stale).toBeGreaterThan(0)
      await first.close() // drops its routes
      expect(routes()).toBe(before)
      const current = second.addChannelRoute(client, 0x4000, relay, peer, 60_000)
      expect(current).not.toBe(stale)
      TurnUdpSocket.removeChannelRoute(stale)
      TurnUdpSocket.refreshChannelRoute(stale, 0)
      expect(routes()).toBe(before + 1)
      TurnUdpSocket.removeChannelRoute(current)
      expect(routes()).toBe(before)
      // A listening socket cannot be a relay, nor a relay a listener.
      expect(second.addChannelRoute(client, 0x4000, second, peer, 60_000)).toBe(0)
      expect(relay.addChannelRoute(client, 0x4000, relay, peer, 60_000)).toBe(0)
    } finally {
      await Promise.all([first.close(), second.close(), relay.close()])
    }
  })

  it('leaves no route behind when the server closes with channels bound', async () => {
    const before = routes()
    const { server, client, peer } = await setUp()
    await client.request('channel-bind', [{ type: 'channel-number', value: 0x4000 }, { type: 'xor-peer-address', value: peer.address }])
    await server.close()
    expect(routes()).toBe(before)
  })
})
