// The tunnel's peer path: a listening peer registered under its PeerId, a connecting peer
// joined to it by the server, and the verified Noise handshake over the join. Bulk data
// both ways, impostors on either side, the server seeing only ciphertext (a TCP tap
// between the peers and the server records what the server sends), fleets, refusals.
import { once } from 'node:events'
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { PeerlinkError } from '../../src/errors.js'
import { type Identity, createIdentity } from '../../src/identity/identity.js'
import { MemoryTunnelState } from '../../src/server/tunnel/memory-tunnel-state.js'
import type { TunnelServer } from '../../src/server/tunnel/tunnel-server.js'
import { NO_CHANNEL_BINDING, signTunnelChallenge } from '../../src/tunnel/tunnel-auth.js'
import { TUNNEL_PROTOCOL_VERSION, decodeTunnelServerMessage } from '../../src/tunnel/tunnel-messages.js'
import { signTunnelPeerListen, verifyTunnelPeerListen } from '../../src/tunnel/tunnel-peer-auth.js'
import { TunnelPeerConnector, openTunnelPeerStream } from '../../src/tunnel/tunnel-peer-connector.js'
import { type TunnelPeerListener, type TunnelPeerRequest, listenTunnelPeer } from '../../src/tunnel/tunnel-peer-listener.js'
import { decodeTunnelPeerServerMessage, encodeTunnelPeerMessage } from '../../src/tunnel/tunnel-peer-messages.js'
import { secureTunnelStream } from '../../src/tunnel/tunnel-secure-connection.js'
import { TOKEN, startTunnel, until, urlOf } from '../server/tunnel/helpers.js'

const MARKER = Buffer.from('peerlink-plaintext-marker:3a8f0c2e9b7d41')

/** `size` random bytes with MARKER every 64 KiB. */
function markedPayload(size: number, marker = MARKER): Buffer {
  const data = randomBytes(size)
  for (let offset = 0; offset + marker.byteLength <= size; offset += 65_536) marker.copy(data, offset)
  return data
}

/** Writes `data`, ends, and resolves with everything read until the remote ends. */
function exchangeOn(stream: Duplex, data: Buffer): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.once('end', () => resolve(Buffer.concat(chunks)))
    stream.once('error', reject)
    stream.end(data)
  })
}

/** A TCP proxy in front of the server that records every byte the server sends. */
interface Tap {
  url: string
  fromServer(): Buffer
  close(): Promise<void>
}

async function startTap(server: TunnelServer): Promise<Tap> {
  const captured: Buffer[] = []
  const sockets = new Set<net.Socket>()
  const proxy = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: server.controlPort, allowHalfOpen: true })
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
      socket.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    }
    upstream.on('data', (chunk: Buffer) => captured.push(chunk))
    client.pipe(upstream)
    upstream.pipe(client)
  })
  proxy.listen(0, '127.0.0.1')
  await once(proxy, 'listening')
  return {
    url: `ws://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`,
    fromServer: () => Buffer.concat(captured),
    close: async () => {
      const closed = new Promise((resolve) => proxy.close(resolve))
      for (const socket of sockets) socket.destroy()
      await closed
    },
  }
}

let server: TunnelServer
let tap: Tap
let alice: Identity
let bob: Identity
let listener: TunnelPeerListener

beforeAll(async () => {
  server = await startTunnel()
  tap = await startTap(server)
  alice = createIdentity()
  bob = createIdentity()
  listener = await listenTunnelPeer({ servers: tap.url, identity: alice, token: TOKEN })
  // Connections some tests reset from the other side.
  listener.on('connection', (connection) => connection.on('error', () => {}))
})

afterAll(async () => {
  await listener?.close()
  await tap?.close()
  await server?.close()
})

