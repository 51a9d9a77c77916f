// The relay pieces of the TURN path, on loopback against our TURN server (in-process):
// allocateTurnRelay (UDP from a PeerSocket, TCP fallback), TurnRelayEndpoint
// (permissions, held datagrams, channels) and TurnRelayShim (the stream socket's proxy).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidArgumentError, TurnAuthError } from '../../src/errors.js'
import { createSelfSignedCertificate } from '../../src/server/tls.js'
import { TurnServer } from '../../src/server/turn/turn-server.js'
import { createStunRequest, encodeStunMessage } from '../../src/stun/message.js'
import { PeerSocket } from '../../src/transport/peer-socket.js'
import { allocateTurnRelay, relayTransports } from '../../src/turn/turn-relay-allocator.js'
import { TurnRelayEndpoint } from '../../src/turn/turn-relay-endpoint.js'
import { TurnRelayShim } from '../../src/turn/turn-relay-shim.js'
import { randomPortRange } from '../server/turn/coturn-tools.js'
import { closeSocket, nextMessage, udpSocket } from './helpers.js'
import { until } from '../beacon/helpers.js'

const USER = { username: 'alice', password: 'alice-password' }

async function startServer(extra: Record<string, unknown> = {}): Promise<{ server: TurnServer; port: number }> {
  const server = await TurnServer.listen({
    listeningIps: ['127.0.0.1'],
    listeningPort: 0,
    relayIps: ['127.0.0.1'],
    ...randomPortRange(100),
    realm: 'peerlink.test',
    users: [`${USER.username}:${USER.password}`],
    allowLoopbackPeers: true,
    ...extra,
  })
  const port = server.addresses.find((a) => a.transport === 'udp' || a.transport === 'tcp')!.port
  return { server, port }
}

describe('relayTransports', () => {
  it('tries UDP then TCP for turn:, TCP only for ?transport=tcp, TLS only for turns:', () => {
    expect(relayTransports('turn:192.0.2.1:3478')).toEqual(['udp', 'tcp'])
    expect(relayTransports('turn:192.0.2.1:3478?transport=udp')).toEqual(['udp', 'tcp'])
    expect(relayTransports('turn:192.0.2.1:3478?transport=tcp')).toEqual(['tcp'])
    expect(relayTransports('turns:192.0.2.1:5349#abc')).toEqual(['tls'])
  })
})

