/**
 * How each server's `stats` counters are exposed as Prometheus metrics (with
 * {@link ServerMetrics.addStats}): every field of the stats interfaces is listed, so a
 * field added to a server without a metric fails to compile here.
 *
 * @module
 */
import type { BeaconServerStats } from './beacon/beacon-router.js'
import type { ServerMetrics, StatsField } from './metrics.js'
import type { StunServerStats } from './stun/stun-server.js'
import type { TurnServerStats } from './turn/turn-server-stats.js'
import type { TunnelServerStats } from './tunnel/tunnel-server-stats.js'

/**
 * `peerlink_stun_…` metrics of a `StunServer`'s stats.
 *
 * @example
 * ```ts
 * import { STUN_STATS_METRICS, ServerMetrics, StunServer } from 'peerlink/server'
 *
 * const stun = await StunServer.listen()
 * new ServerMetrics().addStats('stun', () => stun.stats, STUN_STATS_METRICS)   // peerlink_stun_…_total
 * ```
 */
export const STUN_STATS_METRICS: { readonly [K in keyof StunServerStats]-?: StatsField } = {
  bindingResponses: { type: 'counter', help: 'STUN Binding requests answered with success' },
  errorResponses: { type: 'counter', help: 'STUN requests answered with an error (400, 420)' },
  malformed: { type: 'counter', help: 'Datagrams that were not well-formed STUN (dropped)' },
  rateLimited: { type: 'counter', help: 'Requests dropped by the per-IP rate limit' },
}

/**
 * `peerlink_turn_…` metrics of a TURN server's stats.
 *
 * @example
 * ```ts
 * import { TURN_STATS_METRICS, ServerMetrics, TurnServer } from 'peerlink/server'
 *
 * const turn = await TurnServer.listen({ staticAuthSecrets: [secret] })
 * new ServerMetrics().addStats('turn', () => turn.stats, TURN_STATS_METRICS)   // peerlink_turn_allocations, …
 * ```
 */
export const TURN_STATS_METRICS: { readonly [K in keyof TurnServerStats]-?: StatsField } = {
  allocations: { type: 'gauge', help: 'TURN allocations in force' },
  allocationsCreated: { type: 'counter', help: 'TURN allocations created' },
  connections: { type: 'gauge', help: 'TCP and TLS client connections open' },
  packetsToPeers: { type: 'counter', help: 'Packets relayed from clients to peers' },
  bytesToPeers: { type: 'counter', help: 'Application bytes relayed from clients to peers' },
  packetsFromPeers: { type: 'counter', help: 'Packets relayed from peers to clients' },
  bytesFromPeers: { type: 'counter', help: 'Application bytes relayed from peers to clients' },
  droppedPackets: { type: 'counter', help: 'Data packets dropped (no permission or channel, over max-bps, slow reader)' },
  bindingResponses: { type: 'counter', help: 'STUN Binding requests answered with success' },
  errorResponses: { type: 'counter', help: 'Error responses sent' },
  unauthorized: { type: 'counter', help: '401 responses sent (challenges and failures)' },
  authFailures: { type: 'counter', help: 'Requests with wrong credentials' },
  staleNonces: { type: 'counter', help: '438 Stale Nonce responses sent' },
  forbidden: { type: 'counter', help: '403 responses (peer address refused by policy)' },
  quotaRejections: { type: 'counter', help: '486 Allocation Quota Reached responses' },
  capacityRejections: { type: 'counter', help: '508 Insufficient Capacity responses' },
  rateLimited: { type: 'counter', help: 'Requests dropped by a per-IP rate limit' },
  malformed: { type: 'counter', help: 'Datagrams or frames that did not decode' },
}

/**
 * `peerlink_tunnel_…` metrics of a tunnel server's stats (`peerlink-server tunnel` registers them with `ServerMetrics.addStats('tunnel', …)`).
 *
 * @example
 * ```ts
 * import { TUNNEL_STATS_METRICS, ServerMetrics, TunnelServer } from 'peerlink/server'
 *
 * const tunnel = await TunnelServer.listen({ tls: { cert, key }, tokens: ['a-long-device-token'] })
 * new ServerMetrics().addStats('tunnel', tunnel.stats, TUNNEL_STATS_METRICS)   // peerlink_tunnel_devices, …
 * ```
 */