describe('tunnel peer path', () => {
  it('connects two peers by PeerId; 5 MB each way arrive intact, and the server relays only ciphertext', async () => {
    expect(listener.server).toBe(`${tap.url}/`)
    const incoming = once(listener, 'connection')
    const connector = new TunnelPeerConnector({ servers: tap.url, identity: bob })
    const conn = await connector.connectPeer(alice.peerId)
    const [accepted] = (await incoming) as [import('../../src/tunnel/tunnel-secure-connection.js').TunnelSecureConnection]
    expect(conn.remotePeerId).toBe(alice.peerId)
    expect(accepted.remotePeerId).toBe(bob.peerId)
    expect(Buffer.from(conn.handshakeHash).equals(Buffer.from(accepted.handshakeHash))).toBe(true)

    const otherMarker = Buffer.from('peerlink-plaintext-marker:from-alice-77')
    const fromBob = markedPayload(5 * 1024 * 1024)
    const fromAlice = markedPayload(5 * 1024 * 1024, otherMarker)
    const relayedBefore = tap.fromServer().byteLength
    const [gotByAlice, gotByBob] = await Promise.all([exchangeOn(accepted, fromAlice), exchangeOn(conn, fromBob)])
    expect(gotByAlice.equals(fromBob)).toBe(true)
    expect(gotByBob.equals(fromAlice)).toBe(true)
    await Promise.all([conn.close(), accepted.close()])

    // Everything the server sent either peer (unmasked server frames) went through the tap.
    const relayed = tap.fromServer()
    expect(relayed.byteLength - relayedBefore).toBeGreaterThan(10 * 1024 * 1024)
    expect(relayed.indexOf(MARKER)).toBe(-1)
    expect(relayed.indexOf(otherMarker)).toBe(-1)
    await until(() => server.stats.activeConnections === 0, 5_000, 'the join to close')
  })

  it('the tap would see plaintext the server relayed (control for the test above)', async () => {
    const failed = once(listener, 'handshakeError')
    const raw = await openTunnelPeerStream({ server: tap.url, peerId: alice.peerId, from: bob.peerId })
    raw.on('error', () => {})
    const before = tap.fromServer().byteLength
    raw.write(Buffer.concat([MARKER, MARKER]))
    await until(() => tap.fromServer().subarray(before).indexOf(MARKER) !== -1, 5_000, 'the marker at the tap')
    raw.destroy()
    const [error] = (await failed) as [PeerlinkError]
    expect(error.code).toMatch(/^ERR_(CONNECTION_CLOSED|HANDSHAKE_FAILED)$/)
  })

  it('rejects a far end with another key (ERR_PEER_IDENTITY_MISMATCH), as when a server joins us to the wrong listener', async () => {
    const carol = createIdentity()
    const listenerSide = once(listener, 'handshakeError')
    const raw = await openTunnelPeerStream({ server: urlOf(server), peerId: alice.peerId, from: bob.peerId })
    const error = await secureTunnelStream({ stream: raw, isInitiator: true, keyPair: bob.keyPair, expectedPeerId: carol.peerId }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'ERR_PEER_IDENTITY_MISMATCH', expected: carol.peerId, actual: alice.peerId })
    // The listener never got a verified connection out of it.
    const [listenerError] = (await listenerSide) as [PeerlinkError]
    expect(listenerError.code).toBe('ERR_CONNECTION_CLOSED')
  })

  it('the listener rejects a connecting peer that does not hold the key of the PeerId it gave', async () => {
    const mallory = createIdentity()
    const listenerSide = once(listener, 'handshakeError')
    let connections = 0
    const count = () => connections++
    listener.on('connection', count)
    try {
      const raw = await openTunnelPeerStream({ server: urlOf(server), peerId: alice.peerId, from: bob.peerId })
      const error = await secureTunnelStream({ stream: raw, isInitiator: true, keyPair: mallory.keyPair, expectedPeerId: alice.peerId }).catch((e: unknown) => e)
      expect(error).toMatchObject({ code: 'ERR_CONNECTION_CLOSED' })
      const [listenerError, request] = (await listenerSide) as [PeerlinkError & { expected: string; actual: string }, TunnelPeerRequest]
      expect(listenerError).toMatchObject({ code: 'ERR_PEER_IDENTITY_MISMATCH', expected: bob.peerId, actual: mallory.peerId })
      expect(request.from).toBe(bob.peerId)
      expect(connections).toBe(0)
    } finally {
      listener.off('connection', count)
    }
  })

  it('refuses to register a listener whose signature is not of the PeerId it claims (or is a device login)', async () => {
    const mallory = createIdentity()
    const forgeries = [
      (nonce: Uint8Array) => signTunnelPeerListen(mallory, TUNNEL_PROTOCOL_VERSION, nonce, NO_CHANNEL_BINDING),
      // A device login's signature by the right key is not a listener's.
      (nonce: Uint8Array) => signTunnelChallenge(alice, TUNNEL_PROTOCOL_VERSION, nonce, NO_CHANNEL_BINDING),
    ]
    for (const forge of forgeries) {
      const ws = new WebSocket(`ws://127.0.0.1:${server.controlPort}/v1/peer/listen`)
      ws.on('error', () => {})
      const replies: string[] = []
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
      ws.on('message', (data: Buffer) => {
        const message = decodeTunnelPeerServerMessage(data)
        if (message.type === 'challenge') {
          ws.send(encodeTunnelPeerMessage({ type: 'peer-listen', version: TUNNEL_PROTOCOL_VERSION, peerId: alice.peerId, signature: forge(message.nonce), token: TOKEN }))
        } else replies.push(message.type === 'error' ? `error:${message.code}` : message.type)
      })
      expect(await closed).toBe(1008)
      expect(replies).toEqual(['error:auth'])
    }
    // The real listener is still the one registered.
    expect(verifyTunnelPeerListen(alice.peerId, signTunnelPeerListen(alice, 1, new Uint8Array(32), NO_CHANNEL_BINDING), 1, new Uint8Array(32), NO_CHANNEL_BINDING)).toBe(true)
    const conn = await new TunnelPeerConnector({ servers: urlOf(server), identity: bob }).connectPeer(alice.peerId)
    expect(conn.remotePeerId).toBe(alice.peerId)
    conn.destroy()
  })

  it('answers ERR_TUNNEL_PEER_NOT_FOUND for a PeerId nobody listens under, and refusals of the listener', async () => {
    const connector = new TunnelPeerConnector({ servers: urlOf(server), identity: bob })
    await expect(connector.connectPeer(createIdentity().peerId)).rejects.toMatchObject({ code: 'ERR_TUNNEL_PEER_NOT_FOUND' })
    const picky = createIdentity()
    const seen: TunnelPeerRequest[] = []
    const choosy = await listenTunnelPeer({ servers: urlOf(server), identity: picky, token: TOKEN, accept: (request) => void seen.push(request) === undefined && false })
    try {
      const error = (await connector.connectPeer(picky.peerId).catch((e: unknown) => e)) as PeerlinkError
      expect(error).toMatchObject({ code: 'ERR_TUNNEL_UNAVAILABLE' })
      expect(error.message).toMatch(/refused/)
      expect(seen).toEqual([{ from: bob.peerId, remote: { host: '127.0.0.1', port: expect.any(Number) } }])
    } finally {
      await choosy.close()
    }
    // Gone: its registration was released.
    await until(async () => (await server.state.getName(`@${picky.peerId}`)) === undefined, 5_000, 'the registration to go')
    await expect(connector.connectPeer(picky.peerId)).rejects.toMatchObject({ code: 'ERR_TUNNEL_PEER_NOT_FOUND' })
    await expect(connector.connectPeer(alice.peerId, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(() => connector.connectPeer('not-a-peer-id')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
  })

  it('moves a connecting peer to the server of the fleet that holds the listener', async () => {
    const state = new MemoryTunnelState()
    const a = await startTunnel({ state, serverId: 'a' })
    const b = await startTunnel({ state, serverId: 'b' })
    const dave = createIdentity()
    const remote = await listenTunnelPeer({ servers: urlOf(a), identity: dave, token: TOKEN })
    try {
      expect(await state.getName(`@${dave.peerId}`)).toMatchObject({ server: 'a', expiresAt: null })
      const incoming = once(remote, 'connection')
      const conn = await new TunnelPeerConnector({ servers: urlOf(b), identity: bob }).connectPeer(dave.peerId)
      const [accepted] = (await incoming) as [Duplex]
      expect(b.stats.redirects).toBe(1)
      expect(a.stats.connections).toBe(1)
      const data = randomBytes(100_000)
      const [echoed] = await Promise.all([exchangeOn(conn, data), exchangeOn(accepted, data)])
      expect(echoed.equals(data)).toBe(true)
    } finally {
      await remote.close()
      await a.close()
      await b.close()
    }
  })
})

/** Opens a WebSocket and collects the peer-path messages it gets; resolves once open. */
async function rawSocket(url: string): Promise<{ ws: WebSocket; messages: string[]; closed: Promise<number>; next: (type: string) => Promise<Record<string, unknown>> }> {
  const ws = new WebSocket(url)
  ws.on('error', () => {})
  const messages: string[] = []
  const seen: Array<Record<string, unknown>> = []
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  ws.on('message', (data: Buffer) => {
    const message = decodeTunnelPeerServerMessage(data) as unknown as Record<string, unknown>
    seen.push(message)
    messages.push(message['type'] === 'error' || message['type'] === 'peer-error' ? `${String(message['type'])}:${String(message['code'])}` : String(message['type']))
  })
  await once(ws, 'open')
  const next = async (type: string) => {
    await until(() => seen.some((m) => m['type'] === type), 5_000, type)
    return seen.find((m) => m['type'] === type)!
  }
  return { ws, messages, closed, next }
}

function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url)
    ws.on('error', () => {})
    ws.on('unexpected-response', (req, res) => {
      res.resume()
      req.destroy()
      resolve(res.statusCode ?? 0)
    })
    ws.on('open', () => {
      ws.close()
      resolve(101)
    })
  })
}

