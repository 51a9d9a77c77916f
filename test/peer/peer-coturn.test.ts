// Our TURN client path through a real coturn (Debian's `turnserver`, started by the test
// on loopback) with the relay-only policy: the dialer offers only its relayed candidate,
// so ICE, the Noise handshake and the data all go through coturn.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Peer, type PeerConnection, createPeer } from '../../src/peer/index.js'
import type { BeaconServer } from '../../src/server/beacon/index.js'
import { specOf, startBeacon } from '../beacon/helpers.js'
import { startCoturn, type Coturn } from '../helpers/coturn.js'
import { readAll, sha256 } from '../testing/stream-data.js'
import { LOOPBACK, FAST_ICE } from './loopback-peer-options.js'

const REALM = 'peerlink.test'
const USER = { username: 'carol', credential: 'coturn-password' }

describe('Peer through coturn (relay-only)', () => {
  let coturn: Coturn
  let beacon: BeaconServer
  let listener: Peer
  let dialer: Peer

  beforeAll(async () => {
    coturn = await startCoturn({ turn: true, extra: ['lt-cred-mech', `user=${USER.username}:${USER.credential}`, `realm=${REALM}`] })
    beacon = await startBeacon()
    const beacons = [specOf(beacon)]
    const turn = [{ urls: `turn:127.0.0.1:${coturn.port}?transport=udp`, ...USER }]
    listener = await createPeer({ beacons, host: '127.0.0.1', gather: LOOPBACK, ice: FAST_ICE })
    dialer = await createPeer({ beacons, host: '127.0.0.1', gather: LOOPBACK, ice: FAST_ICE, turn })
    await listener.listen()
  }, 30_000)

  afterAll(async () => {
    await dialer?.close()
    await listener?.close()
    await beacon?.close()
    await coturn?.stop()
  })

  it("paths: ['turn'] connects through coturn and carries 1 MB each way intact", async () => {
    const accepted = once(listener, 'connection') as Promise<[PeerConnection]>
    const conn = await dialer.connect(listener.peerId, { timeout: 15_000, paths: ['turn'] })
    const [incoming] = await accepted
    expect(conn.path).toBe('turn')
    expect(conn.info.local.type).toBe('relay')
    expect(conn.info.relay).toMatchObject({ transport: 'udp' })
    expect(incoming.info.remote).toMatchObject({ type: 'relay', port: conn.info.local.port })
    expect(incoming.remotePeerId).toBe(dialer.peerId)

    const a = randomBytes(1024 * 1024)
    const b = randomBytes(1024 * 1024)
    const gotByListener = readAll(incoming)
    const gotByDialer = readAll(conn)
    conn.end(a)
    incoming.end(b)
    expect(sha256(await gotByListener)).toBe(sha256(a))
    expect(sha256(await gotByDialer)).toBe(sha256(b))
    await conn.close({ timeout: 5_000 })
  }, 30_000)

  it('TURN over TCP to coturn works too (turn:…?transport=tcp)', async () => {
    const tcpDialer = await createPeer({
      beacons: [specOf(beacon)],
      host: '127.0.0.1',
      gather: LOOPBACK,
      ice: FAST_ICE,
      turn: [{ urls: `turn:127.0.0.1:${coturn.port}?transport=tcp`, ...USER }],
    })
    try {
      const accepted = once(listener, 'connection') as Promise<[PeerConnection]>
      const conn = await tcpDialer.connect(listener.peerId, { timeout: 15_000, paths: ['turn'] })
      const [incoming] = await accepted
      expect(conn.info.relay).toMatchObject({ transport: 'tcp' })
      const a = randomBytes(256 * 1024)
      const gotByListener = readAll(incoming)
      conn.end(a)
      incoming.end()
      expect(sha256(await gotByListener)).toBe(sha256(a))
      await conn.close({ timeout: 5_000 })
    } finally {
      await tcpDialer.close()
    }
  }, 30_000)
})
