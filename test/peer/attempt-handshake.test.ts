// One attempt's half of messages 1 and 2 in the signalling (src/peer/attempt-handshake.ts),
// with a fake attempt: the offer's message 1, the answer's message 2, the connecting side's
// check of the listening side's key (deferred to the next turn, or done at the selection),
// and how a refused or missing message ends the attempt.
import { setImmediate as nextTurn } from 'node:timers/promises'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { HandshakeFailedError, IceSignalInvalidError, PeerIdentityMismatchError } from '../../src/errors.js'
import { peerIdFromPublicKey } from '../../src/identity/peer-id.js'
import { AttemptHandshake, type AttemptHandshakeContext } from '../../src/peer/attempt-handshake.js'
import { openSecureConnection, type TransportKeyPair } from '../../src/transport/secure-connection.js'
import { SecureHandshake } from '../../src/transport/secure-handshake.js'
import { makeKeyPair, socketPair } from '../transport/helpers.js'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

/** A fake attempt: `aborts` records abort(), `finish()` ends it. */
function fakeAttempt(initiator: boolean, keyPair: TransportKeyPair, expected: Uint8Array) {
  let finished = false
  const aborts: unknown[] = []
  const ctx: AttemptHandshakeContext = {
    initiator,
    keyPair,
    expectedKey: () => expected,
    abort: vi.fn((reason: unknown) => {
      aborts.push(reason)
      finished = true
    }),
    finished: () => finished,
  }
  return { handshake: new AttemptHandshake(ctx), aborts, finish: () => (finished = true) }
}

/** A connecting side (key A, expecting B) and a listening side (key B, expecting A). */
function sides(options: { listenerKey?: TransportKeyPair } = {}) {
  const keyA = makeKeyPair()
  const keyB = makeKeyPair()
  const connecting = fakeAttempt(true, keyA, keyB.publicKey)
  const listening = fakeAttempt(false, options.listenerKey ?? keyB, keyA.publicKey)
  return { keyA, keyB, connecting, listening }
}

