import { describe, it, expect, afterEach } from 'vitest'
import { Duplex } from 'node:stream'
import UDX from 'udx-native'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import { PeerSocket } from '../../src/transport/peer-socket.js'
import { openSecureConnection, SecureConnection } from '../../src/transport/secure-connection.js'
import { PeerlinkError, PeerIdentityMismatchError } from '../../src/errors.js'
import { peerIdFromPublicKey } from '../../src/identity/peer-id.js'
import { connectedPair, makeKeyPair, openPair, receiveAll, sendRandom, socketPair } from './helpers.js'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

async function sockets() {
  const pair = await socketPair()
  cleanups.push(pair.close)
  return pair
}

/**
 * A peer built from udx-native + secret-stream directly (not our API), bound to
 * 127.0.0.1. It writes application data the moment its own handshake completes and
 * records every application byte it receives.
 */
function rawPeer(isInitiator: boolean, remotePort: number, remoteId: number) {
  const udx = new UDX()
  const socket = udx.createSocket()
  socket.bind(0, '127.0.0.1')
  const id = 0x1234567
  const stream = udx.createStream(id)
  stream.connect(socket, remoteId, remotePort, '127.0.0.1')
  const keyPair = NoiseSecretStream.keyPair()
  const secret = new NoiseSecretStream(isInitiator, stream, { keyPair })
  const received: Buffer[] = []
  const errors: Error[] = []
  secret.on('connect', () => secret.write(Buffer.from('application data from the raw peer')))
  secret.on('data', (d: Buffer) => received.push(d))
  secret.on('error', (e: Error) => errors.push(e))
  const closed = new Promise<void>((resolve) => secret.on('close', () => resolve()))
  cleanups.push(async () => {
    secret.destroy()
    await closed
    await socket.close()
  })
  return { port: socket.address()!.port, id, keyPair, secret, received, errors, closed }
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
    'delivers no application bytes when our side (initiator: %s) rejects an eager raw secret-stream peer',
    async (weInitiate) => {
      const ours = await PeerSocket.bind({ host: '127.0.0.1' })
      cleanups.push(() => ours.close())
      const localStreamId = ours.allocateStreamId()
      const raw = rawPeer(!weInitiate, ours.port, localStreamId)
      const formatPeerId = (k: Uint8Array) => `peer:${Buffer.from(k).toString('hex').slice(0, 8)}`
      const err = await openSecureConnection({
        socket: ours,
        remote: { host: '127.0.0.1', port: raw.port },
        localStreamId,
        remoteStreamId: raw.id,
        isInitiator: weInitiate,
        keyPair: makeKeyPair(),
        expectedRemotePublicKey: makeKeyPair().publicKey,
        formatPeerId,
      }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PeerIdentityMismatchError)
      expect((err as PeerIdentityMismatchError).actual).toBe(formatPeerId(raw.keyPair.publicKey))
      await raw.closed // our reset reaches the raw peer
      expect(raw.received).toHaveLength(0)
      if (!weInitiate) {
        // The raw initiator completed its handshake and wrote data; it was never read.
        expect(raw.errors.map((e) => (e as { code?: string }).code)).toContain('ECONNRESET')
      }
    },
  )

  it('accepts a plain secret-stream peer with the expected key and exchanges data both ways', async () => {
    const ours = await PeerSocket.bind({ host: '127.0.0.1' })
    cleanups.push(() => ours.close())
    const localStreamId = ours.allocateStreamId()
    const raw = rawPeer(false, ours.port, localStreamId)
    const conn = await openSecureConnection({
      socket: ours,
      remote: { host: '127.0.0.1', port: raw.port },
      localStreamId,
      remoteStreamId: raw.id,
      isInitiator: true,
      keyPair: makeKeyPair(),
      expectedRemotePublicKey: raw.keyPair.publicKey,
    })
    const [first] = (await new Promise((resolve) => conn.once('data', (d) => resolve([d])))) as [Buffer]
    expect(first.toString()).toBe('application data from the raw peer')
    conn.write('hi raw')
    await expect.poll(() => Buffer.concat(raw.received).toString()).toBe('hi raw')
    conn.destroy()
    await raw.closed
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
