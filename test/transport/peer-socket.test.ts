import { describe, it, expect, afterEach } from 'vitest'
import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { PeerSocket } from '../../src/transport/peer-socket.js'
import { PeerlinkError } from '../../src/errors.js'

const STUN = Buffer.from('000100002112a442b7e7a701bc34d686fa87dfae', 'hex')
const CHANNEL = Buffer.from('4001000361626300', 'hex')

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

async function bind(options: Parameters<typeof PeerSocket.bind>[0] = {}): Promise<PeerSocket> {
  const socket = await PeerSocket.bind({ host: '127.0.0.1', ...options })
  cleanups.push(() => socket.close())
  return socket
}

async function udpClient(): Promise<Socket> {
  const client = createSocket('udp4')
  client.bind(0, '127.0.0.1')
  await once(client, 'listening')
  cleanups.push(() => new Promise<void>((resolve) => client.close(() => resolve())))
  return client
}

function nextDatagram(subscribe: (l: (d: Buffer, from: { host: string; port: number }) => void) => () => void) {
  return new Promise<{ data: Buffer; from: { host: string; port: number } }>((resolve) => {
    const off = subscribe((data, from) => {
      off()
      resolve({ data: Buffer.from(data), from })
    })
  })
}

describe('PeerSocket', () => {
  it('binds to an OS-chosen port on 127.0.0.1', async () => {
    const socket = await bind()
    expect(socket.address()).toEqual({ host: '127.0.0.1', port: socket.port, family: 4 })
    expect(socket.port).toBeGreaterThan(0)
  })

  it('dispatches STUN and ChannelData to their listeners and drops everything else', async () => {
    const socket = await bind()
    const client = await udpClient()
    const gotStun = nextDatagram((l) => socket.onStun(l))
    const gotChannel = nextDatagram((l) => socket.onChannelData(l))
    client.send(Buffer.from('hello, not a protocol'), socket.port, '127.0.0.1')
    client.send(STUN, socket.port, '127.0.0.1')
    client.send(CHANNEL, socket.port, '127.0.0.1')
    const stun = await gotStun
    const channel = await gotChannel
    expect(stun.data.equals(STUN)).toBe(true)
    expect(stun.from).toEqual({ host: '127.0.0.1', port: client.address().port, family: 4 })
    expect(channel.data.equals(CHANNEL)).toBe(true)
    expect(socket.stats).toMatchObject({ stunDatagrams: 1, channelDataDatagrams: 1, droppedDatagrams: 1 })
  })

  it('sends datagrams that a plain UDP socket receives', async () => {
    const socket = await bind()
    const client = await udpClient()
    const received = once(client, 'message')
    await expect(socket.send(STUN, client.address().port, '127.0.0.1')).resolves.toBe(true)
    const [msg] = (await received) as [Buffer]
    expect(msg.equals(STUN)).toBe(true)
  })

  it('unsubscribes listeners and keeps dispatching when one throws', async () => {
    const errors: unknown[] = []
    const socket = await bind({ onListenerError: (err) => errors.push(err) })
    const client = await udpClient()
    const removed: Buffer[] = []
    const off = socket.onStun((d) => removed.push(d))
    off()
    socket.onStun(() => {
      throw new Error('listener bug')
    })
    const got = nextDatagram((l) => socket.onStun(l))
    client.send(STUN, socket.port, '127.0.0.1')
    await got
    expect(removed).toHaveLength(0)
    expect(errors).toHaveLength(1)
    expect((errors[0] as Error).message).toBe('listener bug')
    expect(socket.stats.listenerErrors).toBe(1)
  })

  it('drops datagrams above maxDatagramSize', async () => {
    const socket = await bind({ maxDatagramSize: 100 })
    const client = await udpClient()
    const big = Buffer.alloc(20 + 200)
    STUN.copy(big)
    big.writeUInt16BE(200, 2)
    const got = nextDatagram((l) => socket.onStun(l))
    client.send(big, socket.port, '127.0.0.1')
    client.send(STUN, socket.port, '127.0.0.1')
    const { data } = await got
    expect(data.length).toBe(STUN.length)
    expect(socket.stats).toMatchObject({ oversizeDatagrams: 1, droppedDatagrams: 1, stunDatagrams: 1 })
  })

  it('allocates unique non-zero 32-bit stream ids', async () => {
    const socket = await bind()
    const ids = new Set<number>()
    for (let i = 0; i < 2000; i++) {
      const id = socket.allocateStreamId()
      expect(Number.isInteger(id) && id > 0 && id <= 0xffffffff).toBe(true)
      ids.add(id)
    }
    expect(ids.size).toBe(2000)
  })

  it('close() is idempotent and later operations fail with ERR_SOCKET_CLOSED', async () => {
    const socket = await PeerSocket.bind({ host: '127.0.0.1' })
    const first = socket.close()
    expect(socket.close()).toBe(first)
    await first
    expect(socket.closed).toBe(true)
    await expect(socket.send(STUN, 9, '127.0.0.1')).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' })
    expect(() => socket.allocateStreamId()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }))
    await socket.close()
  })

  it('rejects with ERR_SOCKET_BIND when the port is taken', async () => {
    const socket = await bind()
    const err = await PeerSocket.bind({ host: '127.0.0.1', port: socket.port }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PeerlinkError)
    expect(err).toMatchObject({ code: 'ERR_SOCKET_BIND' })
    expect((err as Error).message).toContain('EADDRINUSE')
  })

  it('rejects with ERR_ABORTED when the signal is already aborted', async () => {
    await expect(PeerSocket.bind({ host: '127.0.0.1', signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    })
  })

  it('throws ERR_INVALID_ARGUMENT at once for misuse', async () => {
    expect(() => PeerSocket.bind({ host: 'localhost' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    expect(() => PeerSocket.bind({ port: 70000 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    expect(() => PeerSocket.bind({ maxDatagramSize: 4096 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    )
    const socket = await bind()
    expect(() => socket.send(STUN, 0, '127.0.0.1')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    expect(() => socket.send(STUN, 3478, 'example.com')).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    )
  })
})
