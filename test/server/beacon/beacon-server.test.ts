import { randomBytes } from 'node:crypto'
import dgram from 'node:dgram'
import https from 'node:https'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signBeaconChallenge } from '../../../src/beacon/beacon-auth.js'
import { BeaconClient, type IncomingSignal } from '../../../src/beacon/beacon-client.js'
import type { ServerMessage } from '../../../src/beacon/beacon-messages.js'
import { PeerlinkError } from '../../../src/errors.js'
import { BeaconServer } from '../../../src/server/beacon/index.js'
import { createDgramEndpoint, stunBinding } from '../../../src/stun/index.js'
import { certificate, id16, identity, next, specOf, startBeacon, until } from '../../beacon/helpers.js'
import { RawClient, certHashOf } from './raw-client.js'

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

function expectError(message: ServerMessage, code: string, id?: number): void {
  expect(message).toMatchObject({ type: 'error', code })
  if (id !== undefined) expect((message as { id?: number }).id).toBe(id)
}

describe('BeaconServer: proof of key', () => {
  let server: BeaconServer
  const alice = identity()
  const mallory = identity()
  beforeAll(async () => {
    server = await startBeacon()
  })
  afterAll(async () => {
    await server?.close()
  })

  it('refuses a hello for another peer’s PeerId without its key, so its token cannot be registered', async () => {
    const real = await RawClient.authenticated(server, alice)
    real.send({ type: 'register', id: 1 })
    expect(await real.next()).toEqual({ type: 'ok', id: 1 })

    // Mallory claims Alice's PeerId, signing with her own key.
    const { client, nonce } = await RawClient.open(server)
    client.send({ type: 'hello', version: 1, peerId: alice.peerId, signature: signBeaconChallenge(mallory, 1, nonce, certHashOf(server)) })
    expectError(await client.next(), 'auth')
    expect((await client.closed).code).toBe(1008)

    // Still only Alice is registered, and a signal to Alice reaches Alice.
    expect(server.stats.registrations).toBe(1)
    const sender = await BeaconClient.connect({ identity: mallory, server: specOf(server), ...fast })
    await sender.signal(alice.peerId, { kind: 'offer', session: id16(), payload: Uint8Array.of(7) })
    expect(await real.next()).toMatchObject({ type: 'signal', from: mallory.peerId, kind: 'offer' })
    await sender.close()
    await real.close()
    await until(() => server.stats.registrations === 0, 3_000, 'the registration to go')
  })

  it('refuses a proof made for another server certificate (a relaying man in the middle)', async () => {
    const { client, nonce } = await RawClient.open(server)
    const otherCertificate = new Uint8Array(randomBytes(32))
    client.send({ type: 'hello', version: 1, peerId: alice.peerId, signature: signBeaconChallenge(alice, 1, nonce, otherCertificate) })
    expectError(await client.next(), 'auth')
    expect((await client.closed).code).toBe(1008)
  })

  it('answers requests before hello with auth errors, refuses a second hello and other versions', async () => {
    const { client, nonce } = await RawClient.open(server)
    client.send({ type: 'register', id: 9 })
    expectError(await client.next(), 'auth', 9)
    client.send({ type: 'hello', version: 1, peerId: alice.peerId, signature: signBeaconChallenge(alice, 1, nonce, certHashOf(server)) })
    expect(await client.next()).toMatchObject({ type: 'welcome', peerId: alice.peerId })
    client.send({ type: 'hello', version: 1, peerId: alice.peerId, signature: signBeaconChallenge(alice, 1, nonce, certHashOf(server)) })
    expectError(await client.next(), 'protocol')
    await client.close()

    const other = await RawClient.open(server)
    other.client.send({ type: 'hello', version: 2, peerId: alice.peerId, signature: signBeaconChallenge(alice, 2, other.nonce, certHashOf(server)) })
    expectError(await other.client.next(), 'version')
    expect((await other.client.closed).code).toBe(1002)
  })

  it('drops a connection that does not say hello in time', async () => {
    const quick = await startBeacon({ helloTimeoutMs: 200 })
    try {
      const { client } = await RawClient.open(quick)
      expect(await client.next()).toMatchObject({ type: 'error', code: 'auth', message: 'no hello in time' })
      expect((await client.closed).code).toBe(1008)
      await until(() => quick.stats.connections === 0, 2_000, 'the session to close')
      expect(quick.stats).toMatchObject({ authenticated: 0, accepted: 1 })
    } finally {
      await quick.close()
    }
  })

  it('answers plain HTTPS requests with 426 Upgrade Required', async () => {
    const status = await new Promise<number | undefined>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: server.port, ca: certificate.cert, agent: false }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode))
      }).on('error', reject)
    })
    expect(status).toBe(426)
  })
})

