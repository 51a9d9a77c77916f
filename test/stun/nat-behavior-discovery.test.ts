import { describe, it, expect } from 'vitest'
import {
  AbortError,
  InvalidArgumentError,
  NatDiscoveryUnsupportedError,
  StunErrorResponseError,
  StunMalformedError,
} from '../../src/errors.js'
import {
  decodeStunMessage,
  discoverNatBehavior,
  encodeStunMessage,
  getAttribute,
  stunBinding,
} from '../../src/stun/index.js'
import type {
  DatagramEndpoint,
  DatagramListener,
  DecodedStunMessage,
  NatFilteringBehavior,
  NatMappingBehavior,
  StunAttribute,
  TransportAddress,
} from '../../src/stun/index.js'

type Behaviour = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent'

interface SimOptions {
  mapping: Behaviour | 'none'
  filtering: Behaviour | 'none'
  /** Server sends OTHER-ADDRESS. @default true */
  rfc5780?: boolean
  /** Server ignores CHANGE-REQUEST and answers from where it was asked. */
  ignoresChangeRequest?: boolean
  /** Server answers requests with this error instead. */
  error?: { code: number; reason: string }
  /** Server leaves out the mapped address. */
  noMapped?: boolean
  /** Server sends MAPPED-ADDRESS instead of XOR-MAPPED-ADDRESS. */
  legacyMapped?: boolean
}

const LOCAL = { host: '10.0.0.2', port: 5000 }
const PUBLIC_IP = '198.51.100.7'
const PRIMARY = { host: '203.0.113.1', port: 3478 }
const ALTERNATE = { host: '203.0.113.2', port: 3479 }

/**
 * A simulated network: our endpoint behind a NAT with the given mapping and filtering
 * behaviour (RFC 4787), talking to an RFC 5780 STUN server with two IPs and two ports.
 */
class SimulatedNetwork implements DatagramEndpoint {
  readonly sentTo: string[] = []
  readonly #listeners = new Set<DatagramListener>()
  readonly #mappings = new Map<string, number>()
  readonly #contacted = new Set<string>() // "ip" and "ip:port" per external port
  #nextPort = 61000

  constructor(readonly options: SimOptions) {}

