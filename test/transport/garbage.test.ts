import { describe, it, expect } from 'vitest'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { createHash, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { classifyDatagram } from '../../src/transport/packet-demux.js'
import type { PeerSocket } from '../../src/transport/peer-socket.js'
import type { SecureConnection } from '../../src/transport/secure-connection.js'
import { connectedPair, receiveAll, socketPair } from './helpers.js'

/** Datagrams an attacker or a confused network might throw at the socket. */
function garbage(activeIds: number[]) {
  const u32 = fc.integer({ min: 0, max: 0xffffffff })
  return fc.oneof(
    // random bytes, including empty and longer than udx-native delivers (2048)
    fc.uint8Array({ maxLength: 1500 }),
    fc.uint8Array({ minLength: 2040, maxLength: 4000 }),
    // STUN-looking: top bits 00, magic cookie, random declared length and body
    fc
      .tuple(
        fc.integer({ min: 0, max: 0x3fff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.uint8Array({ maxLength: 600 }),
        fc.boolean(),
      )
      .map(([type, length, body, honest]) => {
        const buf = Buffer.alloc(20 + body.length)
        buf.writeUInt16BE(type, 0)
        buf.writeUInt16BE(honest ? body.length : length, 2)
        buf.writeUInt32BE(0x2112a442, 4)
        Buffer.from(body).copy(buf, 20)
        return new Uint8Array(buf)
      }),
    // ChannelData-looking: channel 0x4000-0x4FFF, random declared length
    fc
      .tuple(
        fc.integer({ min: 0x4000, max: 0x4fff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.uint8Array({ maxLength: 600 }),
        fc.boolean(),
      )
      .map(([channel, length, body, honest]) => {
        const buf = Buffer.alloc(4 + body.length)
        buf.writeUInt16BE(channel, 0)
        buf.writeUInt16BE(honest ? body.length : length, 2)
        Buffer.from(body).copy(buf, 4)
        return new Uint8Array(buf)
      }),
    // udx-looking: magic 0xFF, version 1, any type and offset, an unknown stream id, then junk
    fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), u32, fc.uint8Array({ minLength: 12, maxLength: 1200 }))
      .filter(([, , id]) => !activeIds.includes(id))
      .map(([type, offset, id, rest]) => {
        const buf = Buffer.alloc(8 + rest.length)
        buf[0] = 0xff
        buf[1] = 1
        buf[2] = type
        buf[3] = offset
        buf.writeUInt32LE(id, 4)
        Buffer.from(rest).copy(buf, 8)
        return new Uint8Array(buf)
      }),
  )
}

/** Keep writing pseudo-random data until `stop()` is called; resolves with bytes and hash. */
function streamUntilStopped(conn: SecureConnection) {
  let stopped = false
  const done = (async () => {
    const hash = createHash('sha256')
    let bytes = 0
    const block = randomBytes(256 * 1024)
    while (!stopped) {
      const chunk = block.subarray(bytes % 1000, (bytes % 1000) + 60_000)
      hash.update(chunk)
      bytes += chunk.length
      if (!conn.write(chunk)) await once(conn, 'drain')
    }
    conn.end()
    return { bytes, sha256: hash.digest('hex') }
  })()
  return { stop: () => (stopped = true), done }
}

/** Resolve once `socket` dispatches a fresh STUN probe (resent until seen): it is not stalled. */
async function probe(socket: PeerSocket, send: (buf: Uint8Array) => void): Promise<void> {
  const msg = Buffer.concat([Buffer.from('000100002112a442', 'hex'), randomBytes(12)])
  let seen = false
  const off = socket.onStun((data) => {
    if (data.equals(msg)) seen = true
  })
  try {
    for (let i = 0; i < 60 && !seen; i++) {
      send(msg)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  } finally {
    off()
  }
  if (!seen) throw new Error('socket stopped dispatching STUN')
}

describe('garbage datagrams', () => {
  it('neither crash nor stall the sockets while a transfer runs', async () => {
    const { a, b, close } = await socketPair()
    const attacker = createSocket('udp4')
    try {
      attacker.bind(0, '127.0.0.1')
      await once(attacker, 'listening')
      const [ca, cb] = await connectedPair(a, b)
      const received = receiveAll(cb)
      const sender = streamUntilStopped(ca)
      // B answers A's data with its own stream, so both directions carry traffic.
      const back = streamUntilStopped(cb)
      const receivedBack = receiveAll(ca)

      const dispatched = { stun: 0, channel: 0 }
      for (const s of [a, b]) {
        s.onStun(() => dispatched.stun++)
        s.onChannelData(() => dispatched.channel++)
      }
      let fired = 0
      const expected = { stun: 0, 'channel-data': 0, unknown: 0 }
      await fc.assert(
        fc.asyncProperty(fc.array(garbage([ca.localStreamId, cb.localStreamId]), { minLength: 50, maxLength: 150 }), async (batch) => {
          for (const [i, datagram] of batch.entries()) {
            const kind = datagram.length > 2048 ? 'unknown' : classifyDatagram(datagram)
            for (const target of [a, b]) {
              attacker.send(datagram, target.port, '127.0.0.1')
              expected[kind]++
              fired++
            }
            // Let the sockets read now and then, so the kernel does not drop most of it.
            if (i % 25 === 24) await new Promise((resolve) => setImmediate(resolve))
          }
          await probe(b, (m) => attacker.send(m, b.port, '127.0.0.1'))
          await probe(a, (m) => attacker.send(m, a.port, '127.0.0.1'))
        }),
        { numRuns: 30 },
      )
      sender.stop()
      back.stop()
      const [sent, got, sentBack, gotBack] = await Promise.all([sender.done, received, back.done, receivedBack])
      expect(got).toEqual(sent)
      expect(gotBack).toEqual(sentBack)
      expect(sent.bytes).toBeGreaterThan(1_000_000)
      expect(fired).toBeGreaterThan(3000)

      // Every garbage datagram that arrived was either dispatched or counted as dropped
      // (loopback may lose a few under load, never invent any).
      const dropped = a.stats.droppedDatagrams + b.stats.droppedDatagrams
      expect(dropped).toBeGreaterThan(expected.unknown * 0.5)
      expect(dropped).toBeLessThanOrEqual(expected.unknown)
      expect(a.stats.oversizeDatagrams + b.stats.oversizeDatagrams).toBe(0) // udx truncates to 2048 first
      // Garbage that happens to be well-formed STUN / ChannelData is dispatched (the
      // parsers above reject it); probes add to the STUN count.
      expect(dispatched.stun).toBeGreaterThan(expected.stun * 0.5)
      expect(dispatched.channel).toBeGreaterThan(expected['channel-data'] * 0.5)
      expect(dispatched.channel).toBeLessThanOrEqual(expected['channel-data'])
      await Promise.all([ca.close(), cb.close()])
    } finally {
      await new Promise<void>((resolve) => attacker.close(() => resolve()))
      await close()
    }
  }, 60_000)
})
