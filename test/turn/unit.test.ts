import { describe, it, expect } from 'vitest'
import { execFileSync } from 'node:child_process'
import { createServer, type Socket as NetSocket } from 'node:net'
import { InvalidArgumentError, InvalidServerSpecError, StunTimeoutError } from '../../src/errors.js'
import { decodeStunMessage, getAttribute, isStunMessage, streamFrameLength } from '../../src/stun/index.js'
import { refreshDelay, allocateAttributes } from '../../src/turn/allocation.js'
import { ChannelBindingTable } from '../../src/turn/channel-bindings.js'
import { TurnClient, turnRestCredentials, udpTurnConnection } from '../../src/turn/index.js'
import { closeSocket, udpSocket } from './helpers.js'
import { createDgramEndpoint } from '../../src/stun/datagram-endpoint.js'

const alice = { username: 'alice', password: 'pw' }

describe('turnRestCredentials', () => {
  it('username is expiry:user and password is base64(HMAC-SHA1(secret, username)), as openssl computes it', () => {
    const now = 1_700_000_000_000
    const c = turnRestCredentials({ secret: 'north', user: 'bob', ttl: 3600, now })
    expect(c.username).toBe('1700003600:bob')
    expect(c.expiry).toBe(1_700_003_600)
    const expected = execFileSync('sh', ['-c', `printf %s '${c.username}' | openssl dgst -sha1 -hmac north -binary | base64`]).toString().trim()
    expect(c.password).toBe(expected)
    expect(turnRestCredentials({ secret: 'north', ttl: 10, now }).username).toBe('1700000010')
    expect(turnRestCredentials({ secret: 'north', ttl: 10, now, user: 'x', separator: '/' }).username).toBe('1700000010/x')
  })

  it('rejects misuse at once', () => {
    expect(() => turnRestCredentials({ secret: '' })).toThrow(InvalidArgumentError)
    expect(() => turnRestCredentials({ secret: 's', ttl: 0 })).toThrow(InvalidArgumentError)
    expect(() => turnRestCredentials({ secret: 's', user: 'a:b' })).toThrow(InvalidArgumentError)
  })
})

describe('allocation helpers and channel table', () => {
  it('refreshes at the ratio of the lifetime, but at least 1 s before expiry', () => {
    expect(refreshDelay(600, 0.8)).toBe(480_000)
    expect(refreshDelay(3, 0.8)).toBe(2000)
    expect(refreshDelay(1, 0.8)).toBe(800)
  })

  it('Allocate asks for UDP (REQUESTED-TRANSPORT 17) plus what the options say', () => {
    expect(allocateAttributes({})).toEqual([{ type: 'requested-transport', value: 17 }])
    expect(allocateAttributes({ lifetime: 60, family: 'IPv6', dontFragment: true })).toEqual([
      { type: 'requested-transport', value: 17 },
      { type: 'lifetime', value: 60 },
      { type: 'requested-address-family', value: 'IPv6' },
      { type: 'dont-fragment' },
    ])
    expect(() => allocateAttributes({ lifetime: -1 })).toThrow(InvalidArgumentError)
  })

  it('hands out channel numbers 0x4000 upwards, one per peer, never reused', () => {
    const table = new ChannelBindingTable()
    const a = table.reserve({ family: 'IPv4', host: '127.0.0.1', port: 1 })
    const b = table.reserve({ family: 'IPv4', host: '127.0.0.1', port: 2 })
    expect([a.number, b.number]).toEqual([0x4000, 0x4001])
    table.remove(a)
    expect(table.forNumber(0x4000)).toBeUndefined()
    expect(table.reserve({ family: 'IPv4', host: '127.0.0.1', port: 1 }).number).toBe(0x4002)
    for (let i = 3; i <= 0xfff; i++) table.reserve({ family: 'IPv4', host: '127.0.0.1', port: 10 + i })
    expect(() => table.reserve({ family: 'IPv4', host: '127.0.0.2', port: 1 })).toThrow(InvalidArgumentError)
  })
})

describe('TurnClient misuse and the TCP request timeout', () => {
  it('throws at once on misuse', async () => {
    const socket = await udpSocket()
    try {
      const connection = udpTurnConnection(createDgramEndpoint(socket), { host: '127.0.0.1', port: 9 })
      expect(() => new TurnClient({ connection, credentials: { username: '', password: 'x' } })).toThrow(InvalidArgumentError)
      expect(() => new TurnClient({ connection, credentials: alice, refreshRatio: 1 })).toThrow(InvalidArgumentError)
      const client = new TurnClient({ connection, credentials: alice })
      expect(() => client.send(new Uint8Array(1), { host: '127.0.0.1', port: 1 })).toThrow(InvalidArgumentError)
      expect(() => client.createPermission('127.0.0.1')).toThrow(InvalidArgumentError)
      expect(() => client.bindChannel({ host: 'localhost', port: 1 })).toThrow(InvalidArgumentError)
      expect(() => client.allocate({ family: 'IPv5' as 'IPv4' })).toThrow(InvalidArgumentError)
      await client.close()
      expect(() => TurnClient.connect({ server: 'stun:127.0.0.1', credentials: alice })).toThrow(InvalidServerSpecError)
      expect(() => TurnClient.connect({ server: 'turn:127.0.0.1', credentials: alice })).toThrow(InvalidArgumentError) // UDP needs an endpoint
      expect(() => TurnClient.connect({ server: 'turn:127.0.0.1?transport=tcp#abc', credentials: alice })).toThrow(InvalidArgumentError)
    } finally {
      await closeSocket(socket)
    }
  })

  it('over TCP a request is sent once (no retransmission) and times out after requestTimeout (RFC 8489 §6.2.2)', async () => {
    const sockets = new Set<NetSocket>()
    let received = Buffer.alloc(0)
    const server = createServer((s) => {
      sockets.add(s)
      s.on('data', (d: Buffer) => (received = Buffer.concat([received, d])))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    try {
      const port = (server.address() as { port: number }).port
      const client = await TurnClient.connect({ server: `turn:127.0.0.1:${port}?transport=tcp`, credentials: alice, requestTimeout: 400, rto: 50 })
      const started = Date.now()
      await expect(client.allocate()).rejects.toBeInstanceOf(StunTimeoutError)
      expect(Date.now() - started).toBeGreaterThanOrEqual(350)
      const frame = streamFrameLength(received)
      expect(frame).toEqual({ kind: 'stun', length: received.length }) // exactly one message
      const request = received.subarray(0, frame?.length)
      expect(isStunMessage(request)).toBe(true)
      const message = decodeStunMessage(request)
      expect(message.method).toBe('allocate')
      expect(getAttribute(message, 'requested-transport')?.value).toBe(17)
      expect(getAttribute(message, 'username')).toBeUndefined() // the first Allocate carries no credentials
      await client.close()
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    }
  })
})
