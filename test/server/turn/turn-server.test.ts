import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSelfSignedCertificate } from '../../../src/server/tls.js'
import { TurnServer } from '../../../src/server/turn/turn-server.js'
import type { TurnServerOptions } from '../../../src/server/turn/turn-server-options.js'
import {
  createTransactionId,
  encodeStunMessage,
  getAttribute,
  getAttributes,
  longTermKey,
  verifyMessageIntegrity,
  type TransportAddress,
} from '../../../src/stun/index.js'
import { randomPortRange } from './coturn-tools.js'
import { TestPeer, TestTurnClient, errorCode, sleep } from './turn-test-client.js'

const USER = { name: 'alice', password: 'alice-password' }
const REALM = 'peerlink.test'

async function start(options: TurnServerOptions = {}): Promise<{ server: TurnServer; udp: TransportAddress; tcp: TransportAddress }> {
  const server = await TurnServer.listen({
    listeningIps: ['127.0.0.1'],
    listeningPort: 0,
    relayIps: ['127.0.0.1'],
    ...randomPortRange(200),
    realm: REALM,
    users: [USER, 'bob:bob-password'],
    ...options,
  })
  const udp = server.addresses.find((a) => a.transport === 'udp' && a.family === 'IPv4')!
  const tcp = server.addresses.find((a) => a.transport === 'tcp' && a.family === 'IPv4')!
  return { server, udp, tcp }
}