export const TUNNEL_STATS_METRICS: { readonly [K in keyof TunnelServerStats]-?: StatsField } = {
  devices: { type: 'gauge', help: 'Tunnel devices online' },
  retainedDevices: { type: 'gauge', help: 'Offline tunnel devices whose name and ports are retained' },
  controlSockets: { type: 'gauge', help: 'Tunnel control WebSockets open' },
  admissions: { type: 'counter', help: 'Tunnel devices admitted (successful hello)' },
  pendingConnections: { type: 'gauge', help: 'Tunnel connections waiting for the device' },
  activeConnections: { type: 'gauge', help: 'Tunnelled connections open' },
  connections: { type: 'counter', help: 'Tunnelled connections joined' },
  unclaimedConnections: { type: 'counter', help: 'Tunnel connections no device claimed in time' },
  rejectedConnections: { type: 'counter', help: 'Tunnel connections the device refused' },
  offlineConnections: { type: 'counter', help: 'Connections to public ports of offline devices' },
  httpRequests: { type: 'counter', help: 'HTTP requests on the tunnel HTTP port' },
  httpUpgrades: { type: 'counter', help: 'WebSocket upgrades passed through the tunnel HTTP port' },
  httpErrors: { type: 'counter', help: 'HTTP requests answered with an error page' },
  bytesToDevices: { type: 'counter', help: 'Bytes tunnelled from the public side to devices' },
  bytesFromDevices: { type: 'counter', help: 'Bytes tunnelled from devices to the public side' },
  refusedAuth: { type: 'counter', help: 'Tunnel control sockets refused for bad credentials' },
  refusedLimit: { type: 'counter', help: 'Tunnel requests refused by a limit' },
  refusedProtocol: { type: 'counter', help: 'Tunnel control messages refused as malformed' },
  refusedRateLimited: { type: 'counter', help: 'Tunnel control messages refused by the rate limit' },
  refusedTransfers: { type: 'counter', help: 'Tunnel transfer sockets refused (unknown id, bad proof)' },
  redirects: { type: 'counter', help: 'Tunnel control upgrades redirected to another server' },
}

/**
 * `peerlink_beacon_…` metrics of a `BeaconServer`'s stats (`refused` is {@link addBeaconStatsMetrics}'s labelled counter).
 *
 * @example
 * ```ts
 * import { BEACON_STATS_METRICS } from 'peerlink/server'
 *
 * // Which Beacon counters become metrics, and of which kind.
 * for (const [field, { type, help }] of Object.entries(BEACON_STATS_METRICS)) console.log(field, type, help)
 * ```
 */
export const BEACON_STATS_METRICS: { readonly [K in Exclude<keyof BeaconServerStats, 'refused'>]-?: StatsField } = {
  connections: { type: 'gauge', help: 'Beacon WebSocket connections open' },
  authenticated: { type: 'gauge', help: 'Beacon connections open that proved their key' },
  accepted: { type: 'counter', help: 'Beacon connections accepted since start' },
  registrations: { type: 'gauge', help: 'PeerId registrations held by this instance' },
  announcements: { type: 'gauge', help: 'Rendezvous identifiers announced on this instance' },
  introductions: { type: 'counter', help: 'Introductions made (one per peer told about another)' },
  signals: { type: 'counter', help: 'Signals (offer, answer, candidates) accepted for delivery' },
}

/**
 * Registers a Beacon's metrics: {@link BEACON_STATS_METRICS}, plus
 * `peerlink_beacon_refused_total{reason}` (the error replies it sent, by reason).
 *
 * @returns a function that removes them again.
 *
 * @example
 * ```ts
 * import { BeaconServer, ServerMetrics, addBeaconStatsMetrics } from 'peerlink/server'
 *
 * const beacon = await BeaconServer.listen({ cert, key })
 * const metrics = new ServerMetrics()
 * const remove = addBeaconStatsMetrics(metrics, () => beacon.stats)   // + peerlink_beacon_refused_total{reason}
 * process.once('SIGTERM', () => { remove(); void beacon.close() })
 * ```
 */
export function addBeaconStatsMetrics(metrics: ServerMetrics, stats: () => Readonly<BeaconServerStats>): () => void {
  const removeStats = metrics.addStats('beacon', stats, BEACON_STATS_METRICS)
  try {
    const removeRefused = metrics.add({
      name: 'beacon_refused_total',
      help: 'Beacon requests refused with an error reply, by reason',
      type: 'counter',
      labelNames: ['reason'],
      collect: () => Object.entries(stats().refused).map(([reason, value]) => ({ labels: { reason }, value })),
    })
    return () => {
      removeStats()
      removeRefused()
    }
  } catch (err) {
    removeStats()
    throw err
  }
}
