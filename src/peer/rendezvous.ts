/**
 * `peer.rendezvous(identifier)`: two peers that know the same identifier (a room name, a
 * pairing code) meet through the Beacons' symmetric mode and end with a connection
 * verified to be the peer they were introduced to.
 *
 * The identifier never reaches the Beacon: peers announce
 * SHA-256(`peerlink/rendezvous/v1` ‖ 0x00 ‖ identifier), so a Beacon can match peers but
 * not read their room names. Both sides are introduced to each other at once; the one
 * whose PeerId sorts first connects by PeerId, the other accepts that connection (even
 * without `listen()`), so exactly one connection attempt runs. The identifier is a way to
 * meet, not a proof of anything: anyone who knows it can answer, and the returned
 * connection's `remotePeerId` says who did.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import type { BeaconSet } from '../beacon/beacon-set.js'
import type { Introduction } from '../beacon/beacon-client-options.js'
import { AbortError, ConnectFailedError, InvalidArgumentError, type PeerlinkError } from '../errors.js'
import type { PeerConnection } from './peer-connection.js'

/**
 * The domain-separation tag of rendezvous topics.
 *
 * @example
 * ```ts
 * import { createHash } from 'node:crypto'
 * import { RENDEZVOUS_TAG, rendezvousTopic } from 'peerlink'
 *
 * const topic = createHash('sha256').update(RENDEZVOUS_TAG).update(Buffer.of(0)).update('blue-falcon-42').digest()
 * console.log(topic.equals(rendezvousTopic('blue-falcon-42')))   // true
 * ```
 */
export const RENDEZVOUS_TAG = 'peerlink/rendezvous/v1'

/**
 * Longest identifier accepted, in bytes.
 *
 * @example
 * ```ts
 * import { MAX_RENDEZVOUS_IDENTIFIER_BYTES } from 'peerlink'
 *
 * if (Buffer.byteLength(code, 'utf8') > MAX_RENDEZVOUS_IDENTIFIER_BYTES) throw new Error('pairing code too long')
 * const conn = await peer.rendezvous(code)
 * ```
 */
export const MAX_RENDEZVOUS_IDENTIFIER_BYTES = 1024

/**
 * The topic peers announce for `identifier` (32 bytes). @throws InvalidArgumentError for an empty or oversized identifier.
 *
 * @example
 * ```ts
 * import { rendezvousTopic } from 'peerlink'
 *
 * const topic = rendezvousTopic('blue-falcon-42')   // 32 bytes: all a Beacon ever sees of the code
 * rendezvousTopic('')                               // throws InvalidArgumentError
 * ```
 */
export function rendezvousTopic(identifier: string | Uint8Array): Uint8Array {
  const bytes = typeof identifier === 'string' ? Buffer.from(identifier, 'utf8') : identifier
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError('identifier must be a string or a Uint8Array')
  if (bytes.length === 0 || bytes.length > MAX_RENDEZVOUS_IDENTIFIER_BYTES) {
    throw new InvalidArgumentError(`identifier must be 1 to ${MAX_RENDEZVOUS_IDENTIFIER_BYTES} bytes`)
  }
  return createHash('sha256').update(RENDEZVOUS_TAG).update(Buffer.from([0])).update(bytes).digest()
}

/** Whether this side starts the connection: the PeerId that sorts first does. */
export function initiatesRendezvous(self: string, other: string): boolean {
  return self < other
}

/** What {@link runRendezvous} needs from the peer. */
export interface RendezvousParts {
  /** The peer's Beacons. */
  beacons: BeaconSet
  /** The peer's own PeerId. */
  self: string
  /** Connects to `peerId` (this side initiates). */
  connect(peerId: string, signal: AbortSignal): Promise<PeerConnection>
  /** Resolves with the next verified incoming connection from `peerId` (the other side initiates). */
  accept(peerId: string, signal: AbortSignal): Promise<PeerConnection>
  /** Milliseconds the connection may take once the peers are introduced. */
  connectTimeout: number
  /** Cancels everything. */
  signal: AbortSignal | undefined
}

/**
 * Announces the topic on every Beacon, waits for the first introduction to another
 * peer, connects (or accepts) and withdraws the announcement, whatever the outcome.
 */
export async function runRendezvous(topic: Uint8Array, parts: RendezvousParts): Promise<PeerConnection> {
  const { beacons, signal } = parts
  const controller = new AbortController()
  const onAbort = (): void => controller.abort(signal?.reason)
  signal?.addEventListener('abort', onAbort, { once: true })
  let onIntroduction: ((intro: Introduction) => void) | undefined
  try {
    const introduced = new Promise<Introduction>((resolve, reject) => {
      onIntroduction = (intro) => {
        if (intro.peerId !== parts.self && Buffer.from(intro.topic).equals(topic)) resolve(intro)
      }
      beacons.on('introduction', onIntroduction)
      controller.signal.addEventListener('abort', () => reject(new AbortError(undefined, { cause: controller.signal.reason })), { once: true })
    })
    introduced.catch(() => {})
    // Listen for introductions before announcing: the Beacon introduces at once when the
    // other peer is already there.
    await beacons.announce(topic, { signal: controller.signal })
    const intro = await introduced
    const deadline = AbortSignal.any([controller.signal, AbortSignal.timeout(parts.connectTimeout)])
    try {
      return initiatesRendezvous(parts.self, intro.peerId) ? await parts.connect(intro.peerId, deadline) : await parts.accept(intro.peerId, deadline)
    } catch (err) {
      if (controller.signal.aborted) throw new AbortError(undefined, { cause: controller.signal.reason })
      if (deadline.aborted) throw new ConnectFailedError(`No connection with ${intro.peerId} within ${parts.connectTimeout} ms of the introduction`, { cause: err })
      throw err as PeerlinkError
    }
  } finally {
    signal?.removeEventListener('abort', onAbort)
    if (onIntroduction !== undefined) beacons.off('introduction', onIntroduction)
    controller.abort()
    await beacons.withdraw(topic).catch(() => {})
  }
}