describe('TurnServer over UDP', () => {
  let server: TurnServer
  let udp: TransportAddress
  const clients: TestTurnClient[] = []
  const peers: TestPeer[] = []
  const client = async (): Promise<TestTurnClient> => {
    const c = (await TestTurnClient.udp(udp)).useCredentials(USER.name, USER.password)
    clients.push(c)
    return c
  }
  const peer = async (): Promise<TestPeer> => {
    const p = await TestPeer.create()
    peers.push(p)
    return p
  }

  beforeAll(async () => {
    ;({ server, udp } = await start({ allowLoopbackPeers: true }))
  })
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await Promise.all(peers.map((p) => p.close()))
    await server.close()
  })

  it('answers STUN Binding without credentials', async () => {
    const c = await TestTurnClient.udp(udp)
    clients.push(c)
    const response = await c.request('binding')
    expect(response.class).toBe('success')
    expect(getAttribute(response, 'xor-mapped-address')?.value).toEqual(c.localAddress)
  })

  it('challenges an unauthenticated Allocate with 401, REALM and NONCE', async () => {
    const c = await TestTurnClient.udp(udp)
    clients.push(c)
    const response = await c.allocate()
    expect(errorCode(response)).toBe(401)
    expect(getAttribute(response, 'realm')?.value).toBe(REALM)
    expect(getAttribute(response, 'nonce')?.value).toMatch(/^[0-9a-f]{8}[A-Za-z0-9_-]{22}$/)
    expect(response.integrityOffset).toBeUndefined()
  })

  it('allocates a relayed address with long-term credentials', async () => {
    const c = await client()
    const response = await c.allocate()
    expect(response.class).toBe('success')
    const relayed = getAttribute(response, 'xor-relayed-address')!.value
    expect(relayed.host).toBe('127.0.0.1')
    expect(getAttribute(response, 'lifetime')?.value).toBe(600)
    expect(getAttribute(response, 'xor-mapped-address')?.value).toEqual(c.localAddress)
    expect(verifyMessageIntegrity(response, longTermKey(USER.name, REALM, USER.password))).toBe(true)
    expect(server.allocationCount).toBeGreaterThanOrEqual(1)
  })

  it('answers a retransmitted Allocate with the same response and another Allocate with 437', async () => {
    const c = await client()
    const first = await c.allocate()
    expect(first.class).toBe('success')
    // the same request again (same transaction ID): RFC 8656 §7.2 says same answer
    const again = await c.transact(
      { method: 'allocate', class: 'request', transactionId: first.transactionId, attributes: [{ type: 'requested-transport', value: 17 }, ...c.authAttributes()] },
      { integrity: c.key },
    )
    expect(Buffer.from(again!.raw)).toEqual(Buffer.from(first.raw))
    const other = await c.allocate()
    expect(errorCode(other)).toBe(437)
  })

  it('refuses a wrong password with 401 and a fresh challenge', async () => {
    const failures = server.stats.authFailures
    const c = (await client()).useCredentials(USER.name, 'wrong')
    const response = await c.allocate()
    expect(errorCode(response)).toBe(401)
    expect(getAttribute(response, 'realm')?.value).toBe(REALM)
    expect(getAttribute(response, 'nonce')).toBeDefined()
    expect(server.stats.authFailures).toBe(failures + 1)
  })

  it('answers a forged nonce with 438 Stale Nonce and a new nonce', async () => {
    const c = await client()
    await c.request('binding')
    c.realm = REALM
    c.nonce = '00000001' + 'A'.repeat(22) // long expired and not ours
    const response = await c.transact(
      { method: 'allocate', class: 'request', transactionId: createTransactionId(), attributes: [{ type: 'requested-transport', value: 17 }, ...c.authAttributes()] },
      { integrity: c.key },
    )
    expect(errorCode(response!)).toBe(438)
    expect(getAttribute(response!, 'nonce')?.value).not.toBe(c.nonce)
    expect(getAttribute(response!, 'realm')?.value).toBe(REALM)
  })

  it('checks REQUESTED-TRANSPORT (400, 442) and the address family (440)', async () => {
    const c = await client()
    expect(errorCode(await c.request('allocate'))).toBe(400)
    expect(errorCode(await c.allocate([]).then(() => c.request('allocate', [{ type: 'requested-transport', value: 6 }])))).toBe(437)
    const d = await client()
    expect(errorCode(await d.request('allocate', [{ type: 'requested-transport', value: 6 }]))).toBe(442)
    expect(errorCode(await d.allocate([{ type: 'requested-address-family', value: 'IPv6' }]))).toBe(440)
    expect(errorCode(await d.allocate([{ type: 'requested-address-family', value: 'IPv4' }, { type: 'additional-address-family', value: 'IPv6' }]))).toBe(400)
  })

  it('answers a dual allocation without an IPv6 relay with ADDRESS-ERROR-CODE 440', async () => {
    const c = await client()
    const response = await c.allocate([{ type: 'additional-address-family', value: 'IPv6' }])
    expect(response.class).toBe('success')
    expect(getAttributes(response, 'xor-relayed-address')).toHaveLength(1)
    expect(getAttribute(response, 'address-error-code')?.value).toMatchObject({ family: 'IPv6', code: 440 })
  })

  it('refreshes with the lifetime capped and deletes with LIFETIME 0', async () => {
    const c = await client()
    await c.allocate()
    let response = await c.request('refresh', [{ type: 'lifetime', value: 100_000 }])
    expect(getAttribute(response, 'lifetime')?.value).toBe(3600)
    response = await c.request('refresh', [{ type: 'lifetime', value: 30 }])
    expect(getAttribute(response, 'lifetime')?.value).toBe(600)
    const count = server.allocationCount
    response = await c.request('refresh', [{ type: 'lifetime', value: 0 }])
    expect(response.class).toBe('success')
    await sleep(20)
    expect(server.allocationCount).toBe(count - 1)
    expect(errorCode(await c.request('refresh'))).toBe(437)
  })

  it('relays Send indications to permitted peers and Data indications back', async () => {
    const c = await client()
    const p = await peer()
    const stranger = await peer()
    const relayed = getAttribute(await c.allocate(), 'xor-relayed-address')!.value
    // no permission yet: dropped
    c.sendIndication(p.address, Buffer.from('too early'))
    expect((await c.request('create-permission', [{ type: 'xor-peer-address', value: p.address }])).class).toBe('success')
    c.sendIndication(p.address, Buffer.from('hello peer'))
    await p.waitReceived(1)
    expect(p.received.map((r) => r.data.toString())).toEqual(['hello peer'])
    expect(p.received[0]!.from.port).toBe(relayed.port)
    p.send(Buffer.from('hello client'), relayed)
    stranger.send(Buffer.from('not permitted'), relayed) // same IP as p: permissions are per IP, so it passes
    const got = await c.waitReceived(2)
    expect(got.map((r) => r.kind)).toEqual(['data-indication', 'data-indication'])
    expect(got.map((r) => r.data.toString()).sort()).toEqual(['hello client', 'not permitted'])
    expect(got.find((r) => r.data.toString() === 'hello client')!.peer).toEqual(p.address)
  })

  it('drops peer data from IPs without a permission', async () => {
    const c = await client()
    const p = await peer()
    const relayed = getAttribute(await c.allocate(), 'xor-relayed-address')!.value
    await c.request('create-permission', [{ type: 'xor-peer-address', value: { family: 'IPv4', host: '127.0.0.2', port: 9 } }])
    const dropped = server.stats.droppedPackets
    p.send(Buffer.from('from 127.0.0.1'), relayed)
    await sleep(100)
    expect(c.received).toHaveLength(0)
    expect(server.stats.droppedPackets).toBeGreaterThan(dropped)
  })

  it('binds channels and relays ChannelData both ways (RFC 5766 numbers too)', async () => {
    const c = await client()
    const p = await peer()
    const relayed = getAttribute(await c.allocate(), 'xor-relayed-address')!.value
    for (const channel of [0x4001, 0x7abc]) {
      const other = channel === 0x4001 ? p : await peer()
      expect((await c.request('channel-bind', [{ type: 'channel-number', value: channel }, { type: 'xor-peer-address', value: other.address }])).class).toBe('success')
      c.sendChannelData(channel, Buffer.from(`via ${channel}`))
      await other.waitReceived(1)
      expect(other.received.at(-1)!.data.toString()).toBe(`via ${channel}`)
      other.send(Buffer.from(`back ${channel}`), relayed)
    }
    const got = await c.waitReceived(2)
    expect(got.map((r) => [r.kind, r.channel, r.data.toString()])).toEqual([
      ['channel-data', 0x4001, 'back 16385'],
      ['channel-data', 0x7abc, 'back 31420'],
    ])
  })

  it('enforces the channel binding rules with 400', async () => {
    const c = await client()
    const p = await peer()
    const q = await peer()
    await c.allocate()
    const bind = (channel: number, address: TransportAddress) =>
      c.request('channel-bind', [{ type: 'channel-number', value: channel }, { type: 'xor-peer-address', value: address }]).then(errorCode)
    expect(await bind(0x3fff, p.address)).toBe(400)
    expect(await bind(0x8000, p.address)).toBe(400)
    expect(await bind(0x4000, p.address)).toBeUndefined()
    expect(await bind(0x4000, p.address)).toBeUndefined() // refresh
    expect(await bind(0x4000, q.address)).toBe(400) // number bound to another peer
    expect(await bind(0x4002, p.address)).toBe(400) // peer bound to another number
    expect(errorCode(await c.request('channel-bind', [{ type: 'channel-number', value: 0x4003 }]))).toBe(400)
  })

  it('answers requests signed by another user with 441', async () => {
    const c = await client()
    await c.allocate()
    c.useCredentials('bob', 'bob-password')
    expect(errorCode(await c.request('refresh'))).toBe(441)
  })

  it('answers requests without an allocation with 437', async () => {
    const c = await client()
    expect(errorCode(await c.request('create-permission', [{ type: 'xor-peer-address', value: { family: 'IPv4', host: '127.0.0.1', port: 1 } }]))).toBe(437)
  })

  it('answers unknown comprehension-required attributes with 420', async () => {
    const c = await client()
    const response = await c.allocate([{ type: 'unknown', code: 0x7777, value: new Uint8Array(4) }])
    expect(errorCode(response)).toBe(420)
    expect(getAttribute(response, 'unknown-attributes')?.value).toEqual([0x7777])
  })

  it('allocates an even port and reserves the next one (EVEN-PORT, RESERVATION-TOKEN)', async () => {
    const c = await client()
    const first = await c.allocate([{ type: 'even-port', value: { reserve: true } }])
    const port = getAttribute(first, 'xor-relayed-address')!.value.port
    expect(port % 2).toBe(0)
    const token = getAttribute(first, 'reservation-token')?.value
    expect(token).toHaveLength(8)
    const d = await client()
    const second = await d.allocate([{ type: 'reservation-token', value: token! }])
    expect(getAttribute(second, 'xor-relayed-address')!.value.port).toBe(port + 1)
    const e = await client()
    expect(errorCode(await e.allocate([{ type: 'reservation-token', value: token! }]))).toBe(508)
    expect(errorCode(await e.allocate([{ type: 'reservation-token', value: token! }, { type: 'even-port', value: { reserve: false } }]))).toBe(400)
  })

  it('relays to the IPv4 relay only: an IPv6 peer gets 443', async () => {
    const c = await client()
    await c.allocate()
    const response = await c.request('create-permission', [{ type: 'xor-peer-address', value: { family: 'IPv6', host: '2a00:1450::1', port: 1 } }])
    expect(errorCode(response)).toBe(443)
  })

  it('ignores garbage and keeps serving', async () => {
    const c = await client()
    c.sendRaw(Buffer.from('definitely not STUN'))
    c.sendRaw(new Uint8Array(0))
    c.sendRaw(Buffer.from([0x40, 0x00, 0xff, 0xff]))
    expect((await c.request('binding')).class).toBe('success')
  })
})

