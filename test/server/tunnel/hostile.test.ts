// Hostile input never harms the server: malformed and oversized control messages,
// unknown or reused connection ids, bad proofs, garbage on transfer sockets, slow-loris
// HTTP. After each attack a well-behaved device still works.
import { encode } from '@msgpack/msgpack'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { TunnelServer } from '../../../src/server/tunnel/tunnel-server.js'
import { transferProof } from '../../../src/tunnel/tunnel-auth.js'
import { exposeServices } from '../../../src/tunnel/tunnel-client.js'
import { encodeTunnelClientMessage } from '../../../src/tunnel/tunnel-messages.js'
import { OTHER_TOKEN, TOKEN, closeServer, exchange, portOf, rawDevice, startEcho, startTunnel, until, urlOf } from './helpers.js'

let server: TunnelServer
let echo: net.Server

beforeAll(async () => {
  server = await startTunnel({ messagesPerSecond: 100_000, messageBurst: 100_000, connectTimeout: 2, httpHeadersTimeout: 0.3, maxConnectionsPerIp: 1_000 })
  echo = await startEcho()
})

afterAll(async () => {
  await server?.close()
  await closeServer(echo)
})

/** A well-behaved device still gets through. */
async function stillWorks(): Promise<void> {
  const client = await exposeServices({ servers: urlOf(server), ports: [portOf(echo)], token: OTHER_TOKEN })
  try {
    const data = randomBytes(5_000)
    expect((await exchange(client.endpoints!.ports[0]!.public, data)).equals(data)).toBe(true)
  } finally {
    await client.close()
  }
}

