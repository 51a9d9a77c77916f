/**
 * Options of the tunnel path of a peer (`PeerOptions.tunnel`).
 * @module
 */
// Referenced from TSDoc only.
import type { PeerOptions } from './peer-options.js'

/**
 * Default of {@link PeerTunnelOptions.fallbackDelay}, ms.
 *
 * @example
 * ```ts
 * import { DEFAULT_TUNNEL_FALLBACK_DELAY, createPeer } from 'peerlink'
 *
 * // Give ICE twice the default time before racing the WebSocket tunnel.
 * const peer = await createPeer({
 *   beacons: ['beacon.example.com:4264'],
 *   tunnels: ['wss://tunnel.example.com:8443'],
 *   tunnel: { fallbackDelay: 2 * DEFAULT_TUNNEL_FALLBACK_DELAY },
 * })
 * ```
 */
export const DEFAULT_TUNNEL_FALLBACK_DELAY = 1_000

/**
 * How a peer uses its tunnel servers ({@link PeerOptions.tunnels}): the last step of
 * the connection ladder, for networks that let nothing but outgoing TCP to ports 80 and
 * 443 through.
 */
export interface PeerTunnelOptions {
  /**
   * A device token for tunnel servers that do not allow our PeerId by itself (the
   * server's `tokens`; servers listing our PeerId or `*` in `allowedPeerIds` need none).
   * Only listening needs it: anyone may connect to a registered peer.
   * @default undefined
   */
  token?: string
  /**
   * Certificates to trust besides the system's CAs, for `wss://` servers without a
   * `#CERT_HASH` pin.
   * @default undefined
   */
  ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array>
  /**
   * Milliseconds `connect()` waits for the UDP attempt (ICE) to select a working pair
   * before it also tries the tunnel. The tunnel starts at once when UDP is known to be
   * blocked (no STUN server answered the peer's last gathering) or when the UDP attempt
   * fails; whichever path is verified first is used, the other is closed.
   * @default 1000
   */
  fallbackDelay?: number
  /**
   * Milliseconds for the TCP connection, TLS, the WebSocket upgrade and the server's
   * join of one tunnel attempt (each server).
   * @default 10000
   */
  connectTimeout?: number
}