describe('TurnServer peer address policy (defaults)', () => {
  const forbidden: TransportAddress[] = [
    { family: 'IPv4', host: '127.0.0.1', port: 5000 },
    { family: 'IPv4', host: '0.0.0.0', port: 5000 },
    { family: 'IPv6', host: '::1', port: 5000 },
    { family: 'IPv6', host: '::ffff:127.0.0.1', port: 5000 },
    { family: 'IPv4', host: '169.254.169.254', port: 80 },
    { family: 'IPv4', host: '10.0.0.1', port: 5000 },
  ]

  const cases: [string, TurnServerOptions, boolean][] = [
    ['default', {}, false],
    ['allowed-peer-ip', { allowedPeerIps: ['0.0.0.0-0.255.255.255', '10.0.0.0/8', '169.254.169.254', '127.0.0.0/8', '::1'] }, true],
  ]
  for (const [name, options, allowed] of cases) {
    it(`${allowed ? 'allows' : 'refuses with 403'} CreatePermission and ChannelBind toward loopback, 0.0.0.0, ::1, ::ffff:127.0.0.1, 169.254.169.254, 10.0.0.1 (${name})`, async () => {
      const { server, udp } = await start({ relayIps: ['127.0.0.1', '::1'], ...options })
      const c = (await TestTurnClient.udp(udp)).useCredentials(USER.name, USER.password)
      try {
        const allocation = await c.allocate([{ type: 'additional-address-family', value: 'IPv6' }])
        expect(getAttributes(allocation, 'xor-relayed-address').map((a) => a.value.family)).toEqual(['IPv4', 'IPv6'])
        let channel = 0x4000
        for (const peer of forbidden) {
          const permission = await c.request('create-permission', [{ type: 'xor-peer-address', value: peer }])
          const bind = await c.request('channel-bind', [{ type: 'channel-number', value: channel++ }, { type: 'xor-peer-address', value: peer }])
          expect([peer.host, errorCode(permission), errorCode(bind)]).toEqual([peer.host, allowed ? undefined : 403, allowed ? undefined : 403])
        }
        expect(server.stats.forbidden).toBe(allowed ? 0 : 2 * forbidden.length)
      } finally {
        await c.close()
        await server.close()
      }
    })
  }

  it('allows loopback peers with allowLoopbackPeers but still refuses the rest', async () => {
    const { server, udp } = await start({ allowLoopbackPeers: true })
    const c = (await TestTurnClient.udp(udp)).useCredentials(USER.name, USER.password)
    try {
      await c.allocate()
      const ok = await c.request('create-permission', [{ type: 'xor-peer-address', value: { family: 'IPv4', host: '127.0.0.1', port: 1 } }])
      expect(errorCode(ok)).toBeUndefined()
      const refused = await c.request('create-permission', [{ type: 'xor-peer-address', value: { family: 'IPv4', host: '169.254.169.254', port: 80 } }])
      expect(errorCode(refused)).toBe(403)
      // all or nothing: one forbidden address refuses the whole request
      const mixed = await c.request('create-permission', [
        { type: 'xor-peer-address', value: { family: 'IPv4', host: '127.0.0.2', port: 1 } },
        { type: 'xor-peer-address', value: { family: 'IPv4', host: '192.168.1.1', port: 1 } },
      ])
      expect(errorCode(mixed)).toBe(403)
    } finally {
      await c.close()
      await server.close()
    }
  })
})

