/**
 * Counters of a running tunnel server, for logs and Prometheus export
 * (`TUNNEL_STATS_METRICS` in `stats-metrics.ts` maps each field to a metric).
 *
 * @module
 */

/**
 * Counters since the server started. `devices`, `retainedDevices`, `controlSockets`,
 * `pendingConnections` and `activeConnections` are current values (gauges); everything
 * else only grows.
 */
export interface TunnelServerStats {
  /** Devices online now (an authenticated control socket). */
  devices: number
  /** Devices offline now whose name and ports are retained. */
  retainedDevices: number
  /** Control WebSockets open now (authenticated or not). */
  controlSockets: number
  /** Devices admitted since start (each successful `hello`). */
  admissions: number
  /** Connections announced to a device and waiting for its transfer socket. */
  pendingConnections: number
  /** Tunnelled connections (TCP or HTTP) joined to a transfer socket now. */
  activeConnections: number
  /** Tunnelled connections joined since start. */
  connections: number
  /** Connections no device claimed in time (closed, or 504 for HTTP). */
  unclaimedConnections: number
  /** Connections the device refused (its local service was not there). */
  rejectedConnections: number
  /** Connections to the public port of a device that is offline (closed at once). */
  offlineConnections: number
  /** HTTP requests received on the HTTP port. */
  httpRequests: number
  /** WebSocket upgrades passed through the HTTP port. */
  httpUpgrades: number
  /** HTTP requests answered with an error page (400, 404, 502, 503, 504). */
  httpErrors: number
  /** Bytes carried from the public side to devices. */
  bytesToDevices: number
  /** Bytes carried from devices to the public side. */
  bytesFromDevices: number
  /** Control sockets refused: bad or missing credentials. */
  refusedAuth: number
  /** Requests refused by a limit (devices, ports, connections per IP or per device). */
  refusedLimit: number
  /** Control messages refused as malformed, too large or out of order. */
  refusedProtocol: number
  /** Control messages refused by the per-socket rate limit. */
  refusedRateLimited: number
  /** Transfer sockets refused (unknown or reused connection id, bad proof). */
  refusedTransfers: number
  /** Control upgrades answered with a redirect to another server of the fleet. */
  redirects: number
}

/** A zeroed {@link TunnelServerStats}. */
export function createTunnelServerStats(): TunnelServerStats {
  return {
    devices: 0,
    retainedDevices: 0,
    controlSockets: 0,
    admissions: 0,
    pendingConnections: 0,
    activeConnections: 0,
    connections: 0,
    unclaimedConnections: 0,
    rejectedConnections: 0,
    offlineConnections: 0,
    httpRequests: 0,
    httpUpgrades: 0,
    httpErrors: 0,
    bytesToDevices: 0,
    bytesFromDevices: 0,
    refusedAuth: 0,
    refusedLimit: 0,
    refusedProtocol: 0,
    refusedRateLimited: 0,
    refusedTransfers: 0,
    redirects: 0,
  }
}
