// The binary-frame tap in front of ws: binary frames take the short cut, everything
// else still goes through ws (pings, text, fragments, oversized frames, closing), frames
// split over many reads are put together, and ws's own checks still apply.
import { randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import net, { type AddressInfo, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { tapBinaryFrames } from '../../src/beacon/binary-frame-tap.js'
import { clientPongFrame } from '../../src/beacon/client-frame.js'

interface Received {
  via: 'tap' | 'ws'
  data: Buffer
  binary: boolean
}

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A ws server on 127.0.0.1 whose connections are tapped (server side: masked frames). */
async function tappedServer(maxPayload = 1000) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 4 * maxPayload, perMessageDeflate: false })
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()))
  const received: Received[] = []
  const closes: Array<{ code: number }> = []
  const tapped: boolean[] = []
  const sockets: Socket[] = []
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    sockets.push(req.socket)
    ws.on('message', (data, binary) => received.push({ via: 'ws', data: Buffer.from(data as Buffer), binary }))
    ws.on('close', (code) => closes.push({ code }))
    ws.on('error', () => {})
    tapped.push(tapBinaryFrames(ws, req.socket, { masked: true, maxPayload, onMessage: (data) => received.push({ via: 'tap', data: Buffer.from(data), binary: true }) }))
  })
  cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())))
  const port = (wss.address() as AddressInfo).port
  return { wss, port, received, closes, tapped, sockets }
}

async function client(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false })
  ws.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  cleanups.push(() => {
    ws.terminate()
  })
  return ws
}

async function until(check: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** A masked client frame by hand (RFC 6455 §5.2). */
function clientFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const key = randomBytes(4)
  const length = payload.length
  const header = length < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | length]) : Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, length >> 8, length & 0xff])
  const masked = Buffer.from(payload)
  for (let i = 0; i < masked.length; i++) masked[i]! ^= key[i % 4]!
  return Buffer.concat([header, key, masked])
}

/** A raw TCP connection that did the WebSocket upgrade by hand. */
async function rawClient(port: number): Promise<Socket> {
  const socket = net.connect(port, '127.0.0.1')
  socket.setNoDelay(true)
  cleanups.push(() => {
    socket.destroy()
  })
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
  let text = ''
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1')
      if (text.includes('\r\n\r\n')) {
        socket.off('data', onData)
        resolve()
      }
    }
    socket.on('data', onData)
  })
  expect(text.startsWith('HTTP/1.1 101')).toBe(true)
  return socket
}