describe('TurnServer limits', () => {
  it('answers 508 when the relay port range is exhausted', async () => {
    const { server, udp } = await start({ ...randomPortRange(2) })
    const clients = await Promise.all([0, 1, 2].map(async () => (await TestTurnClient.udp(udp)).useCredentials(USER.name, USER.password)))
    try {
      const codes: (number | undefined)[] = []
      for (const c of clients) codes.push(errorCode(await c.allocate()))
      expect(codes).toEqual([undefined, undefined, 508])
      expect(server.stats.capacityRejections).toBe(1)
      // freeing one port makes room again
      await clients[0]!.request('refresh', [{ type: 'lifetime', value: 0 }])
      await sleep(20)
      expect(errorCode(await clients[2]!.allocate())).toBeUndefined()
    } finally {
      await Promise.all(clients.map((c) => c.close()))
      await server.close()
    }
  })

  it('answers 486 past the user quota and the total quota', async () => {
    const { server, udp } = await start({ userQuota: 1, totalQuota: 2 })
    const a1 = (await TestTurnClient.udp(udp)).useCredentials(USER.name, USER.password)
    const a2 = (await TestTurnClient.udp(udp)).useCredentials(USER.name, USER.password)
    const b1 = (await TestTurnClient.udp(udp)).useCredentials('bob', 'bob-password')
    const c1 = (await TestTurnClient.udp(udp)).useCredentials('bob', 'bob-password')
    try {
      expect(errorCode(await a1.allocate())).toBeUndefined()
      expect(errorCode(await a2.allocate())).toBe(486) // alice's quota
      expect(errorCode(await b1.allocate())).toBeUndefined()
      expect(errorCode(await c1.allocate())).toBe(486) // total quota (and bob's)
      expect(server.stats.quotaRejections).toBe(2)
    } finally {
      await Promise.all([a1, a2, b1, c1].map((c) => c.close()))
      await server.close()
    }
  })

  it('caps permissions per allocation with 508', async () => {
    const { server, udp } = await start({ maxPermissionsPerAllocation: 2, allowLoopbackPeers: true })
    const c = (await TestTurnClient.udp(udp)).useCredentials(USER.name, USER.password)
    const peer = (host: string): { type: 'xor-peer-address'; value: TransportAddress } => ({ type: 'xor-peer-address', value: { family: 'IPv4', host, port: 1 } })
    try {
      await c.allocate()
      expect(errorCode(await c.request('create-permission', [peer('127.0.0.1'), peer('127.0.0.2')]))).toBeUndefined()
      expect(errorCode(await c.request('create-permission', [peer('127.0.0.1')]))).toBeUndefined() // a refresh
      expect(errorCode(await c.request('create-permission', [peer('127.0.0.3')]))).toBe(508)
      expect(errorCode(await c.request('channel-bind', [{ type: 'channel-number', value: 0x4000 }, peer('127.0.0.4')]))).toBe(508)
    } finally {
      await c.close()
      await server.close()
    }
  })

  it('limits the bandwidth of an allocation with maxBps', async () => {
    const { server, udp } = await start({ maxBps: 3000, allowLoopbackPeers: true })
    const c = (await TestTurnClient.udp(udp)).useCredentials(USER.name, USER.password)
    const p = await TestPeer.create()
    try {
      await c.allocate()
      await c.request('channel-bind', [{ type: 'channel-number', value: 0x4000 }, { type: 'xor-peer-address', value: p.address }])
      for (let i = 0; i < 20; i++) c.sendChannelData(0x4000, Buffer.alloc(1000, i))
      await sleep(200)
      expect(p.received.length).toBeGreaterThanOrEqual(2)
      expect(p.received.length).toBeLessThanOrEqual(4)
    } finally {
      await c.close()
      await p.close()
      await server.close()
    }
  })

  it('expires permissions, channels and allocations', async () => {
    const { server, udp } = await start({ permissionLifetime: 0.3, channelLifetime: 0.3, defaultAllocateLifetime: 0.6, allowLoopbackPeers: true })
    const c = (await TestTurnClient.udp(udp)).useCredentials(USER.name, USER.password)
    const p = await TestPeer.create()
    try {
      const relayed = getAttribute(await c.allocate(), 'xor-relayed-address')!.value
      await c.request('channel-bind', [{ type: 'channel-number', value: 0x4000 }, { type: 'xor-peer-address', value: p.address }])
      p.send(Buffer.from('in time'), relayed)
      await c.waitReceived(1)
      expect(c.received).toHaveLength(1)
      await sleep(600)
      p.send(Buffer.from('too late'), relayed)
      await sleep(100)
      expect(c.received).toHaveLength(1)
      await sleep(500)
      expect(server.allocationCount).toBe(0)
      expect(errorCode(await c.request('refresh'))).toBe(437)
    } finally {
      await c.close()
      await p.close()
      await server.close()
    }
  })

  it('rate-limits 401 answers per source IP', async () => {
    const { server, udp } = await start({ unauthorizedResponsesPerSecondPerIp: 1, unauthorizedResponsesBurstPerIp: 3 })
    const c = await TestTurnClient.udp(udp)
    try {
      const answers = await Promise.all(
        Array.from({ length: 10 }, () =>
          c.transact({ method: 'allocate', class: 'request', transactionId: createTransactionId(), attributes: [{ type: 'requested-transport', value: 17 }] }, { timeoutMs: 300, retransmit: false }),
        ),
      )
      expect(answers.filter((a) => a !== undefined).map((a) => errorCode(a!))).toEqual([401, 401, 401])
      expect(server.stats.rateLimited).toBe(7)
      // Binding is still answered
      expect((await c.request('binding')).class).toBe('success')
    } finally {
      await c.close()
      await server.close()
    }
  })

  it('serves only Binding in STUN-only mode', async () => {
    const { server, udp } = await start({ stunOnly: true })
    const c = (await TestTurnClient.udp(udp)).useCredentials(USER.name, USER.password)
    try {
      expect((await c.request('binding')).class).toBe('success')
      expect(errorCode(await c.allocate())).toBe(400)
    } finally {
      await c.close()
      await server.close()
    }
  })
})

