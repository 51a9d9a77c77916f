import { describe, it, expect, afterEach } from 'vitest'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import fc from 'fast-check'
import { Duplex } from 'node:stream'
import UDX from 'udx-native'
import { PeerSocket } from '../../src/transport/peer-socket.js'
import { openSecureConnection, SecureConnection, type OpenSecureConnectionOptions } from '../../src/transport/secure-connection.js'
import { PeerlinkError, PeerIdentityMismatchError } from '../../src/errors.js'
import { peerIdFromPublicKey } from '../../src/identity/peer-id.js'
import { connectedPair, makeKeyPair, openPair, receiveAll, sendRandom, socketPair } from './helpers.js'
import { REKEY_INTERVAL, rekeyPolicy } from '../../src/transport/record-rekey.js'
import { createRawSecurePeer, frame, frameHeader, sha256, type RawSecurePeer, type RawSecurePeerOptions } from './raw-secure-peer.js'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  rekeyPolicy.interval = REKEY_INTERVAL
  while (cleanups.length > 0) await cleanups.pop()!()
})

async function sockets() {
  const pair = await socketPair()
  cleanups.push(pair.close)
  return pair
}

/**
 * A raw peer (test/transport/raw-secure-peer.ts: the wire protocol reimplemented from
 * udx-native, noise-handshake and node:crypto, not our API) towards `ours`, and our
 * side's openSecureConnection to it, expecting its key unless told otherwise.
 */
function withRawPeer(
  ours: PeerSocket,
  weInitiate: boolean,
  rawOptions: Partial<RawSecurePeerOptions> = {},
  ourOptions: Partial<OpenSecureConnectionOptions> = {},
) {
  const localStreamId = ours.allocateStreamId()
  const raw = createRawSecurePeer({ isInitiator: !weInitiate, remotePort: ours.port, remoteId: localStreamId, ...rawOptions })
  cleanups.push(() => raw.close())
  const keyPair = makeKeyPair()
  const opening = openSecureConnection({
    socket: ours,
    remote: { host: '127.0.0.1', port: raw.port },
    localStreamId,
    remoteStreamId: raw.id,
    isInitiator: weInitiate,
    keyPair,
    expectedRemotePublicKey: raw.keyPair.publicKey,
    ...ourOptions,
  })
  // Runs before raw.close() (cleanups run last in, first out): the raw peer's reset must
  // not reach a connection that nobody listens to any more.
  let conn: SecureConnection | undefined
  opening.then((c) => (conn = c), () => {})
  cleanups.push(() => conn?.destroy())
  return { raw, opening, keyPair }
}

/** `ours` still opens a working connection (to a fresh raw peer) and exchanges data both ways. */
async function expectSocketStillWorks(ours: PeerSocket): Promise<void> {
  const { raw, opening } = withRawPeer(ours, true)
  const conn = await opening
  conn.write('still works')
  const back = once(conn, 'data')
  raw.sendRecord(Buffer.from('and back'))
  expect(String((await back)[0])).toBe('and back')
  await expect.poll(() => raw.received().toString()).toBe('still works')
  conn.destroy()
  await raw.closed
}

async function ourSocket(): Promise<PeerSocket> {
  const ours = await PeerSocket.bind({ host: '127.0.0.1' })
  cleanups.push(() => ours.close())
  return ours
}

