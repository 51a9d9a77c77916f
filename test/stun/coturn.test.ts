import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createSocket, type Socket } from 'node:dgram'
import UDX from 'udx-native'
import { NatDiscoveryUnsupportedError } from '../../src/errors.js'
import {
  StunTransactionManager,
  createDgramEndpoint,
  createStunRequest,
  createUdxEndpoint,
  decodeStunMessage,
  discoverNatBehavior,
  getAttribute,
  isStunMessage,
  stunBinding,
} from '../../src/stun/index.js'
import { startCoturn, type Coturn } from '../helpers/coturn.js'

async function udpSocket(): Promise<Socket> {
  const socket = createSocket('udp4')
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()))
  return socket
}

async function closeSocket(socket: Socket): Promise<void> {
  await new Promise<void>((r) => socket.close(() => r()))
}

describe('against coturn on loopback (RFC 5780 enabled: two listening IPs)', () => {
  let coturn: Coturn | undefined
  beforeAll(async () => {
    coturn = await startCoturn()
  })
  afterAll(async () => {
    await coturn?.stop()
  })

  it('Binding: mapped address is our socket, OTHER-ADDRESS and RESPONSE-ORIGIN present', async () => {
    const socket = await udpSocket()
    try {
      const port = (coturn as Coturn).port
      const result = await stunBinding({
        endpoint: createDgramEndpoint(socket),
        server: { host: '127.0.0.1', port },
        fingerprint: true,
      })
      expect(result.mapped).toEqual({ family: 'IPv4', host: '127.0.0.1', port: socket.address().port })
      expect(result.otherAddress).toEqual({ family: 'IPv4', host: '127.0.0.2', port: port + 1 })
      expect(result.responseOrigin).toEqual({ family: 'IPv4', host: '127.0.0.1', port })
      expect(result.from).toEqual({ host: '127.0.0.1', port })
      expect(result.response.unknownRequired).toEqual([])
    } finally {
      await closeSocket(socket)
    }
  })

  it('CHANGE-REQUEST is honoured: the answer comes from the alternate IP and port', async () => {
    const socket = await udpSocket()
    try {
      const port = (coturn as Coturn).port
      const result = await stunBinding({
        endpoint: createDgramEndpoint(socket),
        server: { host: '127.0.0.1', port },
        changeRequest: { changeIp: true, changePort: true },
        rto: 200,
        rc: 3,
        rm: 4,
      })
      expect(result.from).toEqual({ host: '127.0.0.2', port: port + 1 })
      expect(result.mapped.port).toBe(socket.address().port)
    } finally {
      await closeSocket(socket)
    }
  })

  it('NAT discovery on loopback: no NAT, endpoint-independent filtering', async () => {
    const socket = await udpSocket()
    try {
      const port = (coturn as Coturn).port
      const result = await discoverNatBehavior({ endpoint: createDgramEndpoint(socket), server: { host: '127.0.0.1', port } })
      expect(result.mapping).toBe('no-nat')
      expect(result.filtering).toBe('endpoint-independent')
      expect(result.mapped).toEqual({ family: 'IPv4', host: '127.0.0.1', port: socket.address().port })
      expect(result.otherAddress).toEqual({ family: 'IPv4', host: '127.0.0.2', port: port + 1 })
    } finally {
      await closeSocket(socket)
    }
  })

  it('NAT discovery with the no-NAT shortcut disabled runs mapping tests II and III: endpoint-independent', async () => {
    const socket = await udpSocket()
    try {
      const port = (coturn as Coturn).port
      const result = await discoverNatBehavior({
        endpoint: createDgramEndpoint(socket),
        server: { host: '127.0.0.1', port },
        localAddresses: [],
      })
      expect(result.mapping).toBe('endpoint-independent')
      expect(result.filtering).toBe('endpoint-independent')
    } finally {
      await closeSocket(socket)
    }
  })

  it('a transaction manager on a raw dgram socket gets the response', async () => {
    const socket = await udpSocket()
    const tm = new StunTransactionManager({ send: (d, p, h) => socket.send(d, p, h) })
    socket.on('message', (buf, rinfo) => {
      if (isStunMessage(buf)) tm.handleResponse(decodeStunMessage(buf), { host: rinfo.address, port: rinfo.port })
    })
    try {
      const request = createStunRequest('binding', [{ type: 'software', value: 'peerlink test' }])
      const response = await tm.request(request, { host: '127.0.0.1', port: (coturn as Coturn).port, fingerprint: true })
      expect(response.class).toBe('success')
      expect(Buffer.from(response.transactionId).equals(Buffer.from(request.transactionId))).toBe(true)
      expect(getAttribute(response, 'xor-mapped-address')?.value.port).toBe(socket.address().port)
      expect(tm.pending).toBe(0)
    } finally {
      tm.close()
      await closeSocket(socket)
    }
  })

  it('works over a udx-native socket through createUdxEndpoint', async () => {
    const udx = new UDX()
    const socket = udx.createSocket()
    socket.bind(0, '127.0.0.1')
    try {
      const result = await stunBinding({ endpoint: createUdxEndpoint(socket), server: { host: '127.0.0.1', port: (coturn as Coturn).port } })
      expect(result.mapped).toEqual({ family: 'IPv4', host: '127.0.0.1', port: socket.address()?.port })
    } finally {
      await socket.close()
    }
  })
})

describe('against coturn with one listening IP (RFC 5780 unavailable)', () => {
  let coturn: Coturn | undefined
  beforeAll(async () => {
    coturn = await startCoturn({ ips: ['127.0.0.1'] })
  })
  afterAll(async () => {
    await coturn?.stop()
  })

  it('discoverNatBehavior rejects with NatDiscoveryUnsupportedError', async () => {
    const socket = await udpSocket()
    try {
      const port = (coturn as Coturn).port
      const binding = await stunBinding({ endpoint: createDgramEndpoint(socket), server: { host: '127.0.0.1', port } })
      expect(binding.otherAddress).toBeUndefined()
      await expect(
        discoverNatBehavior({ endpoint: createDgramEndpoint(socket), server: { host: '127.0.0.1', port } }),
      ).rejects.toBeInstanceOf(NatDiscoveryUnsupportedError)
    } finally {
      await closeSocket(socket)
    }
  })
})