describe('TurnServer with IPv6 relays', () => {
  it('allocates IPv6 and dual relayed addresses and relays to an IPv6 peer', async () => {
    const { server } = await start({ listeningIps: ['::1'], relayIps: ['127.0.0.1', '::1'], allowLoopbackPeers: true })
    const udp6 = server.addresses.find((a) => a.transport === 'udp')!
    const c = (await TestTurnClient.udp(udp6)).useCredentials(USER.name, USER.password)
    const d = (await TestTurnClient.udp(udp6)).useCredentials(USER.name, USER.password)
    const p = await TestPeer.create('::1')
    try {
      const single = await c.allocate([{ type: 'requested-address-family', value: 'IPv6' }])
      const relayed = getAttribute(single, 'xor-relayed-address')!.value
      expect(relayed.host).toBe('::1')
      const dual = await d.allocate([{ type: 'additional-address-family', value: 'IPv6' }])
      expect(getAttributes(dual, 'xor-relayed-address').map((a) => a.value.host)).toEqual(['127.0.0.1', '::1'])
      await c.request('create-permission', [{ type: 'xor-peer-address', value: p.address }])
      c.sendIndication(p.address, Buffer.from('over v6'))
      await p.waitReceived(1)
      expect(p.received[0]!.data.toString()).toBe('over v6')
      p.send(Buffer.from('v6 back'), relayed)
      const [got] = await c.waitReceived(1)
      expect(got!.peer).toEqual(p.address)
      // dropping the IPv6 half of the dual allocation
      expect((await d.request('refresh', [{ type: 'lifetime', value: 0 }, { type: 'requested-address-family', value: 'IPv6' }])).class).toBe('success')
      expect(errorCode(await d.request('refresh', [{ type: 'requested-address-family', value: 'IPv6' }]))).toBe(443)
      expect(errorCode(await d.request('refresh', [{ type: 'requested-address-family', value: 'IPv4' }]))).toBeUndefined()
    } finally {
      await Promise.all([c.close(), d.close(), p.close()])
      await server.close()
    }
  })
})