  send(data: Uint8Array, port: number, host: string): void {
    this.sentTo.push(`${host}:${port}`)
    const { mapping } = this.options
    let external: TransportAddress
    if (mapping === 'none') external = { family: 'IPv4', ...LOCAL }
    else {
      const key = mapping === 'endpoint-independent' ? '' : mapping === 'address-dependent' ? host : `${host}:${port}`
      let p = this.#mappings.get(key)
      if (p === undefined) this.#mappings.set(key, (p = this.#nextPort++))
      external = { family: 'IPv4', host: PUBLIC_IP, port: p }
    }
    this.#contacted.add(`${external.port}/${host}`)
    this.#contacted.add(`${external.port}/${host}:${port}`)
    const request = decodeStunMessage(data)
    setImmediate(() => this.#serve(request, { host, port }, external))
  }

  onMessage(listener: DatagramListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  localAddress(): TransportAddress {
    return { family: 'IPv4', ...LOCAL }
  }

  #serve(request: DecodedStunMessage, to: { host: string; port: number }, client: TransportAddress): void {
    if (![PRIMARY.host, ALTERNATE.host].includes(to.host) || ![PRIMARY.port, ALTERNATE.port].includes(to.port)) return
    const change = getAttribute(request, 'change-request')?.value
    const origin = { ...to }
    if (change !== undefined && this.options.ignoresChangeRequest !== true) {
      if (change.changeIp) origin.host = origin.host === PRIMARY.host ? ALTERNATE.host : PRIMARY.host
      if (change.changePort) origin.port = origin.port === PRIMARY.port ? ALTERNATE.port : PRIMARY.port
    }
    const attributes: StunAttribute[] = []
    if (this.options.error !== undefined) attributes.push({ type: 'error-code', value: this.options.error })
    else {
      if (this.options.noMapped !== true) attributes.push({ type: this.options.legacyMapped === true ? 'mapped-address' : 'xor-mapped-address', value: client })
      attributes.push({ type: 'response-origin', value: { family: 'IPv4', ...origin } })
      if (this.options.rfc5780 !== false) attributes.push({ type: 'other-address', value: { family: 'IPv4', ...ALTERNATE } })
    }
    const response = encodeStunMessage({
      method: 'binding',
      class: this.options.error === undefined ? 'success' : 'error',
      transactionId: request.transactionId,
      attributes,
    })
    // The NAT's inbound filter (RFC 4787 §5).
    const { filtering } = this.options
    if (filtering === 'address-dependent' && !this.#contacted.has(`${client.port}/${origin.host}`)) return
    if (filtering === 'address-and-port-dependent' && !this.#contacted.has(`${client.port}/${origin.host}:${origin.port}`)) return
    for (const listener of this.#listeners) listener(response, origin)
  }
}

const fast = { rto: 5, rc: 2, rm: 2, filteringProbe: { rto: 5, rc: 2, rm: 2 } }

describe('discoverNatBehavior (RFC 5780 §4.3/§4.4) on a simulated NAT', () => {
  const behaviours: Behaviour[] = ['endpoint-independent', 'address-dependent', 'address-and-port-dependent']
  for (const mapping of behaviours) {
    for (const filtering of behaviours) {
      it(`mapping ${mapping}, filtering ${filtering}`, async () => {
        const net = new SimulatedNetwork({ mapping, filtering })
        const result = await discoverNatBehavior({ endpoint: net, server: PRIMARY, ...fast })
        expect(result.mapping satisfies NatMappingBehavior).toBe(mapping)
        expect(result.filtering satisfies NatFilteringBehavior).toBe(filtering)
        expect(result.mapped.host).toBe(PUBLIC_IP)
        expect(result.otherAddress).toEqual({ family: 'IPv4', ...ALTERNATE })
        expect(result.responseOrigin).toEqual({ family: 'IPv4', ...PRIMARY })
      })
    }
  }

  it('reports no-nat when the mapped address is our own', async () => {
    const net = new SimulatedNetwork({ mapping: 'none', filtering: 'none' })
    const result = await discoverNatBehavior({ endpoint: net, server: PRIMARY, ...fast })
    expect(result.mapping).toBe('no-nat')
    expect(result.filtering).toBe('endpoint-independent')
    // No mapping tests II/III were needed: only the primary address was contacted.
    expect(new Set(net.sentTo)).toEqual(new Set([`${PRIMARY.host}:${PRIMARY.port}`]))
  })

  it('runs the filtering probes before contacting the alternate address', async () => {
    const net = new SimulatedNetwork({ mapping: 'endpoint-independent', filtering: 'address-and-port-dependent' })
    await discoverNatBehavior({ endpoint: net, server: PRIMARY, ...fast })
    const firstAlternate = net.sentTo.findIndex((d) => d.startsWith(ALTERNATE.host))
    const lastPrimary = net.sentTo.lastIndexOf(`${PRIMARY.host}:${PRIMARY.port}`)
    expect(firstAlternate).toBeGreaterThan(lastPrimary)
  })

  it('rejects with NatDiscoveryUnsupportedError when the server sends no OTHER-ADDRESS', async () => {
    const net = new SimulatedNetwork({ mapping: 'endpoint-independent', filtering: 'endpoint-independent', rfc5780: false })
    await expect(discoverNatBehavior({ endpoint: net, server: PRIMARY, ...fast })).rejects.toBeInstanceOf(NatDiscoveryUnsupportedError)
  })

  it('filtering is unknown when the server ignores CHANGE-REQUEST', async () => {
    const net = new SimulatedNetwork({ mapping: 'endpoint-independent', filtering: 'endpoint-independent', ignoresChangeRequest: true })
    const result = await discoverNatBehavior({ endpoint: net, server: PRIMARY, ...fast })
    expect(result.filtering).toBe('unknown')
    expect(result.mapping).toBe('endpoint-independent')
  })

  it('aborts with AbortError', async () => {
    const net = new SimulatedNetwork({ mapping: 'endpoint-independent', filtering: 'address-and-port-dependent' })
    const ac = new AbortController()
    const p = discoverNatBehavior({ endpoint: net, server: PRIMARY, signal: ac.signal, rto: 5, filteringProbe: { rto: 1000 } })
    setTimeout(() => ac.abort(), 50)
    await expect(p).rejects.toBeInstanceOf(AbortError)
  })

  it('misuse throws at once', () => {
    expect(() => discoverNatBehavior({ server: PRIMARY })).toThrow(InvalidArgumentError)
    const net = new SimulatedNetwork({ mapping: 'none', filtering: 'none' })
    expect(() => discoverNatBehavior({ endpoint: net, server: { host: PRIMARY.host, port: 70000 } })).toThrow(InvalidArgumentError)
  })
})

describe('stunBinding on a simulated server', () => {
  it('returns the mapped address, OTHER-ADDRESS and RESPONSE-ORIGIN', async () => {
    const net = new SimulatedNetwork({ mapping: 'endpoint-independent', filtering: 'endpoint-independent' })
    const result = await stunBinding({ endpoint: net, server: PRIMARY, rto: 5 })
    expect(result.mapped).toEqual({ family: 'IPv4', host: PUBLIC_IP, port: 61000 })
    expect(result.otherAddress).toEqual({ family: 'IPv4', ...ALTERNATE })
    expect(result.from).toEqual(PRIMARY)
  })

  it('falls back to MAPPED-ADDRESS', async () => {
    const net = new SimulatedNetwork({ mapping: 'endpoint-independent', filtering: 'none', legacyMapped: true })
    expect((await stunBinding({ endpoint: net, server: PRIMARY })).mapped.host).toBe(PUBLIC_IP)
  })

  it('rejects error responses and responses without an address', async () => {
    const err = new SimulatedNetwork({ mapping: 'none', filtering: 'none', error: { code: 400, reason: 'Bad Request' } })
    await expect(stunBinding({ endpoint: err, server: PRIMARY })).rejects.toMatchObject({ constructor: StunErrorResponseError, errorCode: 400 })
    const none = new SimulatedNetwork({ mapping: 'none', filtering: 'none', noMapped: true })
    await expect(stunBinding({ endpoint: none, server: PRIMARY })).rejects.toBeInstanceOf(StunMalformedError)
  })

  it('resolves a host name (to the endpoint family) before sending', async () => {
    const sent: string[] = []
    const endpoint: DatagramEndpoint = {
      send: (_d, port, host) => sent.push(`${host}:${port}`),
      onMessage: () => () => undefined,
      localAddress: () => ({ family: 'IPv4', host: '127.0.0.1', port: 1 }),
    }
    await expect(stunBinding({ endpoint, server: { host: 'localhost', port: 3478 }, rto: 1, rc: 1, rm: 1 })).rejects.toMatchObject({
      code: 'ERR_STUN_TIMEOUT',
    })
    expect(sent).toEqual(['127.0.0.1:3478'])
  })

  it('misuse throws at once', () => {
    const net = new SimulatedNetwork({ mapping: 'none', filtering: 'none' })
    expect(() => stunBinding({ endpoint: net, server: { host: '', port: 1 } })).toThrow(InvalidArgumentError)
    expect(() => stunBinding({ endpoint: net, server: { host: '1.2.3.4', port: 0 } })).toThrow(InvalidArgumentError)
    expect(() => stunBinding({ server: PRIMARY })).toThrow(InvalidArgumentError)
  })
})