describe('AttemptHandshake', () => {
  it('carries message 1 in the offer and 2 in the answer; both halves then open a connection', async () => {
    const { keyA, keyB, connecting, listening } = sides()
    const message1 = connecting.handshake.localMessage()!
    expect(message1.length).toBe(32)
    expect(connecting.handshake.localMessage()).toBe(message1) // one message 1 per attempt
    listening.handshake.onRemote(message1)
    const message2 = listening.handshake.localMessage()!
    expect(message2.length).toBe(96)
    connecting.handshake.onRemote(message2)
    await nextTurn() // message 2 is read on the turn after the answer
    const mine = connecting.handshake.forSelection()
    const theirs = listening.handshake.forSelection()
    expect(mine).toBeInstanceOf(SecureHandshake)
    expect(theirs).toBeInstanceOf(SecureHandshake)
    expect([mine!.isInitiator, theirs!.isInitiator]).toEqual([true, false])
    expect(connecting.aborts).toEqual([])

    const { a, b, close } = await socketPair()
    cleanups.push(close)
    const idA = a.allocateStreamId()
    const idB = b.allocateStreamId()
    const [ca, cb] = await Promise.all([
      openSecureConnection({ socket: a, remote: { host: '127.0.0.1', port: b.port }, localStreamId: idA, remoteStreamId: idB, isInitiator: true, keyPair: keyA, expectedRemotePublicKey: keyB.publicKey, handshake: mine!, handshakeTimeout: 5_000 }),
      openSecureConnection({ socket: b, remote: { host: '127.0.0.1', port: a.port }, localStreamId: idB, remoteStreamId: idA, isInitiator: false, keyPair: keyB, expectedRemotePublicKey: keyA.publicKey, handshake: theirs!, handshakeTimeout: 5_000 }),
    ])
    cleanups.push(() => ca.destroy(), () => cb.destroy())
    expect(Buffer.from(ca.handshakeHash).equals(Buffer.from(cb.handshakeHash))).toBe(true)
    const got = new Promise<string>((resolve) => cb.once('data', (chunk: Buffer) => resolve(chunk.toString())))
    ca.write('over the prepared handshake')
    expect(await got).toBe('over the prepared handshake')
  })

  it('forSelection on the connecting side reads a message 2 not yet read, synchronously', async () => {
    const { connecting, listening } = sides()
    listening.handshake.onRemote(connecting.handshake.localMessage())
    connecting.handshake.onRemote(listening.handshake.localMessage())
    // Same turn as the answer: the deferred read has not run.
    const mine = connecting.handshake.forSelection()
    expect(mine).toBeInstanceOf(SecureHandshake)
    expect(mine!.take()).toBeDefined() // accepted: ready for the stream
    await nextTurn() // the deferred read finds it done and changes nothing
    expect(connecting.aborts).toEqual([])
    expect(connecting.handshake.forSelection()).toBe(mine)
  })

  it('an answer without message 2 to an offer with message 1 is ERR_ICE_SIGNAL_INVALID', () => {
    const { connecting } = sides()
    connecting.handshake.localMessage()
    expect(() => connecting.handshake.onRemote(undefined)).toThrow(IceSignalInvalidError)
  })

  it('a message 2 from another key aborts the attempt with ERR_PEER_IDENTITY_MISMATCH (expected and actual PeerIds)', async () => {
    const impostor = makeKeyPair()
    const { keyB, connecting, listening } = sides({ listenerKey: impostor })
    listening.handshake.onRemote(connecting.handshake.localMessage())
    connecting.handshake.onRemote(listening.handshake.localMessage())
    expect(connecting.aborts).toEqual([]) // not on the answer's turn
    await nextTurn()
    expect(connecting.aborts.length).toBe(1)
    const err = connecting.aborts[0] as PeerIdentityMismatchError
    expect(err).toBeInstanceOf(PeerIdentityMismatchError)
    expect(err.expected).toBe(peerIdFromPublicKey(keyB.publicKey))
    expect(err.actual).toBe(peerIdFromPublicKey(impostor.publicKey))
    // A selection that comes anyway gets no handshake, and no second abort.
    expect(() => connecting.handshake.forSelection()).toThrow(IceSignalInvalidError)
    expect(connecting.aborts.length).toBe(1)
  })

  it('forSelection right after a refused message 2 aborts once and throws', async () => {
    const { connecting, listening } = sides({ listenerKey: makeKeyPair() })
    listening.handshake.onRemote(connecting.handshake.localMessage())
    connecting.handshake.onRemote(listening.handshake.localMessage())
    expect(() => connecting.handshake.forSelection()).toThrow(IceSignalInvalidError)
    expect(connecting.aborts.length).toBe(1)
    expect(connecting.aborts[0]).toBeInstanceOf(PeerIdentityMismatchError)
    await nextTurn()
    expect(connecting.aborts.length).toBe(1)
  })

  it('a garbage message 2 aborts the attempt with ERR_HANDSHAKE_FAILED', async () => {
    const { connecting } = sides()
    connecting.handshake.localMessage()
    connecting.handshake.onRemote(new Uint8Array(96).fill(7))
    await nextTurn()
    expect(connecting.aborts.length).toBe(1)
    expect(connecting.aborts[0]).toBeInstanceOf(HandshakeFailedError)
  })

  it('an attempt that ended before message 2 was read does not read it', async () => {
    const { connecting, listening } = sides({ listenerKey: makeKeyPair() })
    listening.handshake.onRemote(connecting.handshake.localMessage())
    connecting.handshake.onRemote(listening.handshake.localMessage())
    connecting.finish()
    await nextTurn()
    expect(connecting.aborts).toEqual([]) // the refusal would have aborted it
  })

  it('without message 1 (an offer that carried none), the whole handshake runs on the stream', () => {
    const { connecting, listening } = sides()
    // The connecting side never made one: an answer without message 2 is fine.
    expect(() => connecting.handshake.onRemote(undefined)).not.toThrow()
    expect(connecting.handshake.forSelection()).toBeUndefined()
    // The listening side got none: its answer carries none.
    listening.handshake.onRemote(undefined)
    expect(listening.handshake.localMessage()).toBeUndefined()
    expect(listening.handshake.forSelection()).toBeUndefined()
  })

  it("the listening side refuses an offer's garbage message 1 with ERR_HANDSHAKE_FAILED when it builds the answer", () => {
    const { listening } = sides()
    listening.handshake.onRemote(new Uint8Array(40).fill(1)) // a message 1 with a payload
    expect(() => listening.handshake.localMessage()).toThrow(HandshakeFailedError)
    expect(listening.handshake.forSelection()).toBeUndefined()
  })
})