describe('TurnServer over TCP', () => {
  it('allocates, relays padded ChannelData and Data indications, and frees the allocation on close', async () => {
    const { server, tcp } = await start({ allowLoopbackPeers: true })
    const c = (await TestTurnClient.tcp(tcp)).useCredentials(USER.name, USER.password)
    const p = await TestPeer.create()
    try {
      expect((await c.request('binding')).class).toBe('success')
      const relayed = getAttribute(await c.allocate(), 'xor-relayed-address')!.value
      await c.request('channel-bind', [{ type: 'channel-number', value: 0x4000 }, { type: 'xor-peer-address', value: p.address }])
      c.sendChannelData(0x4000, Buffer.from('abcde')) // 5 bytes, padded to 8
      c.sendChannelData(0x4000, Buffer.from('fg'))
      c.sendIndication(p.address, Buffer.from('send-indication'))
      await p.waitReceived(3)
      expect(p.received.map((r) => r.data.toString())).toEqual(['abcde', 'fg', 'send-indication'])
      p.send(Buffer.from('xyz'), relayed)
      const [got] = await c.waitReceived(1)
      expect(got!.raw).toHaveLength(8) // 4 header + 3 data + 1 padding (RFC 8656 §12.5)
      expect([got!.kind, got!.data.toString()]).toEqual(['channel-data', 'xyz'])
      expect(server.stats.connections).toBe(1)
      await c.close()
      await sleep(50)
      expect(server.allocationCount).toBe(0)
      expect(server.stats.connections).toBe(0)
    } finally {
      await c.close()
      await p.close()
      await server.close()
    }
  })

  it('closes a connection that sends neither STUN nor ChannelData, and keeps serving', async () => {
    const { server, tcp } = await start()
    const bad = await TestTurnClient.tcp(tcp)
    const good = await TestTurnClient.tcp(tcp)
    try {
      bad.sendRaw(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])) // a TLS ClientHello: STUN length 0x0102 is not a multiple of 4
      await bad.waitReceived(1, 1000)
      expect(bad.streamClosed).toBe(true)
      expect((await good.request('binding')).class).toBe('success')
    } finally {
      await bad.close()
      await good.close()
      await server.close()
    }
  })

  it('closes every connection and allocation on close()', async () => {
    const { server, tcp, udp } = await start()
    const t = (await TestTurnClient.tcp(tcp)).useCredentials(USER.name, USER.password)
    const u = (await TestTurnClient.udp(udp)).useCredentials(USER.name, USER.password)
    await t.allocate()
    await u.allocate()
    expect(server.allocationCount).toBe(2)
    await server.close()
    expect(server.allocationCount).toBe(0)
    await t.waitReceived(1, 1000)
    expect(t.streamClosed).toBe(true)
    expect(await u.transact({ method: 'binding', class: 'request', transactionId: createTransactionId(), attributes: [] }, { timeoutMs: 200 })).toBeUndefined()
    await t.close()
    await u.close()
    await server.close() // idempotent
  })
})