describe('binary frame tap', () => {
  it('takes binary frames (7-bit and 16-bit lengths) and leaves text, fragments and oversized frames to ws', async () => {
    const server = await tappedServer(1000)
    const ws = await client(server.port)
    await until(() => server.tapped.length === 1)
    expect(server.tapped).toEqual([true])
    const small = randomBytes(10)
    const medium = randomBytes(300)
    const big = randomBytes(1500) // over the tap's limit, under ws's
    ws.send(small)
    ws.send(Buffer.alloc(0))
    ws.send(medium)
    await until(() => server.received.length === 3)
    ws.send('text')
    ws.send(big)
    ws.send(Buffer.from('frag-'), { fin: false })
    ws.send(Buffer.from('ment'), { fin: true })
    ws.send(small) // after the hand-over, ws reads everything
    await until(() => server.received.length === 7)
    expect(server.received.map((r) => [r.via, r.binary, r.data.toString('hex')])).toEqual([
      ['tap', true, small.toString('hex')],
      ['tap', true, ''],
      ['tap', true, medium.toString('hex')],
      ['ws', false, Buffer.from('text').toString('hex')],
      ['ws', true, big.toString('hex')],
      ['ws', true, Buffer.from('frag-ment').toString('hex')],
      ['ws', true, small.toString('hex')],
    ])
  })

  it('lets ws answer pings and run the closing handshake', async () => {
    const server = await tappedServer()
    const ws = await client(server.port)
    const pong = new Promise<Buffer>((resolve) => ws.once('pong', resolve))
    ws.ping(Buffer.from('hi'))
    expect((await pong).toString()).toBe('hi')
    ws.send(Buffer.from([1, 2, 3]))
    await until(() => server.received.length === 1)
    expect(server.received[0]!.via).toBe('tap')
    const closed = new Promise<number>((resolve) => ws.once('close', resolve))
    ws.close(4000, 'bye')
    expect(await closed).toBe(4000)
    await until(() => server.closes.length === 1)
    expect(server.closes).toEqual([{ code: 4000 }])
    // ws removed its 'data' listener on the close frame: the tap went with it.
    expect(server.sockets[0]!.rawListeners('data')).toEqual([])
  })

  it('puts together frames that arrive a byte at a time, and several frames in one read', async () => {
    const server = await tappedServer()
    const socket = await rawClient(server.port)
    const payloads = [randomBytes(5), randomBytes(200), randomBytes(1)]
    const frames = payloads.map((p) => clientFrame(0x2, p))
    for (const byte of frames[0]!) {
      socket.write(Buffer.from([byte]))
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    socket.write(Buffer.concat([frames[1]!, frames[2]!, clientFrame(0x9, Buffer.from('p'))]))
    const pong = await new Promise<Buffer>((resolve) => socket.once('data', resolve))
    expect(pong.subarray(0, 2)).toEqual(Buffer.from([0x8a, 1])) // ws answered the ping
    expect(server.received.map((r) => [r.via, r.data.toString('hex')])).toEqual(payloads.map((p) => ['tap', p.toString('hex')]))
  })

  it('leaves an unmasked client frame to ws, which fails the connection (close 1002)', async () => {
    const server = await tappedServer()
    const socket = await rawClient(server.port)
    const reply = new Promise<Buffer>((resolve) => socket.once('data', resolve))
    socket.write(Buffer.from([0x82, 0x01, 0x07])) // binary, not masked
    const frame = await reply
    expect([frame[0], frame.readUInt16BE(2)]).toEqual([0x88, 1002])
    expect(server.received).toEqual([])
  })

  it('hands pings and pongs to the caller when it takes them (a client answering with its own masked pong)', async () => {
    // Server side: pongs to the caller, pings still answered by ws.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false })
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()))
    cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())))
    const serverPongs: string[] = []
    const wsPongs: string[] = []
    const serverSide = new Promise<WebSocket>((resolve) => {
      wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
        ws.on('pong', (data) => wsPongs.push(data.toString()))
        tapBinaryFrames(ws, req.socket, { masked: true, maxPayload: 100, onMessage: () => {}, onPong: (data) => serverPongs.push(data.toString()) })
        resolve(ws)
      })
    })
    // Client side: pings to the caller, which answers them itself.
    const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, { perMessageDeflate: false })
    cleanups.push(() => {
      ws.terminate()
    })
    const clientPings: string[] = []
    const clientWsPings: string[] = []
    ws.on('ping', (data) => clientWsPings.push(data.toString()))
    await new Promise<void>((resolve) => ws.once('open', () => resolve()))
    const socket = (ws as unknown as { _socket: Socket })._socket
    expect(
      tapBinaryFrames(ws, socket, {
        masked: false,
        maxPayload: 100,
        onMessage: () => {},
        onPing: (data) => {
          clientPings.push(data.toString())
          socket.write(clientPongFrame(data))
        },
      }),
    ).toBe(true)
    const server = await serverSide
    server.ping(Buffer.from('beat'))
    await until(() => serverPongs.length === 1)
    expect([clientPings, clientWsPings, serverPongs, wsPongs]).toEqual([['beat'], [], ['beat'], []])
    // A client ping still gets ws's pong (the server took only pongs).
    const pong = new Promise<Buffer>((resolve) => ws.once('pong', resolve))
    ws.ping(Buffer.from('x'))
    expect((await pong).toString()).toBe('x')
  })

  it('changes nothing when the socket does not carry ws’s listener', async () => {
    const server = await tappedServer()
    const ws = await client(server.port)
    await until(() => server.tapped.length === 1)
    const wsServerSide = [...server.wss.clients][0]!
    const socket = (wsServerSide as unknown as { _socket: Socket })._socket
    expect(tapBinaryFrames(wsServerSide, socket, { masked: true, maxPayload: 100, onMessage: () => {} })).toBe(false) // already tapped
    ws.send(Buffer.from([9]))
    await until(() => server.received.length === 1)
    expect(server.received[0]!.via).toBe('tap')
  })
})
