// Messages 1 and 2 of the secure connection's Noise XX handshake exchanged out of band
// (SecureHandshake, src/transport/secure-handshake.ts), then openSecureConnection with
// `handshake`: the udx stream carries only message 3 and the records. Checked between
// two of ours and against the independent raw peer (test/transport/raw-secure-peer.ts),
// plus every way the out-of-band messages or the API can be misused.
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { HandshakeFailedError, InvalidArgumentError, PeerIdentityMismatchError, PeerlinkError } from '../../src/errors.js'
import { peerIdFromPublicKey } from '../../src/identity/peer-id.js'
import type { PeerSocket } from '../../src/transport/peer-socket.js'
import {
  openSecureConnection,
  type OpenSecureConnectionOptions,
  type SecureConnection,
  type TransportKeyPair,
} from '../../src/transport/secure-connection.js'
import { MAX_HANDSHAKE_MESSAGE, SecureHandshake } from '../../src/transport/secure-handshake.js'
import { makeKeyPair, receiveAll, sendRandom, socketPair } from './helpers.js'
import { createRawSecurePeer, rawKeyPair, rawNoiseState } from './raw-secure-peer.js'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

async function sockets() {
  const pair = await socketPair()
  cleanups.push(pair.close)
  return pair
}

/** Messages 1 and 2 between `keyA` (initiator) and `keyB` (responder), accepted by A. */
function prepare(keyA: TransportKeyPair, keyB: TransportKeyPair): { mine: SecureHandshake; theirs: SecureHandshake } {
  const mine = SecureHandshake.initiate(keyA)
  const theirs = SecureHandshake.respond(keyB, mine.message)
  mine.accept(theirs.message, keyB.publicKey)
  return { mine, theirs }
}

interface Side {
  key: TransportKeyPair
  expects: Uint8Array
  handshake?: SecureHandshake | undefined
}

/** openSecureConnection on a (initiator) and b (responder), each with its own options; both settle. */
function openBoth(a: PeerSocket, b: PeerSocket, sideA: Side, sideB: Side, handshakeTimeout = 5_000) {
  const idA = a.allocateStreamId()
  const idB = b.allocateStreamId()
  const options = (socket: PeerSocket, port: number, local: number, remote: number, isInitiator: boolean, side: Side): OpenSecureConnectionOptions => ({
    socket,
    remote: { host: '127.0.0.1', port },
    localStreamId: local,
    remoteStreamId: remote,
    isInitiator,
    keyPair: side.key,
    expectedRemotePublicKey: side.expects,
    handshakeTimeout,
    ...(side.handshake === undefined ? {} : { handshake: side.handshake }),
  })
  const pa = openSecureConnection(options(a, b.port, idA, idB, true, sideA))
  const pb = openSecureConnection(options(b, a.port, idB, idA, false, sideB))
  for (const p of [pa, pb]) p.then((conn) => cleanups.push(() => conn.destroy()), () => {})
  return Promise.allSettled([pa, pb]) as Promise<[PromiseSettledResult<SecureConnection>, PromiseSettledResult<SecureConnection>]>
}

/** A socket of ours and a raw initiator's Noise state that has exchanged messages 1 and 2 with our prepared responder half. */
async function preparedRawInitiator() {
  const { a: ours } = await sockets()
  const ourKey = makeKeyPair()
  const rawKey = rawKeyPair()
  const rawNoise = rawNoiseState(true, rawKey)
  const theirs = SecureHandshake.respond(ourKey, rawNoise.send())
  rawNoise.recv(Buffer.from(theirs.message))
  return { ours, ourKey, rawKey, rawNoise, theirs }
}

function codeOf(result: PromiseSettledResult<unknown>): string {
  if (result.status === 'fulfilled') return 'fulfilled'
  expect(result.reason).toBeInstanceOf(PeerlinkError)
  return (result.reason as PeerlinkError).code
}

/** What `f` throws (fails the test when it returns). */
function thrown(f: () => unknown): unknown {
  try {
    f()
  } catch (err) {
    return err
  }
  throw new Error('expected a throw')
}