describe('TurnServer raw encodings', () => {
  it('accepts unpadded ChannelData over UDP and a padded one', async () => {
    const { server, udp } = await start({ allowLoopbackPeers: true })
    const c = (await TestTurnClient.udp(udp)).useCredentials(USER.name, USER.password)
    const p = await TestPeer.create()
    try {
      await c.allocate()
      await c.request('channel-bind', [{ type: 'channel-number', value: 0x4000 }, { type: 'xor-peer-address', value: p.address }])
      c.sendChannelData(0x4000, Buffer.from('abc'), false)
      c.sendChannelData(0x4000, Buffer.from('def'), true)
      // a length longer than the datagram is discarded (RFC 8656 §12.5)
      c.sendRaw(Buffer.from([0x40, 0x00, 0x00, 0x10, 1, 2, 3, 4]))
      await p.waitReceived(2)
      await sleep(50)
      expect(p.received.map((r) => r.data.toString())).toEqual(['abc', 'def'])
      // a Send indication with an unknown comprehension-required attribute is discarded
      c.sendRaw(
        encodeStunMessage({
          method: 'send',
          class: 'indication',
          transactionId: createTransactionId(),
          attributes: [
            { type: 'xor-peer-address', value: p.address },
            { type: 'data', value: Buffer.from('nope') },
            { type: 'unknown', code: 0x7001, value: new Uint8Array(0) },
          ],
        }),
      )
      await sleep(50)
      expect(p.received).toHaveLength(2)
    } finally {
      await c.close()
      await p.close()
      await server.close()
    }
  })
})

