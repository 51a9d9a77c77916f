/**
 * `peerlink-server beacon` (and the Beacon part of `all`): builds the Beacon server's
 * options from the config, the command line and the data directory, starts it, and
 * describes what a peer needs to use it: the spec `HOST:PORT#CERT_HASH`
 * (ARCHITECTURE §5), whose pin is the data directory's `certificate_hash.txt`.
 *
 * TLS: `[beacon] cert`/`pkey` when set (peers then rely on CA validation, and the spec
 * has no pin), else the data directory's self-signed certificate (pinned).
 *
 * Addresses: `[beacon] listening-ip` (default `0.0.0.0` and `::`); `--host` replaces
 * them, `--loopback` uses 127.0.0.1. A `::` on a machine without IPv6 is skipped with a
 * log line instead of failing the start. With `--loopback`, a default port that is taken
 * is replaced by a free one (one number free for TCP and UDP).
 *
 * @module
 */
import { createServer } from 'node:net'
import type { Logger } from 'pino'
import { PeerlinkError } from '../errors.js'
import { BeaconServer, type BeaconServerOptions } from '../server/beacon/beacon-server.js'
import type { BeaconServerStats } from '../server/beacon/beacon-router.js'
import { type ServerConfig, beaconServerOptions } from '../server/config.js'
import { type DataDir, readCertificateFile, readPrivateKeyFile } from '../server/data-dir.js'
import type { ServerMetrics } from '../server/metrics.js'
import { STUN_STATS_METRICS, addBeaconStatsMetrics } from '../server/stats-metrics.js'
import type { StunServerStats } from '../server/stun/stun-server.js'
import type { TransportAddress } from '../stun/address.js'
import { LOOPBACK_HOSTS, displayHost, hostForUrl } from './server-common.js'

/** What the CLI needs of a running Beacon. */
export interface RunningBeaconServer {
  /** Its counters (exposed as `peerlink_beacon_…` metrics). */
  readonly stats: Readonly<BeaconServerStats>
  /** The counters of its STUN responders, summed (`peerlink_beacon_stun_…`). */
  stunStats(): StunServerStats
  /** Whether STUN Binding is answered on UDP at {@link RunningBeaconServer.port}. */
  readonly stun: boolean
  /** The TCP (WSS) addresses; UDP (STUN) uses the same hosts and port. */
  readonly addresses: TransportAddress[]
  /** The port actually bound (TCP and UDP). */
  readonly port: number
  /** base64url SHA-256 of the certificate served. */
  readonly certificateHash: string
  /** This instance's id (in a fleet). */
  readonly instanceId: string
  /** Stops it. */
  close(): Promise<void>
}

/** Starts the Beacon: the one place the CLI touches `BeaconServer`. */
async function listenBeaconServer(options: BeaconServerOptions): Promise<RunningBeaconServer> {
  const server = await BeaconServer.listen(options)
  return {
    get stats() {
      return server.stats
    },
    stunStats: () => {
      const sum: StunServerStats = { bindingResponses: 0, errorResponses: 0, malformed: 0, rateLimited: 0 }
      for (const stun of server.stunServers) for (const key of Object.keys(sum) as Array<keyof StunServerStats>) sum[key] += stun.stats[key]
      return sum
    },
    stun: server.stunServers.length > 0,
    addresses: server.addresses,
    port: server.port,
    certificateHash: server.certificateHash,
    instanceId: server.instanceId,
    close: () => server.close(),
  }
}

/** What {@link startBeacon} needs. */
export interface BeaconStartContext {
  /** `--loopback`. */
  readonly loopback: boolean
  /** `--host`. */
  readonly host: string | undefined
  /** `--beacon-port`. */
  readonly beaconPort: number | undefined
  /** The loaded config. */
  readonly config: ServerConfig
  /** The opened data directory. */
  readonly dataDir: DataDir
  /** Where to log. */
  readonly log: Logger
  /** Registers a secret to scrub from logs. */
  readonly addSecret: (secret: string) => void
  /** Metrics registry, when metrics are on. */
  readonly metrics: ServerMetrics | undefined
  /** Aborted on shutdown. */
  readonly signal: AbortSignal
  /**
   * Tells whether this machine can listen on IPv6 (`::` is skipped when it cannot).
   * @default {@link ipv6Available}
   */
  readonly ipv6Available?: () => Promise<boolean>
}

/** What the output says about the Beacon. */
export interface BeaconReport {
  /** What a peer passes to `--beacon`: `HOST:PORT#CERT_HASH` (no `#…` with an operator's CA certificate). */
  spec: string
  /** The host in {@link BeaconReport.spec}. */
  host: string
  /** The port (TCP WSS and UDP STUN). */
  port: number
  /** Every TCP address listened on. */
  addresses: TransportAddress[]
  /** base64url SHA-256 of the certificate served. */
  certificateHash: string
  /** Whether peers pin the certificate (the data directory's self-signed one). */
  pinned: boolean
  /** `stun:HOST:PORT` of the Beacon's STUN responder, when on. */
  stunUrl: string | undefined
  /** Where registrations live: this process, or a Redis shared by a fleet. */
  registry: 'memory' | 'redis'
  /** This instance's id. */
  instanceId: string
}

