/**
 * `peerlink-server tunnel` (and the tunnel part of `all`): builds the tunnel server's
 * options from the `[tunnel]` section, the command line and the data directory, starts
 * it, and describes what a device needs to use it. Shaped like
 * `peerlink-server-turn.ts`, so wiring it into the command is one call.
 *
 * Credentials: when the section lists neither `tokens` nor `allowed-peer-ids`, a device
 * token is generated once into `DIR/tunnel_token.txt` (mode 0600) and accepted, so a
 * fresh server never publishes strangers' services. `--loopback` prints it; otherwise
 * only the file's name is printed.
 *
 * TLS: `[tunnel] cert`/`pkey` when set (devices then rely on CA validation), else the
 * data directory's self-signed certificate (`wss://HOST:PORT#CERT_HASH`, pinned);
 * `no-tls = true` serves plain `ws://` (behind a TLS-terminating proxy).
 *
 * @module
 */
import { join } from 'node:path'
import type { Logger } from 'pino'
import { PeerlinkError } from '../errors.js'
import { type DataDir, loadOrCreateSecretFile, readCertificateFile, readPrivateKeyFile } from '../server/data-dir.js'
import type { ServerMetrics } from '../server/metrics.js'
import type { TunnelServerOptions } from '../server/tunnel/tunnel-server-options.js'
import { TUNNEL_STATS_METRICS } from '../server/stats-metrics.js'
import type { TunnelServerStats } from '../server/tunnel/tunnel-server-stats.js'
import type { TunnelState } from '../server/tunnel/tunnel-state.js'
import { TunnelServer } from '../server/tunnel/tunnel-server.js'
import { LOOPBACK_HOSTS, displayHost, hostForUrl } from './server-common.js'

/** File in the data directory holding the generated device token. */
export const TUNNEL_TOKEN_FILE = 'tunnel_token.txt'

/** Whether this build has the tunnel server (`peerlink-server tunnel`, and the tunnel in `all`). */
export const TUNNEL_AVAILABLE: boolean = true

/**
 * The `[tunnel]` section as parsed from the config file: the server's options that a
 * TOML file can hold (same names, camelCase), plus the TLS files.
 */
export type TunnelSectionValues = Omit<TunnelServerOptions, 'tls' | 'state' | 'logger' | 'signal'> & {
  /**
   * Certificate chain file (PEM) of the control port.
   * @default the data directory's cert.pem
   */
  cert?: string | undefined
  /**
   * Its private key file (PEM).
   * @default the data directory's key.pem
   */
  pkey?: string | undefined
  /**
   * Serve plain ws:// on the control port.
   * @default false
   */
  noTls?: boolean | undefined
}

/** What {@link startTunnel} needs. */
export interface TunnelStartContext {
  /** `--loopback`: bind 127.0.0.1, use free ports when the defaults are taken, print the token. */
  readonly loopback: boolean
  /** `--host`. */
  readonly host: string | undefined
  /** `--tunnel-port` (the control port), when given. */
  readonly controlPort?: number | undefined
  /** `--tunnel-http-port`, when given. */
  readonly httpPort?: number | undefined
  /** `--tunnel-ports` (the public port range, `"20000-20999,21000"`), when given. */
  readonly allowPorts?: string | undefined
  /** The `[tunnel]` section. */
  readonly section: TunnelSectionValues
  /** Names of the `[tunnel]` keys the file sets explicitly (camelCase), to know which defaults may move. */
  readonly explicit?: ReadonlySet<string>
  /**
   * Shared fleet state (Redis), when configured.
   * @default undefined (in memory)
   */
  readonly state?: TunnelState | undefined
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
}

/** What the output says about the tunnel server. */
export interface TunnelReport {
  /** The URL devices pass to `peerlink expose --tunnel` (with `#CERT_HASH` when pinned). */
  url: string
  /** The control port. */
  controlPort: number
  /** The HTTP port (0 with `no-http`). */
  httpPort: number
  /** How device names look on the HTTP port: `http://NAME.<domain>:PORT/`. */
  httpUrlPattern: string | undefined
  /** The public port range. */
  allowPorts: string
  /** The generated device token (only with `--loopback`). */
  token: string | undefined
  /** Where the generated device token is stored. */
  tokenFile: string | undefined
  /** Where names and ports live: this process, or a Redis shared by a fleet. */
  state: 'memory' | 'redis'
}

/** The tunnel server's options with credentials and TLS filled in. */
export interface PreparedTunnel {
  /** Options for the tunnel server (signal, logger and state not included). */
  readonly options: TunnelServerOptions
  /** Whether taken default ports may be replaced by free ones. */
  readonly fallBackToFreePort: boolean
  /** The generated token, when one is used. */
  readonly generatedToken: string | undefined
  /** Its file. */
  readonly tokenFile: string | undefined
  /** The certificate hash devices pin, when TLS uses the data directory's self-signed certificate. */
  readonly pin: string | undefined
}

