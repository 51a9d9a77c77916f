// The tunnel step of peer.connect() on loopback: a real Beacon and a real tunnel server
// in-process. UDP is made useless where a case needs it by offering no host candidate
// (a host address the socket, bound to 127.0.0.1, cannot receive on is dropped), and
// "UDP blocked" by a STUN server that never answers.
import { randomBytes } from 'node:crypto'
import dgram from 'node:dgram'
import { once } from 'node:events'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIdentity } from '../../src/identity/index.js'
import { type AttemptEvent, type Peer, type PeerConnection, type PeerOptions, createPeer } from '../../src/peer/index.js'
import type { BeaconServer } from '../../src/server/beacon/index.js'
import type { TunnelServer } from '../../src/server/tunnel/tunnel-server.js'
import { specOf, startBeacon, until } from '../beacon/helpers.js'
import { TOKEN, startTunnel, urlOf } from '../server/tunnel/helpers.js'
import { readAll, sha256 } from '../testing/stream-data.js'
import { LOOPBACK, FAST_ICE } from './loopback-peer-options.js'

/** No usable host address: the peer offers no candidate, so no UDP pair can work. */
const NO_CANDIDATES = { hostAddresses: ['127.0.0.3'], includeLoopback: true } as const

function recordAttempts(peer: Peer): AttemptEvent[] {
  const events: AttemptEvent[] = []
  peer.on('attempt', (event) => events.push(event))
  return events
}

