// Messages 1 and 2 of the secure connection's handshake in the signalling, between real
// peers on loopback and a crafted peer (a BeaconClient with a real identity that seals
// its own offers and answers): what each side puts in the `noise` field, and how a
// garbage, foreign or missing handshake message ends the attempt with a coded error.
import { randomBytes } from 'node:crypto'
import { encode } from '@msgpack/msgpack'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BeaconClient, type IncomingSignal } from '../../src/beacon/beacon-client.js'
import { PeerIdentityMismatchError, PeerlinkError } from '../../src/errors.js'
import { type Identity, createIdentity } from '../../src/identity/index.js'
import { peerIdFromPublicKey, publicKeyFromPeerId } from '../../src/identity/peer-id.js'
import { CONNECT_SIGNAL_VERSION, decodeCloseReason, decodeSessionDescription, encodeCloseSignal, encodeSessionDescription } from '../../src/peer/connect-signal.js'
import { type AttemptEvent, type Peer, type PeerConnection, createPeer } from '../../src/peer/index.js'
import { openSignal, sealSignal } from '../../src/peer/signal-seal.js'
import type { BeaconServer } from '../../src/server/beacon/index.js'
import { SecureHandshake } from '../../src/transport/secure-handshake.js'
import { next, specOf, startBeacon } from '../beacon/helpers.js'
import { makeKeyPair } from '../transport/helpers.js'
import { FAST_ICE, LOOPBACK } from './loopback-peer-options.js'

const fast = { minDelayMs: 20, maxDelayMs: 200, connectTimeout: 3_000, requestTimeout: 3_000 }
/** A failed attempt must end this much sooner than its 10 s timeout. */
const QUICK_MS = 3_000
const ICE = { ufrag: 'fake', pwd: 'f'.repeat(22) }

