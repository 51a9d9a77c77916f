/**
 * peerlink's reference servers, to run programmatically (the `peerlink-server` command
 * runs the same code): the Beacon rendezvous server ({@link BeaconServer}), the TURN
 * server ({@link TurnServer}), the STUN server with RFC 5780 NAT behaviour discovery
 * ({@link StunServer}) and the WebSocket reverse-tunnel server ({@link TunnelServer}),
 * and the shared pieces every server uses: the data directory ({@link openDataDir}), the
 * TOML config ({@link loadServerConfig}), self-signed TLS certificates pinned by hash
 * ({@link createSelfSignedCertificate}), logs ({@link createServerLogger}) and
 * Prometheus metrics ({@link ServerMetrics}).
 *
 * @example
 * ```ts
 * import { StunServer } from 'peerlink/server'
 *
 * const stun = await StunServer.listen({ host: '127.0.0.1', port: 3478, alternateHost: '127.0.0.2' })
 * console.log(`stun:${stun.primary.host}:${stun.primary.port}`)
 * process.once('SIGINT', () => stun.close())
 * ```
 *
 * @packageDocumentation
 */
export { StunServer, type StunServerOptions, type StunServerStats } from './stun/stun-server.js'
export { RateLimiter, type RateLimiterOptions } from './stun/rate-limiter.js'
export {
  createSelfSignedCertificate,
  certificateMatchesKey,
  DEFAULT_CERTIFICATE_VALIDITY_DAYS,
  type SelfSignedCertificate,
  type SelfSignedCertificateOptions,
} from './tls.js'
export { certificateHash, connectTlsPinned, pinnedCertificateCheck, verifyCertificatePin, type PinnedTlsConnectOptions } from '../cert-pin.js'
export {
  openDataDir,
  loadOrCreateSecretFile,
  DATA_DIR_FILES,
  DEFAULT_DATA_DIR,
  LOOPBACK_DATA_DIR,
  type DataDir,
  type DataDirOptions,
} from './data-dir.js'
export {
  CONFIG_SECTIONS,
  BEACON_OPTIONS,
  TUNNEL_OPTIONS,
  STUN_OPTIONS,
  TURN_OPTIONS,
  LOG_OPTIONS,
  METRICS_OPTIONS,
  FUTURE_SECTIONS,
  type ConfigSectionName,
  type OptionDescriptor,
  type OptionKind,
  type OptionKinds,
  type SectionValues,
} from './config-options.js'
export {
  loadServerConfig,
  parseServerConfig,
  defaultServerConfig,
  serverConfigTemplate,
  turnServerOptions,
  stunServerOptions,
  beaconServerOptions,
  type ServerConfig,
  type BeaconConfig,
  type StunConfig,
  type TurnConfig,
  type LogConfig,
  type MetricsConfig,
} from './config.js'
export type { TunnelConfig } from './config-options.js'
export {
  createServerLogger,
  RotatingLogFile,
  REDACTED,
  REDACTED_KEYS,
  LOG_LEVELS,
  type ServerLogger,
  type ServerLoggerOptions,
  type LogLevel,
  type LogOutput,
  type ConsoleLogFormat,
} from './logger.js'
export { ServerMetrics, MetricsServer, type MetricDefinition, type MetricSample, type MetricType, type StatsField, type ServerMetricsOptions, type MetricsServerOptions } from './metrics.js'
export { STUN_STATS_METRICS, TURN_STATS_METRICS, BEACON_STATS_METRICS, addBeaconStatsMetrics } from './stats-metrics.js'
// The TURN server (RFC 8656).
export { TurnServer, type TurnServerAddress } from './turn/turn-server.js'
export type { ClientTransport } from './turn/client-link.js'
export type { TurnServerOptions, TurnServerTlsOptions, TurnServerLogger, TurnUserSpec } from './turn/turn-server-options.js'
export type { TurnServerStats } from './turn/turn-server-stats.js'
export { PeerAddressPolicy, DEFAULT_DENIED_IPV4, DEFAULT_DENIED_IPV6, type PeerAddressPolicyOptions } from './turn/peer-address-policy.js'
export { createRestApiCredentials, restApiPassword } from './turn/auth.js'
export * from './beacon/index.js'
// The WebSocket reverse-tunnel server.
export * from './tunnel/index.js'