/**
 * Builds the tunnel server's options: the `[tunnel]` section, overridden by `--loopback`,
 * `--host` and the port options; TLS material and a generated token added.
 *
 * @throws `KeyFilePermissionsError`, `KeyFileAccessError`, `DataDirError` when the TLS key, certificate or token file cannot be used.
 */
export async function prepareTunnel(context: Omit<TunnelStartContext, 'log' | 'addSecret' | 'metrics' | 'signal' | 'state'>): Promise<PreparedTunnel> {
  const { cert, pkey, noTls, ...section } = context.section
  const options: TunnelServerOptions = { ...section }
  let pin: string | undefined
  if (noTls !== true) {
    if (cert !== undefined && pkey !== undefined) {
      options.tls = { cert: await readCertificateFile(cert), key: await readPrivateKeyFile(pkey) }
    } else {
      options.tls = { cert: context.dataDir.cert, key: context.dataDir.key }
      pin = context.dataDir.certificateHash
    }
  }
  if (context.host !== undefined || context.loopback) {
    const host = context.host ?? LOOPBACK_HOSTS[0]
    options.listeningIps = [host]
    if (context.loopback && section.publicHost === undefined) options.publicHost = host
  }
  if (context.controlPort !== undefined) options.controlPort = context.controlPort
  if (context.httpPort !== undefined) options.httpPort = context.httpPort
  if (context.allowPorts !== undefined) options.allowPorts = context.allowPorts
  let generatedToken: string | undefined
  let tokenFile: string | undefined
  if ((section.tokens ?? []).length === 0 && (section.allowedPeerIds ?? []).length === 0) {
    tokenFile = join(context.dataDir.dir, TUNNEL_TOKEN_FILE)
    generatedToken = await loadOrCreateSecretFile(tokenFile)
    options.tokens = [generatedToken]
  }
  const explicit = context.explicit ?? new Set<string>()
  const fallBack = context.loopback && context.controlPort === undefined && context.httpPort === undefined && !explicit.has('controlPort') && !explicit.has('httpPort')
  return { options, fallBackToFreePort: fallBack, generatedToken, tokenFile, pin }
}

/**
 * Starts the tunnel server for the CLI.
 *
 * @returns what to print, and how to stop it.
 */
export async function startTunnel(context: TunnelStartContext): Promise<{ report: TunnelReport; stats: () => TunnelServerStats; close: () => Promise<void> }> {
  const prepared = await prepareTunnel(context)
  if (prepared.generatedToken !== undefined) context.addSecret(prepared.generatedToken)
  const base: TunnelServerOptions = { ...prepared.options, logger: context.log, signal: context.signal, ...(context.state === undefined ? {} : { state: context.state }) }
  let server: TunnelServer
  try {
    server = await TunnelServer.listen(base)
  } catch (err) {
    if (!(prepared.fallBackToFreePort && err instanceof PeerlinkError && err.code === 'ERR_SOCKET_BIND')) throw err
    context.log.warn({ controlPort: base.controlPort ?? 8443, httpPort: base.httpPort ?? 8080 }, 'a tunnel port is in use; using free ports instead')
    server = await TunnelServer.listen({ ...base, controlPort: 0, httpPort: 0 })
  }
  const removeMetrics = context.metrics?.addStats('tunnel', () => server.stats, TUNNEL_STATS_METRICS)
  const options = prepared.options
  const url = prepared.options.publicUrl ?? `${options.tls === undefined ? 'ws' : 'wss'}://${hostForUrl(displayHost(options.publicHost ?? options.listeningIps?.[0] ?? '0.0.0.0'))}:${server.controlPort}`
  const domain = options.domain ?? 'localhost'
  const report: TunnelReport = {
    url: prepared.pin === undefined ? url : `${url}#${prepared.pin}`,
    controlPort: server.controlPort,
    httpPort: server.httpPort,
    httpUrlPattern: server.httpPort === 0 ? undefined : `http://NAME.${domain}:${options.httpPublicPort ?? server.httpPort}/`,
    allowPorts: options.allowPorts ?? '20000-29999',
    token: context.loopback ? prepared.generatedToken : undefined,
    tokenFile: prepared.tokenFile,
    state: context.state !== undefined || options.redis !== undefined ? 'redis' : 'memory',
  }
  return {
    report,
    stats: () => server.stats,
    close: async () => {
      removeMetrics?.()
      await server.close()
    },
  }
}
