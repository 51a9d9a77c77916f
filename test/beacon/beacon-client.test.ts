import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import { BeaconClient, type IncomingSignal, type Introduction } from '../../src/beacon/beacon-client.js'
import { encodeServerMessage } from '../../src/beacon/beacon-messages.js'
import { BeaconSet } from '../../src/beacon/beacon-set.js'
import { PeerlinkError } from '../../src/errors.js'
import type { BeaconServer } from '../../src/server/beacon/index.js'
import { createSelfSignedCertificate } from '../../src/server/tls.js'
import { certificate, id16, identity, next, specOf, startBeacon, until } from './helpers.js'

const fast = { minDelayMs: 20, maxDelayMs: 200, connectTimeout: 3_000, requestTimeout: 3_000 }

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    expect(err).toBeInstanceOf(PeerlinkError)
    return (err as PeerlinkError).code
  }
  throw new Error('expected a rejection')
}

describe('two peers meet through one Beacon', () => {
  let server: BeaconServer
  let a: BeaconClient
  let b: BeaconClient
  const alice = identity()
  const bob = identity()

  beforeAll(async () => {
    server = await startBeacon()
    a = await BeaconClient.connect({ identity: alice, server: specOf(server), ...fast })
    b = await BeaconClient.connect({ identity: bob, server: specOf(server), ...fast })
  })
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()])
    await server?.close()
  })

  it('reports the address the Beacon observed in the welcome', () => {
    expect(a.state).toBe('connected')
    expect(a.observed).toMatchObject({ family: 'IPv4', host: '127.0.0.1' })
    expect(a.observed!.port).toBeGreaterThan(0)
    expect(a.observed!.port).not.toBe(b.observed!.port)
    expect(a.limits).toMatchObject({ maxMessageBytes: 16384, maxTopics: 16 })
  })

  it('connect-by-PeerId: offer, trickled candidates and answer, with the authenticated sender and observed addresses', async () => {
    await b.listen()
    const session = id16()
    const offerSeen = next<IncomingSignal>(b, 'signal')
    const sent = await a.signal(bob.peerId, { kind: 'offer', session, payload: Buffer.from('offer from alice') })
    // The sender learns the target's address as the Beacon saw it …
    expect(sent.observed).toEqual([b.observed])
    const offer = await offerSeen
    // … and the target learns the sender's, with the sender's PeerId authenticated by the Beacon.
    expect(offer).toMatchObject({ from: alice.peerId, kind: 'offer', observed: [a.observed] })
    expect(Buffer.from(offer.session)).toEqual(Buffer.from(session))
    expect(Buffer.from(offer.payload).toString()).toBe('offer from alice')

    const candidates: IncomingSignal[] = []
    const got3 = new Promise<void>((resolve) => {
      const onSignal = (s: IncomingSignal) => {
        candidates.push(s)
        if (candidates.length === 3) {
          b.off('signal', onSignal)
          resolve()
        }
      }
      b.on('signal', onSignal)
    })
    for (let i = 0; i < 3; i++) await a.signal(bob.peerId, { kind: 'candidate', session, payload: Uint8Array.of(i) })
    await got3
    expect(candidates.map((c) => [c.kind, c.payload[0]])).toEqual([['candidate', 0], ['candidate', 1], ['candidate', 2]])

    // Alice is not registered: she cannot be signalled …
    expect(await codeOf(b.signal(alice.peerId, { kind: 'answer', session, payload: new Uint8Array(1) }))).toBe('ERR_BEACON_PEER_NOT_FOUND')
    // … until she listens.
    await a.listen()
    const answerSeen = next<IncomingSignal>(a, 'signal')
    await b.signal(alice.peerId, { kind: 'answer', session, payload: Buffer.from('answer from bob') })
    const answer = await answerSeen
    expect(answer).toMatchObject({ from: bob.peerId, kind: 'answer', observed: [b.observed] })
    await a.unlisten()
    expect(await codeOf(b.signal(alice.peerId, { kind: 'close', session, payload: new Uint8Array(0) }))).toBe('ERR_BEACON_PEER_NOT_FOUND')
  })

  it('symmetric mode: two peers announcing the same identifier are introduced to each other', async () => {
    const topic = `meet-here-${Math.random()}`
    await a.announce(topic, { payload: Buffer.from('alice payload') })
    const toA = next<Introduction>(a, 'introduction')
    const toB = next<Introduction>(b, 'introduction')
    await b.announce(topic, { payload: Buffer.from('bob payload') })
    const [introA, introB] = await Promise.all([toA, toB])
    expect(introA).toMatchObject({ peerId: bob.peerId, observed: [b.observed] })
    expect(Buffer.from(introA.payload!).toString()).toBe('bob payload')
    expect(Buffer.from(introA.topic).toString()).toBe(topic)
    expect(introB).toMatchObject({ peerId: alice.peerId, observed: [a.observed] })
    expect(Buffer.from(introB.payload!).toString()).toBe('alice payload')
    await a.withdraw(topic)
    await b.withdraw(topic)
    expect(server.stats.announcements).toBe(0)
  })

  it('a different identifier introduces nobody', async () => {
    let introductions = 0
    const count = () => introductions++
    a.on('introduction', count)
    b.on('introduction', count)
    await a.announce('topic-one')
    await b.announce('topic-two')
    await a.ping() // a round trip after which an introduction would have arrived
    await b.ping()
    a.off('introduction', count)
    b.off('introduction', count)
    expect(introductions).toBe(0)
    await a.withdraw('topic-one')
    await b.withdraw('topic-two')
  })
})

