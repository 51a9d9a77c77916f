/**
 * Hostile input: random and mutated datagrams and TCP byte streams at the TURN server.
 * It must never throw (an exception in a socket handler would fail this run as an
 * unhandled error) and must keep serving.
 *
 * Peers are restricted to loopback (deny everything, allow 127/8 and ::1), so fuzzed
 * permissions can never send a packet off this machine.
 */
import fc from 'fast-check'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TurnServer } from '../../../src/server/turn/turn-server.js'
import {
  createTransactionId,
  encodeStunMessage,
  getAttribute,
  type StunAttribute,
  type StunMessage,
  type TransportAddress,
} from '../../../src/stun/index.js'
import { attributeArb, messageArb } from '../../stun/arbitraries.js'
import { randomPortRange } from './coturn-tools.js'
import { TestPeer, TestTurnClient, sleep } from './turn-test-client.js'

const LOOPBACK_ONLY = { deniedPeerIps: ['0.0.0.0/0', '::/0'], allowedPeerIps: ['127.0.0.0/8', '::1'] }

function templates(peer: TransportAddress): Uint8Array[] {
  const request = (method: StunMessage['method'], attributes: StunAttribute[], cls: StunMessage['class'] = 'request') =>
    encodeStunMessage({ method, class: cls, transactionId: createTransactionId(), attributes }, { fingerprint: true })
  return [
    request('binding', []),
    request('allocate', [{ type: 'requested-transport', value: 17 }, { type: 'even-port', value: { reserve: true } }]),
    request('allocate', [{ type: 'requested-transport', value: 17 }, { type: 'additional-address-family', value: 'IPv6' }]),
    request('refresh', [{ type: 'lifetime', value: 600 }]),
    request('create-permission', [{ type: 'xor-peer-address', value: peer }]),
    request('channel-bind', [{ type: 'channel-number', value: 0x4000 }, { type: 'xor-peer-address', value: peer }]),
    request('send', [{ type: 'xor-peer-address', value: peer }, { type: 'data', value: Buffer.from('fuzz data') }], 'indication'),
    request('allocate', [
      { type: 'requested-transport', value: 17 },
      { type: 'username', value: 'alice' },
      { type: 'realm', value: 'r' },
      { type: 'nonce', value: '0000000000000000000000000000000' },
      { type: 'message-integrity', value: new Uint8Array(20) },
    ]),
    Buffer.from([0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4]),
    Buffer.from([0x7f, 0xff, 0x00, 0x00]),
  ]
}

const mutationArb = fc.record({
  template: fc.nat(),
  edits: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 6 }),
  cut: fc.option(fc.nat(), { nil: undefined }),
})

function mutate(list: Uint8Array[], m: { template: number; edits: { at: number; value: number }[]; cut: number | undefined }): Uint8Array {
  const bytes = Uint8Array.from(list[m.template % list.length]!)
  for (const edit of m.edits) bytes[edit.at % bytes.length] = edit.value
  return m.cut === undefined ? bytes : bytes.subarray(0, m.cut % (bytes.length + 1))
}

