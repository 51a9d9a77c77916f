// peer.rendezvous(identifier): two peers that share an identifier meet through the
// Beacon's symmetric mode (neither listens) and get one verified connection.
import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Peer, createPeer, rendezvousTopic } from '../../src/peer/index.js'
import type { BeaconServer } from '../../src/server/beacon/index.js'
import { specOf, startBeacon } from '../beacon/helpers.js'
import { readAll } from '../testing/stream-data.js'
import { LOOPBACK, FAST_ICE } from './loopback-peer-options.js'

describe('Peer.rendezvous', () => {
  let beacon: BeaconServer
  const peers: Peer[] = []
  const newPeer = async (): Promise<Peer> => {
    const peer = await createPeer({ beacons: [specOf(beacon)], host: '127.0.0.1', gather: LOOPBACK, ice: FAST_ICE })
    peers.push(peer)
    return peer
  }

  beforeAll(async () => {
    beacon = await startBeacon()
  })
  afterAll(async () => {
    await Promise.all(peers.map((peer) => peer.close()))
    await beacon?.close()
  })

  it('connects two peers that use the same identifier, without listen(), and verifies both ends', async () => {
    const [a, b] = [await newPeer(), await newPeer()]
    const room = `room-${randomBytes(4).toString('hex')}`
    const [ca, cb] = await Promise.all([a.rendezvous(room, { timeout: 10_000 }), b.rendezvous(room, { timeout: 10_000 })])
    expect(ca.remotePeerId).toBe(b.peerId)
    expect(cb.remotePeerId).toBe(a.peerId)
    // Exactly one side initiated: the one whose PeerId sorts first.
    expect(ca.info.initiator).toBe(a.peerId < b.peerId)
    expect(cb.info.initiator).toBe(!ca.info.initiator)
    const payload = randomBytes(256 * 1024)
    const received = readAll(cb)
    ca.end(payload)
    cb.end()
    expect(createHash('sha256').update(await received).digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'))
    await readAll(ca)
    // The announcements are withdrawn once the peers met.
    await expect.poll(() => beacon.stats.announcements, { timeout: 3000 }).toBe(0)
  })

  it('also works when one side arrives much later, and the first may listen meanwhile', async () => {
    const [a, b] = [await newPeer(), await newPeer()]
    await a.listen()
    const room = randomBytes(16)
    const first = a.rendezvous(room, { timeout: 10_000 })
    await new Promise((resolve) => setTimeout(resolve, 300))
    let emitted = 0
    a.on('connection', () => emitted++)
    const [ca, cb] = await Promise.all([first, b.rendezvous(room, { timeout: 10_000 })])
    expect(ca.remotePeerId).toBe(b.peerId)
    expect(cb.remotePeerId).toBe(a.peerId)
    // The rendezvous took the connection; it is not also emitted as a 'connection'.
    expect(emitted).toBe(0)
    ca.destroy()
    cb.destroy()
  })

  it('does not meet peers of another identifier, and stops on abort with ERR_ABORTED', async () => {
    const [a, b] = [await newPeer(), await newPeer()]
    const controller = new AbortController()
    const waiting = Promise.allSettled([
      a.rendezvous('room-one', { signal: controller.signal }),
      b.rendezvous('room-two', { signal: controller.signal }),
    ])
    await new Promise((resolve) => setTimeout(resolve, 500))
    controller.abort()
    const results = await waiting
    for (const result of results) {
      expect(result.status).toBe('rejected')
      expect((result as PromiseRejectedResult).reason.code).toBe('ERR_ABORTED')
    }
    await expect.poll(() => beacon.stats.announcements, { timeout: 3000 }).toBe(0)
  })

  it('hashes the identifier with a domain-separation tag, and refuses empty or oversized ones', async () => {
    const expected = createHash('sha256').update('peerlink/rendezvous/v1').update(Buffer.from([0])).update('abc').digest()
    expect(Buffer.from(rendezvousTopic('abc')).equals(expected)).toBe(true)
    expect(Buffer.from(rendezvousTopic(Buffer.from('abc'))).equals(expected)).toBe(true)
    const peer = await newPeer()
    await expect(peer.rendezvous('')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(peer.rendezvous(Buffer.alloc(1025))).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
  })
})
