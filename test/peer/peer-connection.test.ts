// PeerConnection as the main stream's only Duplex (MuxStream.attach), over an in-memory
// transport: what the main stream received before the connection existed, writes made to
// the main stream before, both directions, half-close and the graceful end.
import { describe, it, expect, afterEach } from 'vitest'
import { randomBytes, createHash } from 'node:crypto'
import { duplexPair, type Duplex } from 'node:stream'
import { StreamMux } from '../../src/connection/stream-mux.js'
import type { MuxStream } from '../../src/connection/mux-stream.js'
import { MAIN_STREAM_LABEL, PeerConnection } from '../../src/peer/peer-connection.js'
import type { ConnectionInfo } from '../../src/peer/peer-options.js'
import type { SecureConnection } from '../../src/transport/secure-connection.js'

const cleanups: Array<() => void> = []
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()!()
})

function info(initiator: boolean): ConnectionInfo {
  return {
    remotePeerId: initiator ? 'listener' : 'dialer',
    initiator,
    path: 'direct',
    local: { address: '127.0.0.1', port: 1, type: 'host' },
    remote: { address: '127.0.0.1', port: 2, type: 'host' },
    rttMs: undefined,
    ms: 0,
    phases: { iceMs: 0, handshakeMs: 0 },
  }
}

/** Two multiplexers over an in-memory pair; the main stream opened by A. */
async function setup(): Promise<{ muxA: StreamMux; muxB: StreamMux; mainA: MuxStream; mainB: MuxStream; transports: [Duplex, Duplex] }> {
  const transports = duplexPair()
  cleanups.push(() => transports.forEach((t) => t.destroy()))
  const muxA = new StreamMux(transports[0], { isInitiator: true })
  const muxB = new StreamMux(transports[1], { isInitiator: false })
  const incoming = new Promise<MuxStream>((resolve) => muxB.once('stream', resolve))
  const mainA = muxA.openStream({ label: MAIN_STREAM_LABEL })
  return { muxA, muxB, mainA, mainB: await incoming, transports }
}

function connection(mux: StreamMux, main: MuxStream, transport: Duplex, initiator: boolean): PeerConnection {
  const conn = new PeerConnection({
    mux,
    secure: transport as unknown as SecureConnection,
    agent: undefined,
    main,
    info: info(initiator),
    onClose: () => {},
  })
  cleanups.push(() => conn.destroy())
  return conn
}

function collect(stream: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.once('end', () => resolve(Buffer.concat(chunks)))
    stream.once('error', reject)
  })
}

const closed = (stream: Duplex): Promise<void> =>
  stream.closed ? Promise.resolve() : new Promise((resolve) => stream.once('close', () => resolve()))

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

describe('PeerConnection over its main stream', () => {
  it('carries 4 MB each way with half-close, and ends gracefully', async () => {
    const { muxA, muxB, mainA, mainB, transports } = await setup()
    const a = connection(muxA, mainA, transports[0], true)
    const b = connection(muxB, mainB, transports[1], false)
    const dataA = randomBytes(4_000_000)
    const dataB = randomBytes(4_000_000)
    const atB = collect(b)
    const atA = collect(a)
    a.end(dataA)
    expect(sha(await atB)).toBe(sha(dataA))
    // A has ended its side; B can still answer.
    b.end(dataB)
    expect(sha(await atA)).toBe(sha(dataB))
    await Promise.all([closed(a), closed(b)])
    expect(a.errored).toBeNull()
    expect(b.errored).toBeNull()
    // The main stream never buffered anything of its own.
    expect(mainA.readableLength).toBe(0)
    expect(mainB.readableLength).toBe(0)
  })

  it('delivers what the main stream received before the connection existed, then the rest', async () => {
    const { muxA, muxB, mainA, mainB, transports } = await setup()
    mainA.write('early ')
    // Let B's main stream take the first bytes into its own readable buffer.
    await new Promise((r) => setImmediate(r))
    mainB.read(0)
    await new Promise((r) => setImmediate(r))
    expect(mainB.readableLength + mainB.queuedBytes).toBe(6)
    const a = connection(muxA, mainA, transports[0], true)
    const b = connection(muxB, mainB, transports[1], false)
    const atB = collect(b)
    a.end('late')
    expect((await atB).toString()).toBe('early late')
  })

  it('keeps working when the main stream was written to before (writes forwarded in order)', async () => {
    const { muxA, muxB, mainA, mainB, transports } = await setup()
    mainA.write(Buffer.alloc(200_000, 1)) // more than the high-water mark: still queued
    const a = connection(muxA, mainA, transports[0], true)
    const b = connection(muxB, mainB, transports[1], false)
    const atB = collect(b)
    a.cork()
    a.write(Buffer.alloc(1000, 2))
    a.write(Buffer.alloc(1000, 3))
    a.uncork()
    a.end(Buffer.alloc(10, 4))
    const got = await atB
    expect(got.length).toBe(202_010)
    expect(got.subarray(0, 200_000).every((x) => x === 1)).toBe(true)
    expect(got.subarray(200_000, 201_000).every((x) => x === 2)).toBe(true)
    expect(got.subarray(201_000, 202_000).every((x) => x === 3)).toBe(true)
    expect(got.subarray(202_000).every((x) => x === 4)).toBe(true)
  })

  it('fails with ERR_CONNECTION_CLOSED when the remote resets the main stream', async () => {
    const { muxA, muxB, mainA, mainB, transports } = await setup()
    const a = connection(muxA, mainA, transports[0], true)
    const b = connection(muxB, mainB, transports[1], false)
    const bFailed = new Promise<Error>((resolve) => b.once('error', resolve))
    const failed = new Promise<Error>((resolve) => a.once('error', resolve))
    mainB.destroy()
    const err = await failed
    expect((err as { code?: string }).code).toMatch(/^ERR_(MUX_STREAM_RESET|CONNECTION_CLOSED)$/)
    // B's own main stream was destroyed under its connection: that is a failure too.
    expect((await bFailed as { code?: string }).code).toBe('ERR_CONNECTION_CLOSED')
  })
})