describe('openSecureConnection', () => {
  it('exchanges 10 MB each way intact over a verified connection', async () => {
    const { a, b } = await sockets()
    const keyA = makeKeyPair()
    const keyB = makeKeyPair()
    const [ca, cb] = await connectedPair(a, b, { keyA, keyB })
    expect(ca).toBeInstanceOf(Duplex)
    expect(ca).toBeInstanceOf(SecureConnection)
    expect(Buffer.from(ca.remotePublicKey).equals(Buffer.from(keyB.publicKey))).toBe(true)
    expect(Buffer.from(cb.remotePublicKey).equals(Buffer.from(keyA.publicKey))).toBe(true)
    expect(Buffer.from(ca.handshakeHash).equals(Buffer.from(cb.handshakeHash))).toBe(true)
    expect(ca.handshakeHash.length).toBe(64)
    expect(ca.remoteAddress).toEqual({ host: '127.0.0.1', port: b.port, family: 4 })
    expect(cb.remoteAddress).toEqual({ host: '127.0.0.1', port: a.port, family: 4 })

    const SIZE = 10 * 1024 * 1024
    const [sentA, sentB, gotA, gotB] = await Promise.all([
      sendRandom(ca, SIZE),
      sendRandom(cb, SIZE),
      receiveAll(ca),
      receiveAll(cb),
    ])
    expect(gotB).toEqual({ bytes: SIZE, sha256: sentA })
    expect(gotA).toEqual({ bytes: SIZE, sha256: sentB })
    await Promise.all([ca.close(), cb.close()])
    expect(ca.destroyed && cb.destroyed).toBe(true)
    expect(a.streamCount + b.streamCount).toBe(0)
  })

  it.each([
    ['initiator', 'aExpects'],
    ['responder', 'bExpects'],
  ] as const)('rejects a wrong remote key on the %s side; neither side gets a connection', async (_side, option) => {
    const { a, b } = await sockets()
    const wrong = makeKeyPair().publicKey
    const start = Date.now()
    const [ra, rb] = await openPair(a, b, { [option]: wrong, handshakeTimeout: 8_000 })
    const [mine, theirs] = option === 'aExpects' ? [ra, rb] : [rb, ra]
    expect(mine.status).toBe('rejected')
    const err = (mine as PromiseRejectedResult).reason
    expect(err).toBeInstanceOf(PeerIdentityMismatchError)
    expect(err.code).toBe('ERR_PEER_IDENTITY_MISMATCH')
    expect(err.expected).toBe(peerIdFromPublicKey(wrong))
    // The other side hears a coded error at once instead of waiting for its timeout.
    expect(theirs.status).toBe('rejected')
    expect((theirs as PromiseRejectedResult).reason).toBeInstanceOf(PeerlinkError)
    expect((theirs as PromiseRejectedResult).reason.code).toBe('ERR_CONNECTION_CLOSED')
    expect(Date.now() - start).toBeLessThan(4_000)
  })

  it.each([true, false])(
    'delivers no application bytes when our side (initiator: %s) rejects an eager raw peer',
    async (weInitiate) => {
      const ours = await ourSocket()
      const formatPeerId = (k: Uint8Array) => `peer:${Buffer.from(k).toString('hex').slice(0, 8)}`
      const { raw, opening } = withRawPeer(
        ours,
        weInitiate,
        { eager: 'application data from the raw peer' },
        { expectedRemotePublicKey: makeKeyPair().publicKey, formatPeerId },
      )
      const err = await opening.catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PeerIdentityMismatchError)
      expect((err as PeerIdentityMismatchError).actual).toBe(formatPeerId(raw.keyPair.publicKey))
      await raw.closed // our reset reaches the raw peer
      expect(raw.records).toHaveLength(0)
      // Nothing after the handshake message that carried our key (the raw initiator got
      // message 2; the raw responder got message 1 only, as our initiator rejected message 2).
      expect(raw.handshakeFrames).toHaveLength(1)
      expect(raw.errorCodes()).toContain('ECONNRESET')
      if (!weInitiate) {
        // The raw initiator completed its handshake and wrote data at once; it was never read.
        expect(await raw.ready).toBe(true)
      }
      expect(ours.streamCount).toBe(0)
    },
  )

  it.each([true, false])('accepts an eager raw peer with the expected key and exchanges data both ways (our side initiator: %s)', async (weInitiate) => {
    const ours = await ourSocket()
    const { raw, opening } = withRawPeer(ours, weInitiate, { eager: 'application data from the raw peer' })
    const conn = await opening
    const [first] = (await new Promise((resolve) => conn.once('data', (d) => resolve([d])))) as [Buffer]
    expect(first.toString()).toBe('application data from the raw peer')
    conn.write('hi raw')
    // As responder, our first record is the empty confirmation.
    await expect.poll(() => raw.records.map((r) => r.toString())).toEqual(weInitiate ? ['hi raw'] : ['', 'hi raw'])
    conn.destroy()
    await raw.closed
    expect(raw.errorCodes()).toContain('ECONNRESET')
  })

  it('fails with ERR_HANDSHAKE_FAILED when the remote sends garbage instead of Noise', async () => {
    const ours = await PeerSocket.bind({ host: '127.0.0.1' })
    cleanups.push(() => ours.close())
    const udx = new UDX()
    const socket = udx.createSocket()
    socket.bind(0, '127.0.0.1')
    const stream = udx.createStream(99)
    stream.on('error', () => {})
    const localStreamId = ours.allocateStreamId()
    stream.connect(socket, localStreamId, ours.port, '127.0.0.1')
    cleanups.push(async () => {
      stream.destroy()
      await socket.close()
    })
    // A well-framed (3-byte length) message that is not a Noise XX message 1.
    stream.write(Buffer.from([32, 0, 0, ...Buffer.alloc(32, 0xab)]))
    await expect(
      openSecureConnection({
        socket: ours,
        remote: { host: '127.0.0.1', port: socket.address()!.port },
        localStreamId,
        remoteStreamId: 99,
        isInitiator: false,
        keyPair: makeKeyPair(),
        expectedRemotePublicKey: makeKeyPair().publicKey,
      }),
    ).rejects.toMatchObject({ code: 'ERR_HANDSHAKE_FAILED' })
  })

  it('times out with ERR_HANDSHAKE_TIMEOUT when nobody answers', async () => {
    const { a, b } = await sockets()
    const start = Date.now()
    await expect(
      openSecureConnection({
        socket: a,
        remote: { host: '127.0.0.1', port: b.port },
        localStreamId: a.allocateStreamId(),
        remoteStreamId: 42,
        isInitiator: true,
        keyPair: makeKeyPair(),
        expectedRemotePublicKey: makeKeyPair().publicKey,
        handshakeTimeout: 300,
      }),
    ).rejects.toMatchObject({ code: 'ERR_HANDSHAKE_TIMEOUT' })
    expect(Date.now() - start).toBeGreaterThanOrEqual(290)
    expect(a.streamCount).toBe(0)
  })

  it('aborts with ERR_ABORTED, before and during the handshake', async () => {
    const { a, b } = await sockets()
    const base = {
      socket: a,
      remote: { host: '127.0.0.1', port: b.port },
      remoteStreamId: 42,
      isInitiator: true,
      keyPair: makeKeyPair(),
      expectedRemotePublicKey: makeKeyPair().publicKey,
    }
    await expect(
      openSecureConnection({ ...base, localStreamId: a.allocateStreamId(), signal: AbortSignal.abort('no') }),
    ).rejects.toMatchObject({ code: 'ERR_ABORTED', cause: 'no' })
    const controller = new AbortController()
    const pending = openSecureConnection({ ...base, localStreamId: a.allocateStreamId(), signal: controller.signal })
    setTimeout(() => controller.abort('later'), 50)
    await expect(pending).rejects.toMatchObject({ code: 'ERR_ABORTED', cause: 'later' })
  })

  it('rejects with ERR_SOCKET_CLOSED when the socket closes during the handshake', async () => {
    const { a, b } = await sockets()
    const pending = openSecureConnection({
      socket: a,
      remote: { host: '127.0.0.1', port: b.port },
      localStreamId: a.allocateStreamId(),
      remoteStreamId: 42,
      isInitiator: true,
      keyPair: makeKeyPair(),
      expectedRemotePublicKey: makeKeyPair().publicKey,
    })
    setTimeout(() => void a.close(), 20)
    await expect(pending).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' })
  })

  it('surfaces a remote destroy as ERR_CONNECTION_CLOSED on the other side', async () => {
    const { a, b } = await sockets()
    const [ca, cb] = await connectedPair(a, b)
    const error = new Promise<unknown>((resolve) => cb.once('error', resolve))
    const closed = new Promise((resolve) => cb.once('close', resolve))
    ca.write('some data')
    ca.destroy()
    const err = await error
    expect(err).toBeInstanceOf(PeerlinkError)
    expect((err as PeerlinkError).code).toBe('ERR_CONNECTION_CLOSED')
    await closed
    expect(b.streamCount).toBe(0)
  })

  it('a local destroy(err) reports that error locally and a coded error remotely', async () => {
    const { a, b } = await sockets()
    const [ca, cb] = await connectedPair(a, b)
    const local = new Promise<unknown>((resolve) => ca.once('error', resolve))
    const remote = new Promise<unknown>((resolve) => cb.once('error', resolve))
    ca.destroy(new Error('application failure'))
    expect(((await local) as Error).message).toBe('application failure')
    expect(await remote).toMatchObject({ code: 'ERR_CONNECTION_CLOSED' })
  })

  it('closing the socket closes its connections without an error', async () => {
    const { a, b } = await sockets()
    const [ca] = await connectedPair(a, b)
    const errors: unknown[] = []
    ca.on('error', (e) => errors.push(e))
    const closed = new Promise((resolve) => ca.once('close', resolve))
    await a.close()
    await closed
    expect(errors).toEqual([])
    expect(a.streamCount).toBe(0)
  })

  it('half-close: one side ends, the other keeps writing', async () => {
    const { a, b } = await sockets()
    const [ca, cb] = await connectedPair(a, b)
    ca.end('request')
    const request = await receiveAll(cb)
    expect(request.bytes).toBe(7)
    const response = receiveAll(ca)
    cb.end('response after the peer ended')
    expect((await response).bytes).toBe('response after the peer ended'.length)
    await Promise.all([ca.close(), cb.close()])
  })

  it('throws at once for misuse', async () => {
    const { a, b } = await sockets()
    const good = {
      socket: a,
      remote: { host: '127.0.0.1', port: b.port },
      localStreamId: 1,
      remoteStreamId: 2,
      isInitiator: true,
      keyPair: makeKeyPair(),
      expectedRemotePublicKey: makeKeyPair().publicKey,
    }
    const code = (c: string) => expect.objectContaining({ code: c })
    expect(() => openSecureConnection({ ...good, remote: { host: 'peer.example', port: 1 } })).toThrow(
      code('ERR_INVALID_ARGUMENT'),
    )
    expect(() => openSecureConnection({ ...good, localStreamId: -1 })).toThrow(code('ERR_INVALID_ARGUMENT'))
    expect(() => openSecureConnection({ ...good, handshakeTimeout: 0 })).toThrow(code('ERR_INVALID_ARGUMENT'))
    expect(() => openSecureConnection({ ...good, expectedRemotePublicKey: new Uint8Array(31) })).toThrow(
      code('ERR_INVALID_KEY'),
    )
    const kp = makeKeyPair()
    expect(() =>
      openSecureConnection({ ...good, keyPair: { publicKey: makeKeyPair().publicKey, secretKey: kp.secretKey } }),
    ).toThrow(code('ERR_INVALID_KEY'))
    expect(() => openSecureConnection({ ...good, socket: {} as PeerSocket })).toThrow(code('ERR_INVALID_ARGUMENT'))
    expect(a.streamCount).toBe(0)
  })
})

