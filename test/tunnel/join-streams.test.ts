// joinStreams between TCP sockets and transfer sockets (src/tunnel/join-streams.ts), the
// tunnel's data path: WebSocketStream.relay without pipes, and reads into reused buffers
// (src/tunnel/reused-reads.ts) once a connection carried 1 MiB. A public socket → server
// stream ⇄ client stream → local service chain in one process, over ws:// and pinned
// wss://, with slow readers on both ends. Loopback only.
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { joinStreams } from '../../src/tunnel/join-streams.js'
import { readIntoReusedBuffer } from '../../src/tunnel/reused-reads.js'
import { openTransferSocket } from '../../src/tunnel/tunnel-connect.js'
import { acceptWebSocketUpgrade } from '../../src/tunnel/transfer-handshake.js'
import { WebSocketStream } from '../../src/tunnel/websocket-stream.js'
import { certificateHash } from '../../src/cert-pin.js'
import { certificate } from '../server/tunnel/helpers.js'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex')

async function listen<T extends net.Server>(server: T): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanup.push(() => new Promise((resolve) => server.close(resolve)))
  return (server.address() as net.AddressInfo).port
}

/** Reads `socket` to its end, pausing for a moment now and then (backpressure along the chain). */
function readSlowly(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = []
  let n = 0
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk)
    if (++n % 16 === 0) {
      socket.pause()
      setTimeout(() => socket.resume(), 2)
    }
  })
  return once(socket, 'end').then(() => Buffer.concat(chunks))
}

/** Writes `data` in 64 KiB chunks with backpressure, then ends. */
async function writeAll(socket: net.Socket, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += 65536) {
    if (!socket.write(data.subarray(at, at + 65536))) await once(socket, 'drain')
  }
  socket.end()
}

/**
 * A tunnel in miniature: a public port whose connections are joined to server-side
 * transfer streams, and a "device" joining a local connection to `service` with a
 * client-side transfer stream for each.
 */
async function tunnel(secure: boolean, service: number): Promise<{ publicPort: number; closed: Promise<void>; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [] // every socket joined, transfer sockets included
  const web = secure ? https.createServer({ cert: certificate.cert, key: certificate.key }) : http.createServer()
  const upgrades: Array<(stream: WebSocketStream) => void> = []
  const streams: WebSocketStream[] = []
  web.on('upgrade', (req, socket: net.Socket, head: Buffer) => {
    if (acceptWebSocketUpgrade(req, socket) !== undefined) return void socket.destroy()
    const stream = new WebSocketStream(socket, { role: 'server', head })
    streams.push(stream)
    sockets.push(socket)
    upgrades.shift()?.(stream)
  })
  const webPort = await listen(web)
  cleanup.push(() => {
    for (const stream of streams) stream.terminate()
    web.closeAllConnections()
  })
  let closedCount = 0
  let allClosed!: () => void
  const closed = new Promise<void>((resolve) => (allClosed = resolve))
  const onClose = () => {
    if (++closedCount === 2) allClosed()
  }
  const pub = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    const claimed = new Promise<WebSocketStream>((resolve) => upgrades.push(resolve))
    // The device side: a local connection and a transfer socket, joined.
    socket.on('error', () => {})
    const local = net.connect({ host: '127.0.0.1', port: service, allowHalfOpen: true })
    local.on('error', () => {})
    sockets.push(socket, local)
    const endpoint = { secure, host: '127.0.0.1', port: webPort, path: '/t', certHash: secure ? certificateHash(certificate.cert) : undefined }
    void openTransferSocket({ endpoint }).then(({ socket: transfer, head }) => {
      const device = new WebSocketStream(transfer, { role: 'client', zeroMask: secure, head })
      streams.push(device)
      sockets.push(transfer)
      joinStreams(local, device, onClose)
    })
    void claimed.then((stream) => joinStreams(socket, stream, onClose))
  })
  const publicPort = await listen(pub)
  return { publicPort, closed, sockets }
}