/** The Beacon's options with TLS filled in, and what to report. */
export interface PreparedBeacon {
  /** Options for the Beacon (logger and signal not included). */
  readonly options: BeaconServerOptions
  /** Whether a taken default port may be replaced by a free one. */
  readonly fallBackToFreePort: boolean
  /** The certificate hash peers pin, when TLS uses the data directory's certificate. */
  readonly pin: string | undefined
  /** Listening addresses dropped because this machine has no IPv6 (`::`). */
  readonly skipped: readonly string[]
}

/**
 * Builds the Beacon's options: the `[beacon]` section, overridden by `--loopback`,
 * `--host` and `--beacon-port`; TLS material added; `::` dropped when IPv6 is missing
 * (unless it is the only address, which then fails to bind with a clear error).
 *
 * @throws `KeyFilePermissionsError`, `KeyFileAccessError`, `DataDirError` when `[beacon] cert`/`pkey` cannot be used.
 */
export async function prepareBeacon(context: Omit<BeaconStartContext, 'log' | 'addSecret' | 'metrics' | 'signal'>): Promise<PreparedBeacon> {
  const { config, dataDir } = context
  const beacon = config.beacon
  let tls: { cert: string; key: string }
  let pin: string | undefined
  if (beacon.cert !== undefined && beacon.pkey !== undefined) {
    // An operator's certificate (often CA-issued and renewed): peers validate it, no pin.
    tls = { cert: await readCertificateFile(beacon.cert), key: await readPrivateKeyFile(beacon.pkey) }
  } else {
    tls = { cert: dataDir.cert, key: dataDir.key }
    pin = dataDir.certificateHash
  }
  const options = beaconServerOptions(beacon, tls)
  let hosts = [...beacon.listeningIps]
  if (context.host !== undefined || context.loopback) hosts = [context.host ?? LOOPBACK_HOSTS[0]]
  const skipped: string[] = []
  if (hosts.length > 1 && hosts.includes('::') && !(await (context.ipv6Available ?? ipv6Available)())) {
    hosts = hosts.filter((host) => host !== '::')
    skipped.push('::')
  }
  options.host = hosts
  if (context.beaconPort !== undefined) options.port = context.beaconPort
  const fallBack = context.loopback && context.beaconPort === undefined && !config.explicit.has('beacon.listening-port')
  return { options, fallBackToFreePort: fallBack, pin, skipped }
}

/**
 * Starts the Beacon for the CLI.
 *
 * @returns what to print, and how to stop it.
 */
export async function startBeacon(context: BeaconStartContext): Promise<{ report: BeaconReport; close: () => Promise<void> }> {
  const prepared = await prepareBeacon(context)
  for (const host of prepared.skipped) context.log.info({ host }, 'this machine has no IPv6: not listening on "::"')
  const { options } = prepared
  const logger = context.log
  let server: RunningBeaconServer
  try {
    server = await listenBeaconServer({ ...options, logger, signal: context.signal })
  } catch (err) {
    if (!(prepared.fallBackToFreePort && err instanceof PeerlinkError && err.code === 'ERR_SOCKET_BIND')) throw err
    context.log.warn({ port: options.port }, 'the Beacon port is in use; using a free port instead')
    server = await listenBeaconServer({ ...options, port: 0, logger, signal: context.signal })
  }
  let removeMetrics: (() => void) | undefined
  if (context.metrics !== undefined) {
    const removeBeacon = addBeaconStatsMetrics(context.metrics, () => server.stats)
    const removeStun = server.stun ? context.metrics.addStats('beacon_stun', () => server.stunStats(), STUN_STATS_METRICS) : () => {}
    removeMetrics = () => {
      removeBeacon()
      removeStun()
    }
  }
  const host = hostForUrl(displayHost(server.addresses[0]?.host ?? '0.0.0.0'))
  const report: BeaconReport = {
    spec: `${host}:${server.port}${prepared.pin === undefined ? '' : `#${prepared.pin}`}`,
    host,
    port: server.port,
    addresses: server.addresses,
    certificateHash: server.certificateHash,
    pinned: prepared.pin !== undefined,
    stunUrl: server.stun ? `stun:${host}:${server.port}` : undefined,
    registry: options.redis === undefined ? 'memory' : 'redis',
    instanceId: server.instanceId,
  }
  return {
    report,
    close: async () => {
      removeMetrics?.()
      await server.close()
    },
  }
}

/**
 * Whether this machine has IPv6: binds a TCP socket to `::1` (port 0) and closes it.
 * False when the system has no IPv6 (`EAFNOSUPPORT`) or it is disabled (`EADDRNOTAVAIL`).
 */
export function ipv6Available(): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer()
    probe.once('error', () => resolve(false))
    probe.listen({ host: '::1', port: 0, ipv6Only: true }, () => probe.close(() => resolve(true)))
  })
}