describe('TurnServer under hostile input', () => {
  let server: TurnServer
  let noAuth: TurnServer
  let peer: TestPeer

  beforeAll(async () => {
    const common = { listeningIps: ['127.0.0.1'], listeningPort: 0, relayIps: ['127.0.0.1', '::1'], bindingRequestsPerSecondPerIp: 1e6, ...LOOPBACK_ONLY }
    server = await TurnServer.listen({ ...common, ...randomPortRange(300), users: ['alice:secret'], staticAuthSecrets: ['s1'], unauthorizedResponsesPerSecondPerIp: 1e6, unauthorizedResponsesBurstPerIp: 1e6 })
    noAuth = await TurnServer.listen({ ...common, ...randomPortRange(300), noAuth: true, maxPermissionsPerAllocation: 8 })
    peer = await TestPeer.create()
  })
  afterAll(async () => {
    await peer.close()
    await server.close()
    await noAuth.close()
  })

  const udpOf = (s: TurnServer) => s.addresses.find((a) => a.transport === 'udp')!
  const tcpOf = (s: TurnServer) => s.addresses.find((a) => a.transport === 'tcp')!

  async function stillServes(s: TurnServer): Promise<void> {
    const c = await TestTurnClient.udp(udpOf(s))
    try {
      expect((await c.request('binding')).class).toBe('success')
    } finally {
      await c.close()
    }
  }

  for (const which of ['authenticated', 'no-auth'] as const) {
    it(`survives random and mutated datagrams (${which})`, async () => {
      const s = which === 'authenticated' ? server : noAuth
      // a client with an allocation, a permission and a channel, so fuzz reaches the data path
      const c = await TestTurnClient.udp(udpOf(s))
      if (which === 'authenticated') c.useCredentials('alice', 'secret')
      try {
        const relayed = getAttribute(await c.allocate([{ type: 'additional-address-family', value: 'IPv6' }]), 'xor-relayed-address')!.value
        await c.request('channel-bind', [{ type: 'channel-number', value: 0x4000 }, { type: 'xor-peer-address', value: peer.address }])
        const list = templates(peer.address)
        await fc.assert(
          fc.asyncProperty(
            fc.oneof(
              fc.uint8Array({ maxLength: 120 }),
              mutationArb.map((m) => mutate(list, m)),
              messageArb.map((m) => encodeStunMessage(m)),
              fc.array(attributeArb, { maxLength: 6 }).chain((attributes) =>
                fc.constantFrom<StunMessage['method']>('allocate', 'refresh', 'create-permission', 'channel-bind', 'send').map((method) =>
                  encodeStunMessage({ method, class: method === 'send' ? 'indication' : 'request', transactionId: createTransactionId(), attributes }),
                ),
              ),
            ),
            async (datagram) => {
              c.sendRaw(datagram)
              peer.send(datagram, relayed) // the relay side is hostile too
              await new Promise((resolve) => setImmediate(resolve))
            },
          ),
          { numRuns: 1000 },
        )
        await sleep(50)
        await stillServes(s)
        expect(s.stats.malformed).toBeGreaterThan(0)
      } finally {
        await c.close()
      }
    })
  }

  it('survives random and mutated TCP byte streams', async () => {
    const list = templates(peer.address)
    const before = noAuth.stats.connections
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 80 }), mutationArb.map((m) => mutate(list, m))), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        async (chunks, wait) => {
          const socket = net.connect(tcpOf(noAuth).port, '127.0.0.1')
          socket.on('error', () => {})
          socket.on('data', () => {})
          const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
          await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
          for (const chunk of chunks) socket.write(chunk)
          if (wait) await sleep(2)
          socket.destroy()
          await closed
        },
      ),
      { numRuns: 60 },
    )
    await sleep(50)
    expect(noAuth.stats.connections).toBe(before)
    const c = await TestTurnClient.tcp(tcpOf(noAuth))
    try {
      expect((await c.request('binding')).class).toBe('success')
    } finally {
      await c.close()
    }
  })

  it('reassembles a 64 KiB frame trickled byte by byte and stays in sync', async () => {
    // the server keeps one partial frame per connection and must not lose the framing
    const c = await TestTurnClient.tcp(tcpOf(noAuth))
    try {
      const frame = Buffer.alloc(4 + 0xfffc)
      frame.writeUInt16BE(0x4000, 0)
      frame.writeUInt16BE(0xfffc, 2)
      for (let i = 0; i < 64; i++) c.sendRaw(frame.subarray(i, i + 1))
      await sleep(20)
      c.sendRaw(frame.subarray(64))
      expect((await c.request('binding')).class).toBe('success')
    } finally {
      await c.close()
    }
  })
})