describe('certificate pins', () => {
  let server: BeaconServer
  beforeAll(async () => {
    server = await startBeacon({ host: ['127.0.0.1', '::1'] })
  })
  afterAll(async () => {
    await server?.close()
  })

  it('a Beacon whose certificate does not match the pin is rejected with ERR_BEACON_CERT_MISMATCH', async () => {
    const other = createSelfSignedCertificate()
    const attempt = BeaconClient.connect({ identity: identity(), server: `127.0.0.1:${server.port}#${other.hash}`, ...fast })
    expect(await codeOf(attempt)).toBe('ERR_BEACON_CERT_MISMATCH')
    const err = (await attempt.catch((e: unknown) => e)) as { expected: string; actual: string; cause: PeerlinkError }
    expect(err.expected).toBe(other.hash)
    expect(err.actual).toBe(server.certificateHash)
    expect(err.cause.code).toBe('ERR_CERT_PIN_MISMATCH')
  })

  it('without a pin, the certificate is validated against CAs (and `ca`)', async () => {
    // Self-signed and not trusted: refused by CA validation.
    expect(await codeOf(BeaconClient.connect({ identity: identity(), server: `127.0.0.1:${server.port}`, ...fast }))).toBe('ERR_CONNECT_FAILED')
    // Trusted as a CA: accepted (the certificate names 127.0.0.1 and localhost).
    const client = await BeaconClient.connect({ identity: identity(), server: `127.0.0.1:${server.port}`, ca: certificate.cert, ...fast })
    expect(client.state).toBe('connected')
    await client.close()
    // By name: the name is checked against the certificate (SNI and subjectAltName).
    const byName = await BeaconClient.connect({ identity: identity(), server: `localhost:${server.port}`, ca: certificate.cert, ...fast })
    expect(byName.server).toBe(`localhost:${server.port}`)
    await byName.close()
  })

  it('works over IPv6 and observes the IPv6 address', async () => {
    const client = await BeaconClient.connect({ identity: identity(), server: specOf(server, '::1'), ...fast })
    expect(client.observed).toMatchObject({ family: 'IPv6', host: '::1' })
    expect(client.server).toBe(`[::1]:${server.port}`)
    await client.close()
  })
})