describe('SecureHandshake: messages 1 and 2 out of band', () => {
  it('gives a 32-byte message 1 and a 96-byte message 2 (Noise XX with empty payloads)', () => {
    const mine = SecureHandshake.initiate(makeKeyPair())
    expect(mine.isInitiator).toBe(true)
    expect(mine.message.length).toBe(32)
    const theirs = SecureHandshake.respond(makeKeyPair(), mine.message)
    expect(theirs.isInitiator).toBe(false)
    expect(theirs.message.length).toBe(96)
  })

  it('opens a verified connection on both sides: 3 MB each way intact, one handshake hash', async () => {
    const { a, b } = await sockets()
    const keyA = makeKeyPair()
    const keyB = makeKeyPair()
    const { mine, theirs } = prepare(keyA, keyB)
    const [ra, rb] = await openBoth(a, b, { key: keyA, expects: keyB.publicKey, handshake: mine }, { key: keyB, expects: keyA.publicKey, handshake: theirs })
    if (ra.status === 'rejected') throw ra.reason
    if (rb.status === 'rejected') throw rb.reason
    const [ca, cb] = [ra.value, rb.value]
    expect(ca.handshakeHash.length).toBe(64)
    expect(Buffer.from(ca.handshakeHash).equals(Buffer.from(cb.handshakeHash))).toBe(true)
    expect(Buffer.from(ca.remotePublicKey).equals(Buffer.from(keyB.publicKey))).toBe(true)
    expect(Buffer.from(cb.remotePublicKey).equals(Buffer.from(keyA.publicKey))).toBe(true)
    const SIZE = 3 * 1024 * 1024
    const [sentA, sentB, gotA, gotB] = await Promise.all([sendRandom(ca, SIZE), sendRandom(cb, SIZE), receiveAll(ca), receiveAll(cb)])
    expect(gotB).toEqual({ bytes: SIZE, sha256: sentA })
    expect(gotA).toEqual({ bytes: SIZE, sha256: sentB })
    await Promise.all([ca.close(), cb.close()])
    expect(a.streamCount + b.streamCount).toBe(0)
  })

  it('our prepared initiator sends exactly one handshake frame (message 3) to a prepared raw responder', async () => {
    const { a: ours } = await sockets()
    const ourKey = makeKeyPair()
    const rawKey = rawKeyPair()
    const mine = SecureHandshake.initiate(ourKey)
    const rawNoise = rawNoiseState(false, rawKey)
    rawNoise.recv(Buffer.from(mine.message))
    mine.accept(rawNoise.send(), rawKey.publicKey)

    const localStreamId = ours.allocateStreamId()
    const raw = createRawSecurePeer({
      isInitiator: false,
      remotePort: ours.port,
      remoteId: localStreamId,
      keyPair: rawKey,
      prepared: rawNoise,
      expectedRemotePublicKey: ourKey.publicKey,
      eager: 'from the raw responder',
    })
    cleanups.push(() => raw.close())
    const conn = await openSecureConnection({
      socket: ours,
      remote: { host: '127.0.0.1', port: raw.port },
      localStreamId,
      remoteStreamId: raw.id,
      isInitiator: true,
      keyPair: ourKey,
      expectedRemotePublicKey: rawKey.publicKey,
      handshake: mine,
      handshakeTimeout: 5_000,
    })
    cleanups.push(() => conn.destroy())
    expect(await raw.ready).toBe(true)
    expect(raw.handshakeFrames.length).toBe(1)
    expect(raw.handshakeFrames[0]!.length).toBe(64) // XX message 3: encrypted static key and empty payload
    expect(Buffer.from(conn.handshakeHash).equals(raw.handshakeHash()!)).toBe(true)

    const got = new Promise<string>((resolve) => conn.once('data', (chunk: Buffer) => resolve(chunk.toString())))
    conn.write('from our initiator')
    expect(await got).toBe('from the raw responder')
    await expect.poll(() => raw.received().toString()).toBe('from our initiator')
    expect(raw.records[0]!.toString()).toBe('from our initiator') // no handshake message among the records
    expect(raw.errors).toEqual([])
  })

  it('our prepared responder reads message 3 from a prepared raw initiator and confirms with an empty record', async () => {
    const { ours, ourKey, rawKey, rawNoise, theirs } = await preparedRawInitiator()

    const localStreamId = ours.allocateStreamId()
    const raw = createRawSecurePeer({
      isInitiator: true,
      remotePort: ours.port,
      remoteId: localStreamId,
      keyPair: rawKey,
      prepared: rawNoise,
      expectedRemotePublicKey: ourKey.publicKey,
      eager: 'from the raw initiator',
    })
    cleanups.push(() => raw.close())
    const opening = openSecureConnection({
      socket: ours,
      remote: { host: '127.0.0.1', port: raw.port },
      localStreamId,
      remoteStreamId: raw.id,
      isInitiator: false,
      keyPair: ourKey,
      expectedRemotePublicKey: rawKey.publicKey,
      handshake: theirs,
      handshakeTimeout: 5_000,
    })
    const conn = await opening
    cleanups.push(() => conn.destroy())
    expect(await raw.ready).toBe(true)
    expect(Buffer.from(conn.handshakeHash).equals(raw.handshakeHash()!)).toBe(true)
    const [first] = await new Promise<[Buffer]>((resolve) => conn.once('data', (...args: [Buffer]) => resolve(args)))
    expect(first.toString()).toBe('from the raw initiator')
    conn.write('from our responder')
    await expect.poll(() => raw.records.length).toBe(2)
    expect(raw.handshakeFrames).toEqual([]) // the stream carried no handshake message from us
    expect(raw.records[0]!.length).toBe(0) // the confirmation
    expect(raw.records[1]!.toString()).toBe('from our responder')
    expect(raw.errors).toEqual([])
  })
})