describe('the handshake in the signalling, between peers', () => {
  let beacon: BeaconServer
  let listener: Peer
  let dialer: Peer
  /** A crafted listening peer (answers the dialer itself) and a crafted connecting one. */
  let fakeListener: { identity: Identity; client: BeaconClient }
  let fakeDialer: { identity: Identity; client: BeaconClient }

  beforeAll(async () => {
    beacon = await startBeacon()
    const beacons = [specOf(beacon)]
    listener = await createPeer({ beacons, host: '127.0.0.1', gather: LOOPBACK, ice: FAST_ICE })
    dialer = await createPeer({ beacons, host: '127.0.0.1', gather: LOOPBACK, ice: FAST_ICE })
    await listener.listen()
    const crafted = async () => {
      const identity = createIdentity()
      const client = await BeaconClient.connect({ identity, server: specOf(beacon), ...fast })
      await client.listen()
      return { identity, client }
    }
    fakeListener = await crafted()
    fakeDialer = await crafted()
  })

  afterAll(async () => {
    await Promise.all([fakeListener?.client.close(), fakeDialer?.client.close()])
    await dialer?.close()
    await listener?.close()
    await beacon?.close()
  })

  /** The dialer's next offer to the crafted listener, opened and decoded. */
  async function dialerOffer() {
    const signal = await next<IncomingSignal>(fakeListener.client, 'signal')
    expect(signal).toMatchObject({ from: dialer.peerId, kind: 'offer' })
    const body = openSignal('offer', { session: signal.session, from: dialer.peerId, to: fakeListener.identity.peerId }, signal.payload, publicKeyFromPeerId(dialer.peerId))
    return { session: signal.session, body, description: decodeSessionDescription(body) }
  }

  /** The crafted listener answers in `session` with `body` (sealed with its real identity). */
  async function answer(session: Uint8Array, body: Uint8Array): Promise<void> {
    const { identity, client } = fakeListener
    const payload = sealSignal(identity, 'answer', { session, from: identity.peerId, to: dialer.peerId }, body)
    await client.signal(dialer.peerId, { kind: 'answer', session, payload })
  }

  /** The close signal the dialer sends the crafted listener when it abandons `session`. */
  function closeFromDialer(session: Uint8Array): Promise<string> {
    return new Promise((resolve) => {
      const onSignal = (signal: IncomingSignal) => {
        if (signal.kind !== 'close' || !Buffer.from(signal.session).equals(Buffer.from(session))) return
        fakeListener.client.off('signal', onSignal)
        resolve(decodeCloseReason(signal.payload))
      }
      fakeListener.client.on('signal', onSignal)
    })
  }

  /**
   * The dialer connects to the crafted listener, which answers with `makeBody(message 1)`;
   * resolves with the dialer's error, how long it took, its attempt events and the close reason it sent.
   */
  async function dialerFacing(makeBody: (message1: Uint8Array) => Uint8Array) {
    const events: AttemptEvent[] = []
    const onAttempt = (e: AttemptEvent) => {
      if (e.peerId === fakeListener.identity.peerId) events.push(e)
    }
    dialer.on('attempt', onAttempt)
    const started = Date.now()
    const connecting = dialer.connect(fakeListener.identity.peerId, { timeout: 10_000 }).then(
      (c) => (c.destroy(), new Error('connected to the crafted listener')),
      (err: unknown) => err,
    )
    const offer = await dialerOffer()
    // The offer carries message 1 (a bare ephemeral key).
    expect(offer.description.noise?.length).toBe(32)
    const closed = closeFromDialer(offer.session)
    await answer(offer.session, makeBody(Buffer.from(offer.description.noise!)))
    const err = await connecting
    const ms = Date.now() - started
    dialer.off('attempt', onAttempt)
    const reason = await Promise.race([closed, new Promise<string>((resolve) => setTimeout(() => resolve('no close signal'), 2_000))])
    expect(err).toBeInstanceOf(PeerlinkError)
    return { err: err as PeerlinkError, ms, events, reason }
  }

  const answerBody = (noise: Uint8Array | undefined) => encodeSessionDescription({ ice: ICE, stream: 1, candidates: [], end: false, noise })

  it('the connector fails quickly with ERR_HANDSHAKE_FAILED on an answer whose message 2 is garbage', async () => {
    const { err, ms, events, reason } = await dialerFacing(() => answerBody(randomBytes(96)))
    expect(err.code).toBe('ERR_HANDSHAKE_FAILED')
    expect(ms).toBeLessThan(QUICK_MS)
    expect(events.map((e) => e.step)).toContain('answer')
    expect(events.at(-1)).toMatchObject({ step: 'failed', detail: { code: 'ERR_HANDSHAKE_FAILED' } })
    expect(reason).toBe('ERR_HANDSHAKE_FAILED')
  })

  it('the connector fails quickly with ERR_PEER_IDENTITY_MISMATCH on a genuine message 2 from another key', async () => {
    const other = makeKeyPair()
    const { err, ms, reason } = await dialerFacing((message1) => answerBody(SecureHandshake.respond(other, message1).message))
    expect(err).toBeInstanceOf(PeerIdentityMismatchError)
    expect((err as PeerIdentityMismatchError).expected).toBe(fakeListener.identity.peerId)
    expect((err as PeerIdentityMismatchError).actual).toBe(peerIdFromPublicKey(other.publicKey))
    expect(ms).toBeLessThan(QUICK_MS)
    expect(reason).toBe('ERR_PEER_IDENTITY_MISMATCH')
  })

  it('the connector fails quickly with ERR_ICE_SIGNAL_INVALID on an answer without message 2', async () => {
    const { err, ms, reason } = await dialerFacing(() => answerBody(undefined))
    expect(err.code).toBe('ERR_ICE_SIGNAL_INVALID')
    expect(err.message).toMatch(/handshake/)
    expect(ms).toBeLessThan(QUICK_MS)
    expect(reason).toBe('ERR_ICE_SIGNAL_INVALID')
  })

  it('the connector fails quickly with ERR_ICE_SIGNAL_INVALID on a version 1 answer', async () => {
    const { err, ms } = await dialerFacing((message1) =>
      encode({ v: 1, ufrag: ICE.ufrag, pwd: ICE.pwd, stream: 1, candidates: [], end: false, noise: SecureHandshake.respond(fakeListener.identity.keyPair, message1).message }),
    )
    expect(err.code).toBe('ERR_ICE_SIGNAL_INVALID')
    expect(err.message).toMatch(/version 1\b/)
    expect(ms).toBeLessThan(QUICK_MS)
  })

  /** The crafted dialer sends the listener an offer with `noise`; resolves with the session. */
  async function offerToListener(noise: Uint8Array | undefined): Promise<Uint8Array> {
    const { identity, client } = fakeDialer
    const session = new Uint8Array(randomBytes(16))
    const body = encodeSessionDescription({ ice: ICE, stream: 1, candidates: [], end: false, noise })
    const payload = sealSignal(identity, 'offer', { session, from: identity.peerId, to: listener.peerId }, body)
    await client.signal(listener.peerId, { kind: 'offer', session, payload })
    return session
  }

  it("the listening side answers a crafted offer's message 1 with a message 2 that proves its key", async () => {
    const mine = SecureHandshake.initiate(fakeDialer.identity.keyPair)
    const answered = next<IncomingSignal>(fakeDialer.client, 'signal')
    const errors: Array<[Error, string]> = []
    const onError = (...args: [Error, string]) => errors.push(args)
    listener.on('incoming-error', onError)
    const session = await offerToListener(mine.message)
    const signal = await answered
    expect(signal).toMatchObject({ from: listener.peerId, kind: 'answer' })
    const body = openSignal('answer', { session, from: listener.peerId, to: fakeDialer.identity.peerId }, signal.payload, publicKeyFromPeerId(listener.peerId))
    const description = decodeSessionDescription(body)
    expect(description.noise?.length).toBe(96)
    mine.accept(description.noise!, publicKeyFromPeerId(listener.peerId)) // throws for another key
    expect(mine.take()).toBeDefined()
    // End the listener's attempt.
    await fakeDialer.client.signal(listener.peerId, { kind: 'close', session, payload: encodeCloseSignal('done') })
    await expect.poll(() => errors.length, { timeout: 5_000 }).toBe(1)
    listener.off('incoming-error', onError)
    expect(errors[0]![1]).toBe(fakeDialer.identity.peerId)
    expect((errors[0]![0] as PeerlinkError).code).toBe('ERR_CONNECT_FAILED') // abandoned by the peer
  })

  it('the listening side abandons an offer whose message 1 is garbage at once, answering only with a close (ERR_HANDSHAKE_FAILED)', async () => {
    const events: AttemptEvent[] = []
    const onAttempt = (e: AttemptEvent) => {
      if (e.peerId === fakeDialer.identity.peerId) events.push(e)
    }
    listener.on('attempt', onAttempt)
    const heard: IncomingSignal[] = []
    const onSignal = (s: IncomingSignal) => heard.push(s)
    fakeDialer.client.on('signal', onSignal)
    const failed = new Promise<[Error, string]>((resolve) => listener.once('incoming-error', (...args) => resolve(args)))
    const started = Date.now()
    const session = await offerToListener(randomBytes(40)) // an ephemeral key and a payload: no message 1 of ours
    const [err, from] = await failed
    expect(Date.now() - started).toBeLessThan(QUICK_MS)
    expect(from).toBe(fakeDialer.identity.peerId)
    expect((err as PeerlinkError).code).toBe('ERR_HANDSHAKE_FAILED')
    expect(events.map((e) => e.step)).toEqual(['offer', 'failed'])
    // Only a close comes back in this session (no answer): the connecting side learns at
    // once why (signals of the previous test's session may still come in meanwhile).
    await new Promise((resolve) => setTimeout(resolve, 300))
    fakeDialer.client.off('signal', onSignal)
    listener.off('attempt', onAttempt)
    const back = heard.filter((h) => Buffer.from(h.session).equals(Buffer.from(session)))
    expect(back.map((h) => h.kind)).toEqual(['close'])
    expect(decodeCloseReason(back[0]!.payload)).toBe('ERR_HANDSHAKE_FAILED')
  })

  it('the two real peers still connect, verified both ways, after all that', async () => {
    const steps: string[] = []
    const onAttempt = (side: string) => (e: AttemptEvent) => {
      if (e.step === 'verified' || e.step === 'failed') steps.push(`${side}:${e.step}`)
    }
    const onListener = onAttempt('listener')
    const onDialer = onAttempt('dialer')
    listener.on('attempt', onListener)
    dialer.on('attempt', onDialer)
    const accepted = next<PeerConnection>(listener, 'connection', 10_000)
    const conn = await dialer.connect(listener.peerId, { timeout: 10_000 })
    const incoming = await accepted
    expect(conn.remotePeerId).toBe(listener.peerId)
    expect(incoming.remotePeerId).toBe(dialer.peerId)
    const got = new Promise<string>((resolve) => incoming.once('data', (chunk: Buffer) => resolve(chunk.toString())))
    conn.write('hello')
    expect(await got).toBe('hello')
    await expect.poll(() => steps.sort()).toEqual(['dialer:verified', 'listener:verified'])
    listener.off('attempt', onListener)
    dialer.off('attempt', onDialer)
    expect(CONNECT_SIGNAL_VERSION).toBe(2)
    conn.destroy()
    incoming.destroy()
  })
})
