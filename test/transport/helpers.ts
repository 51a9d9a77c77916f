import { createHash, randomBytes } from 'node:crypto'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import { PeerSocket } from '../../src/transport/peer-socket.js'
import {
  openSecureConnection,
  type OpenSecureConnectionOptions,
  type SecureConnection,
  type TransportKeyPair,
} from '../../src/transport/secure-connection.js'

/** A fresh Ed25519 key pair in sodium format. */
export function makeKeyPair(): TransportKeyPair {
  const { publicKey, secretKey } = NoiseSecretStream.keyPair()
  return { publicKey: new Uint8Array(publicKey), secretKey: new Uint8Array(secretKey) }
}

/** Two sockets on 127.0.0.1, closed by `close()`. */
export async function socketPair(): Promise<{ a: PeerSocket; b: PeerSocket; close: () => Promise<void> }> {
  const a = await PeerSocket.bind({ host: '127.0.0.1' })
  const b = await PeerSocket.bind({ host: '127.0.0.1' })
  return { a, b, close: async () => void (await Promise.all([a.close(), b.close()])) }
}

export interface PairOptions {
  keyA?: TransportKeyPair
  keyB?: TransportKeyPair
  /** What A expects B's key to be. @default keyB.publicKey */
  aExpects?: Uint8Array
  /** What B expects A's key to be. @default keyA.publicKey */
  bExpects?: Uint8Array
  handshakeTimeout?: number
  extra?: Partial<OpenSecureConnectionOptions>
}

/** Open a connection between sockets a (initiator) and b (responder); settles both sides. */
export function openPair(
  a: PeerSocket,
  b: PeerSocket,
  options: PairOptions = {},
): Promise<[PromiseSettledResult<SecureConnection>, PromiseSettledResult<SecureConnection>]> {
  const keyA = options.keyA ?? makeKeyPair()
  const keyB = options.keyB ?? makeKeyPair()
  const idA = a.allocateStreamId()
  const idB = b.allocateStreamId()
  const common = { handshakeTimeout: options.handshakeTimeout ?? 5_000, ...options.extra }
  const pa = openSecureConnection({
    socket: a,
    remote: { host: '127.0.0.1', port: b.port },
    localStreamId: idA,
    remoteStreamId: idB,
    isInitiator: true,
    keyPair: keyA,
    expectedRemotePublicKey: options.aExpects ?? keyB.publicKey,
    ...common,
  })
  const pb = openSecureConnection({
    socket: b,
    remote: { host: '127.0.0.1', port: a.port },
    localStreamId: idB,
    remoteStreamId: idA,
    isInitiator: false,
    keyPair: keyB,
    expectedRemotePublicKey: options.bExpects ?? keyA.publicKey,
    ...common,
  })
  return Promise.allSettled([pa, pb]) as Promise<
    [PromiseSettledResult<SecureConnection>, PromiseSettledResult<SecureConnection>]
  >
}

/** Open a verified pair or throw. */
export async function connectedPair(
  a: PeerSocket,
  b: PeerSocket,
  options: PairOptions = {},
): Promise<[SecureConnection, SecureConnection]> {
  const [ra, rb] = await openPair(a, b, options)
  if (ra.status === 'rejected') throw ra.reason
  if (rb.status === 'rejected') throw rb.reason
  return [ra.value, rb.value]
}

/**
 * Write `total` random bytes to `conn` in chunks of varying size, then end it.
 * Resolves with the SHA-256 of what was written.
 */
export async function sendRandom(conn: SecureConnection, total: number): Promise<string> {
  const hash = createHash('sha256')
  let sent = 0
  const sizes = [1, 100, 1500, 16_384, 65_536, 200_000]
  let i = 0
  while (sent < total) {
    const size = Math.min(sizes[i++ % sizes.length]!, total - sent)
    const chunk = randomBytes(size)
    hash.update(chunk)
    sent += size
    if (!conn.write(chunk)) await new Promise<void>((resolve) => conn.once('drain', resolve))
  }
  conn.end()
  return hash.digest('hex')
}

/** Read `conn` to its end; resolves with the byte count and SHA-256. */
export function receiveAll(conn: SecureConnection): Promise<{ bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    let bytes = 0
    conn.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      hash.update(chunk)
    })
    conn.once('end', () => resolve({ bytes, sha256: hash.digest('hex') }))
    conn.once('error', reject)
  })
}
