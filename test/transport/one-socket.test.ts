// The peer's one UDP socket carries STUN (server-reflexive discovery, RFC 5780) and the
// verified stream at the same time, with identities given as PeerIds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PeerIdentityMismatchError } from '../../src/errors.js'
import { createIdentity } from '../../src/identity/identity.js'
import { StunServer } from '../../src/server/stun/stun-server.js'
import { discoverNatBehavior, stunBinding } from '../../src/stun/index.js'
import { PeerSocket } from '../../src/transport/peer-socket.js'
import { peerSocketEndpoint } from '../../src/transport/peer-socket-endpoint.js'
import { openSecureConnection } from '../../src/transport/secure-connection.js'
import { receiveAll, sendRandom } from './helpers.js'

describe('one socket: STUN and the verified stream together', () => {
  let stun: StunServer
  let a: PeerSocket
  let b: PeerSocket
  const alice = createIdentity()
  const bob = createIdentity()

  beforeAll(async () => {
    stun = await StunServer.listen({ host: '127.0.0.1', port: 0, alternateHost: '127.0.0.2', requestsPerSecondPerIp: 1e6, burstPerIp: 1e6 })
    a = await PeerSocket.bind({ host: '127.0.0.1' })
    b = await PeerSocket.bind({ host: '127.0.0.1' })
  })
  afterAll(async () => {
    await Promise.all([a.close(), b.close(), stun.close()])
  })

  function open(expectA = bob.peerId, expectB = alice.peerId) {
    const idA = a.allocateStreamId()
    const idB = b.allocateStreamId()
    return Promise.allSettled([
      openSecureConnection({
        socket: a, remote: { host: '127.0.0.1', port: b.port }, localStreamId: idA, remoteStreamId: idB,
        isInitiator: true, keyPair: alice.keyPair, expectedPeerId: expectA, handshakeTimeout: 5_000,
      }),
      openSecureConnection({
        socket: b, remote: { host: '127.0.0.1', port: a.port }, localStreamId: idB, remoteStreamId: idA,
        isInitiator: false, keyPair: bob.keyPair, expectedPeerId: expectB, handshakeTimeout: 5_000,
      }),
    ])
  }

  it('learns its mapped address and NAT behaviour on the socket while 10 MB flow through it', async () => {
    const [ra, rb] = await open()
    if (ra.status !== 'fulfilled' || rb.status !== 'fulfilled') throw new Error('connection failed')
    const [connA, connB] = [ra.value, rb.value]
    const total = 10 * 1024 * 1024
    const received = receiveAll(connB)
    const sent = sendRandom(connA, total)
    const endpoint = peerSocketEndpoint(a)
    // STUN on the same port during the transfer.
    const binding = await stunBinding({ endpoint, server: stun.primary })
    const nat = await discoverNatBehavior({ endpoint, server: stun.primary })
    const [digest, got] = await Promise.all([sent, received])
    expect(got.bytes).toBe(total)
    expect(got.sha256).toBe(digest)
    expect(binding.mapped).toEqual({ family: 'IPv4', host: '127.0.0.1', port: a.port })
    expect(nat.mapping).toBe('no-nat')
    expect(nat.filtering).toBe('endpoint-independent')
    expect(a.stats.stunDatagrams).toBeGreaterThan(0)
    expect(connA.remotePublicKey).toEqual(bob.keyPair.publicKey)
    connB.end()
    await Promise.all([connA.close(), connB.close()])
  })

  it('names both PeerIds when the remote is someone else', async () => {
    const mallory = createIdentity()
    const [ra] = await open(mallory.peerId)
    expect(ra.status).toBe('rejected')
    const err = (ra as PromiseRejectedResult).reason as PeerIdentityMismatchError
    expect(err).toBeInstanceOf(PeerIdentityMismatchError)
    expect(err.expected).toBe(mallory.peerId)
    expect(err.actual).toBe(bob.peerId)
    expect(err.message).toContain(bob.peerId)
  })

  it('throws at once for a malformed expected PeerId', () => {
    expect(() =>
      openSecureConnection({
        socket: a, remote: { host: '127.0.0.1', port: b.port }, localStreamId: 1, remoteStreamId: 2,
        isInitiator: true, keyPair: alice.keyPair, expectedPeerId: 'not-a-peer-id',
      }),
    ).toThrow(expect.objectContaining({ code: 'ERR_INVALID_PEER_ID' }))
  })
})
