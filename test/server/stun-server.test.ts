import dgram from 'node:dgram'
import { once } from 'node:events'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StunServer } from '../../src/server/stun/stun-server.js'
import { RateLimiter } from '../../src/server/stun/rate-limiter.js'
import {
  createDgramEndpoint,
  createTransactionId,
  decodeStunMessage,
  discoverNatBehavior,
  encodeStunMessage,
  getAttribute,
  stunBinding,
  type StunMessage,
} from '../../src/stun/index.js'

async function udpSocket(host = '127.0.0.1'): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4')
  socket.bind(0, host)
  await once(socket, 'listening')
  return socket
}

function close(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => socket.close(() => resolve()))
}

/** Sends raw bytes and resolves with the first reply (or undefined after `ms`). */
async function exchange(
  socket: dgram.Socket,
  data: Uint8Array,
  to: { host: string; port: number },
  ms = 1_000,
): Promise<{ data: Buffer; from: dgram.RemoteInfo } | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.off('message', onMessage)
      resolve(undefined)
    }, ms)
    const onMessage = (reply: Buffer, from: dgram.RemoteInfo) => {
      clearTimeout(timer)
      socket.off('message', onMessage)
      resolve({ data: reply, from })
    }
    socket.on('message', onMessage)
    socket.send(data, to.port, to.host)
  })
}

function request(attributes: StunMessage['attributes'] = [], method: StunMessage['method'] = 'binding'): Uint8Array {
  return encodeStunMessage({ method, class: 'request', transactionId: createTransactionId(), attributes })
}

describe('StunServer with RFC 5780 (two loopback addresses)', () => {
  let server: StunServer
  let client: dgram.Socket

  beforeAll(async () => {
    // All test traffic comes from 127.0.0.1: lift the per-IP limit (tested on its own below).
    server = await StunServer.listen({ host: '127.0.0.1', port: 0, alternateHost: '127.0.0.2', requestsPerSecondPerIp: 1e6, burstPerIp: 1e6 })
    client = await udpSocket()
  })
  afterAll(async () => {
    await close(client)
    await server.close()
  })

  it('listens on four sockets: both hosts × both ports', () => {
    const { primary, other } = server
    expect(primary.host).toBe('127.0.0.1')
    expect(other?.host).toBe('127.0.0.2')
    expect(other?.port).not.toBe(primary.port)
    expect(server.addresses.map((a) => `${a.host}:${a.port}`).sort()).toEqual(
      [
        `127.0.0.1:${primary.port}`,
        `127.0.0.1:${other!.port}`,
        `127.0.0.2:${primary.port}`,
        `127.0.0.2:${other!.port}`,
      ].sort(),
    )
  })

  it('answers Binding with our address, RESPONSE-ORIGIN and OTHER-ADDRESS', async () => {
    const result = await stunBinding({ endpoint: createDgramEndpoint(client), server: server.primary })
    expect(result.mapped).toEqual({ family: 'IPv4', host: '127.0.0.1', port: client.address().port })
    expect(result.responseOrigin).toEqual(server.primary)
    expect(result.otherAddress).toEqual(server.other)
  })

  it('answers CHANGE-REQUEST from the other IP and/or port (RFC 5780 §6.1)', async () => {
    const { primary, other } = server
    const cases = [
      { changeIp: true, changePort: true, host: other!.host, port: other!.port },
      { changeIp: false, changePort: true, host: primary.host, port: other!.port },
      { changeIp: true, changePort: false, host: other!.host, port: primary.port },
    ]
    for (const c of cases) {
      const reply = await exchange(client, request([{ type: 'change-request', value: c }]), primary)
      expect(reply, JSON.stringify(c)).toBeDefined()
      expect({ host: reply!.from.address, port: reply!.from.port }).toEqual({ host: c.host, port: c.port })
      const origin = getAttribute(decodeStunMessage(reply!.data), 'response-origin')?.value
      expect(origin).toEqual({ family: 'IPv4', host: c.host, port: c.port })
    }
  })

  it('classifies loopback as no NAT with endpoint-independent filtering', async () => {
    const result = await discoverNatBehavior({ endpoint: createDgramEndpoint(client), server: server.primary })
    expect(result.mapping).toBe('no-nat')
    expect(result.filtering).toBe('endpoint-independent')
    expect(result.otherAddress).toEqual(server.other)
  })

  it('answers other methods with 400 and unknown comprehension-required attributes with 420', async () => {
    const allocate = await exchange(client, request([], 'allocate'), server.primary)
    const allocateError = getAttribute(decodeStunMessage(allocate!.data), 'error-code')?.value
    expect(allocateError?.code).toBe(400)

    const unknown = await exchange(client, request([{ type: 'unknown', code: 0x7777, value: new Uint8Array(4) }]), server.primary)
    const decoded = decodeStunMessage(unknown!.data)
    expect(decoded.class).toBe('error')
    expect(getAttribute(decoded, 'error-code')?.value.code).toBe(420)
    expect(getAttribute(decoded, 'unknown-attributes')?.value).toEqual([0x7777])
  })

  it('survives random and mutated datagrams, and keeps answering', async () => {
    const attacker = await udpSocket()
    try {
      const valid = request([{ type: 'change-request', value: { changeIp: false, changePort: false } }])
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.uint8Array({ minLength: 0, maxLength: 600 }),
            fc.tuple(fc.integer({ min: 0, max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })).map(([i, b]) => {
              const copy = Uint8Array.from(valid)
              copy[i] = b
              return copy
            }),
            fc.integer({ min: 0, max: valid.length }).map((n) => valid.subarray(0, n)),
          ),
          async (bytes) => {
            attacker.send(bytes, server.primary.port, server.primary.host)
          },
        ),
        { numRuns: 2_000 },
      )
      // Wait until the server has seen the garbage, then check that it still answers.
      const deadline = Date.now() + 5_000
      while (server.stats.malformed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
      expect(server.stats.malformed).toBeGreaterThan(0)
      const result = await stunBinding({ endpoint: createDgramEndpoint(client), server: server.primary })
      expect(result.mapped.port).toBe(client.address().port)
    } finally {
      await close(attacker)
    }
  })
})