describe('SecureHandshake: refused messages', () => {
  it('accept() refuses a message 2 from another key with the expected and actual PeerIds', () => {
    const keyB = makeKeyPair()
    const impostor = makeKeyPair()
    const mine = SecureHandshake.initiate(makeKeyPair())
    const theirs = SecureHandshake.respond(impostor, mine.message)
    const err = thrown(() => mine.accept(theirs.message, keyB.publicKey)) as PeerIdentityMismatchError
    expect(err).toBeInstanceOf(PeerIdentityMismatchError)
    expect(err.code).toBe('ERR_PEER_IDENTITY_MISMATCH')
    expect(err.expected).toBe(peerIdFromPublicKey(keyB.publicKey))
    expect(err.actual).toBe(peerIdFromPublicKey(impostor.publicKey))
    // Used up: no state to open a connection with, no second try.
    expect(mine.take()).toBeUndefined()
    expect(() => mine.accept(theirs.message, impostor.publicKey)).toThrow(InvalidArgumentError)
  })

  it('accept() formats the PeerIds with formatPeerId', () => {
    const mine = SecureHandshake.initiate(makeKeyPair())
    const theirs = SecureHandshake.respond(makeKeyPair(), mine.message)
    const format = (key: Uint8Array) => `key:${Buffer.from(key).toString('hex').slice(0, 6)}`
    const expected = makeKeyPair().publicKey
    const err = thrown(() => mine.accept(theirs.message, expected, format)) as PeerIdentityMismatchError
    expect(err.expected).toBe(format(expected))
    expect(err.actual).toMatch(/^key:[0-9a-f]{6}$/)
  })

  it('accept() refuses a corrupt, truncated, oversized or payload-carrying message 2 with ERR_HANDSHAKE_FAILED', () => {
    const keyA = makeKeyPair()
    const keyB = makeKeyPair()
    const fresh = () => {
      const mine = SecureHandshake.initiate(keyA)
      return { mine, message2: Buffer.from(SecureHandshake.respond(keyB, mine.message).message) }
    }
    const refused = (mutate: (message2: Buffer) => Uint8Array) => {
      const { mine, message2 } = fresh()
      const err = thrown(() => mine.accept(mutate(message2), keyB.publicKey))
      expect(err).toBeInstanceOf(HandshakeFailedError)
      expect((err as HandshakeFailedError).code).toBe('ERR_HANDSHAKE_FAILED')
      expect(mine.take()).toBeUndefined()
    }
    // Every single flipped bit (ephemeral key, encrypted static key, tag).
    for (let bit = 0; bit < 96 * 8; bit += 7) {
      refused((m) => {
        m[bit >> 3]! ^= 1 << (bit & 7)
        return m
      })
    }
    for (let length = 0; length < 96; length += 5) refused((m) => m.subarray(0, length))
    refused((m) => Buffer.concat([m, Buffer.alloc(1)])) // one byte too many
    refused(() => randomBytes(MAX_HANDSHAKE_MESSAGE + 1))
    refused(() => Buffer.alloc(MAX_HANDSHAKE_MESSAGE, 0xab))
    refused(() => 'not bytes' as unknown as Uint8Array)
    // A genuine message 2 from the right key, with a payload: not this protocol version.
    const mine = SecureHandshake.initiate(keyA)
    const responder = rawNoiseState(false, { publicKey: Buffer.from(keyB.publicKey), secretKey: Buffer.from(keyB.secretKey) })
    responder.recv(Buffer.from(mine.message))
    expect(() => mine.accept(responder.send(Buffer.from('a payload')), keyB.publicKey)).toThrow(HandshakeFailedError)
  })

  it('respond() refuses garbage, oversized or payload-carrying message 1 with ERR_HANDSHAKE_FAILED', () => {
    const key = makeKeyPair()
    const refused = (message1: unknown) => {
      const err = thrown(() => SecureHandshake.respond(key, message1 as Uint8Array))
      expect(err).toBeInstanceOf(HandshakeFailedError)
      expect((err as HandshakeFailedError).code).toBe('ERR_HANDSHAKE_FAILED')
    }
    refused(randomBytes(33))
    refused(randomBytes(96))
    refused(randomBytes(MAX_HANDSHAKE_MESSAGE + 1))
    refused(Buffer.alloc(MAX_HANDSHAKE_MESSAGE + 1))
    refused(undefined)
    refused('message 1')
    const initiator = rawNoiseState(true, rawKeyPair())
    refused(initiator.send(Buffer.from('a payload')))
  })

  it('random bytes as message 1 or 2 throw nothing but the typed errors', () => {
    const keyA = makeKeyPair()
    const keyB = makeKeyPair()
    const typed = (err: unknown) => err instanceof HandshakeFailedError || err instanceof PeerIdentityMismatchError
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: MAX_HANDSHAKE_MESSAGE + 64 }), (bytes) => {
        try {
          const theirs = SecureHandshake.respond(keyB, bytes)
          // Accepted only as a bare ephemeral key, answered with a real message 2.
          return bytes.length === 32 && theirs.message.length === 96
        } catch (err) {
          return typed(err)
        }
      }),
      { numRuns: 300 },
    )
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: MAX_HANDSHAKE_MESSAGE + 64 }), fc.uint8Array({ minLength: 96, maxLength: 96 })), (bytes) => {
        const mine = SecureHandshake.initiate(keyA)
        try {
          mine.accept(bytes, keyB.publicKey)
          return false
        } catch (err) {
          return typed(err) && mine.take() === undefined
        }
      }),
      { numRuns: 300 },
    )
  })
})

