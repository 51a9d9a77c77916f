import { describe, expect, it } from 'vitest'
import type { NetworkInterfaceInfo } from 'node:os'
import { CandidateGatherer, type LocalCandidate, type NetworkInterfaceMap } from '../../src/ice/index.js'
import type { DatagramEndpoint } from '../../src/stun/datagram-endpoint.js'
import { InvalidArgumentError, StunTimeoutError } from '../../src/errors.js'
import { PeerSocket } from '../../src/transport/peer-socket.js'
import { peerSocketEndpoint } from '../../src/transport/peer-socket-endpoint.js'
import { StunServer } from '../../src/server/stun/stun-server.js'
import { VirtualNetwork } from './helpers/virtual-network.js'

function info(address: string, internal = false): NetworkInterfaceInfo {
  const v6 = address.includes(':')
  return v6
    ? { address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal, cidr: null, scopeid: 0 }
    : { address, netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal, cidr: null }
}

const INTERFACES: NetworkInterfaceMap = {
  lo: [info('127.0.0.1', true), info('::1', true)],
  eth0: [info('192.168.1.20'), info('2001:db8::20'), info('fe80::1234')],
  wlan0: [info('10.0.0.20'), info('169.254.3.4')],
}

function fakeEndpoint(host: string, port = 5000): DatagramEndpoint {
  return {
    send() {},
    onMessage: () => () => {},
    localAddress: () => ({ family: host.includes(':') ? 'IPv6' : 'IPv4', host, port }),
  }
}

async function gatherAll(gatherer: CandidateGatherer): Promise<LocalCandidate[]> {
  const seen: LocalCandidate[] = []
  gatherer.on('candidate', (c) => seen.push(c))
  await gatherer.gather()
  return seen
}

