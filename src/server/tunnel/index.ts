/**
 * The WebSocket reverse-tunnel server (`peerlink-server tunnel`).
 *
 * @module
 */
export { TunnelServer } from './tunnel-server.js'
export type { TunnelServerOptions, TunnelServerTlsOptions, TunnelServerLogger } from './tunnel-server-options.js'
export type { TunnelServerStats } from './tunnel-server-stats.js'
export { TUNNEL_STATS_METRICS } from '../stats-metrics.js'
export type { TunnelState, TunnelNameRecord, TunnelDeviceRecord, TunnelServerRecord } from './tunnel-state.js'
export { MemoryTunnelState } from './memory-tunnel-state.js'
export { RedisTunnelState, type RedisTunnelStateOptions } from './redis-tunnel-state.js'
export { PortRange } from './port-range.js'