describe('the wire protocol, against an independent raw peer', () => {
  it.each([true, false])('interoperates with a correct raw peer (our side initiator: %s): 3 MiB each way intact', async (weInitiate) => {
    const ours = await ourSocket()
    const { raw, opening, keyPair } = withRawPeer(ours, weInitiate)
    const conn = await opening
    expect(await raw.ready).toBe(true)
    expect(raw.handshakeHash()!.equals(Buffer.from(conn.handshakeHash))).toBe(true)
    expect(raw.remotePublicKey()!.equals(Buffer.from(keyPair.publicKey))).toBe(true)
    const SIZE = 3 * 1024 * 1024
    const got = receiveAll(conn)
    const fromRaw = randomBytes(SIZE)
    // Records of many sizes, up to the largest we accept (1 MiB of plaintext), then 64 KiB ones.
    let offset = 0
    for (const size of [0, 1, 15, 16, 17, 1_500, 65_536, 66_560, 66_561, 1024 * 1024, 0, 200_000]) {
      raw.sendRecord(fromRaw.subarray(offset, offset + size))
      offset += size
    }
    raw.write(fromRaw.subarray(offset))
    raw.end()
    const sent = await sendRandom(conn, SIZE)
    expect(await got).toEqual({ bytes: SIZE, sha256: sha256(fromRaw) })
    await raw.ended
    expect(raw.received().length).toBe(SIZE)
    expect(sha256(raw.received())).toBe(sent)
    // What we send is cut into records of at most 64 KiB + 1 KiB.
    expect(Math.max(...raw.records.map((r) => r.length))).toBe(66_560)
    await conn.close()
    await raw.closed
    expect(raw.errors).toEqual([])
    expect(ours.streamCount).toBe(0)
  })

  it.each([true, false])('interoperates across rekeys (every 3 records; our side initiator: %s)', async (weInitiate) => {
    rekeyPolicy.interval = 3
    const ours = await ourSocket()
    const { raw, opening } = withRawPeer(ours, weInitiate, { rekeyInterval: 3 })
    const conn = await opening
    const got = receiveAll(conn)
    const fromRaw = randomBytes(50 * 1000)
    raw.write(fromRaw, 1000) // 50 records
    raw.end()
    const fromUs = randomBytes(50 * 1000)
    for (let i = 0; i < 50; i++) conn.write(fromUs.subarray(i * 1000, (i + 1) * 1000))
    conn.end()
    expect(await got).toEqual({ bytes: fromRaw.length, sha256: sha256(fromRaw) })
    await raw.ended
    expect(raw.received().equals(fromUs)).toBe(true)
    expect(raw.records.length).toBeGreaterThan(6) // queued writes may share records; still several rekeys
    expect(raw.errors).toEqual([])
    await conn.close()
  })

  it("the responder's first record is empty; our initiator resolves only on it", async () => {
    const ours = await ourSocket()
    // We respond to a raw initiator: our first record is the empty confirmation.
    const { raw, opening } = withRawPeer(ours, false)
    const conn = await opening
    await expect.poll(() => raw.records.length).toBe(1)
    expect(raw.records[0]!.length).toBe(0)
    conn.write('after the confirmation')
    await expect.poll(() => raw.records.map(String)).toEqual(['', 'after the confirmation'])
    // A raw responder that completes the handshake but never confirms: no connection.
    const silent = withRawPeer(ours, true, { confirm: false }, { handshakeTimeout: 500 })
    await expect(silent.opening).rejects.toMatchObject({ code: 'ERR_HANDSHAKE_TIMEOUT' })
    expect(await silent.raw.ready).toBe(true)
    await silent.raw.closed
    expect(silent.raw.records).toHaveLength(0)
  })

  it('our initiator writes from onVerified right behind message 3, as records 0, 1, … the raw responder reads', async () => {
    const ours = await ourSocket()
    const { raw, opening } = withRawPeer(ours, true, {}, {
      onVerified: (conn) => {
        conn.write('early')
        conn.write('bird')
      },
    })
    await opening
    await expect.poll(() => raw.received().toString()).toBe('earlybird')
    expect(raw.errors).toEqual([])
  })

  it('a confirmation record that fails authentication fails our initiator with ERR_HANDSHAKE_FAILED', async () => {
    const ours = await ourSocket()
    const { raw, opening } = withRawPeer(ours, true, {
      confirm: false,
      afterHandshake: (peer) => peer.sendRecord(Buffer.alloc(0), { flipBit: 0 }),
    })
    await expect(opening).rejects.toMatchObject({ code: 'ERR_HANDSHAKE_FAILED' })
    await raw.closed
    expect(raw.errorCodes()).toContain('ECONNRESET')
    expect(ours.streamCount).toBe(0)
  })

  const hostile: Record<string, (raw: RawSecurePeer) => void> = {
    'a record with a flipped ciphertext bit': (raw) => raw.sendRecord(Buffer.from('tampered'), { flipBit: 13 }),
    'a record with a flipped tag bit': (raw) => raw.sendRecord(Buffer.from('tampered'), { flipBit: 24 * 8 - 1 }),
    'a record length of 1 MiB + 17': (raw) => raw.writeRaw(Buffer.concat([frameHeader(1024 * 1024 + 17), randomBytes(100)])),
    'a 15-byte record': (raw) => raw.sendFrame(randomBytes(15)),
    'an empty frame': (raw) => raw.sendFrame(Buffer.alloc(0)),
    'an end inside a record': (raw) => raw.endInsideRecord(),
  }
  it.each(Object.keys(hostile).flatMap((name) => [[name, true] as const, [name, false] as const]))(
    '%s after the handshake (our side initiator: %s): ERR_CONNECTION_CLOSED, the raw peer is reset, the socket works on',
    async (name, weInitiate) => {
      const ours = await ourSocket()
      const { raw, opening } = withRawPeer(ours, weInitiate)
      const conn = await opening
      expect(await raw.ready).toBe(true)
      const data: Buffer[] = []
      conn.on('data', (d: Buffer) => data.push(d))
      const error = new Promise<unknown>((resolve) => conn.once('error', resolve))
      raw.sendRecord(Buffer.from('valid')) // read: it is the next frame that is refused
      hostile[name]!(raw)
      expect(await error).toMatchObject({ code: 'ERR_CONNECTION_CLOSED' })
      expect(Buffer.concat(data).toString()).toBe('valid')
      await raw.closed
      expect(raw.errorCodes()).toContain('ECONNRESET')
      await expect.poll(() => ours.streamCount).toBe(0)
      await expectSocketStillWorks(ours)
    },
  )

  it.each([true, false])(
    'a flipped bit in the record right behind the handshake (our side initiator: %s) still reaches a listener attached after the await',
    async (weInitiate) => {
      const ours = await ourSocket()
      const { raw, opening } = withRawPeer(ours, weInitiate, {
        afterHandshake: (peer) => peer.sendRecord(Buffer.from('tampered'), { flipBit: 3 }),
      })
      const conn = await opening
      const err = await new Promise<unknown>((resolve) => conn.once('error', resolve))
      expect(err).toMatchObject({ code: 'ERR_CONNECTION_CLOSED' })
      await raw.closed
      expect(raw.errorCodes()).toContain('ECONNRESET')
    },
  )

  it.each([
    ['a 1024-byte garbage message 3 from a raw initiator (Noise refuses it)', false, { message: 3, body: randomBytes(1024) }, /^Noise handshake with .* failed/],
    ['a 1025-byte message 1 from a raw initiator', false, { message: 1, body: randomBytes(1025) }, /1025-byte frame during the handshake/],
    ['a 1025-byte message 2 from a raw responder', true, { message: 2, body: randomBytes(1025) }, /1025-byte frame during the handshake/],
    ['the bare length prefix of a 16 MiB message 1', false, { message: 1, body: frameHeader(0xffffff), unframed: true }, /16777215-byte frame/],
    ['a 1024-byte garbage message 2 (within the limit: Noise refuses it)', true, { message: 2, body: randomBytes(1024) }, /^Noise handshake with .* failed/],
  ] as const)('%s fails the handshake with ERR_HANDSHAKE_FAILED at once', async (_name, weInitiate, replace, message) => {
    const ours = await ourSocket()
    const start = Date.now()
    const { raw, opening } = withRawPeer(ours, weInitiate, { replaceHandshakeMessage: replace }, { handshakeTimeout: 10_000 })
    const err = await opening.catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_HANDSHAKE_FAILED' })
    expect((err as Error).message).toMatch(message)
    expect(Date.now() - start).toBeLessThan(2_000)
    await raw.closed
    expect(raw.errorCodes()).toContain('ECONNRESET')
    expect(ours.streamCount).toBe(0)
  })

  it('any sequence of random frames after the handshake ends in ERR_CONNECTION_CLOSED and crashes nothing', async () => {
    const ours = await ourSocket()
    const start = Date.now()
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.integer({ min: 0, max: 2 }),
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 2_000 }), { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        async (weInitiate, validBefore, frames, oneWrite) => {
          const { raw, opening } = withRawPeer(ours, weInitiate)
          const conn = await opening
          const data: Buffer[] = []
          conn.on('data', (d: Buffer) => data.push(d))
          const error = new Promise<unknown>((resolve) => conn.once('error', resolve))
          for (let i = 0; i < validBefore; i++) raw.sendRecord(Buffer.from(`valid ${i};`))
          if (oneWrite) raw.writeRaw(Buffer.concat(frames.map(frame)))
          else for (const body of frames) raw.sendFrame(body)
          expect(await error).toMatchObject({ code: 'ERR_CONNECTION_CLOSED' })
          expect(Buffer.concat(data).toString()).toBe(Array.from({ length: validBefore }, (_, i) => `valid ${i};`).join(''))
          await raw.closed
          await raw.close()
          await expect.poll(() => ours.streamCount).toBe(0)
        },
      ),
      { numRuns: 300 },
    )
    expect(Date.now() - start).toBeLessThan(10_000)
    await expectSocketStillWorks(ours)
  })
})