describe('reconnection', () => {
  it('reconnects with backoff after the Beacon restarts and registers again', async () => {
    let server = await startBeacon()
    const port = server.port
    const alice = identity()
    const bob = identity()
    const a = await BeaconClient.connect({ identity: alice, server: specOf(server), ...fast })
    const b = await BeaconClient.connect({ identity: bob, server: specOf(server), ...fast })
    try {
      await b.listen()
      await b.announce('restart-topic')
      const disconnected = next<Error>(b, 'disconnected')
      await server.close()
      expect((await disconnected as PeerlinkError).code).toBe('ERR_BEACON_UNAVAILABLE')
      expect(await codeOf(a.signal(bob.peerId, { kind: 'offer', session: id16(), payload: new Uint8Array(1) }))).toBe('ERR_BEACON_UNAVAILABLE')
      // Reconnection attempts fail while nothing listens (they back off) …
      await next(b, 'disconnected')
      server = await startBeacon({ port })
      // … and succeed once the Beacon is back; the registration and the announcement come back with them.
      await Promise.all([a.ready(), b.ready()])
      await until(() => server.stats.registrations === 1 && server.stats.announcements === 1, 5_000, 'b to register again')
      const seen = next<IncomingSignal>(b, 'signal')
      await a.signal(bob.peerId, { kind: 'offer', session: id16(), payload: Uint8Array.of(42) })
      expect((await seen).payload[0]).toBe(42)
      const intro = next<Introduction>(b, 'introduction')
      await a.announce('restart-topic')
      expect((await intro).peerId).toBe(alice.peerId)
    } finally {
      await Promise.all([a.close(), b.close()])
      await server.close()
    }
  })

  it('drops a Beacon that stops answering (heartbeat) and connects again', async () => {
    // A fake Beacon: completes the handshake without checking it, then stays silent
    // (and does not answer WebSocket pings either).
    const httpsServer = https.createServer({ cert: certificate.cert, key: certificate.key })
    const wss = new WebSocketServer({ server: httpsServer, autoPong: false })
    let connections = 0
    wss.on('connection', (ws) => {
      connections++
      ws.send(encodeServerMessage({ type: 'challenge', version: 1, nonce: new Uint8Array(32) }))
      ws.once('message', () => {
        ws.send(encodeServerMessage({ type: 'welcome', version: 1, peerId: client.peerId, observed: { family: 'IPv4', host: '127.0.0.1', port: 1 }, limits: { maxMessageBytes: 16384, maxTopics: 1, messagesPerSecond: 1, heartbeatMs: 1 } }))
      })
    })
    await new Promise<void>((resolve) => httpsServer.listen(0, '127.0.0.1', resolve))
    const { port } = httpsServer.address() as AddressInfo
    const client = new BeaconClient({ identity: identity(), server: `127.0.0.1:${port}#${certificate.hash}`, heartbeatMs: 100, ...fast })
    try {
      const lost = next<Error>(client.start(), 'disconnected', 3_000)
      await client.ready()
      const started = performance.now()
      expect((await lost as PeerlinkError).code).toBe('ERR_BEACON_UNAVAILABLE')
      expect(performance.now() - started).toBeLessThan(1_000)
      await until(() => connections >= 2, 3_000, 'a second connection')
    } finally {
      await client.close()
      for (const ws of wss.clients) ws.terminate()
      await new Promise((resolve) => wss.close(resolve))
      await new Promise((resolve) => httpsServer.close(resolve))
    }
  })

  it('moves to the next address of a fleet when one fails', async () => {
    const server = await startBeacon()
    const dead = await startBeacon()
    const deadSpec = specOf(dead)
    await dead.close()
    const client = new BeaconClient({ identity: identity(), server: [deadSpec, specOf(server)], ...fast }).start()
    try {
      await client.ready({ signal: AbortSignal.timeout(5_000) })
      expect(client.server).toBe(`127.0.0.1:${server.port}`)
    } finally {
      await client.close()
      await server.close()
    }
  })
})

describe('BeaconSet: every Beacon, first answer, no duplicates', () => {
  it('signals through two Beacons and delivers each signal and introduction once', async () => {
    const one = await startBeacon()
    const two = await startBeacon()
    const alice = identity()
    const bob = identity()
    const options = { beacons: [specOf(one), specOf(two)], ...fast }
    const a = new BeaconSet({ identity: alice, ...options }).start()
    const b = new BeaconSet({ identity: bob, ...options }).start()
    try {
      await until(() => a.connected.length === 2 && b.connected.length === 2, 5_000, 'both Beacons')
      await b.listen()
      expect(one.stats.registrations + two.stats.registrations).toBe(2)
      const signals: IncomingSignal[] = []
      b.on('signal', (s) => signals.push(s))
      const result = await a.signal(bob.peerId, { kind: 'offer', session: id16(), payload: Uint8Array.of(1) })
      expect([`127.0.0.1:${one.port}`, `127.0.0.1:${two.port}`]).toContain(result.server)
      // Both Beacons deliver it; the set hands it over once.
      await until(() => one.stats.signals === 1 && two.stats.signals === 1, 5_000, 'delivery through both')
      await Promise.all(b.clients.map((c) => c.ping()))
      expect(signals).toHaveLength(1)

      const intros: Introduction[] = []
      a.on('introduction', (i) => intros.push(i))
      await b.announce('set-topic')
      await a.announce('set-topic')
      await until(() => one.stats.introductions >= 2 && two.stats.introductions >= 2, 5_000, 'introductions through both')
      await Promise.all(a.clients.map((c) => c.ping()))
      expect(intros.map((i) => i.peerId)).toEqual([bob.peerId])

      // One Beacon gone: the other still carries signals.
      await one.close()
      await until(() => a.connected.length === 1 && b.connected.length === 1, 5_000, 'one Beacon left')
      await a.signal(bob.peerId, { kind: 'offer', session: id16(), payload: Uint8Array.of(2) })
      await until(() => signals.length === 2, 5_000, 'the second signal')
      expect(await codeOf(a.signal(identity().peerId, { kind: 'offer', session: id16(), payload: new Uint8Array(0) }))).toBe('ERR_BEACON_PEER_NOT_FOUND')
    } finally {
      await Promise.all([a.close(), b.close()])
      await Promise.all([one.close(), two.close()])
    }
  })
})