describe('joinStreams: TCP ⇄ transfer socket relay', () => {
  for (const secure of [false, true]) {
    it(`carries 8 MiB each way intact over ${secure ? 'wss' : 'ws'}, with slow readers and half-close in both orders`, async () => {
      const up = randomBytes(8 * 1024 * 1024)
      const down = randomBytes(8 * 1024 * 1024)
      let serviceGot: Promise<Buffer> | undefined
      const service = net.createServer({ allowHalfOpen: true }, (socket) => {
        serviceGot = readSlowly(socket)
        // The service sends everything, then ends only after the client's end arrived.
        void (async () => {
          for (let at = 0; at < down.length; at += 65536) {
            if (!socket.write(down.subarray(at, at + 65536))) await once(socket, 'drain')
          }
          await serviceGot
          socket.end()
        })()
      })
      const { publicPort, closed } = await tunnel(secure, await listen(service))
      const client = net.connect({ host: '127.0.0.1', port: publicPort, allowHalfOpen: true })
      cleanup.push(() => client.destroy())
      await once(client, 'connect')
      const clientGot = readSlowly(client)
      await writeAll(client, up)
      expect(sha((await serviceGot!) ?? Buffer.alloc(0))).toBe(sha(up))
      expect(sha(await clientGot)).toBe(sha(down))
      await closed // both joins finished cleanly
    }, 30_000)
  }

  it('holds at most about highWaterMark per socket while the far end does not read, in both directions', async () => {
    const size = 24 * 1024 * 1024
    const up = randomBytes(size)
    const down = randomBytes(size)
    let service!: net.Socket
    const accepted = new Promise<void>((resolve) => {
      const server = net.createServer({ allowHalfOpen: true }, (socket) => {
        service = socket
        socket.pause() // reads nothing for now
        resolve()
      })
      cleanup.push(() => service?.destroy())
      void listen(server).then((port) => ready(port))
    })
    let ready!: (port: number) => void
    const port = await new Promise<number>((resolve) => (ready = resolve))
    const { publicPort, closed, sockets } = await tunnel(false, port)
    const client = net.connect({ host: '127.0.0.1', port: publicPort, allowHalfOpen: true })
    cleanup.push(() => client.destroy())
    await once(client, 'connect')
    client.pause() // reads nothing for now
    await accepted
    const sent = Promise.all([writeAll(client, up), writeAll(service, down)])
    // Both ends stalled: the kernel's buffers fill, then the relay must stop reading.
    let most = 0
    for (let i = 0; i < 20; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25))
      for (const socket of sockets) most = Math.max(most, socket.writableLength)
    }
    expect(sockets).toHaveLength(4)
    expect(most).toBeLessThan(1024 * 1024) // 256 KiB highWaterMark + one read (≤ 128 KiB) and a frame
    const clientGot = readSlowly(client)
    const serviceGot = readSlowly(service)
    service.resume()
    client.resume()
    await sent
    expect(sha(await serviceGot)).toBe(sha(up))
    expect(sha(await clientGot)).toBe(sha(down))
    await closed
  }, 30_000)

  it('a reset of the local service tears down the public connection', async () => {
    const service = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => {})
      socket.once('data', () => socket.resetAndDestroy())
    })
    const { publicPort, closed } = await tunnel(false, await listen(service))
    const client = net.connect({ host: '127.0.0.1', port: publicPort, allowHalfOpen: true })
    cleanup.push(() => client.destroy())
    client.on('error', () => {})
    await once(client, 'connect')
    client.write(randomBytes(2 * 1024 * 1024))
    // The public connection is torn down (FIN or RST, depending on unread bytes) and both
    // joins close. Plain listeners: `events.once` would reject on the RST's 'error'.
    await new Promise<void>((resolve) => {
      client.once('end', () => resolve())
      client.once('close', () => resolve())
    })
    await closed
  })
})

describe('readIntoReusedBuffer', () => {
  it('hands every read of a plain socket to the handler, in a buffer reused until a handler keeps it', async () => {
    const data = randomBytes(4 * 1024 * 1024)
    let accepted!: (socket: net.Socket) => void
    const got = new Promise<net.Socket>((resolve) => (accepted = resolve))
    const server = net.createServer({ pauseOnConnect: true }, accepted)
    const port = await listen(server)
    const client = net.connect({ host: '127.0.0.1', port })
    cleanup.push(() => client.destroy())
    const socket = await got
    cleanup.push(() => socket.destroy())
    const chunks: Buffer[] = []
    const memory = new Set<ArrayBufferLike>()
    let reads = 0
    const switched = readIntoReusedBuffer(socket, 65536, (chunk) => {
      memory.add(chunk.buffer)
      chunks.push(Buffer.from(chunk))
      // Every 8th read "keeps" its chunk: the next read must go into another buffer.
      return ++reads % 8 === 0
    })
    expect(switched).toBe(true)
    socket.resume()
    client.end(data)
    await once(socket, 'end')
    expect(Buffer.concat(chunks).equals(data)).toBe(true)
    expect(reads).toBeGreaterThan(8)
    expect(memory.size).toBe(1 + Math.floor(reads / 8)) // one buffer, plus one after each kept read
    expect(chunks.every((chunk) => chunk.length <= 65536)).toBe(true)
  })

  it('leaves TLS sockets alone', async () => {
    const tls = await import('node:tls')
    const socket = new tls.TLSSocket(new net.Socket())
    cleanup.push(() => socket.destroy())
    expect(readIntoReusedBuffer(socket, 65536, () => false)).toBe(false)
  })
})