describe('BeaconServer: registrations live as long as their connection', () => {
  it('an announcement is gone once its announcer disconnects, and so is a PeerId registration', async () => {
    const server = await startBeacon()
    const alice = identity()
    const bob = identity()
    try {
      const a = await RawClient.authenticated(server, alice)
      const topic = new TextEncoder().encode('gone-topic')
      a.send({ type: 'announce', id: 1, topic, mid: id16() })
      a.send({ type: 'register', id: 2 })
      expect(await a.next()).toEqual({ type: 'ok', id: 1 })
      expect(await a.next()).toEqual({ type: 'ok', id: 2 })
      expect(server.stats).toMatchObject({ announcements: 1, registrations: 1 })
      await a.close()
      await until(() => server.stats.announcements === 0 && server.stats.registrations === 0, 3_000, 'removal')

      const b = await RawClient.authenticated(server, bob)
      b.send({ type: 'announce', id: 3, topic, mid: id16() })
      // No introduction precedes the ok: nobody else announced the identifier.
      expect(await b.next()).toEqual({ type: 'ok', id: 3 })
      b.send({ type: 'signal', id: 4, to: alice.peerId, kind: 'offer', session: id16(), mid: id16(), payload: new Uint8Array(1) })
      expectError(await b.next(), 'peer-not-found', 4)
      expect(await b.roundTrip(5)).toEqual([])
      await b.close()
    } finally {
      await server.close()
    }
  })
})

describe('BeaconServer: malformed, fuzzed and oversized messages', () => {
  let server: BeaconServer
  beforeAll(async () => {
    server = await startBeacon({ maxMessageBytes: 2048, messagesPerSecond: 100_000, messageBurst: 100_000 })
  })
  afterAll(async () => {
    await server?.close()
  })

  it('answers every fuzzed frame with an error (or a valid reply) and keeps serving', async () => {
    const client = await RawClient.authenticated(server, identity())
    const frames = fc.sample(
      fc.oneof(
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.anything({ maxDepth: 3 }).map((value) => ({ value })),
        fc.record({ type: fc.constantFrom('hello', 'register', 'announce', 'signal', 'ping', 'withdraw', 'bogus'), id: fc.oneof(fc.nat(), fc.string()), topic: fc.uint8Array({ maxLength: 80 }) }, { requiredKeys: ['type'] }).map((value) => ({ value })),
        fc.string({ maxLength: 100 }).map((text) => ({ text })),
      ),
      { numRuns: 300, seed: 42 },
    )
    const { encode } = await import('@msgpack/msgpack')
    let errors = 0
    for (const [i, frame] of frames.entries()) {
      if (frame instanceof Uint8Array) client.sendRaw(frame)
      else if ('text' in frame) client.sendRaw(frame.text)
      else {
        let data: Uint8Array
        try {
          data = encode(frame.value)
        } catch {
          continue
        }
        client.sendRaw(data)
      }
      const replies = await client.roundTrip(1_000_000 + i)
      // A frame gets at most one reply, and a refused frame exactly one error.
      expect(replies.length).toBeLessThanOrEqual(1)
      for (const reply of replies) {
        expect(['ok', 'error', 'pong']).toContain(reply.type)
        if (reply.type === 'error') {
          errors++
          expect(['protocol', 'too-large', 'limit', 'peer-not-found']).toContain(reply.code)
        }
      }
    }
    expect(errors).toBeGreaterThan(250)
    expect(server.stats.refused.protocol + server.stats.refused['too-large']).toBeGreaterThan(250)
    await client.close()
    // The server carries on: two new peers still meet.
    const a = await BeaconClient.connect({ identity: identity(), server: specOf(server), ...fast })
    const bob = identity()
    const b = await BeaconClient.connect({ identity: bob, server: specOf(server), ...fast })
    await b.listen()
    const seen = next<IncomingSignal>(b, 'signal')
    await a.signal(bob.peerId, { kind: 'offer', session: id16(), payload: Uint8Array.of(1) })
    expect((await seen).from).toBe(a.peerId)
    await Promise.all([a.close(), b.close()])
  })

  it('answers an oversized message with too-large and carries on; a huge one closes that connection only', async () => {
    const client = await RawClient.authenticated(server, identity())
    client.sendRaw(new Uint8Array(2049))
    expectError(await client.next(), 'too-large')
    expect(await client.roundTrip(1)).toEqual([])
    // Just under the limit: handled normally.
    client.send({ type: 'signal', id: 2, to: identity().peerId, kind: 'offer', session: id16(), mid: id16(), payload: new Uint8Array(1900) })
    expectError(await client.next(), 'peer-not-found', 2)
    client.sendRaw(new Uint8Array(4 * 2048 + 1))
    expect((await client.closed).code).toBe(1009)
    const other = await RawClient.authenticated(server, identity())
    expect(await other.roundTrip(3)).toEqual([])
    await other.close()
  })

  it('refuses text frames', async () => {
    const client = await RawClient.authenticated(server, identity())
    client.sendRaw('{"type":"ping","id":1}')
    expectError(await client.next(), 'protocol')
    await client.close()
  })
})

