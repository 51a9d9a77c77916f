import { describe, it, expect, vi, beforeEach, afterEach } from 'vitest'
import { createSocket } from 'node:dgram'
import {
  AbortError,
  InvalidArgumentError,
  SocketClosedError,
  StunErrorResponseError,
  StunMalformedError,
  StunTimeoutError,
} from '../../src/errors.js'
import {
  StunTransactionManager,
  createStunRequest,
  decodeStunMessage,
  encodeStunMessage,
  isStunMessage,
  shortTermKey,
} from '../../src/stun/index.js'
import type { DecodedStunMessage, EncodeStunOptions, StunAttribute, StunMessage } from '../../src/stun/index.js'

const server = { host: '192.0.2.10', port: 3478 }
const from = { host: server.host, port: server.port }

function responseTo(
  request: StunMessage,
  cls: 'success' | 'error',
  attributes: StunAttribute[] = [],
  options: EncodeStunOptions = {},
): DecodedStunMessage {
  return decodeStunMessage(
    encodeStunMessage({ method: request.method, class: cls, transactionId: request.transactionId, attributes }, options),
  )
}

const mapped: StunAttribute = { type: 'xor-mapped-address', value: { family: 'IPv4', host: '198.51.100.1', port: 40000 } }

describe('StunTransactionManager with fake timers', () => {
  let sends: number[]
  let start: number
  let tm: StunTransactionManager
  beforeEach(() => {
    vi.useFakeTimers()
    start = Date.now()
    sends = []
    tm = new StunTransactionManager({ send: () => sends.push(Date.now() - start) })
  })
  afterEach(() => {
    tm.close()
    vi.useRealTimers()
  })

  it('retransmits at 0, 500, 1500, … 31500 ms (Rc = 7) and times out at 39500 ms (RFC 8489 §6.2.1)', async () => {
    const p = tm.request(createStunRequest('binding'), server)
    const settled = vi.fn()
    p.then(settled, settled)
    await vi.advanceTimersByTimeAsync(39_499)
    expect(sends).toEqual([0, 500, 1500, 3500, 7500, 15500, 31500])
    expect(settled).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(1)
    await expect(p).rejects.toBeInstanceOf(StunTimeoutError)
    expect(tm.pending).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('honours per-request rto, rc and rm', async () => {
    const p = tm.request(createStunRequest('binding'), { ...server, rto: 100, rc: 3, rm: 2 })
    const assertion = expect(p).rejects.toBeInstanceOf(StunTimeoutError)
    await vi.advanceTimersByTimeAsync(499)
    expect(sends).toEqual([0, 100, 300])
    expect(tm.pending).toBe(1)
    await vi.advanceTimersByTimeAsync(1)
    await assertion
  })

  it('resolves on the matching success response and stops retransmitting', async () => {
    const request = createStunRequest('binding')
    const p = tm.request(request, server)
    await vi.advanceTimersByTimeAsync(600)
    const other = createStunRequest('binding')
    expect(tm.handleResponse(responseTo(other, 'success', [mapped]), from)).toBe(false) // unknown ID
    expect(tm.handleResponse(responseTo({ ...request, method: 'allocate' }, 'success'), from)).toBe(false) // wrong method
    expect(tm.handleResponse(decodeStunMessage(encodeStunMessage(request)), from)).toBe(false) // a request, not a response
    expect(tm.handleResponse(responseTo(request, 'success', [mapped]), from)).toBe(true)
    const response = await p
    expect(response.attributes).toEqual([mapped])
    expect(response.from).toEqual(from)
    expect(response.transmissions).toBe(2)
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(sends).toEqual([0, 500])
    expect(tm.handleResponse(responseTo(request, 'success', [mapped]), from)).toBe(false) // already settled
  })

  it('rejects error responses with StunErrorResponseError, or resolves them when asked', async () => {
    const r1 = createStunRequest('binding')
    const p1 = tm.request(r1, server)
    tm.handleResponse(responseTo(r1, 'error', [{ type: 'error-code', value: { code: 438, reason: 'Stale Nonce' } }]), from)
    await expect(p1).rejects.toMatchObject({ constructor: StunErrorResponseError, errorCode: 438, reason: 'Stale Nonce' })

    const r2 = createStunRequest('allocate')
    const p2 = tm.request(r2, { ...server, acceptErrorResponse: true })
    tm.handleResponse(responseTo(r2, 'error', [{ type: 'error-code', value: { code: 401, reason: 'Unauthorized' } }]), from)
    expect((await p2).class).toBe('error')
  })

  it('rejects a success response with unknown comprehension-required attributes (RFC 8489 §6.3.3)', async () => {
    const r = createStunRequest('binding')
    const p = tm.request(r, server)
    tm.handleResponse(responseTo(r, 'success', [mapped, { type: 'unknown', code: 0x0042, value: new Uint8Array(4) }]), from)
    await expect(p).rejects.toBeInstanceOf(StunMalformedError)
  })

  it('with an integrity key: signs the request, discards responses that do not verify, keeps retransmitting', async () => {
    const key = shortTermKey('password')
    const sent: Uint8Array[] = []
    const signed = new StunTransactionManager({ send: (d) => sent.push(d) })
    try {
      const r = createStunRequest('binding', [{ type: 'username', value: 'a:b' }])
      const p = signed.request(r, { ...server, integrityKey: key, fingerprint: true })
      const first = decodeStunMessage(sent[0] as Uint8Array)
      expect(first.integrityOffset).toBeDefined()
      expect(first.fingerprintOffset).toBeDefined()
      expect(signed.handleResponse(responseTo(r, 'success', [mapped]), from)).toBe(false) // unsigned
      expect(signed.handleResponse(responseTo(r, 'success', [mapped], { integrity: shortTermKey('other') }), from)).toBe(false)
      await vi.advanceTimersByTimeAsync(500)
      expect(sent).toHaveLength(2)
      expect(signed.handleResponse(responseTo(r, 'success', [mapped], { integrity: key }), from)).toBe(true)
      expect((await p).attributes[0]).toEqual(mapped)

      // 401 cannot be signed by a server that could not authenticate us: accepted unsigned.
      const r2 = createStunRequest('binding')
      const p2 = signed.request(r2, { ...server, integrityKey: key })
      expect(signed.handleResponse(responseTo(r2, 'error', [{ type: 'error-code', value: { code: 401, reason: 'Unauthorized' } }]), from)).toBe(true)
      await expect(p2).rejects.toMatchObject({ errorCode: 401 })
      // …but an unsigned 500 is discarded.
      const r3 = createStunRequest('binding')
      const p3 = signed.request(r3, { ...server, integrityKey: key, rc: 1, rm: 1 })
      expect(signed.handleResponse(responseTo(r3, 'error', [{ type: 'error-code', value: { code: 500, reason: 'x' } }]), from)).toBe(false)
      const a3 = expect(p3).rejects.toBeInstanceOf(StunTimeoutError)
      await vi.advanceTimersByTimeAsync(500)
      await a3
    } finally {
      signed.close()
    }
  })

  it('AbortSignal rejects with AbortError and clears timers; an aborted signal sends nothing', async () => {
    const ac = new AbortController()
    const p = tm.request(createStunRequest('binding'), { ...server, signal: ac.signal })
    await vi.advanceTimersByTimeAsync(700)
    ac.abort()
    await expect(p).rejects.toBeInstanceOf(AbortError)
    expect(tm.pending).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(sends).toEqual([0, 500])

    await expect(tm.request(createStunRequest('binding'), { ...server, signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError)
    expect(sends).toHaveLength(2)
  })

  it('close() rejects every pending transaction with SocketClosedError and clears every timer', async () => {
    const ps = [tm.request(createStunRequest('binding'), server), tm.request(createStunRequest('allocate'), server)]
    expect(vi.getTimerCount()).toBe(2)
    tm.close()
    for (const p of ps) await expect(p).rejects.toBeInstanceOf(SocketClosedError)
    expect(vi.getTimerCount()).toBe(0)
    await expect(tm.request(createStunRequest('binding'), server)).rejects.toBeInstanceOf(SocketClosedError)
  })

  it('a throwing send rejects with SocketClosedError carrying the cause', async () => {
    const cause = new Error('Not running')
    const broken = new StunTransactionManager({
      send: () => {
        throw cause
      },
    })
    await expect(broken.request(createStunRequest('binding'), server)).rejects.toMatchObject({ constructor: SocketClosedError, cause })
    expect(vi.getTimerCount()).toBe(0)
  })

  it('misuse throws at once', () => {
    const r = createStunRequest('binding')
    expect(() => tm.request({ ...r, class: 'indication' }, server)).toThrow(InvalidArgumentError)
    expect(() => tm.request(r, { host: server.host, port: 0 })).toThrow(InvalidArgumentError)
    expect(() => tm.request(r, { ...server, rto: 0 })).toThrow(InvalidArgumentError)
    expect(() => tm.request(r, { ...server, rc: 0 })).toThrow(InvalidArgumentError)
    void tm.request(r, server).catch(() => undefined)
    expect(() => tm.request(r, server)).toThrow(InvalidArgumentError) // same transaction ID
    expect(() => new StunTransactionManager({} as never)).toThrow(InvalidArgumentError)
  })
})

describe('StunTransactionManager over real sockets', () => {
  it('retransmits until a lossy loopback server answers (third request)', async () => {
    const srv = createSocket('udp4')
    const client = createSocket('udp4')
    await new Promise<void>((r) => srv.bind(0, '127.0.0.1', () => r()))
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()))
    let received = 0
    srv.on('message', (buf, rinfo) => {
      received++
      if (received < 3) return // drop the first two
      const req = decodeStunMessage(buf)
      const res = encodeStunMessage({
        method: 'binding',
        class: 'success',
        transactionId: req.transactionId,
        attributes: [{ type: 'xor-mapped-address', value: { family: 'IPv4', host: rinfo.address, port: rinfo.port } }],
      })
      srv.send(res, rinfo.port, rinfo.address)
    })
    const tm = new StunTransactionManager({ send: (d, p, h) => client.send(d, p, h), rto: 50 })
    client.on('message', (buf, rinfo) => {
      if (isStunMessage(buf)) tm.handleResponse(decodeStunMessage(buf), { host: rinfo.address, port: rinfo.port })
    })
    try {
      const res = await tm.request(createStunRequest('binding'), { host: '127.0.0.1', port: srv.address().port })
      expect(res.transmissions).toBe(3)
      expect(received).toBe(3)
      expect(res.attributes[0]).toEqual({
        type: 'xor-mapped-address',
        value: { family: 'IPv4', host: '127.0.0.1', port: client.address().port },
      })
      expect(res.rtt).toBeGreaterThanOrEqual(140) // sent at 0, 50, 150 ms
    } finally {
      tm.close()
      await new Promise<void>((r) => srv.close(() => r()))
      await new Promise<void>((r) => client.close(() => r()))
    }
  })
})