describe('tunnel peer path, hostile input', () => {
  it('refuses malformed requests, garbage, silence and data before peer-ready without harm', async () => {
    const strict = await startTunnel({ helloTimeout: 0.3 })
    const base = `ws://127.0.0.1:${strict.controlPort}`
    try {
      expect(await upgradeStatus(`${base}/v1/peer/connect?peer=nope&from=${bob.peerId}`)).toBe(400)
      expect(await upgradeStatus(`${base}/v1/peer/connect?peer=${alice.peerId}`)).toBe(400)
      // Garbage instead of peer-listen.
      const garbage = await rawSocket(`${base}/v1/peer/listen`)
      garbage.ws.send(randomBytes(40))
      expect(await garbage.closed).toBe(1008)
      expect(garbage.messages).toEqual(['challenge', 'error:protocol'])
      // Silence.
      const silent = await rawSocket(`${base}/v1/peer/listen`)
      expect(await silent.closed).toBe(1008)
      expect(silent.messages).toEqual(['challenge', 'error:auth'])
      // A listener driven by hand, which never opens transfer sockets…
      const eve = createIdentity()
      const held = await rawSocket(`${base}/v1/peer/listen`)
      const challenge = (await held.next('challenge')) as { nonce: Uint8Array }
      held.ws.send(encodeTunnelPeerMessage({ type: 'peer-listen', version: TUNNEL_PROTOCOL_VERSION, peerId: eve.peerId, signature: signTunnelPeerListen(eve, TUNNEL_PROTOCOL_VERSION, challenge.nonce, NO_CHANNEL_BINDING), token: TOKEN }))
      await held.next('peer-welcome')
      // …and a connecting peer that sends before peer-ready.
      const eager = await rawSocket(`${base}/v1/peer/connect?peer=${eve.peerId}&from=${bob.peerId}`)
      await held.next('peer-connection')
      eager.ws.send(Buffer.from('too early'))
      expect(await eager.closed).toBe(1008)
      expect(eager.messages).toEqual(['peer-error:protocol'])
      await until(() => strict.stats.pendingConnections === 0, 5_000, 'the pending connection to go')
      expect(strict.stats.devices).toBe(1)
      held.ws.close()
      await held.closed
      await until(() => strict.stats.devices === 0, 5_000, 'the listener to go')
    } finally {
      await strict.close()
    }
  })
})

