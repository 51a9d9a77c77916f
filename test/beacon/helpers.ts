// Shared fixtures of the Beacon tests: a certificate, identities, a Beacon on loopback,
// and small helpers to wait for events.
import { once, type EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import { createIdentity, type Identity } from '../../src/identity/index.js'
import { BeaconServer, type BeaconServerOptions } from '../../src/server/beacon/index.js'
import { createSelfSignedCertificate } from '../../src/server/tls.js'

/** One certificate for every Beacon of a test file (generating one takes a few ms). */
export const certificate = createSelfSignedCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] })

/** A Beacon on 127.0.0.1, port 0, with the test certificate. */
export function startBeacon(options: Partial<BeaconServerOptions> = {}): Promise<BeaconServer> {
  return BeaconServer.listen({ host: '127.0.0.1', port: 0, cert: certificate.cert, key: certificate.key, ...options })
}

/** The pinned spec of a Beacon: `127.0.0.1:PORT#HASH`. */
export function specOf(server: BeaconServer, host = '127.0.0.1'): string {
  return `${host.includes(':') ? `[${host}]` : host}:${server.port}#${server.certificateHash}`
}

/** A fresh identity. */
export function identity(): Identity {
  return createIdentity()
}

/** 16 random bytes (a session or message id). */
export function id16(): Uint8Array {
  return new Uint8Array(randomBytes(16))
}

/** Resolves with the first arguments of `event` on `emitter`, rejecting after `ms`. */
export async function next<T = unknown>(emitter: EventEmitter, event: string, ms = 5_000): Promise<T> {
  const [value] = (await once(emitter, event, { signal: AbortSignal.timeout(ms) })) as [T]
  return value
}

/** Polls `check` every 20 ms until it returns true, failing after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, ms = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
