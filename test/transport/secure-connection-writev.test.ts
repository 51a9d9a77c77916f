// SecureConnection's write coalescing: writes given together (under cork) become one
// record of up to 64 KiB + 1 KiB (MAX_RECORD_PLAINTEXT = 66,560 bytes), so a multiplexer
// frame's 10-byte header and its 64 KiB payload travel as one record; a larger write is
// split into records of at most 66,560 bytes. The receiver sees one chunk per record.
import { describe, it, expect, afterEach } from 'vitest'
import { randomBytes } from 'node:crypto'
import { MAX_RECORD_PLAINTEXT, type SecureConnection } from '../../src/transport/secure-connection.js'
import { connectedPair, socketPair } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

async function pair(): Promise<[SecureConnection, SecureConnection]> {
  const sockets = await socketPair()
  cleanups.push(sockets.close)
  const conns = await connectedPair(sockets.a, sockets.b)
  cleanups.push(async () => {
    for (const c of conns) c.destroy()
  })
  return conns
}

/** Resolves with the chunks `conn` emits until `total` bytes arrived. */
function chunksOf(conn: SecureConnection, total: number): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let bytes = 0
    conn.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      bytes += chunk.length
      if (bytes >= total) resolve(chunks)
    })
  })
}

describe('SecureConnection write coalescing', () => {
  it('sends a small header and a 64 KiB payload written under cork as one record', async () => {
    const [a, b] = await pair()
    const header = randomBytes(10)
    const payload = randomBytes(64 * 1024)
    const received = chunksOf(b, header.length + payload.length)
    a.cork()
    a.write(header)
    a.write(payload)
    a.uncork()
    const chunks = await received
    expect(chunks.map((c) => c.length)).toEqual([65_546])
    expect(chunks[0]!.equals(Buffer.concat([header, payload]))).toBe(true)
  })

  it('coalesces corked writes up to exactly 66,560 bytes per record', async () => {
    const [a, b] = await pair()
    expect(MAX_RECORD_PLAINTEXT).toBe(66_560)
    const parts = [randomBytes(10), randomBytes(64 * 1024), randomBytes(1014), randomBytes(1), randomBytes(20)]
    const received = chunksOf(b, 66_560 + 21)
    a.cork()
    for (const part of parts) a.write(part)
    a.uncork()
    const chunks = await received
    expect(chunks.map((c) => c.length)).toEqual([66_560, 21])
    expect(Buffer.concat(chunks).equals(Buffer.concat(parts))).toBe(true)
  })

  it('splits corked writes into records of at most 64 KiB + 1 KiB, in order', async () => {
    const [a, b] = await pair()
    const parts = [randomBytes(30 * 1024), randomBytes(30 * 1024), randomBytes(30 * 1024), randomBytes(100 * 1024)]
    const total = parts.reduce((n, p) => n + p.length, 0)
    const received = chunksOf(b, total)
    a.cork()
    for (const part of parts) a.write(part)
    a.uncork()
    const chunks = await received
    // 30+30 KiB (a third 30 KiB would exceed 66,560), 30 KiB (not merged with the large
    // write), then the 100 KiB write as 66,560 + 35,840.
    expect(chunks.map((c) => c.length)).toEqual([60 * 1024, 30 * 1024, 66_560, 35_840])
    expect(Buffer.concat(chunks).equals(Buffer.concat(parts))).toBe(true)
  })

  it('splits one large write into records of 66,560 bytes and the rest, in order', async () => {
    const [a, b] = await pair()
    const data = randomBytes(3 * 66_560 + 1234)
    const received = chunksOf(b, data.length)
    a.write(data)
    const chunks = await received
    expect(chunks.map((c) => c.length)).toEqual([66_560, 66_560, 66_560, 1234])
    expect(Buffer.concat(chunks).equals(data)).toBe(true)
  })
})