describe('allocateTurnRelay and TurnRelayEndpoint', () => {
  let server: TurnServer
  let port: number
  let socket: PeerSocket

  beforeAll(async () => {
    ;({ server, port } = await startServer())
    socket = await PeerSocket.bind({ host: '127.0.0.1' })
  })

  afterAll(async () => {
    await socket?.close()
    await server?.close()
  })

  it('allocates over UDP from the PeerSocket, holds datagrams until the permission exists, relays both ways, binds a channel, deallocates on close', async () => {
    const relay = await allocateTurnRelay({ socket, server: { url: `turn:127.0.0.1:${port}`, credentials: USER } })
    const peer = await udpSocket()
    try {
      expect(relay.transport).toBe('udp')
      expect(relay.client.mappedAddress).toMatchObject({ host: '127.0.0.1', port: socket.port })
      expect(relay.localAddress()).toEqual(relay.relayed)
      expect(server.stats.allocations).toBe(1)
      const peerPort = peer.address().port
      // No permission yet: the datagram waits for CreatePermission, then goes.
      const first = nextMessage(peer)
      relay.send(Buffer.from('hello'), peerPort, '127.0.0.1')
      const got = await first
      expect(got.data.toString()).toBe('hello')
      expect({ host: got.from.address, port: got.from.port }).toEqual({ host: relay.relayed.host, port: relay.relayed.port })
      expect(relay.client.hasPermission('127.0.0.1')).toBe(true)

      const received: string[] = []
      const off = relay.onMessage((data, from) => {
        if (from.port === peerPort) received.push(Buffer.from(data).toString())
      })
      peer.send('back', relay.relayed.port, relay.relayed.host)
      await until(() => received.includes('back'), 3000)

      await relay.bindChannel({ host: '127.0.0.1', port: peerPort })
      expect(relay.client.channelOf({ host: '127.0.0.1', port: peerPort })).toBeGreaterThanOrEqual(0x4000)
      const channelDataBefore = socket.stats.channelDataDatagrams
      peer.send('via-channel', relay.relayed.port, relay.relayed.host)
      await until(() => received.includes('via-channel'), 3000)
      expect(socket.stats.channelDataDatagrams).toBeGreaterThan(channelDataBefore)
      off()
    } finally {
      await relay.close()
      await closeSocket(peer)
    }
    expect(relay.closed).toBe(true)
    await until(() => server.stats.allocations === 0, 3000)
    // The peer's socket was only borrowed.
    expect(socket.closed).toBe(false)
  })

  it('ignores permissions for the other address family and sends nothing after close', async () => {
    const relay = await allocateTurnRelay({ socket, server: { url: `turn:127.0.0.1:${port}`, credentials: USER } })
    relay.permit('::1')
    expect(relay.client.hasPermission('::1')).toBe(false)
    await relay.close()
    expect(() => relay.send(Buffer.from('x'), 9, '127.0.0.1')).not.toThrow()
  })

  it('refused credentials reject with TurnAuthError at once (no fallback to TCP)', async () => {
    const started = performance.now()
    await expect(allocateTurnRelay({ socket, server: { url: `turn:127.0.0.1:${port}`, credentials: { username: 'alice', password: 'wrong' } } })).rejects.toBeInstanceOf(TurnAuthError)
    expect(performance.now() - started).toBeLessThan(900)
  })

  it('rejects misuse at once', async () => {
    await expect(allocateTurnRelay({ socket, server: { url: `turn:127.0.0.1:${port}`, credentials: USER }, udpTimeout: 0 })).rejects.toBeInstanceOf(InvalidArgumentError)
    expect(() => new TurnRelayEndpoint({ client: undefined as never })).toThrow(InvalidArgumentError)
  })
})

describe('allocateTurnRelay without UDP', () => {
  it('tries TCP alongside when UDP has not answered within tcpHeadStart', async () => {
    const { server, port } = await startServer({ noUdp: true })
    const socket = await PeerSocket.bind({ host: '127.0.0.1' })
    try {
      const started = performance.now()
      const relay = await allocateTurnRelay({ socket, server: { url: `turn:127.0.0.1:${port}?transport=udp`, credentials: USER }, udpTimeout: 5000, tcpHeadStart: 150 })
      try {
        expect(relay.transport).toBe('tcp')
        // Not after the UDP timeout: TCP started 150 ms in.
        expect(performance.now() - started).toBeGreaterThanOrEqual(140)
        expect(performance.now() - started).toBeLessThan(2000)
        expect(relay.url).toBe(`turn:127.0.0.1:${port}?transport=udp`)
      } finally {
        await relay.close()
      }
      // UDP known to be blocked: straight to TCP, no UDP timeout.
      const begun = performance.now()
      const direct = await allocateTurnRelay({ socket, server: { url: `turn:127.0.0.1:${port}`, credentials: USER }, udpTimeout: 300, udp: false })
      try {
        expect(direct.transport).toBe('tcp')
        expect(performance.now() - begun).toBeLessThan(250)
      } finally {
        await direct.close()
      }
    } finally {
      await socket.close()
      await server.close()
    }
  })
})