describe('StunServer without a second address', () => {
  it('refuses CHANGE-REQUEST with 420 and reports discovery as unsupported', async () => {
    const server = await StunServer.listen({ host: '127.0.0.1', port: 0 })
    const client = await udpSocket()
    try {
      const reply = await exchange(client, request([{ type: 'change-request', value: { changeIp: true, changePort: false } }]), server.primary)
      expect(getAttribute(decodeStunMessage(reply!.data), 'error-code')?.value.code).toBe(420)
      await expect(discoverNatBehavior({ endpoint: createDgramEndpoint(client), server: server.primary })).rejects.toMatchObject({
        code: 'ERR_NAT_DISCOVERY_UNSUPPORTED',
      })
    } finally {
      await close(client)
      await server.close()
    }
  })

  it('rate-limits one source and drops the excess silently', async () => {
    const server = await StunServer.listen({ host: '127.0.0.1', port: 0, requestsPerSecondPerIp: 10, burstPerIp: 20 })
    const client = await udpSocket()
    try {
      let replies = 0
      client.on('message', () => replies++)
      for (let i = 0; i < 200; i++) client.send(request(), server.primary.port, server.primary.host)
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(replies).toBeGreaterThanOrEqual(20)
      expect(replies).toBeLessThan(40)
      expect(server.stats.rateLimited).toBeGreaterThan(150)
    } finally {
      await close(client)
      await server.close()
    }
  })

  it('fails to bind a taken port with ERR_SOCKET_BIND', async () => {
    const server = await StunServer.listen({ host: '127.0.0.1', port: 0 })
    try {
      await expect(StunServer.listen({ host: '127.0.0.1', port: server.primary.port })).rejects.toMatchObject({
        code: 'ERR_SOCKET_BIND',
      })
    } finally {
      await server.close()
    }
  })
})

describe('RateLimiter', () => {
  it('refills at the configured rate and bounds its table', () => {
    let now = 0
    const limiter = new RateLimiter({ ratePerSecond: 2, burst: 2, maxKeys: 3, now: () => now })
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([true, true, false])
    now += 500 // one token back
    expect([limiter.take('a'), limiter.take('a')]).toEqual([true, false])
    for (const key of ['b', 'c', 'd', 'e']) limiter.take(key)
    expect(limiter.size).toBe(3)
  })
})