describe('secureTunnelStream', () => {
  it('verifies both keys over any duplex, also when the first handshake bytes are already buffered', async () => {
    const tcp = net.createServer({ allowHalfOpen: true })
    tcp.listen(0, '127.0.0.1')
    await once(tcp, 'listening')
    const accepted = once(tcp, 'connection')
    const client = net.connect({ host: '127.0.0.1', port: (tcp.address() as net.AddressInfo).port, allowHalfOpen: true })
    const [socket] = (await accepted) as [net.Socket]
    try {
      const initiator = secureTunnelStream({ stream: client, isInitiator: true, keyPair: alice.keyPair, expectedPeerId: bob.peerId })
      // Let the first handshake message sit in the responder's buffer before it starts,
      // and start it from a timer callback: there Node's process.nextTick queue runs
      // before the microtasks in which secret-stream opens.
      let buffered = 0
      const responder = await new Promise<ReturnType<typeof secureTunnelStream>>((resolve) =>
        setTimeout(() => {
          buffered = socket.readableLength
          resolve(secureTunnelStream({ stream: socket, isInitiator: false, keyPair: bob.keyPair, expectedPeerId: alice.peerId, handshakeTimeout: 2_000 }))
        }, 100),
      )
      expect(buffered).toBeGreaterThan(0)
      const [a, b] = await Promise.all([initiator, responder])
      expect(a.remotePeerId).toBe(bob.peerId)
      expect(b.remotePeerId).toBe(alice.peerId)
      const data = randomBytes(300_000)
      const [toB, toA] = await Promise.all([exchangeOn(a, data), exchangeOn(b, data)])
      expect(toA.equals(data) && toB.equals(data)).toBe(true)
    } finally {
      client.destroy()
      socket.destroy()
      await new Promise((resolve) => tcp.close(resolve))
    }
  })

  it('throws at once for bad options', () => {
    const stream = new net.Socket()
    expect(() => secureTunnelStream({ stream: {} as Duplex, isInitiator: true, keyPair: alice.keyPair, expectedPeerId: bob.peerId })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    expect(() => secureTunnelStream({ stream, isInitiator: true, keyPair: { publicKey: bob.keyPair.publicKey, secretKey: alice.keyPair.secretKey }, expectedPeerId: bob.peerId })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_KEY' }))
    expect(() => secureTunnelStream({ stream, isInitiator: true, keyPair: alice.keyPair, expectedPeerId: 'nope' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_PEER_ID' }))
    stream.destroy()
  })

  it('the wire decoders refuse server messages of the control protocol that do not belong on the peer path', () => {
    const welcome = encodeTunnelPeerMessage({ type: 'peer-ready' })
    expect(decodeTunnelPeerServerMessage(welcome)).toEqual({ type: 'peer-ready' })
    expect(() => decodeTunnelServerMessage(welcome)).toThrow(expect.objectContaining({ code: 'ERR_TUNNEL_PROTOCOL' }))
    expect(() => decodeTunnelPeerServerMessage(encodeTunnelPeerMessage({ type: 'peer-moved', url: 'http://x/' }))).toThrow(expect.objectContaining({ code: 'ERR_TUNNEL_PROTOCOL' }))
  })
})
