import { afterEach, describe, expect, it } from 'vitest'
import dgram from 'node:dgram'
import { IceAgent, type IceAgentOptions, type IceRole } from '../../src/ice/index.js'
import { PeerSocket } from '../../src/transport/peer-socket.js'
import { openSecureConnection } from '../../src/transport/secure-connection.js'
import { createCheckRequest, checkIntegrityKey } from '../../src/ice/index.js'
import { encodeStunMessage, decodeStunMessage } from '../../src/stun/message.js'
import { makeKeyPair, receiveAll, sendRandom } from '../transport/helpers.js'
import { wireAgents } from './helpers/signalling.js'

async function ipv6Available(): Promise<boolean> {
  try {
    const s = await PeerSocket.bind({ host: '::1' })
    await s.close()
    return true
  } catch {
    return false
  }
}
const HAS_IPV6 = await ipv6Available()

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function socket(host: string): Promise<PeerSocket> {
  const s = await PeerSocket.bind({ host })
  cleanups.push(() => s.close())
  return s
}

function agent(s: PeerSocket, role: IceRole, extra: Partial<IceAgentOptions> = {}): IceAgent {
  const a = new IceAgent({ socket: s, role, ta: 20, ...extra })
  cleanups.push(() => a.close())
  return a
}

/** Select a pair between two sockets, then carry 1 MB each way over a verified stream on it. */
async function connectAndTransfer(sa: PeerSocket, sb: PeerSocket, extra: Partial<IceAgentOptions> = {}): Promise<void> {
  const a = agent(sa, 'controlling', extra)
  const b = agent(sb, 'controlled', extra)
  cleanups.push(wireAgents(a, b))
  const [selA, selB] = await Promise.all([a.connect({ timeout: 5000 }), b.connect({ timeout: 5000 })])
  expect(selA.remote.port).toBe(sb.port)
  expect(selB.remote.port).toBe(sa.port)

  const keyA = makeKeyPair()
  const keyB = makeKeyPair()
  const idA = sa.allocateStreamId()
  const idB = sb.allocateStreamId()
  const [ca, cb] = await Promise.all([
    openSecureConnection({ socket: sa, remote: { host: selA.remote.address, port: selA.remote.port }, localStreamId: idA, remoteStreamId: idB, isInitiator: true, keyPair: keyA, expectedRemotePublicKey: keyB.publicKey }),
    openSecureConnection({ socket: sb, remote: { host: selB.remote.address, port: selB.remote.port }, localStreamId: idB, remoteStreamId: idA, isInitiator: false, keyPair: keyB, expectedRemotePublicKey: keyA.publicKey }),
  ])
  cleanups.push(() => ca.close(), () => cb.close())
  const [sentA, sentB, gotB, gotA] = await Promise.all([sendRandom(ca, 1_000_000), sendRandom(cb, 1_000_000), receiveAll(cb), receiveAll(ca)])
  expect(gotB).toEqual({ bytes: 1_000_000, sha256: sentA })
  expect(gotA).toEqual({ bytes: 1_000_000, sha256: sentB })
  // The agents still answer consent checks on the socket the stream uses.
  expect(a.state).toBe('connected')
  expect(b.state).toBe('connected')
}

describe('ICE over real loopback sockets', () => {
  it('selects a pair on 127.0.0.1 and a verified stream carries data over it', async () => {
    await connectAndTransfer(await socket('127.0.0.1'), await socket('127.0.0.1'))
  })

  it.skipIf(!HAS_IPV6)('selects a pair on ::1 and a verified stream carries data over it', async () => {
    await connectAndTransfer(await socket('::1'), await socket('::1'))
  })

  it.skipIf(!HAS_IPV6)('works between a dual-stack :: socket and an IPv4 socket (IPv4-mapped addresses)', async () => {
    const dual = await socket('::')
    const v4 = await socket('127.0.0.1')
    const a = agent(dual, 'controlling', { gather: { hostAddresses: ['127.0.0.1'], includeLoopback: true } })
    const b = agent(v4, 'controlled')
    cleanups.push(wireAgents(a, b))
    const [selA, selB] = await Promise.all([a.connect({ timeout: 5000 }), b.connect({ timeout: 5000 })])
    expect(selA.remote).toMatchObject({ address: '127.0.0.1', port: v4.port })
    expect(selB.remote).toMatchObject({ address: '127.0.0.1', port: dual.port })
  })

  it('keeps consent with short intervals on real sockets', async () => {
    const sa = await socket('127.0.0.1')
    const sb = await socket('127.0.0.1')
    const a = agent(sa, 'controlling', { consentInterval: 20, consentTimeout: 150 })
    const b = agent(sb, 'controlled', { consentInterval: 20, consentTimeout: 150 })
    cleanups.push(wireAgents(a, b))
    await Promise.all([a.connect(), b.connect()])
    const before = sb.stats.stunDatagrams
    await new Promise((r) => setTimeout(r, 300))
    expect(a.state).toBe('connected')
    expect(b.state).toBe('connected')
    expect(sb.stats.stunDatagrams - before).toBeGreaterThan(10)
  })

  it('close() stops answering checks, leaves the socket open and usable', async () => {
    const sa = await socket('127.0.0.1')
    const a = agent(sa, 'controlled')
    await a.gather()
    const remote = { ufrag: 'prob', pwd: 'probeprobeprobeprobeprobe' }
    a.setRemoteCredentials(remote)
    const probe = dgram.createSocket('udp4')
    cleanups.push(() => new Promise<void>((r) => probe.close(() => r())))
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()))
    const responses: Buffer[] = []
    probe.on('message', (m) => responses.push(m))
    const sendProbe = (): void => {
      const request = createCheckRequest({ local: remote, remote: a.localCredentials, priority: 1, role: 'controlling', tieBreaker: 1n })
      probe.send(encodeStunMessage(request, { integrity: checkIntegrityKey(a.localCredentials), fingerprint: true }), sa.port, '127.0.0.1')
    }
    sendProbe()
    await new Promise((r) => setTimeout(r, 100))
    expect(responses.length).toBeGreaterThanOrEqual(1)
    expect(decodeStunMessage(responses[0]!).class).toBe('success')
    a.close()
    expect(a.state).toBe('closed')
    const count = responses.length
    sendProbe()
    await new Promise((r) => setTimeout(r, 100))
    expect(responses.length).toBe(count)
    expect(sa.closed).toBe(false)
    expect(await sa.send(new Uint8Array([1, 2, 3]), probe.address().port, '127.0.0.1')).toBe(true)
  })
})
