/**
 * TURN over TLS (RFC 8656 §3.1, port 5349 by default, 443 where only HTTPS gets out):
 * the TCP stream logic of `tcp-listener.ts` on top of `node:tls`.
 *
 * @module
 */

import tls from 'node:tls'
import { listenStream, StreamListener, type StreamContext } from './tcp-listener.js'
import type { TurnServerTlsOptions } from './turn-server-options.js'

/** TLS handshakes that take longer than this are abandoned (slow-loris protection). */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000

function noop(): void {}

/** Creates a TLS listener on `host:port` with the given certificate and key. */
export async function listenTls(host: string, port: number, credentials: TurnServerTlsOptions, context: StreamContext): Promise<StreamListener> {
  const server = tls.createServer({
    cert: typeof credentials.cert === 'string' ? credentials.cert : Buffer.from(credentials.cert),
    key: typeof credentials.key === 'string' ? credentials.key : Buffer.from(credentials.key),
    handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
    minVersion: 'TLSv1.2',
  })
  // Failed handshakes (scanners, wrong protocol) are the client's problem, not the server's.
  server.on('tlsClientError', noop)
  await listenStream(server, host, port, 'TLS')
  return new StreamListener(server, 'tls', 'secureConnection', context)
}
