/**
 * STUN Binding client (RFC 8489 §3): asks a server which address it sees us at.
 *
 * @module
 */

import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { AbortError, HostUnresolvedError, InvalidArgumentError, StunMalformedError, throwIfAborted } from '../errors.js'
import type { TransportAddress } from './address.js'
import type { StunAttribute, StunChangeRequestValue } from './attribute.js'
import type { DatagramEndpoint, DatagramSource } from './datagram-endpoint.js'
import { createStunRequest, getAttribute } from './message.js'
import { StunClient } from './stun-client.js'
import { checkRetransmit } from './transaction.js'
import type { StunResponse, StunRetransmitOptions } from './transaction.js'

/** A STUN server's address. */
export interface StunServerAddress {
  /** IP address or DNS name. */
  host: string
  /** UDP port. */
  port: number
}

/** Options of {@link stunBinding}. */
export interface StunBindingOptions extends StunRetransmitOptions {
  /** The server to ask. A DNS name is resolved first (to the endpoint's family if known). */
  server: StunServerAddress
  /**
   * Socket to send from. Either `endpoint` or `client` is required; with an endpoint a
   * temporary {@link StunClient} is made and closed afterwards.
   * @default undefined
   */
  endpoint?: DatagramEndpoint
  /**
   * An existing client (its endpoint is used). Preferred when several requests share a socket.
   * @default undefined
   */
  client?: StunClient
  /**
   * Cancels the request (rejects with `AbortError`).
   * @default undefined
   */
  signal?: AbortSignal
  /**
   * Adds CHANGE-REQUEST (RFC 5780 §7.2) asking the server to answer from another address.
   * @default undefined
   */
  changeRequest?: StunChangeRequestValue
  /**
   * Adds SOFTWARE with this description.
   * @default undefined
   */
  software?: string
  /**
   * Adds FINGERPRINT.
   * @default false
   */
  fingerprint?: boolean
}

/** What a Binding request found out. */
export interface StunBindingResult {
  /** Our address as the server saw it (XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS). */
  mapped: TransportAddress
  /** RESPONSE-ORIGIN: the address the server answered from (RFC 5780 §7.3), if sent. */
  responseOrigin?: TransportAddress
  /** OTHER-ADDRESS: the server's alternate address (RFC 5780 §7.4), if sent. */
  otherAddress?: TransportAddress
  /** Where the response actually came from. */
  from: DatagramSource
  /** Round-trip time in ms (from the first transmission). */
  rtt: number
  /** The full response. */
  response: StunResponse
}

/**
 * Resolves a host name to an IP address, preferring `family`; IP literals are returned as is.
 *
 * @throws HostUnresolvedError (rejects) when the name does not resolve.
 *
 * @example
 * ```ts
 * import { resolveStunHost } from 'peerlink'
 *
 * const ip = await resolveStunHost('stun.example.com', 'IPv4', AbortSignal.timeout(3_000))
 * const same = await resolveStunHost('192.0.2.1')   // IP literals come back unchanged
 * ```
 */
export async function resolveStunHost(host: string, family?: 'IPv4' | 'IPv6', signal?: AbortSignal): Promise<string> {
  if (isIP(host) !== 0) return host
  throwIfAborted(signal)
  const lookedUp = lookup(host, { family: family === 'IPv6' ? 6 : family === 'IPv4' ? 4 : 0 }).catch((err: unknown) => {
    throw new HostUnresolvedError(host, err)
  })
  if (signal === undefined) return (await lookedUp).address
  return new Promise<string>((resolve, reject) => {
    const onAbort = (): void => reject(new AbortError(undefined, { cause: signal.reason }))
    signal.addEventListener('abort', onAbort, { once: true })
    lookedUp.then(
      (r) => {
        signal.removeEventListener('abort', onAbort)
        resolve(r.address)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

/**
 * Sends a STUN Binding request and returns our mapped address.
 *
 * Rejects with `StunTimeoutError`, `StunErrorResponseError`, `AbortError`,
 * `SocketClosedError`, or `StunMalformedError` when the response has no mapped address.
 *
 * @example
 * ```ts
 * import dgram from 'node:dgram'
 * import { createDgramEndpoint, stunBinding } from 'peerlink'
 *
 * const socket = dgram.createSocket('udp4'); socket.bind(0)
 * const { mapped } = await stunBinding({ endpoint: createDgramEndpoint(socket), server: { host: '192.0.2.1', port: 3478 } })
 * ```
 */
export function stunBinding(options: StunBindingOptions): Promise<StunBindingResult> {
  checkBindingOptions(options)
  return runBinding(options)
}

function checkBindingOptions(options: StunBindingOptions): void {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('stunBinding needs options')
  const { server } = options
  if (server === null || typeof server !== 'object' || typeof server.host !== 'string' || server.host === '') {
    throw new InvalidArgumentError('stunBinding needs server: { host, port }')
  }
  if (!Number.isInteger(server.port) || server.port < 1 || server.port > 0xffff) {
    throw new InvalidArgumentError(`Invalid STUN server port ${String(server.port)}`)
  }
  if (options.client === undefined && options.endpoint === undefined) {
    throw new InvalidArgumentError('stunBinding needs an endpoint or a client')
  }
  checkRetransmit(options, 'stunBinding')
}

async function runBinding(options: StunBindingOptions): Promise<StunBindingResult> {
  const { server } = options
  const client = options.client ?? new StunClient(options.endpoint as DatagramEndpoint)
  try {
    const family = client.endpoint.localAddress?.()?.family
    const host = await resolveStunHost(server.host, family, options.signal)
    const attributes: StunAttribute[] = []
    if (options.software !== undefined) attributes.push({ type: 'software', value: options.software })
    if (options.changeRequest !== undefined) attributes.push({ type: 'change-request', value: options.changeRequest })
    const response = await client.request(createStunRequest('binding', attributes), {
      host,
      port: server.port,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.rto === undefined ? {} : { rto: options.rto }),
      ...(options.rc === undefined ? {} : { rc: options.rc }),
      ...(options.rm === undefined ? {} : { rm: options.rm }),
      fingerprint: options.fingerprint === true,
    })
    const mapped = getAttribute(response, 'xor-mapped-address')?.value ?? getAttribute(response, 'mapped-address')?.value
    if (mapped === undefined) throw new StunMalformedError('Binding response has no XOR-MAPPED-ADDRESS or MAPPED-ADDRESS')
    const result: StunBindingResult = { mapped, from: response.from, rtt: response.rtt, response }
    const responseOrigin = getAttribute(response, 'response-origin')?.value
    const otherAddress = getAttribute(response, 'other-address')?.value
    if (responseOrigin !== undefined) result.responseOrigin = responseOrigin
    if (otherAddress !== undefined) result.otherAddress = otherAddress
    return result
  } finally {
    if (options.client === undefined) client.close()
  }
}
