// Two peers on loopback meet through a real Beacon (in-process, pinned TLS), find a
// direct path with ICE, and talk over a verified, multiplexed connection.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIdentity } from '../../src/identity/index.js'
import { type Peer, type PeerConnection, createPeer } from '../../src/peer/index.js'
import type { BeaconServer } from '../../src/server/beacon/index.js'
import { specOf, startBeacon } from '../beacon/helpers.js'
import { readAll, sha256 } from '../testing/stream-data.js'
import { LOOPBACK, FAST_ICE } from './loopback-peer-options.js'

describe('Peer over loopback', () => {
  let beacon: BeaconServer
  let listener: Peer
  let dialer: Peer

  beforeAll(async () => {
    beacon = await startBeacon()
    const beacons = [specOf(beacon)]
    listener = await createPeer({ beacons, host: '127.0.0.1', gather: LOOPBACK, ice: FAST_ICE })
    dialer = await createPeer({ beacons, host: '127.0.0.1', gather: LOOPBACK, ice: FAST_ICE })
    await listener.listen()
    if (process.env.PEER_DEBUG) for (const p of [listener, dialer]) { p.on('attempt', (e) => console.log(p === listener ? 'L' : 'D', JSON.stringify(e))); p.on('incoming-error', (e) => console.log('incoming-error', e)) }
  })

  afterAll(async () => {
    await dialer?.close()
    await listener?.close()
    await beacon?.close()
  })

  it('connects by PeerId, verifies both ends, and carries 2 MB each way intact on the main stream', async () => {
    const accepted = once(listener, 'connection') as Promise<[PeerConnection]>
    const conn = await dialer.connect(listener.peerId, { timeout: 10_000 })
    const [incoming] = await accepted
    expect(conn.remotePeerId).toBe(listener.peerId)
    expect(incoming.remotePeerId).toBe(dialer.peerId)
    expect(conn.path).toBe('direct')
    expect(conn.info.remote.port).toBe(listener.address.port)
    expect(conn.info.ms).toBeGreaterThan(0)

    const a = randomBytes(2 * 1024 * 1024)
    const b = randomBytes(2 * 1024 * 1024)
    const gotByListener = readAll(incoming)
    const gotByDialer = readAll(conn)
    conn.end(a)
    incoming.end(b)
    expect(sha256(await gotByListener)).toBe(sha256(a))
    expect(sha256(await gotByDialer)).toBe(sha256(b))
    conn.destroy()
    incoming.destroy()
  })

  it('carries extra streams with labels, independently of the main stream', async () => {
    const accepted = once(listener, 'connection') as Promise<[PeerConnection]>
    const conn = await dialer.connect(listener.peerId, { timeout: 10_000 })
    const [incoming] = await accepted
    incoming.on('stream', (stream) => {
      stream.write(`label=${stream.label};`)
      stream.pipe(stream)
    })
    const replies = await Promise.all(
      [1, 2, 3].map(async (n) => {
        const stream = conn.openStream({ label: `echo-${n}` })
        stream.end(`hello ${n}`)
        return (await readAll(stream)).toString()
      }),
    )
    expect(replies).toEqual(['label=echo-1;hello 1', 'label=echo-2;hello 2', 'label=echo-3;hello 3'])
    conn.destroy()
    incoming.destroy()
  })

  it('delivers the bytes and streams the listener sends at once, with the connection', async () => {
    let incoming: PeerConnection | undefined
    listener.once('connection', (connection: PeerConnection) => {
      incoming = connection
      connection.write('hello from the listener')
      for (const n of [1, 2]) {
        const stream = connection.openStream({ label: `from-listener-${n}` })
        stream.on('error', () => {}) // reset when the connection closes before the dialer ends its side
        stream.end(`stream ${n}`)
      }
    })
    const conn = await dialer.connect(listener.peerId, { timeout: 10_000 })
    // Listen only after connect() resolved: streams opened meanwhile are not lost.
    const streams: Promise<string>[] = []
    conn.on('stream', (stream) => {
      stream.end()
      streams.push(readAll(stream).then((data) => `${stream.label}=${data.toString()}`))
    })
    const [first] = (await once(conn, 'data')) as [Buffer]
    expect(first.toString()).toBe('hello from the listener')
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect((await Promise.all(streams)).sort()).toEqual(['from-listener-1=stream 1', 'from-listener-2=stream 2'])
    await Promise.all([conn.close({ timeout: 2_000 }), incoming?.close({ timeout: 2_000 })])
  })

  it('hands the listener every stream the connector opens the moment it is connected', async () => {
    let accepted: PeerConnection | undefined
    const labels = new Promise<string[]>((resolve) => {
      listener.once('connection', (incoming: PeerConnection) => {
        accepted = incoming
        const seen: string[] = []
        incoming.on('stream', (stream) => {
          seen.push(stream.label)
          stream.resume()
          stream.end()
          if (seen.length === 3) resolve(seen)
        })
      })
    })
    const conn = await dialer.connect(listener.peerId, { timeout: 10_000 })
    // Opened in the same tick as the main stream's open: their frames can share a packet.
    for (const label of ['a', 'b', 'c']) conn.openStream({ label }).end(label)
    expect((await labels).sort()).toEqual(['a', 'b', 'c'])
    conn.end()
    accepted?.end()
    await Promise.all([conn.close({ timeout: 2_000 }), accepted?.close({ timeout: 2_000 })])
  })

  it('rejects a peer that is not registered quickly with ERR_PEER_NOT_FOUND', async () => {
    const stranger = createIdentity().peerId
    await expect(dialer.connect(stranger, { timeout: 5_000 })).rejects.toMatchObject({ code: 'ERR_PEER_NOT_FOUND' })
  })

  it('refuses misuse at once', async () => {
    await expect(dialer.connect('not-a-peer-id')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(dialer.connect(dialer.peerId)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(dialer.connect(listener.peerId, { paths: ['turn'] })).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED' })
  })

  it('aborts an attempt with ERR_ABORTED', async () => {
    const controller = new AbortController()
    const attempt = dialer.connect(listener.peerId, { signal: controller.signal })
    controller.abort()
    await expect(attempt).rejects.toMatchObject({ code: 'ERR_ABORTED' })
  })
})