describe('TurnServer over TLS', () => {
  it('serves TURN on the TLS port and on an extra TLS port', async () => {
    const { cert, key } = createSelfSignedCertificate()
    const { server } = await start({ tls: { cert, key }, tlsListeningPort: 0, extraTlsListeningPorts: [0], allowLoopbackPeers: true })
    const tlsAddresses = server.addresses.filter((a) => a.transport === 'tls')
    expect(tlsAddresses).toHaveLength(2)
    const p = await TestPeer.create()
    const clients = await Promise.all(tlsAddresses.map(async (a) => (await TestTurnClient.tls(a)).useCredentials(USER.name, USER.password)))
    try {
      for (const c of clients) {
        const relayed = getAttribute(await c.allocate(), 'xor-relayed-address')!.value
        await c.request('create-permission', [{ type: 'xor-peer-address', value: p.address }])
        c.sendIndication(p.address, Buffer.from('over tls'))
        p.send(Buffer.from('to tls'), relayed)
        const [got] = await c.waitReceived(1)
        expect([got!.kind, got!.data.toString()]).toEqual(['data-indication', 'to tls'])
      }
      await p.waitReceived(2)
      expect(p.received.map((r) => r.data.toString())).toEqual(['over tls', 'over tls'])
    } finally {
      await Promise.all(clients.map((c) => c.close()))
      await p.close()
      await server.close()
    }
  })

  it('rejects unusable TLS material at once', async () => {
    await expect(start({ tls: { cert: 'not a cert', key: 'not a key' }, tlsListeningPort: 0 })).rejects.toThrow(/tls\.cert/)
  })
})
