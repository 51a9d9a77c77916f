/**
 * A STUN client bound to a {@link DatagramEndpoint}: decodes incoming STUN responses and
 * routes them to a {@link StunTransactionManager}.
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js'
import { isStunMessage } from './classify.js'
import type { DatagramEndpoint } from './datagram-endpoint.js'
import { decodeStunMessage } from './message.js'
import type { StunMessage } from './message.js'
import { StunTransactionManager } from './transaction.js'
import type { StunRequestOptions, StunResponse, StunRetransmitOptions } from './transaction.js'

/** Options of {@link StunClient}: default retransmission parameters for its requests. */
export interface StunClientOptions extends StunRetransmitOptions {}

/**
 * Sends STUN requests through an endpoint and settles them from the responses the
 * endpoint receives. Datagrams that are not STUN, do not decode, or match no
 * transaction are ignored (other listeners of the endpoint still see them).
 *
 * @example
 * ```ts
 * import dgram from 'node:dgram'
 * import { StunClient, createDgramEndpoint, createStunRequest, getAttribute } from 'peerlink'
 *
 * const socket = dgram.createSocket('udp4')
 * socket.bind(0)
 * const client = new StunClient(createDgramEndpoint(socket), { rto: 250 })
 * const response = await client.request(createStunRequest('binding'), { host: '192.0.2.1', port: 3478 })
 * console.log(getAttribute(response, 'xor-mapped-address')?.value, `${response.rtt} ms`)
 * client.close(); socket.close()
 * ```
 */
export class StunClient {
  /** The transaction manager (for callers that feed responses from elsewhere too). */
  readonly transactions: StunTransactionManager
  /** The endpoint requests go through. */
  readonly endpoint: DatagramEndpoint
  readonly #unsubscribe: () => void

  constructor(endpoint: DatagramEndpoint, options: StunClientOptions = {}) {
    if (endpoint === null || typeof endpoint !== 'object' || typeof endpoint.send !== 'function' || typeof endpoint.onMessage !== 'function') {
      throw new InvalidArgumentError('StunClient needs a DatagramEndpoint')
    }
    this.endpoint = endpoint
    this.transactions = new StunTransactionManager({
      send: (data, port, host) => endpoint.send(data, port, host),
      ...(options.rto === undefined ? {} : { rto: options.rto }),
      ...(options.rc === undefined ? {} : { rc: options.rc }),
      ...(options.rm === undefined ? {} : { rm: options.rm }),
    })
    this.#unsubscribe = endpoint.onMessage((data, from) => {
      if (!isStunMessage(data)) return
      let message
      try {
        message = decodeStunMessage(data)
      } catch {
        return // RFC 8489 §6.3: malformed messages are silently discarded
      }
      this.transactions.handleResponse(message, from)
    })
  }

  /** Sends a request; see {@link StunTransactionManager.request}. */
  request(message: StunMessage, options: StunRequestOptions): Promise<StunResponse> {
    return this.transactions.request(message, options)
  }

  /** Stops listening and rejects pending requests with `SocketClosedError`. Does not close the socket. */
  close(): void {
    this.#unsubscribe()
    this.transactions.close()
  }
}