describe('BeaconServer: limits', () => {
  it('rate-limits messages per connection with typed errors', async () => {
    const server = await startBeacon({ messagesPerSecond: 5, messageBurst: 10 })
    try {
      const client = await RawClient.authenticated(server, identity())
      for (let id = 1; id <= 30; id++) client.send({ type: 'ping', id })
      const replies: ServerMessage[] = []
      for (let i = 0; i < 30; i++) replies.push(await client.next())
      const limited = replies.filter((r) => r.type === 'error' && r.code === 'rate-limited')
      const pongs = replies.filter((r) => r.type === 'pong')
      expect(pongs.length).toBeGreaterThanOrEqual(9) // the hello took one token
      expect(pongs.length).toBeLessThanOrEqual(11)
      expect(limited.length).toBe(30 - pongs.length)
      expect(limited.every((r) => typeof (r as { id?: number }).id === 'number')).toBe(true)
      await client.close()
      // Through the client library: ERR_BEACON_RATE_LIMITED.
      const api = await BeaconClient.connect({ identity: identity(), server: specOf(server), ...fast })
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => api.ping()))
      const codes = results.filter((r) => r.status === 'rejected').map((r) => ((r as PromiseRejectedResult).reason as PeerlinkError).code)
      expect(codes.length).toBeGreaterThan(5)
      expect(new Set(codes)).toEqual(new Set(['ERR_BEACON_RATE_LIMITED']))
      await api.close()
    } finally {
      await server.close()
    }
  })

  it('limits identifiers per connection and connections per IP', async () => {
    const server = await startBeacon({ maxTopicsPerConnection: 2, maxConnectionsPerIp: 2 })
    try {
      const a = await BeaconClient.connect({ identity: identity(), server: specOf(server), ...fast })
      await a.announce('one')
      await a.announce('two')
      await a.announce('one') // again: not a new identifier
      expect(await codeOf(a.announce('three'))).toBe('ERR_BEACON_LIMIT')
      await a.withdraw('two')
      await a.announce('three')
      const b = await BeaconClient.connect({ identity: identity(), server: specOf(server), ...fast })
      expect(await codeOf(BeaconClient.connect({ identity: identity(), server: specOf(server), ...fast }))).toBe('ERR_BEACON_LIMIT')
      expect(server.stats.refused.limit).toBe(2)
      await b.close()
      // A connection slot is free again.
      const c = await BeaconClient.connect({ identity: identity(), server: specOf(server), ...fast })
      await Promise.all([a.close(), c.close()])
    } finally {
      await server.close()
    }
  })

  it('drops a connection that stops answering heartbeats', async () => {
    const server = await startBeacon({ heartbeatMs: 150 })
    try {
      const { client } = await RawClient.open(server, { autoPong: false })
      const healthy = await RawClient.authenticated(server, identity())
      const started = performance.now()
      expect((await client.closed).code).toBe(1006)
      expect(performance.now() - started).toBeLessThan(1_500)
      await new Promise((resolve) => setTimeout(resolve, 400))
      expect(await healthy.roundTrip(1)).toEqual([])
      await healthy.close()
    } finally {
      await server.close()
    }
  })
})