describe('SecureHandshake: misuse', () => {
  it('accept() twice, or on the responder half, is an InvalidArgumentError', () => {
    const keyB = makeKeyPair()
    const mine = SecureHandshake.initiate(makeKeyPair())
    const theirs = SecureHandshake.respond(keyB, mine.message)
    const message2 = Buffer.from(theirs.message)
    mine.accept(theirs.message, keyB.publicKey)
    expect(() => mine.accept(message2, keyB.publicKey)).toThrow(InvalidArgumentError)
    expect(() => theirs.accept(message2, keyB.publicKey)).toThrow(InvalidArgumentError)
    // The failed calls used nothing up.
    expect(mine.take()).toBeDefined()
    expect(mine.take()).toBeUndefined()
  })

  it('take() gives nothing before accept() and only once after', () => {
    const keyB = makeKeyPair()
    const mine = SecureHandshake.initiate(makeKeyPair())
    expect(mine.take()).toBeUndefined()
    const theirs = SecureHandshake.respond(keyB, mine.message)
    mine.accept(theirs.message, keyB.publicKey)
    expect(mine.take()).toBeDefined()
    expect(mine.take()).toBeUndefined()
    expect(theirs.take()).toBeDefined()
    expect(theirs.take()).toBeUndefined()
  })

  it('openSecureConnection throws InvalidArgumentError at once for an unready, used, foreign or fake handshake', async () => {
    const { a, b } = await sockets()
    const keyA = makeKeyPair()
    const keyB = makeKeyPair()
    const base = (handshake: unknown, isInitiator = true): OpenSecureConnectionOptions => ({
      socket: a,
      remote: { host: '127.0.0.1', port: b.port },
      localStreamId: 77,
      remoteStreamId: 78,
      isInitiator,
      keyPair: isInitiator ? keyA : keyB,
      expectedRemotePublicKey: isInitiator ? keyB.publicKey : keyA.publicKey,
      handshake: handshake as SecureHandshake,
    })
    const refused = (handshake: unknown, isInitiator = true, message?: RegExp) => {
      const err = thrown(() => openSecureConnection(base(handshake, isInitiator)))
      expect(err).toBeInstanceOf(InvalidArgumentError)
      if (message !== undefined) expect((err as Error).message).toMatch(message)
    }
    // Not accepted yet.
    refused(SecureHandshake.initiate(keyA), true, /not ready/)
    // The other side's half, both ways; they stay usable.
    const { mine, theirs } = prepare(keyA, keyB)
    refused(theirs, true, /other side/)
    refused(mine, false, /other side/)
    // Not a SecureHandshake.
    refused({ isInitiator: true, message: new Uint8Array(32), take: () => undefined }, true, /SecureHandshake/)
    // Used: by a connection, or by take().
    const [ra, rb] = await openBoth(a, b, { key: keyA, expects: keyB.publicKey, handshake: mine }, { key: keyB, expects: keyA.publicKey, handshake: theirs })
    expect([codeOf(ra), codeOf(rb)]).toEqual(['fulfilled', 'fulfilled'])
    refused(mine, true, /used/)
    refused(theirs, false, /used/)
    const taken = prepare(keyA, keyB).mine
    taken.take()
    refused(taken, true, /used/)
    expect(a.isStreamIdFree(77)).toBe(true)
  })
})

