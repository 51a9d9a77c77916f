// Two peers on loopback connect through our TURN server (in-process) with the relay-only
// policy (`paths: ['turn']`): the dialer's only candidate is relayed, so the stream runs
// through the relay shim; and the default policy prefers the direct pair.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BeaconSet } from '../../src/beacon/beacon-set.js'
import { createIdentity } from '../../src/identity/index.js'
import { type AttemptEvent, Peer, type PeerConnection, createPeer } from '../../src/peer/index.js'
import { PeerSocket } from '../../src/transport/peer-socket.js'
import type { BeaconServer } from '../../src/server/beacon/index.js'
import { TurnServer } from '../../src/server/turn/turn-server.js'
import { specOf, startBeacon, until } from '../beacon/helpers.js'
import { randomPortRange } from '../server/turn/coturn-tools.js'
import { readAll, sha256 } from '../testing/stream-data.js'
import { LOOPBACK, FAST_ICE } from './loopback-peer-options.js'

const USER = { username: 'alice', credential: 'alice-password' }

describe('Peer through a TURN relay on loopback', () => {
  let beacon: BeaconServer
  let turn: TurnServer
  let listener: Peer
  let dialer: Peer
  let turnUrl: string
  const events: AttemptEvent[] = []

  beforeAll(async () => {
    beacon = await startBeacon()
    turn = await TurnServer.listen({
      listeningIps: ['127.0.0.1'],
      listeningPort: 0,
      relayIps: ['127.0.0.1'],
      ...randomPortRange(200),
      realm: 'peerlink.test',
      users: [`${USER.username}:${USER.credential}`],
      allowLoopbackPeers: true,
    })
    const udp = turn.addresses.find((a) => a.transport === 'udp' && a.family === 'IPv4')!
    turnUrl = `turn:127.0.0.1:${udp.port}?transport=udp`
    const beacons = [specOf(beacon)]
    listener = await createPeer({ beacons, host: '127.0.0.1', gather: LOOPBACK, ice: FAST_ICE })
    dialer = await createPeer({ beacons, host: '127.0.0.1', gather: LOOPBACK, ice: FAST_ICE, turn: [{ urls: turnUrl, ...USER }] })
    dialer.on('attempt', (e) => events.push(e))
    if (process.env.PEER_DEBUG) for (const p of [listener, dialer]) p.on('attempt', (e) => console.log(p === listener ? 'L' : 'D', JSON.stringify(e)))
    await listener.listen()
  })

  afterAll(async () => {
    await dialer?.close()
    await listener?.close()
    await turn?.close()
    await beacon?.close()
  })

  it("paths: ['turn'] connects through the relay, verifies both ends and carries 2 MB each way intact", async () => {
    events.length = 0
    const accepted = once(listener, 'connection') as Promise<[PeerConnection]>
    const conn = await dialer.connect(listener.peerId, { timeout: 10_000, paths: ['turn'] })
    const [incoming] = await accepted
    expect(conn.remotePeerId).toBe(listener.peerId)
    expect(incoming.remotePeerId).toBe(dialer.peerId)
    expect(conn.path).toBe('turn')
    expect(incoming.path).toBe('turn')
    expect(conn.info.local.type).toBe('relay')
    expect(conn.info.relay).toMatchObject({ server: turnUrl, transport: 'udp' })
    expect(incoming.info.remote.type).toBe('relay')
    expect(incoming.info.remote.port).toBe(conn.info.local.port)
    expect(events.some((e) => e.step === 'relay' && e.detail?.transport === 'udp')).toBe(true)
    expect(events.find((e) => e.step === 'selected')?.detail?.path).toBe('turn')

    const a = randomBytes(2 * 1024 * 1024)
    const b = randomBytes(2 * 1024 * 1024)
    const gotByListener = readAll(incoming)
    const gotByDialer = readAll(conn)
    conn.end(a)
    incoming.end(b)
    expect(sha256(await gotByListener)).toBe(sha256(a))
    expect(sha256(await gotByDialer)).toBe(sha256(b))
    expect(turn.stats.allocations).toBe(1)
    await conn.close({ timeout: 5_000 })
    // The allocation the connection ran on is released with it (after the stream's last packets).
    await until(() => turn.stats.allocations === 0)
    incoming.destroy()
  }, 30_000)

  it('with every path allowed, the direct pair wins over the relay (relay candidates still gathered)', async () => {
    events.length = 0
    const accepted = once(listener, 'connection') as Promise<[PeerConnection]>
    const conn = await dialer.connect(listener.peerId, { timeout: 10_000 })
    const [incoming] = await accepted
    expect(conn.path).toBe('direct')
    expect(conn.info.relay).toBeUndefined()
    expect(conn.info.remote.port).toBe(listener.address.port)
    // The relay was gathered and stays allocated while the connection lives (path
    // recovery may move to it); it is released when the connection closes.
    expect(events.some((e) => e.step === 'relay')).toBe(true)
    expect(turn.stats.allocations).toBeGreaterThan(0)
    conn.destroy()
    incoming.destroy()
    await until(() => turn.stats.allocations === 0)
  }, 20_000)

  it('with recovery: false, the relays not used are released when the attempt ends', async () => {
    const plain = await createPeer({ beacons: [specOf(beacon)], host: '127.0.0.1', gather: LOOPBACK, ice: FAST_ICE, turn: [{ urls: turnUrl, ...USER }], recovery: false })
    const seen: AttemptEvent[] = []
    plain.on('attempt', (e) => seen.push(e))
    try {
      const accepted = once(listener, 'connection') as Promise<[PeerConnection]>
      const conn = await plain.connect(listener.peerId, { timeout: 10_000 })
      const [incoming] = await accepted
      expect(conn.path).toBe('direct')
      expect(seen.some((e) => e.step === 'relay')).toBe(true)
      await until(() => turn.stats.allocations === 0)
      conn.destroy()
      incoming.destroy()
    } finally {
      await plain.close()
    }
  }, 20_000)

  it("paths: ['direct'] allocates no relay", async () => {
    events.length = 0
    const accepted = once(listener, 'connection') as Promise<[PeerConnection]>
    const conn = await dialer.connect(listener.peerId, { timeout: 10_000, paths: ['direct'] })
    const [incoming] = await accepted
    expect(conn.path).toBe('direct')
    expect(events.some((e) => e.step === 'relay' || e.step === 'relay-failed')).toBe(false)
    conn.destroy()
    incoming.destroy()
  }, 20_000)

  it("an impostor (a peer answering for another PeerId) is rejected with ERR_PEER_IDENTITY_MISMATCH when only the relay could connect", async () => {
    // Registered at the Beacon as `claimed`, but its sessions run with another key.
    const claimed = createIdentity()
    const spec = specOf(beacon)
    const liar = new Peer({
      identity: createIdentity(),
      socket: await PeerSocket.bind({ host: '127.0.0.1' }),
      beacons: new BeaconSet({ identity: claimed, beacons: [spec] }),
      stunServers: [],
      connectTimeout: 10_000,
      handshakeTimeout: 5_000,
      options: { gather: LOOPBACK, ice: FAST_ICE },
    })
    try {
      const failed = once(liar, 'incoming-error') as Promise<[Error, string]>
      await liar.listen()
      events.length = 0
      const started = Date.now()
      await expect(dialer.connect(claimed.peerId, { timeout: 10_000, paths: ['turn'] })).rejects.toMatchObject({ code: 'ERR_PEER_IDENTITY_MISMATCH' })
      // The offer was not signed for the liar: it refused it, and the dialer knew at once,
      // before any pair was selected (the Noise check would have refused it on the relay).
      expect(Date.now() - started).toBeLessThan(3_000)
      expect(events.find((e) => e.step === 'selected')).toBeUndefined()
      // The liar's side of the attempt ends too (the dialer abandoned it).
      const [, from] = await failed
      expect(from).toBe(dialer.peerId)
    } finally {
      await liar.close()
    }
  }, 20_000)

  it('a TURN server refusing the credentials does not stand in the way of a direct connection', async () => {
    const wrong = await createPeer({
      beacons: [specOf(beacon)],
      host: '127.0.0.1',
      gather: LOOPBACK,
      ice: FAST_ICE,
      turn: [{ urls: turnUrl, username: USER.username, credential: 'wrong' }],
    })
    const seen: AttemptEvent[] = []
    wrong.on('attempt', (e) => seen.push(e))
    try {
      const accepted = once(listener, 'connection') as Promise<[PeerConnection]>
      const conn = await wrong.connect(listener.peerId, { timeout: 10_000 })
      const [incoming] = await accepted
      expect(conn.path).toBe('direct')
      await until(() => seen.some((e) => e.step === 'relay-failed'))
      expect(seen.find((e) => e.step === 'relay-failed')?.detail).toMatchObject({ server: turnUrl, code: 'ERR_TURN_AUTH' })
      conn.destroy()
      incoming.destroy()
      // Relay-only with no relay fails fast with ERR_CONNECT_FAILED.
      const started = performance.now()
      await expect(wrong.connect(listener.peerId, { timeout: 10_000, paths: ['turn'] })).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED' })
      expect(performance.now() - started).toBeLessThan(3_000)
    } finally {
      await wrong.close()
    }
  }, 20_000)

  it("paths: ['turn'] without TURN servers fails with ERR_CONNECT_FAILED", async () => {
    await expect(listener.connect(dialer.peerId, { timeout: 5_000, paths: ['turn'] })).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED' })
  })
})