describe('peer.connect() over the tunnel (loopback)', () => {
  let beacon: BeaconServer
  let tunnel: TunnelServer
  let blackhole: dgram.Socket
  const peers: Peer[] = []

  async function peer(options: PeerOptions): Promise<Peer> {
    const p = await createPeer({ host: '127.0.0.1', ice: FAST_ICE, ...options, tunnel: { token: TOKEN, ...options.tunnel } })
    // Dialers below drop their connections without waiting for the listener's side.
    p.on('connection', (connection) => connection.on('error', () => {}))
    peers.push(p)
    return p
  }

  beforeAll(async () => {
    beacon = await startBeacon()
    tunnel = await startTunnel()
    // A "STUN server" that never answers: the gathering learns that UDP does not get out.
    blackhole = dgram.createSocket('udp4')
    blackhole.bind(0, '127.0.0.1')
    await once(blackhole, 'listening')
  })

  afterAll(async () => {
    await Promise.all(peers.map((p) => p.close()))
    await tunnel?.close()
    await beacon?.close()
    blackhole?.close()
  })

  it('a tunnel-only listener and dialer connect: 1 MB each way, a second stream, both ends verified', async () => {
    const url = urlOf(tunnel)
    const listener = await peer({ tunnels: [url] })
    const dialer = await peer({ tunnels: [url] })
    await listener.listen()
    const accepted = once(listener, 'connection') as Promise<[PeerConnection]>
    const conn = await dialer.connect(listener.peerId, { timeout: 10_000 })
    const [incoming] = await accepted
    expect(conn.path).toBe('tunnel')
    expect(conn.remotePeerId).toBe(listener.peerId)
    expect(incoming.path).toBe('tunnel')
    expect(incoming.remotePeerId).toBe(dialer.peerId)
    expect(conn.info).toMatchObject({ initiator: true, server: `${tunnel.url}`, remote: { address: '127.0.0.1', port: tunnel.controlPort, type: 'tunnel' } })
    expect(conn.info.local).toMatchObject({ address: '127.0.0.1', type: 'tunnel' })
    expect(incoming.info).toMatchObject({ initiator: false, path: 'tunnel', remote: { address: '127.0.0.1', type: 'tunnel' } })

    incoming.on('stream', (stream) => {
      stream.write(`${stream.label}:`)
      stream.pipe(stream)
    })
    const a = randomBytes(1024 * 1024)
    const b = randomBytes(1024 * 1024)
    const gotByListener = readAll(incoming)
    const gotByDialer = readAll(conn)
    const second = conn.openStream({ label: 'second' })
    const echo = readAll(second)
    second.end('ping')
    conn.end(a)
    incoming.end(b)
    expect(sha256(await gotByListener)).toBe(sha256(a))
    expect(sha256(await gotByDialer)).toBe(sha256(b))
    expect((await echo).toString()).toBe('second:ping')
    await Promise.all([conn.close(), incoming.close()])
  })

  it('starts the tunnel at once when UDP is known to be blocked (no STUN answer), long before the fallback delay', async () => {
    const url = urlOf(tunnel)
    const listener = await peer({ beacons: [specOf(beacon)], tunnels: [url], gather: NO_CANDIDATES })
    const stun = [`stun:127.0.0.1:${(blackhole.address() as net.AddressInfo).port}`]
    const dialer = await peer({
      beacons: [specOf(beacon)],
      beaconStun: false,
      stun,
      tunnels: [url],
      gather: { ...LOOPBACK, stunRetransmit: { rto: 20, rc: 2, rm: 2 } },
      tunnel: { fallbackDelay: 20_000 },
    })
    await listener.listen()
    // The dialer's first gathering (started by createPeer) ends unanswered after ~60 ms.
    await new Promise((resolve) => setTimeout(resolve, 300))
    const events = recordAttempts(dialer)
    const started = performance.now()
    const conn = await dialer.connect(listener.peerId, { timeout: 10_000 })
    const ms = performance.now() - started
    expect(conn.path).toBe('tunnel')
    const start = events.find((e) => e.step === 'tunnel')
    expect(start).toMatchObject({ detail: { reason: 'udp-blocked' } })
    expect(start!.ms).toBeLessThan(50)
    expect(ms).toBeLessThan(3_000)
    // The UDP attempt was started too, and abandoned when the tunnel won.
    expect(events.some((e) => e.step === 'offer' || e.step === 'answer' || e.step === 'failed')).toBe(true)
    conn.destroy()
  })

  it('starts the tunnel after fallbackDelay when UDP gives no working pair', async () => {
    const url = urlOf(tunnel)
    const listener = await peer({ beacons: [specOf(beacon)], beaconStun: false, tunnels: [url], gather: NO_CANDIDATES })
    const dialer = await peer({ beacons: [specOf(beacon)], beaconStun: false, tunnels: [url], gather: NO_CANDIDATES, tunnel: { fallbackDelay: 400 } })
    await listener.listen()
    const events = recordAttempts(dialer)
    const conn = await dialer.connect(listener.peerId, { timeout: 10_000 })
    expect(conn.path).toBe('tunnel')
    const start = events.find((e) => e.step === 'tunnel')
    expect(start).toMatchObject({ detail: { reason: 'deadline' } })
    expect(start!.ms).toBeGreaterThanOrEqual(390)
    expect(conn.info.ms).toBeLessThan(400 + 2_000)
    conn.destroy()
  })

  it('starts the tunnel at once when the UDP attempt fails (the Beacons do not know the peer)', async () => {
    const url = urlOf(tunnel)
    const listener = await peer({ tunnels: [url] })
    const dialer = await peer({ beacons: [specOf(beacon)], tunnels: [url], gather: LOOPBACK, tunnel: { fallbackDelay: 20_000 } })
    await listener.listen()
    const events = recordAttempts(dialer)
    const conn = await dialer.connect(listener.peerId, { timeout: 10_000 })
    expect(conn.path).toBe('tunnel')
    expect(events.find((e) => e.step === 'tunnel')).toMatchObject({ detail: { reason: 'udp-failed' } })
    expect(conn.info.ms).toBeLessThan(3_000)
    conn.destroy()
  })

  it('uses the direct path when it works, and never starts the tunnel (the listener sees one connection)', async () => {
    const url = urlOf(tunnel)
    const listener = await peer({ beacons: [specOf(beacon)], tunnels: [url], gather: LOOPBACK })
    const dialer = await peer({ beacons: [specOf(beacon)], tunnels: [url], gather: LOOPBACK, tunnel: { fallbackDelay: 5_000 } })
    await listener.listen()
    const connections: PeerConnection[] = []
    listener.on('connection', (c) => connections.push(c))
    const events = recordAttempts(dialer)
    const conn = await dialer.connect(listener.peerId, { timeout: 10_000 })
    expect(conn.path).toBe('direct')
    expect(events.some((e) => e.step === 'tunnel')).toBe(false)
    await until(() => connections.length === 1, 5_000, 'the incoming connection')
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(connections.map((c) => c.path)).toEqual(['direct'])
    conn.destroy()
  })

  it("paths: ['direct'] never touches the tunnel; paths: ['tunnel'] uses only the tunnel", async () => {
    const url = urlOf(tunnel)
    const listener = await peer({ beacons: [specOf(beacon)], beaconStun: false, tunnels: [url], gather: NO_CANDIDATES })
    const dialer = await peer({ beacons: [specOf(beacon)], beaconStun: false, tunnels: [url], gather: NO_CANDIDATES, tunnel: { fallbackDelay: 100 } })
    await listener.listen()
    const events = recordAttempts(dialer)
    const before = tunnel.stats.connections
    const error = await dialer.connect(listener.peerId, { paths: ['direct'], timeout: 1_500 }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'ERR_CONNECT_FAILED' })
    expect(events.some((e) => e.step === 'tunnel')).toBe(false)
    expect(tunnel.stats.connections).toBe(before)

    events.length = 0
    const conn = await dialer.connect(listener.peerId, { paths: ['tunnel'], timeout: 10_000 })
    expect(conn.path).toBe('tunnel')
    expect(events.find((e) => e.step === 'tunnel')).toMatchObject({ detail: { reason: 'only-path' } })
    expect(events.some((e) => e.step === 'offer' || e.step === 'answer')).toBe(false)
    conn.destroy()
  })

  it('rejects a tunnel server that joins us to another peer with ERR_PEER_IDENTITY_MISMATCH', async () => {
    // A lying server: a TCP proxy that rewrites `peer=<claimed>` to the impostor's PeerId
    // in the upgrade request (same length), in front of the real server.
    const impostor = await peer({ tunnels: [urlOf(tunnel)] })
    await impostor.listen()
    const claimed = createIdentity().peerId
    const proxy = net.createServer((client) => {
      const upstream = net.connect({ host: '127.0.0.1', port: tunnel.controlPort })
      client.once('data', (first: Buffer) => {
        upstream.write(Buffer.from(first.toString('latin1').replace(`peer=${claimed}`, `peer=${impostor.peerId}`), 'latin1'))
        client.pipe(upstream)
        upstream.pipe(client)
      })
      for (const socket of [client, upstream]) socket.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    })
    proxy.listen(0, '127.0.0.1')
    await once(proxy, 'listening')
    try {
      const incomingErrors: string[] = []
      impostor.on("incoming-error", (err) => incomingErrors.push((err as Error & { code: string }).code))
      let connections = 0
      impostor.on('connection', () => connections++)
      const dialer = await peer({ beacons: [specOf(beacon)], tunnels: [`ws://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`], gather: LOOPBACK })
      // The UDP attempt finds nobody at the Beacon; the tunnel reaches the impostor.
      const error = await dialer.connect(claimed, { timeout: 10_000 }).catch((e: unknown) => e)
      expect(error).toMatchObject({ code: 'ERR_PEER_IDENTITY_MISMATCH', expected: claimed, actual: impostor.peerId })
      const only = await dialer.connect(claimed, { paths: ['tunnel'], timeout: 10_000 }).catch((e: unknown) => e)
      expect(only).toMatchObject({ code: 'ERR_PEER_IDENTITY_MISMATCH' })
      await until(() => incomingErrors.length === 2, 5_000, 'the impostor to fail too')
      expect(connections).toBe(0)
    } finally {
      await new Promise((resolve) => proxy.close(resolve))
    }
  })

  it('closing the dialer ends a race in progress (UDP and tunnel attempts both pending) with ERR_ABORTED', async () => {
    // A "tunnel server" that accepts TCP and never answers the upgrade.
    const sockets = new Set<net.Socket>()
    const silent = net.createServer((socket) => {
      sockets.add(socket)
      socket.resume() // reads (and ignores) the upgrade request, and sees the client go
      socket.on('error', () => {})
      socket.once('close', () => sockets.delete(socket))
    })
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    try {
      const listener = await peer({ beacons: [specOf(beacon)], beaconStun: false, gather: NO_CANDIDATES })
      await listener.listen()
      const dialer = await createPeer({
        host: '127.0.0.1',
        beacons: [specOf(beacon)],
        beaconStun: false,
        tunnels: [`ws://127.0.0.1:${(silent.address() as net.AddressInfo).port}`],
        gather: NO_CANDIDATES,
        tunnel: { fallbackDelay: 50 },
      })
      const events = recordAttempts(dialer)
      const attempt = dialer.connect(listener.peerId, { timeout: 10_000 })
      await until(() => sockets.size === 1, 5_000, 'the tunnel attempt')
      expect(events.find((e) => e.step === 'tunnel')).toMatchObject({ detail: { reason: 'deadline' } })
      const closing = dialer.close()
      await expect(attempt).rejects.toMatchObject({ code: 'ERR_ABORTED' })
      await closing
      // The tunnel attempt's TCP connection went with it.
      await until(() => sockets.size === 0, 5_000, 'the tunnel socket to close')
    } finally {
      await new Promise((resolve) => silent.close(resolve))
    }
  })

  it('listens when only the tunnel takes it (the Beacon is unreachable), and is reached there', async () => {
    // A Beacon address where nothing listens (a port just freed).
    const probe = net.createServer()
    probe.listen(0, '127.0.0.1')
    await once(probe, 'listening')
    const deadPort = (probe.address() as net.AddressInfo).port
    await new Promise((resolve) => probe.close(resolve))
    const deadBeacon = specOf(beacon).replace(/^127\.0\.0\.1:\d+/, `127.0.0.1:${deadPort}`)
    const listener = await peer({ beacons: [deadBeacon], tunnels: [urlOf(tunnel)], gather: LOOPBACK })
    await listener.listen()
    const dialer = await peer({ tunnels: [urlOf(tunnel)] })
    const conn = await dialer.connect(listener.peerId, { timeout: 10_000 })
    expect(conn.path).toBe('tunnel')
    conn.destroy()
    // A dialer whose Beacons all failed does not wait for the fallback delay.
    const stranded = await peer({ beacons: [deadBeacon], tunnels: [urlOf(tunnel)], gather: LOOPBACK, tunnel: { fallbackDelay: 20_000 } })
    // Its Beacon client fails at once (connection refused), then keeps retrying.
    await new Promise((resolve) => setTimeout(resolve, 300))
    const events = recordAttempts(stranded)
    const again = await stranded.connect(listener.peerId, { timeout: 10_000 })
    expect(again.path).toBe('tunnel')
    expect(events.find((e) => e.step === 'tunnel')).toMatchObject({ detail: { reason: 'udp-failed' } })
    expect(again.info.ms).toBeLessThan(2_000)
    again.destroy()
  })

  it('fails with ERR_PEER_NOT_FOUND when neither the Beacons nor the tunnel know the peer, and checks options at once', async () => {
    const dialer = await peer({ beacons: [specOf(beacon)], tunnels: [urlOf(tunnel)], gather: LOOPBACK })
    await expect(dialer.connect(createIdentity().peerId, { timeout: 5_000 })).rejects.toMatchObject({ code: 'ERR_PEER_NOT_FOUND' })
    await expect(dialer.connect(createIdentity().peerId, { paths: ['tunnel'], timeout: 5_000 })).rejects.toMatchObject({ code: 'ERR_PEER_NOT_FOUND' })
    await expect(dialer.connect(createIdentity().peerId, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    await expect(createPeer({ tunnels: ['http://x.example:80'] })).rejects.toMatchObject({ code: 'ERR_INVALID_SERVER_SPEC' })
    await expect(createPeer({ tunnels: ['ws://127.0.0.1:80'], tunnel: { fallbackDelay: -1 } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
  })
})