describe('SecureHandshake: prepared against unprepared, and identity at message 3', () => {
  it('a prepared initiator facing a responder that runs the whole handshake on the stream fails with coded errors, quickly', async () => {
    const { a, b } = await sockets()
    const keyA = makeKeyPair()
    const keyB = makeKeyPair()
    const { mine } = prepare(keyA, keyB)
    const started = Date.now()
    const [ra, rb] = await openBoth(a, b, { key: keyA, expects: keyB.publicKey, handshake: mine }, { key: keyB, expects: keyA.publicKey }, 3_000)
    // The responder reads message 3 as a message 1 with a payload; the initiator hears the reset.
    expect(codeOf(rb)).toBe('ERR_HANDSHAKE_FAILED')
    expect(codeOf(ra)).toBe('ERR_CONNECTION_CLOSED')
    expect(Date.now() - started).toBeLessThan(3_000)
    expect(a.streamCount + b.streamCount).toBe(0)
  })

  it('an initiator running the whole handshake on the stream facing a prepared responder fails with coded errors, quickly', async () => {
    const { a, b } = await sockets()
    const keyA = makeKeyPair()
    const keyB = makeKeyPair()
    const { theirs } = prepare(keyA, keyB)
    const started = Date.now()
    const [ra, rb] = await openBoth(a, b, { key: keyA, expects: keyB.publicKey }, { key: keyB, expects: keyA.publicKey, handshake: theirs }, 3_000)
    expect(codeOf(rb)).toBe('ERR_HANDSHAKE_FAILED') // message 1 is no message 3
    expect(codeOf(ra)).toBe('ERR_CONNECTION_CLOSED')
    expect(Date.now() - started).toBeLessThan(3_000)
  })

  it("the prepared responder refuses an initiator with another key at message 3; the initiator sees ERR_CONNECTION_CLOSED", async () => {
    const { a, b } = await sockets()
    const keyA = makeKeyPair()
    const keyB = makeKeyPair()
    const someoneElse = makeKeyPair().publicKey
    const { mine, theirs } = prepare(keyA, keyB)
    const started = Date.now()
    const [ra, rb] = await openBoth(a, b, { key: keyA, expects: keyB.publicKey, handshake: mine }, { key: keyB, expects: someoneElse, handshake: theirs }, 5_000)
    expect(codeOf(rb)).toBe('ERR_PEER_IDENTITY_MISMATCH')
    const err = (rb as PromiseRejectedResult).reason as PeerIdentityMismatchError
    expect(err.expected).toBe(peerIdFromPublicKey(someoneElse))
    expect(err.actual).toBe(peerIdFromPublicKey(keyA.publicKey))
    expect(codeOf(ra)).toBe('ERR_CONNECTION_CLOSED')
    expect(Date.now() - started).toBeLessThan(4_000)
  })

  it('a prepared raw initiator with another key is refused at message 3, before any of its records is read', async () => {
    const { ours, ourKey, rawKey, rawNoise, theirs } = await preparedRawInitiator()
    const localStreamId = ours.allocateStreamId()
    const raw = createRawSecurePeer({ isInitiator: true, remotePort: ours.port, remoteId: localStreamId, keyPair: rawKey, prepared: rawNoise, eager: 'never read' })
    cleanups.push(() => raw.close())
    const expected = makeKeyPair().publicKey
    const err = await openSecureConnection({
      socket: ours,
      remote: { host: '127.0.0.1', port: raw.port },
      localStreamId,
      remoteStreamId: raw.id,
      isInitiator: false,
      keyPair: ourKey,
      expectedRemotePublicKey: expected,
      handshake: theirs,
      handshakeTimeout: 5_000,
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PeerIdentityMismatchError)
    expect((err as PeerIdentityMismatchError).actual).toBe(peerIdFromPublicKey(rawKey.publicKey))
    await raw.closed // reset by us
    expect(raw.records).toEqual([]) // no confirmation
    expect(raw.errorCodes()).toContain('ECONNRESET')
  })
})