function openControl(): Promise<{ ws: WebSocket; closed: Promise<number> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${server.controlPort}/v1/control`)
  ws.on('error', () => {})
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    ws.once('message', () => resolve({ ws, closed }))
    ws.once('error', reject)
  })
}

describe('control sockets', () => {
  it('survive random frames before the login (each is refused and the socket closed)', async () => {
    const frame = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ data: bytes, binary: true })),
      fc.string({ maxLength: 100 }).map((text) => ({ data: text, binary: false })),
      fc
        .record({ type: fc.constantFrom('hello', 'reject', 'ping', 'pong', 'welcome'), version: fc.integer({ min: -1, max: 3 }), ports: fc.array(fc.integer({ min: -5, max: 70_000 }), { maxLength: 4 }), token: fc.string({ maxLength: 20 }) }, { requiredKeys: ['type'] })
        .map((object) => ({ data: encode(object), binary: true })),
    )
    await fc.assert(
      fc.asyncProperty(frame, async ({ data, binary }) => {
        const { ws, closed } = await openControl()
        ws.send(data, { binary })
        const timer = setTimeout(() => ws.terminate(), 2_000)
        const code = await closed
        clearTimeout(timer)
        // ping and pong are answered or ignored; anything else ends with a policy/protocol close.
        expect([1000, 1002, 1005, 1006, 1008]).toContain(code)
      }).beforeEach(() => {}),
      { numRuns: 60 },
    ).catch(async (err: unknown) => {
      throw err
    })
    await until(() => server.stats.controlSockets === 0, 5_000, 'sockets to close')
    await stillWorks()
  }, 60_000)

  it('refuse oversized messages: too-large up to 4x the limit, close 1009 beyond', async () => {
    const { ws, closed } = await openControl()
    const replies: Buffer[] = []
    ws.on('message', (data: Buffer) => replies.push(data))
    ws.send(randomBytes(20_000))
    await until(() => replies.length > 0, 5_000, 'a reply')
    expect(replies[0]!.includes(Buffer.from('too-large'))).toBe(true)
    expect(await closed).toBe(1008)
    const second = await openControl()
    second.ws.send(randomBytes(70_000))
    expect(await second.closed).toBe(1009)
    await stillWorks()
  })

  it('survive random messages after the login, and the device keeps working', async () => {
    const device = await rawDevice(server, { ports: [portOf(echo)], token: TOKEN })
    expect(device.welcome).toBeDefined()
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        device.ws.send(bytes)
      }),
      { numRuns: 300 },
    )
    device.ws.send(encodeTunnelClientMessage({ type: 'reject', id: new Uint8Array(16), reason: 'refused' }))
    device.ws.send(encodeTunnelClientMessage({ type: 'hello', version: 1, ports: [1], token: TOKEN }))
    device.ws.send(encodeTunnelClientMessage({ type: 'ping', id: 42 }))
    await until(() => device.messages.some((m) => m.type === 'pong' && m.id === 42), 5_000, 'the pong')
    expect(device.ws.readyState).toBe(WebSocket.OPEN)
    expect(server.stats.refusedProtocol).toBeGreaterThan(0)
    device.ws.close()
    await device.closed
    await stillWorks()
  })
})

describe('transfer sockets', () => {
  async function refusedWith(path: string): Promise<number> {
    const ws = new WebSocket(`ws://127.0.0.1:${server.controlPort}${path}`)
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number; resume(): void }]
    res.resume()
    ws.on('error', () => {})
    ws.terminate()
    return res.statusCode
  }

  it('refuse unknown ids, bad proofs, malformed queries and reused ids', async () => {
    const device = await rawDevice(server, { ports: [portOf(echo)], token: TOKEN })
    const secret = device.welcome!.secret
    const random = new Uint8Array(randomBytes(16))
    const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url')
    expect(await refusedWith(`/v1/transfer?id=${b64(random)}&proof=${b64(transferProof(secret, random))}`)).toBe(404)
    expect(await refusedWith('/v1/transfer?id=zz&proof=zz')).toBe(400)
    expect(await refusedWith('/v1/transfer')).toBe(400)
    expect(await refusedWith('/nowhere')).toBe(404)

    // A real connection: a bad proof is refused without harming it, the right one claims it once.
    const publicSocket = net.connect({ host: '127.0.0.1', port: device.welcome!.ports[0]!.public })
    publicSocket.on('error', () => {})
    await until(() => device.messages.some((m) => m.type === 'connection'), 5_000, 'the announcement')
    const announced = device.messages.find((m) => m.type === 'connection') as { id: Uint8Array }
    expect(await refusedWith(`/v1/transfer?id=${b64(announced.id)}&proof=${b64(new Uint8Array(32))}`)).toBe(403)
    const good = `/v1/transfer?id=${b64(announced.id)}&proof=${b64(transferProof(secret, announced.id))}`
    const transfer = new WebSocket(`ws://127.0.0.1:${server.controlPort}${good}`)
    transfer.on('error', () => {})
    await once(transfer, 'open')
    expect(await refusedWith(good)).toBe(404)

    // Garbage on the transfer socket (a text frame that is not "end") resets the connection.
    const reset = once(publicSocket, 'close')
    transfer.send('garbage')
    await reset
    await once(transfer, 'close')
    expect(server.stats.refusedTransfers).toBe(5)

    // An oversized frame (over maxFrameBytes, 1 MiB) closes the transfer socket with 1009 and resets the connection.
    const second = net.connect({ host: '127.0.0.1', port: device.welcome!.ports[0]!.public })
    second.on('error', () => {})
    await until(() => device.messages.filter((m) => m.type === 'connection').length === 2, 5_000, 'the second announcement')
    const id2 = (device.messages.filter((m) => m.type === 'connection')[1] as { id: Uint8Array }).id
    const big = new WebSocket(`ws://127.0.0.1:${server.controlPort}/v1/transfer?id=${b64(id2)}&proof=${b64(transferProof(secret, id2))}`)
    big.on('error', () => {})
    await once(big, 'open')
    const secondClosed = once(second, 'close')
    big.send(Buffer.alloc(2 * 1024 * 1024))
    const [code] = (await once(big, 'close')) as [number]
    expect(code).toBe(1009)
    await secondClosed
    device.ws.close()
    await device.closed
    await stillWorks()
  })
})

describe('HTTP port', () => {
  it('drops a slow-loris client that never finishes its headers', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: server.httpPort })
    socket.on('error', () => {})
    await once(socket, 'connect')
    socket.write('GET / HTTP/1.1\r\nHost: x.example.test\r\n')
    const drip = setInterval(() => socket.writable && socket.write('X-Slow: 1\r\n'), 50)
    const started = Date.now()
    await new Promise((resolve) => socket.once('close', resolve))
    clearInterval(drip)
    expect(Date.now() - started).toBeLessThan(3_000)
  })

  it('answers garbage with 400', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: server.httpPort })
    socket.on('error', () => {})
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.write('\x00\x01 not http at all\r\n\r\n')
    await once(socket, 'close')
    expect(Buffer.concat(chunks).toString()).toMatch(/^HTTP\/1.1 400/)
  })
})
