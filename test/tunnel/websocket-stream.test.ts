// Transfer sockets framed by WebSocketStream itself (src/tunnel/websocket-stream.ts) and
// their hand-made upgrade (src/tunnel/transfer-handshake.ts): interoperability with the
// `ws` library on either side, half-close, backpressure, resets, limits. Loopback only.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { certificateHash } from '../../src/cert-pin.js'
import { openTransferSocket } from '../../src/tunnel/tunnel-connect.js'
import { acceptWebSocketUpgrade, upgradeTransferSocket, websocketAccept } from '../../src/tunnel/transfer-handshake.js'
import { TRANSFER_RESET_CODE } from '../../src/tunnel/websocket-duplex.js'
import { WebSocketStream } from '../../src/tunnel/websocket-stream.js'
import { certificate } from '../server/tunnel/helpers.js'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

/** An HTTP(S) server whose upgrades become server-side WebSocketStreams. */
async function streamServer(secure = false, maxFrameBytes?: number): Promise<{ port: number; streams: WebSocketStream[]; next: () => Promise<WebSocketStream> }> {
  const server = secure ? (await import('node:https')).createServer({ cert: certificate.cert, key: certificate.key }) : http.createServer()
  const streams: WebSocketStream[] = []
  const untaken: WebSocketStream[] = []
  const waiting: Array<(stream: WebSocketStream) => void> = []
  server.on('upgrade', (req, socket: net.Socket, head: Buffer) => {
    const refused = acceptWebSocketUpgrade(req, socket)
    if (refused !== undefined) return void socket.end(`HTTP/1.1 ${refused} No\r\nconnection: close\r\n\r\n`)
    const stream = new WebSocketStream(socket, { role: 'server', head, ...(maxFrameBytes === undefined ? {} : { maxFrameBytes }) })
    stream.on('error', () => {})
    streams.push(stream)
    const taker = waiting.shift()
    if (taker === undefined) untaken.push(stream)
    else taker(stream)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanup.push(async () => {
    for (const stream of streams) stream.terminate()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return {
    port: (server.address() as net.AddressInfo).port,
    streams,
    next: () => new Promise((resolve) => (untaken.length > 0 ? resolve(untaken.shift()!) : waiting.push(resolve))),
  }
}

/** Resolves once `stream` has closed (at once if it has). */
function closedOf(stream: WebSocketStream): Promise<unknown> {
  return stream.closed ? Promise.resolve() : once(stream, 'close')
}

/** Reads a stream to its end. */
function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  stream.on('data', (chunk: Buffer) => chunks.push(chunk))
  return new Promise((resolve, reject) => {
    stream.once('end', () => resolve(Buffer.concat(chunks)))
    stream.once('error', reject)
  })
}

describe('the server side against the ws client', () => {
  it('carries bytes both ways, half-closes with "end", and closes with 1000 once both ended', async () => {
    const server = await streamServer()
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/v1/transfer`)
    cleanup.push(() => ws.terminate())
    const messages: Array<{ data: Buffer; binary: boolean }> = []
    ws.on('message', (data: Buffer, binary) => messages.push({ data, binary }))
    const closed = once(ws, 'close')
    await once(ws, 'open')
    const stream = await server.next()
    const received = readAll(stream)
    ws.send(Buffer.from('hello '))
    ws.send(Buffer.from('world'))
    ws.send('end')
    expect((await received).toString()).toBe('hello world')
    // The other direction still flows after the client's end.
    stream.write(Buffer.from('answer'))
    stream.end()
    const [code] = (await closed) as [number]
    expect(code).toBe(1000)
    expect(messages.map((m) => [m.binary, m.data.toString()])).toEqual([
      [true, 'answer'],
      [false, 'end'],
    ])
    await closedOf(stream)
  })

  it('answers pings, and resets on a text frame that is not "end" (close 1003)', async () => {
    const server = await streamServer()
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/v1/transfer`)
    cleanup.push(() => ws.terminate())
    await once(ws, 'open')
    const stream = await server.next()
    const pong = once(ws, 'pong')
    ws.ping(Buffer.from('are you there'))
    expect(String((await pong)[0])).toBe('are you there')
    const failed = once(stream, 'error')
    const closed = once(ws, 'close')
    ws.send('garbage')
    expect((await failed)[0]).toMatchObject({ code: 'ERR_TUNNEL_PROTOCOL' })
    expect((await closed)[0]).toBe(1003)
  })

  it('closes with 1009 on a frame over maxFrameBytes', async () => {
    const server = await streamServer(false, 65_536)
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/v1/transfer`)
    cleanup.push(() => ws.terminate())
    ws.on('error', () => {})
    await once(ws, 'open')
    const stream = await server.next()
    const failed = once(stream, 'error')
    const closed = once(ws, 'close')
    ws.send(Buffer.alloc(65_537))
    expect((await closed)[0]).toBe(1009)
    expect((await failed)[0]).toMatchObject({ code: 'ERR_TUNNEL_PROTOCOL' })
  })

  it('a stream destroyed early is a reset: close 4000', async () => {
    const server = await streamServer()
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/v1/transfer`)
    cleanup.push(() => ws.terminate())
    await once(ws, 'open')
    const stream = await server.next()
    const closed = once(ws, 'close')
    stream.destroy()
    expect((await closed)[0]).toBe(TRANSFER_RESET_CODE)
  })
})

describe('the client side against the ws server', () => {
  it('interoperates over ws:// (random masks): an echo of 3 MiB, half-closed, then closed with 1000', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    await once(wss, 'listening')
    cleanup.push(() => new Promise((resolve) => wss.close(resolve)))
    const serverClosed = new Promise<number>((resolve) => {
      wss.on('connection', (ws) => {
        ws.on('message', (data: Buffer, binary) => (binary ? ws.send(data) : ws.send('end')))
        ws.on('close', (code) => resolve(code))
      })
    })
    const port = (wss.address() as net.AddressInfo).port
    const { socket, head } = await openTransferSocket({ endpoint: { secure: false, host: '127.0.0.1', port, path: '/v1/transfer', certHash: undefined } })
    const stream = new WebSocketStream(socket, { role: 'client', head })
    cleanup.push(() => stream.terminate())
    const data = randomBytes(3 * 1024 * 1024)
    const received = readAll(stream)
    stream.end(data)
    expect((await received).equals(data)).toBe(true)
    expect(await serverClosed).toBe(1000)
    await closedOf(stream)
  })

  it('refusals name the status and the server\'s code; a wrong Sec-WebSocket-Accept is refused', async () => {
    const server = net.createServer((socket) => {
      socket.once('data', (request: Buffer) => {
        const path = /^GET (\S+)/.exec(request.toString())![1]
        if (path === '/refused') socket.end('HTTP/1.1 404 Not Found\r\nx-peerlink-error: unknown-connection\r\ncontent-length: 0\r\n\r\n')
        else socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n')
      })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    cleanup.push(() => new Promise((resolve) => server.close(resolve)))
    const port = (server.address() as net.AddressInfo).port
    const endpoint = { secure: false, host: '127.0.0.1', port, certHash: undefined }
    await expect(openTransferSocket({ endpoint: { ...endpoint, path: '/refused' } })).rejects.toMatchObject({
      code: 'ERR_CONNECT_FAILED',
      message: expect.stringContaining('HTTP 404 (unknown-connection)'),
    })
    await expect(openTransferSocket({ endpoint: { ...endpoint, path: '/wrong' } })).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED', message: expect.stringMatching(/wrongly/) })
  })

  it('times out, and is cancelled by its signal', async () => {
    const accepted: net.Socket[] = []
    const silent = net.createServer((socket) => accepted.push(socket))
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    cleanup.push(() => {
      for (const socket of accepted) socket.destroy()
      silent.close()
      return undefined
    })
    const endpoint = { secure: false, host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port, path: '/', certHash: undefined }
    await expect(openTransferSocket({ endpoint, timeout: 200 })).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED', message: expect.stringMatching(/within 200 ms/) })
    await expect(openTransferSocket({ endpoint, signal: AbortSignal.timeout(100) })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
  })
})

describe('both sides WebSocketStream', () => {
  it('over pinned TLS with zero masks: 16 MiB to a slow reader while the other direction half-closes', async () => {
    const server = await streamServer(true)
    const endpoint = { secure: true, host: '127.0.0.1', port: server.port, path: '/v1/transfer', certHash: certificateHash(certificate.cert) }
    const { socket, head } = await openTransferSocket({ endpoint })
    const client = new WebSocketStream(socket, { role: 'client', zeroMask: true, head })
    cleanup.push(() => client.terminate())
    const stream = await server.next()
    // Client → server: a few bytes, then end. Server → client: 16 MiB to a reader that pauses.
    client.end(Buffer.from('request'))
    expect((await readAll(stream)).toString()).toBe('request')
    const big = randomBytes(16 * 1024 * 1024)
    let paused = 0
    const chunks: Buffer[] = []
    client.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      if (chunks.length % 50 === 0) {
        paused++
        client.pause()
        setTimeout(() => client.resume(), 5)
      }
    })
    const ended = once(client, 'end')
    stream.end(big)
    await ended
    expect(Buffer.concat(chunks).equals(big)).toBe(true)
    expect(paused).toBeGreaterThan(0)
    expect(stream.bytesOut).toBe(big.length)
    expect(client.bytesIn).toBe(big.length)
    await Promise.all([closedOf(client), closedOf(stream)])
  })

  it('a reset on one side is an error on the other', async () => {
    const server = await streamServer()
    const { socket, head } = await openTransferSocket({ endpoint: { secure: false, host: '127.0.0.1', port: server.port, path: '/', certHash: undefined } })
    const client = new WebSocketStream(socket, { role: 'client', head })
    cleanup.push(() => client.terminate())
    const stream = await server.next()
    const failed = once(client, 'error')
    stream.destroy()
    expect((await failed)[0]).toMatchObject({ code: 'ERR_CONNECTION_CLOSED', message: expect.stringMatching(/4000/) })
  })
})

describe('the handshake', () => {
  it('websocketAccept is the RFC 6455 §1.3 example', () => {
    expect(websocketAccept('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
  })

  it('the server refuses requests that are not WebSocket upgrades (400) or another version (426)', async () => {
    const server = await streamServer()
    const ask = async (headers: string): Promise<string> => {
      const socket = net.connect({ host: '127.0.0.1', port: server.port })
      cleanup.push(() => socket.destroy())
      await once(socket, 'connect')
      socket.write(`GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${headers}\r\n`)
      const [answer] = (await once(socket, 'data')) as [Buffer]
      return answer.toString().split('\r\n')[0]!
    }
    expect(await ask('Sec-WebSocket-Version: 13\r\n')).toMatch(/^HTTP\/1\.1 400/)
    expect(await ask('Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n')).toMatch(/^HTTP\/1\.1 400/)
    expect(await ask('Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n')).toMatch(/^HTTP\/1\.1 426/)
    expect(await ask('Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n')).toBe('HTTP/1.1 101 Switching Protocols')
  })

  it('the client hands over the bytes that came with the 101', async () => {
    const server = net.createServer((socket) => {
      socket.once('data', (request: Buffer) => {
        const key = /Sec-WebSocket-Key: (\S+)/i.exec(request.toString())![1]!
        // The 101 and a first frame ("hi", unmasked binary) in one write.
        socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${websocketAccept(key)}\r\n\r\n`), Buffer.from([0x82, 2, 0x68, 0x69])]))
      })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    cleanup.push(() => {
      server.close()
      return undefined
    })
    const socket = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port })
    cleanup.push(() => socket.destroy())
    await once(socket, 'connect')
    const head = await upgradeTransferSocket(socket, { host: 'x', path: '/', where: 'x' })
    expect([...head]).toEqual([0x82, 2, 0x68, 0x69])
  })
})
