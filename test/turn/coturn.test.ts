import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createServer, type Socket as NetSocket } from 'node:net'
import {
  AbortError,
  CertificatePinMismatchError,
  ConnectFailedError,
  SocketClosedError,
  StunErrorResponseError,
  TurnAuthError,
} from '../../src/errors.js'
import { StunClient, createDgramEndpoint } from '../../src/stun/index.js'
import { PeerSocket } from '../../src/transport/peer-socket.js'
import { LongTermAuthSession } from '../../src/turn/long-term-auth.js'
import { TurnClient, turnRestCredentials, type TurnRefreshEvent } from '../../src/turn/index.js'
import { startCoturn, type Coturn } from '../helpers/coturn.js'
import { bytes, closeSocket, exchange, nextData, recordingEndpoint, udpSocket } from './helpers.js'

const REALM = 'peerlink.test'
const alice = { username: 'alice', password: 'wonderland' }
const SECRET = 'rest-api-shared-secret'

describe('TurnClient against coturn (long-term credentials, UDP/TCP/TLS)', () => {
  let coturn: Coturn
  beforeAll(async () => {
    coturn = await startCoturn({
      tls: true,
      extra: [
        'lt-cred-mech',
        `user=${alice.username}:${alice.password}`,
        `realm=${REALM}`,
        // Short nonce and allocation lifetimes so 438 and refreshes happen within the test.
        'stale-nonce=2',
        'max-allocate-lifetime=3',
        'denied-peer-ip=127.0.0.200',
        'verbose',
      ],
    })
  })
  afterAll(async () => {
    await coturn?.stop()
  })

  it('UDP from a plain dgram socket: allocate, permission, Send/Data indications, then a channel (ChannelData both ways)', async () => {
    const socket = await udpSocket()
    const peer = await udpSocket()
    const { endpoint, sent, received } = recordingEndpoint(socket)
    const client = await TurnClient.connect({ server: `turn:127.0.0.1:${coturn.port}?transport=udp`, endpoint, credentials: alice })
    try {
      const allocation = await client.allocate()
      expect(allocation.mapped).toEqual({ family: 'IPv4', host: '127.0.0.1', port: socket.address().port })
      expect(allocation.relayed.host).toBe('127.0.0.1')
      expect(allocation.relayed.port).toBeGreaterThan(0)
      expect(allocation.lifetime).toBeGreaterThan(0)
      expect(allocation.realm).toBe(REALM)
      expect(client.state).toBe('allocated')

      await client.createPermission('127.0.0.1')
      expect(client.hasPermission('127.0.0.1')).toBe(true)
      const before = { sent: sent.length, received: received.length }
      await exchange(client, peer, bytes(33))
      // Send indication out, Data indication in: STUN (first byte < 0x40), no ChannelData.
      expect(sent.slice(before.sent).every((b) => b < 0x40)).toBe(true)
      expect(received.slice(before.received).every((b) => b < 0x40)).toBe(true)

      const peerAddress = { host: '127.0.0.1', port: peer.address().port }
      const channel = await client.bindChannel(peerAddress)
      expect(channel).toBeGreaterThanOrEqual(0x4000)
      expect(channel).toBeLessThanOrEqual(0x4fff)
      expect(await client.bindChannel(peerAddress)).toBe(channel) // same peer, same channel
      expect(client.channelOf(peerAddress)).toBe(channel)
      const mark = { sent: sent.length, received: received.length }
      await exchange(client, peer, bytes(5, 9))
      expect(sent.slice(mark.sent)).toContain(channel >> 8)
      expect(received.slice(mark.received)).toContain(channel >> 8)
    } finally {
      await client.close()
      await closeSocket(peer)
    }
    // The socket was given, not owned: still open and usable.
    expect(() => socket.address()).not.toThrow()
    await closeSocket(socket)
  })

  it('UDP from the peer\'s one PeerSocket: ChannelData reaches the client through the demultiplexer', async () => {
    const socket = await PeerSocket.bind({ host: '127.0.0.1' })
    const peer = await udpSocket()
    try {
      const client = await TurnClient.connect({ server: { host: '127.0.0.1', port: coturn.port }, transport: 'udp', endpoint: socket, credentials: alice })
      try {
        const { mapped } = await client.allocate()
        expect(mapped).toEqual({ family: 'IPv4', host: '127.0.0.1', port: socket.port })
        await client.createPermission({ host: '127.0.0.1' })
        await exchange(client, peer, bytes(100))
        const stunBefore = socket.stats.stunDatagrams
        expect(stunBefore).toBeGreaterThan(0)
        await client.bindChannel({ host: '127.0.0.1', port: peer.address().port })
        const channelDataBefore = socket.stats.channelDataDatagrams
        await exchange(client, peer, bytes(7))
        expect(socket.stats.channelDataDatagrams).toBe(channelDataBefore + 1)
      } finally {
        await client.close()
      }
      expect(socket.closed).toBe(false)
    } finally {
      await closeSocket(peer)
      await socket.close()
    }
  })

  it('TCP: framing, padded ChannelData; close() closes the TCP socket it opened', async () => {
    const peer = await udpSocket()
    const client = await TurnClient.connect({ server: `turn:127.0.0.1:${coturn.port}?transport=tcp`, credentials: alice })
    try {
      expect(client.connection.transport).toBe('tcp')
      expect(client.connection.reliable).toBe(true)
      const { mapped } = await client.allocate()
      expect(mapped?.port).toBe(client.connection.localAddress()?.port)
      await client.createPermission(['127.0.0.1'])
      await exchange(client, peer, bytes(1))
      await exchange(client, peer, bytes(1201, 3))
      await client.bindChannel({ host: '127.0.0.1', port: peer.address().port })
      for (const n of [1, 2, 3, 4, 5, 1000]) await exchange(client, peer, bytes(n, n))
    } finally {
      await client.close()
      await closeSocket(peer)
    }
    expect(client.connection.closed).toBe(true)
    expect(client.state).toBe('closed')
  })

  it('TLS with a certificate pin (turns:HOST:PORT#CERT_HASH) and with CA validation', async () => {
    const peer = await udpSocket()
    try {
      const pinned = await TurnClient.connect({ server: `turns:127.0.0.1:${coturn.tlsPort}#${coturn.certHash}`, credentials: alice })
      try {
        expect(pinned.connection.transport).toBe('tls')
        await pinned.allocate()
        await pinned.createPermission('127.0.0.1')
        await exchange(pinned, peer, bytes(50))
        await pinned.bindChannel({ host: '127.0.0.1', port: peer.address().port })
        await exchange(pinned, peer, bytes(51))
      } finally {
        await pinned.close()
      }
      const validated = await TurnClient.connect({
        server: { host: '127.0.0.1', port: coturn.tlsPort as number },
        transport: 'tls',
        tls: { ca: coturn.certPem as string, servername: 'localhost' },
        credentials: alice,
      })
      try {
        await validated.allocate()
      } finally {
        await validated.close()
      }
    } finally {
      await closeSocket(peer)
    }
  })

  it('TLS refuses a wrong pin (ERR_CERT_PIN_MISMATCH) and an untrusted certificate (ERR_CONNECT_FAILED)', async () => {
    const wrongPin = 'A'.repeat(42) + 'A'
    const pin = TurnClient.connect({ server: `turns:127.0.0.1:${coturn.tlsPort}#${wrongPin}`, credentials: alice })
    await expect(pin).rejects.toBeInstanceOf(CertificatePinMismatchError)
    await expect(pin).rejects.toMatchObject({ code: 'ERR_CERT_PIN_MISMATCH', expected: wrongPin, actual: coturn.certHash })
    const untrusted = TurnClient.connect({ server: `turns:127.0.0.1:${coturn.tlsPort}`, credentials: alice })
    await expect(untrusted).rejects.toBeInstanceOf(ConnectFailedError)
  })

  it('a wrong password rejects with ERR_TURN_AUTH (UDP and TCP)', async () => {
    const socket = await udpSocket()
    try {
      for (const transport of ['udp', 'tcp'] as const) {
        const client = await TurnClient.connect({
          server: { host: '127.0.0.1', port: coturn.port },
          transport,
          endpoint: createDgramEndpoint(socket),
          credentials: { username: alice.username, password: 'not-the-password' },
        })
        try {
          const attempt = client.allocate()
          await expect(attempt).rejects.toBeInstanceOf(TurnAuthError)
          await expect(attempt).rejects.toMatchObject({ code: 'ERR_TURN_AUTH', errorCode: 401 })
          expect(client.state).toBe('idle')
        } finally {
          await client.close()
        }
      }
    } finally {
      await closeSocket(socket)
    }
  })

  it('a permission the server refuses rejects with its error response (403, 443), fast', async () => {
    const socket = await udpSocket()
    const client = await TurnClient.connect({ server: { host: '127.0.0.1', port: coturn.port }, endpoint: createDgramEndpoint(socket), credentials: alice })
    try {
      await client.allocate()
      await expect(client.createPermission('127.0.0.200')).rejects.toMatchObject({ code: 'ERR_STUN_ERROR_RESPONSE', errorCode: 403 })
      await expect(client.createPermission('::1')).rejects.toMatchObject({ errorCode: 443 })
      expect(client.hasPermission('127.0.0.200')).toBe(false)
      await expect(client.bindChannel({ host: '127.0.0.200', port: 9 })).rejects.toMatchObject({ errorCode: 403 })
      expect(client.channelOf({ host: '127.0.0.200', port: 9 })).toBeUndefined()
    } finally {
      await client.close()
      await closeSocket(socket)
    }
  })

  it('refreshes before the lifetime runs out, survives a stale nonce (438) transparently, and still relays', async () => {
    const socket = await udpSocket()
    const peer = await udpSocket()
    const client = await TurnClient.connect({ server: { host: '127.0.0.1', port: coturn.port }, endpoint: createDgramEndpoint(socket), credentials: alice })
    const refreshes: TurnRefreshEvent[] = []
    client.on('refresh', (e) => refreshes.push(e))
    try {
      const allocation = await client.allocate({ lifetime: 3 })
      expect(allocation.lifetime).toBe(3)
      const firstExpiry = client.expiresAt
      const stale438Before = (coturn.output().match(/error 438/g) ?? []).length
      // Past the granted lifetime and the 2 s nonce lifetime.
      await new Promise((r) => setTimeout(r, 3500))
      expect(refreshes.some((e) => e.kind === 'allocation')).toBe(true)
      expect(client.expiresAt).toBeGreaterThan(firstExpiry)
      expect(client.state).toBe('allocated')
      await client.createPermission('127.0.0.1')
      await exchange(client, peer, bytes(20))
      expect((coturn.output().match(/error 438/g) ?? []).length).toBeGreaterThan(stale438Before)
    } finally {
      await client.close()
      await closeSocket(peer)
      await closeSocket(socket)
    }
  })

  it('close() deallocates at the server (a later Refresh of that 5-tuple gets 437)', async () => {
    const socket = await udpSocket()
    const endpoint = createDgramEndpoint(socket)
    const server = { host: '127.0.0.1', port: coturn.port }
    const client = await TurnClient.connect({ server, endpoint, credentials: alice })
    const closed: Array<Error | undefined> = []
    client.on('close', (e) => closed.push(e))
    // A second, independent session on the same 5-tuple: it can refresh the allocation.
    const probe = new StunClient(endpoint)
    const session = new LongTermAuthSession({ transactions: probe.transactions, server, credentials: alice })
    try {
      await client.allocate()
      const refreshed = await session.request('refresh', [{ type: 'lifetime', value: 3 }])
      expect(refreshed.class).toBe('success')
      await client.close()
      expect(closed).toEqual([undefined])
      // coturn deletes a LIFETIME=0 allocation on its next 1 s timer tick; without the
      // deallocation it would live on for the 3 s the probe's Refresh just granted.
      const gone = `remote 127.0.0.1:${socket.address().port}, reason: allocation timeout`
      const deadline = Date.now() + 2000
      while (!coturn.output().includes(gone) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      expect(coturn.output()).toContain(gone)
      const after = session.request('refresh', [{ type: 'lifetime', value: 3 }])
      await expect(after).rejects.toBeInstanceOf(StunErrorResponseError)
      await expect(after).rejects.toMatchObject({ errorCode: 437 })
      // After close: network operations reject, misuse throws.
      await expect(client.refresh()).rejects.toBeInstanceOf(SocketClosedError)
      expect(() => client.send(bytes(1), { host: '127.0.0.1', port: 9 })).toThrow(SocketClosedError)
      await client.close() // idempotent
      expect(closed).toHaveLength(1)
    } finally {
      probe.close()
      await client.close()
      await closeSocket(socket)
    }
  })

  it('AbortSignal cancels allocate; close() during a pending request rejects it', async () => {
    const socket = await udpSocket()
    const silent = await udpSocket() // a "server" that never answers
    try {
      const client = await TurnClient.connect({ server: { host: '127.0.0.1', port: silent.address().port }, endpoint: createDgramEndpoint(socket), credentials: alice })
      const controller = new AbortController()
      const attempt = client.allocate({ signal: controller.signal })
      setTimeout(() => controller.abort(), 50)
      await expect(attempt).rejects.toBeInstanceOf(AbortError)
      expect(client.state).toBe('idle')
      const pending = client.allocate()
      await client.close()
      await expect(pending).rejects.toBeInstanceOf(SocketClosedError)
      await expect(TurnClient.connect({ server: `turn:127.0.0.1:${coturn.port}?transport=tcp`, credentials: alice, signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError)
    } finally {
      await closeSocket(silent)
      await closeSocket(socket)
    }
  })
})

describe('TurnClient against coturn (TURN REST API credentials)', () => {
  let coturn: Coturn
  beforeAll(async () => {
    coturn = await startCoturn({ turn: true, extra: ['use-auth-secret', `static-auth-secret=${SECRET}`, `realm=${REALM}`] })
  })
  afterAll(async () => {
    await coturn?.stop()
  })

  it('allocates and relays with credentials derived from the shared secret', async () => {
    const socket = await udpSocket()
    const peer = await udpSocket()
    const credentials = turnRestCredentials({ secret: SECRET, user: 'bob', ttl: 600 })
    const client = await TurnClient.connect({ server: { host: '127.0.0.1', port: coturn.port }, endpoint: createDgramEndpoint(socket), credentials })
    try {
      await client.allocate()
      await client.bindChannel({ host: '127.0.0.1', port: peer.address().port })
      await exchange(client, peer, bytes(64))
    } finally {
      await client.close()
      await closeSocket(peer)
      await closeSocket(socket)
    }
  })

  it('rejects credentials from another secret or already expired with ERR_TURN_AUTH', async () => {
    for (const credentials of [
      turnRestCredentials({ secret: 'another-secret', user: 'bob' }),
      turnRestCredentials({ secret: SECRET, user: 'bob', ttl: 60, now: Date.now() - 3_600_000 }),
    ]) {
      const client = await TurnClient.connect({ server: `turn:127.0.0.1:${coturn.port}?transport=tcp`, credentials })
      try {
        await expect(client.allocate()).rejects.toBeInstanceOf(TurnAuthError)
      } finally {
        await client.close()
      }
    }
  })
})

describe('TurnClient over a TCP connection that dies', () => {
  it('rejects the pending request and emits close with an error', async () => {
    const sockets = new Set<NetSocket>()
    const server = createServer((s) => {
      sockets.add(s)
      s.once('data', () => s.destroy()) // hang up on the first request
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    try {
      const port = (server.address() as { port: number }).port
      const client = await TurnClient.connect({ server: { host: '127.0.0.1', port }, transport: 'tcp', credentials: alice })
      const closed = new Promise<Error | undefined>((r) => client.once('close', r))
      await expect(client.allocate()).rejects.toBeInstanceOf(SocketClosedError)
      expect(await closed).toBeInstanceOf(SocketClosedError)
      expect(client.state).toBe('closed')
      expect(client.connection.closed).toBe(true)
      await client.close()
      const data = nextData(client, 10).catch((e: unknown) => e)
      expect(await data).toBeInstanceOf(Error)
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    }
  })

  it('a refused TCP connection rejects with ERR_CONNECT_FAILED', async () => {
    const server = createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const port = (server.address() as { port: number }).port
    await new Promise<void>((r) => server.close(() => r()))
    await expect(TurnClient.connect({ server: `turn:127.0.0.1:${port}?transport=tcp`, credentials: alice })).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED' })
  })
})