describe('allocateTurnRelay over TLS', () => {
  it('turns: with a #CERT_HASH pin allocates over TLS (no UDP tried)', async () => {
    const { cert, key, hash } = createSelfSignedCertificate()
    const { server } = await startServer({ tls: { cert, key }, tlsListeningPort: 0 })
    const socket = await PeerSocket.bind({ host: '127.0.0.1' })
    try {
      const tls = server.addresses.find((a) => a.transport === 'tls')!
      const relay = await allocateTurnRelay({ socket, server: { url: `turns:127.0.0.1:${tls.port}#${hash}`, credentials: USER } })
      try {
        expect(relay.transport).toBe('tls')
        expect(relay.relayed.host).toBe('127.0.0.1')
        expect(socket.stats.stunDatagrams).toBe(0)
      } finally {
        await relay.close()
      }
      // A wrong pin is refused.
      await expect(allocateTurnRelay({ socket, server: { url: `turns:127.0.0.1:${tls.port}#${'A'.repeat(43)}`, credentials: USER } })).rejects.toMatchObject({
        code: 'ERR_CERT_PIN_MISMATCH',
      })
    } finally {
      await socket.close()
      await server.close()
    }
  })
})

describe('TurnRelayShim', () => {
  let server: TurnServer
  let port: number
  let socket: PeerSocket

  beforeAll(async () => {
    ;({ server, port } = await startServer())
    socket = await PeerSocket.bind({ host: '127.0.0.1' })
  })

  afterAll(async () => {
    await socket?.close()
    await server?.close()
  })

  it('carries datagrams between its stream socket and the peer through the relay, and only those', async () => {
    const relay = await allocateTurnRelay({ socket, server: { url: `turn:127.0.0.1:${port}`, credentials: USER } })
    // The stream socket shares the peer socket's udx instance (a stream could move between them).
    const shim = await TurnRelayShim.open(relay, { sibling: socket })
    const peer = await udpSocket()
    const stranger = await udpSocket()
    try {
      const peerAddress = { host: '127.0.0.1', port: peer.address().port }
      // Before connect() the proxy relays nothing.
      await shim.socket.send(Buffer.from([0xff, 1, 2, 3]), shim.proxyAddress.port, shim.proxyAddress.host)
      await new Promise((resolve) => setTimeout(resolve, 50))
      shim.connect(peerAddress)
      expect(shim.peer).toEqual(peerAddress)
      const atPeer = nextMessage(peer)
      await shim.socket.send(Buffer.from([0xff, 4, 5, 6]), shim.proxyAddress.port, shim.proxyAddress.host)
      const got = await atPeer
      expect([...got.data]).toEqual([0xff, 4, 5, 6])
      expect(got.from.port).toBe(relay.relayed.port)
      expect(shim.stats.sent).toBe(1)

      // Another local socket cannot use the proxy.
      stranger.send(Buffer.from([0xff, 9]), shim.proxyAddress.port, shim.proxyAddress.host)
      // The peer's data reaches the stream socket (which drops what no udx stream claims);
      // its STUN (consent checks) is left to the ICE agent.
      const stun = encodeStunMessage(createStunRequest('binding'))
      peer.send(stun, relay.relayed.port, relay.relayed.host)
      peer.send(Buffer.from([0xff, 7, 7]), relay.relayed.port, relay.relayed.host)
      await until(() => shim.stats.received === 1 && shim.socket.stats.droppedDatagrams >= 1, 3000)
      await new Promise((resolve) => setTimeout(resolve, 50))
      expect(shim.stats).toEqual({ sent: 1, received: 1 })
      expect(() => shim.connect({ host: 'not-an-ip', port: 1 })).toThrow(InvalidArgumentError)
    } finally {
      await shim.close()
      await relay.close()
      await closeSocket(peer)
      await closeSocket(stranger)
    }
    expect(shim.socket.closed).toBe(true)
    expect(socket.closed).toBe(false)
    expect(() => shim.connect({ host: '127.0.0.1', port: 1 })).toThrow()
  })

  it('refuses a closed relay', async () => {
    const relay = await allocateTurnRelay({ socket, server: { url: `turn:127.0.0.1:${port}`, credentials: USER } })
    await relay.close()
    await expect(TurnRelayShim.open(relay)).rejects.toThrow()
  })
})