describe('BeaconServer: STUN, IPv6 and shutdown', () => {
  it('answers STUN Binding on UDP at its port number', async () => {
    const server = await startBeacon({ host: ['127.0.0.1', '::1'] })
    const socket = dgram.createSocket('udp4')
    const socket6 = dgram.createSocket({ type: 'udp6', ipv6Only: true })
    try {
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
      await new Promise<void>((resolve) => socket6.bind(0, '::1', resolve))
      const result = await stunBinding({ endpoint: createDgramEndpoint(socket), server: { host: '127.0.0.1', port: server.port } })
      expect(result.mapped).toEqual({ family: 'IPv4', host: '127.0.0.1', port: socket.address().port })
      const result6 = await stunBinding({ endpoint: createDgramEndpoint(socket6), server: { host: '::1', port: server.port } })
      expect(result6.mapped).toEqual({ family: 'IPv6', host: '::1', port: socket6.address().port })
      expect(server.addresses.map((a) => a.host).sort()).toEqual(['127.0.0.1', '::1'])
      expect(server.stunServers).toHaveLength(2)
    } finally {
      socket.close()
      socket6.close()
      await server.close()
    }
  })

  it('closes every session with 1001 on close() and refuses bad options at once', async () => {
    const server = await startBeacon()
    const client = await RawClient.authenticated(server, identity())
    await server.close()
    expect((await client.closed).code).toBe(1001)
    expect(server.stats.connections).toBe(0)
    await expect(BeaconServer.listen({ host: 'localhost', cert: certificate.cert, key: certificate.key })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(BeaconServer.listen({ port: 0, cert: certificate.cert, key: certificate.key, redis: 'http://x' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(BeaconServer.listen({ host: '127.0.0.1', port: 0, cert: certificate.cert, key: certificate.key, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
  })
})

describe('BeaconServer: 1,000 concurrent registrations', () => {
  it('holds 1,000 listening peers and delivers to any of them', async () => {
    const server = await startBeacon({ maxConnectionsPerIp: 2_000 })
    const peers = Array.from({ length: 1_000 }, () => identity())
    const clients: BeaconClient[] = []
    try {
      for (let i = 0; i < peers.length; i += 100) {
        const batch = await Promise.all(
          peers.slice(i, i + 100).map(async (peer) => {
            const client = await BeaconClient.connect({ identity: peer, server: specOf(server), ...fast, connectTimeout: 20_000 })
            clients.push(client)
            await client.listen()
            return client
          }),
        )
        expect(batch).toHaveLength(100)
      }
      expect(server.stats).toMatchObject({ connections: 1_000, authenticated: 1_000, registrations: 1_000 })
      const sender = clients[0]!
      for (const index of [1, 250, 499, 777, 999]) {
        const seen = next<IncomingSignal>(clients[index]!, 'signal')
        await sender.signal(peers[index]!.peerId, { kind: 'offer', session: id16(), payload: Uint8Array.of(index % 256) })
        const signal = await seen
        expect(signal.from).toBe(peers[0]!.peerId)
        expect(signal.payload[0]).toBe(index % 256)
      }
    } finally {
      await Promise.all(clients.map((client) => client.close()))
      await server.close()
    }
    expect(server.stats.registrations).toBe(0)
  }, 60_000)
})