describe('CandidateGatherer', () => {
  it('gathers one host candidate per non-internal IPv4 address on a 0.0.0.0 socket', async () => {
    const seen = await gatherAll(new CandidateGatherer({ endpoint: fakeEndpoint('0.0.0.0'), networkInterfaces: () => INTERFACES }))
    expect(seen.map((c) => [c.type, c.address, c.port])).toEqual([
      ['host', '192.168.1.20', 5000],
      ['host', '10.0.0.20', 5000],
    ])
    // distinct local preferences, interface order kept
    expect(seen[0]!.priority).toBeGreaterThan(seen[1]!.priority)
  })

  it('adds IPv6 on a dual-stack :: socket, preferring it, and skips link-local unless asked', async () => {
    const seen = await gatherAll(new CandidateGatherer({ endpoint: fakeEndpoint('::'), networkInterfaces: () => INTERFACES }))
    expect(seen.map((c) => c.address)).toEqual(['2001:db8::20', '192.168.1.20', '10.0.0.20'])
    expect(seen[0]!.priority).toBeGreaterThan(seen[1]!.priority)
    const withLinkLocal = await gatherAll(
      new CandidateGatherer({ endpoint: fakeEndpoint('::'), networkInterfaces: () => INTERFACES, includeLinkLocal: true }),
    )
    expect(withLinkLocal.map((c) => c.address).sort()).toEqual(['10.0.0.20', '169.254.3.4', '192.168.1.20', '2001:db8::20', 'fe80::1234'])
  })

  it('includes loopback only when asked, and restricts to named interfaces and families', async () => {
    const lo = await gatherAll(new CandidateGatherer({ endpoint: fakeEndpoint('::'), networkInterfaces: () => INTERFACES, includeLoopback: true, interfaces: ['lo'] }))
    expect(lo.map((c) => c.address).sort()).toEqual(['127.0.0.1', '::1'])
    const v4eth0 = await gatherAll(new CandidateGatherer({ endpoint: fakeEndpoint('::'), networkInterfaces: () => INTERFACES, interfaces: ['eth0'], families: ['IPv4'] }))
    expect(v4eth0.map((c) => c.address)).toEqual(['192.168.1.20'])
  })

  it('uses exactly the bound address of a socket bound to one address, or the given hostAddresses', async () => {
    const bound = await gatherAll(new CandidateGatherer({ endpoint: fakeEndpoint('192.168.1.20'), networkInterfaces: () => INTERFACES }))
    expect(bound.map((c) => c.address)).toEqual(['192.168.1.20'])
    const given = await gatherAll(new CandidateGatherer({ endpoint: fakeEndpoint('0.0.0.0'), hostAddresses: ['10.9.9.9', '2001:db8::1'] }))
    expect(given.map((c) => c.address)).toEqual(['10.9.9.9']) // an IPv4 socket cannot use the IPv6 one
    expect(() => new CandidateGatherer({ endpoint: fakeEndpoint('0.0.0.0'), hostAddresses: ['nope'] })).toThrow(InvalidArgumentError)
  })

  it('trickles host candidates first, then server-reflexive ones as STUN answers, then end', async () => {
    const net = new VirtualNetwork({ latency: 5 })
    try {
      net.createStunServer('203.0.113.1', 3478)
      net.createStunServer('203.0.113.2', 3478)
      const nat = net.createNat('198.51.100.1', 'endpoint-independent', 'address-and-port-dependent')
      const endpoint = nat.bind('10.0.1.10')
      const gatherer = new CandidateGatherer({
        endpoint,
        stunServers: [{ host: '203.0.113.1', port: 3478 }, { host: '203.0.113.2', port: 3478 }],
      })
      const events: string[] = []
      gatherer.on('candidate', (c) => events.push(`${c.type} ${c.address}:${c.port}`))
      gatherer.on('end', () => events.push('end'))
      const outcomes = await gatherer.gather()
      // One mapping (endpoint-independent NAT) seen by two servers: one srflx candidate.
      expect(events).toEqual([`host 10.0.1.10:${endpoint.address.port}`, 'srflx 198.51.100.1:40000', 'end'])
      expect(outcomes).toHaveLength(2)
      expect(outcomes.every((o) => o.mapped?.address === '198.51.100.1')).toBe(true)
      const srflx = gatherer.candidates[1]!
      expect(srflx.relatedAddress).toBe('10.0.1.10')
      expect(srflx.base).toEqual({ address: '10.0.1.10', port: endpoint.address.port })
    } finally {
      net.close()
    }
  })

  it('reports an unresponsive STUN server as an outcome and still ends', async () => {
    const net = new VirtualNetwork()
    try {
      const endpoint = net.bind('192.0.2.1')
      const gatherer = new CandidateGatherer({ endpoint, stunServers: [{ host: '203.0.113.99', port: 3478 }], stunRetransmit: { rto: 10, rc: 2, rm: 2 } })
      let ended = false
      gatherer.on('end', () => {
        ended = true
      })
      const outcomes = await gatherer.gather()
      expect(ended).toBe(true)
      expect(outcomes[0]!.error).toBeInstanceOf(StunTimeoutError)
      expect(gatherer.candidates.map((c) => c.type)).toEqual(['host'])
    } finally {
      net.close()
    }
  })

  it('asks STUN from the PeerSocket itself (real loopback STUN server)', async () => {
    const server = await StunServer.listen({ host: '127.0.0.1', port: 0 })
    const socket = await PeerSocket.bind({ host: '127.0.0.1' })
    try {
      const gatherer = new CandidateGatherer({ endpoint: peerSocketEndpoint(socket), stunServers: [{ host: '127.0.0.1', port: server.primary.port }] })
      const outcomes = await gatherer.gather()
      expect(outcomes[0]!.mapped).toEqual({ address: '127.0.0.1', port: socket.port })
      // No NAT: the server-reflexive address is the host candidate, so it is not repeated.
      expect(gatherer.candidates.map((c) => `${c.type} ${c.address}:${c.port}`)).toEqual([`host 127.0.0.1:${socket.port}`])
    } finally {
      await socket.close()
      await server.close()
    }
  })

  it('rejects with ERR_ABORTED when the signal aborts, and emits no end', async () => {
    const net = new VirtualNetwork()
    try {
      const gatherer = new CandidateGatherer({ endpoint: net.bind('192.0.2.1'), stunServers: [{ host: '203.0.113.99', port: 3478 }] })
      let ended = false
      gatherer.on('end', () => {
        ended = true
      })
      const controller = new AbortController()
      const p = gatherer.gather({ signal: controller.signal })
      setTimeout(() => controller.abort(), 20)
      await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' })
      expect(ended).toBe(false)
      gatherer.close()
    } finally {
      net.close()
    }
  })
})
