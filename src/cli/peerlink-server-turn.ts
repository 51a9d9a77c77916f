/**
 * `peerlink-server turn` (and the TURN part of `all`): builds the TURN server's options
 * from the config, the command line and the data directory, starts it, and describes
 * what a peer needs to use it.
 *
 * Credentials: when the config has neither `user` nor `static-auth-secret` (nor
 * `no-auth`), a TURN REST API secret is generated once into `DIR/turn_rest_secret.txt`
 * (mode 0600) and used, so a fresh server is never an open relay. `--loopback` prints the
 * secret and a ready-made username/password valid for 24 hours; otherwise only the
 * file's name is printed.
 *
 * TLS: `[turn] cert`/`pkey` when set (`turns:` URLs then rely on CA validation), else
 * the data directory's self-signed certificate (`turns:HOST:PORT#CERT_HASH`, pinned).
 *
 * @module
 */
import { join } from 'node:path'
import type { Logger } from 'pino'
import { PeerlinkError } from '../errors.js'
import { type ServerConfig, turnServerOptions } from '../server/config.js'
import { type DataDir, loadOrCreateSecretFile, readCertificateFile, readPrivateKeyFile } from '../server/data-dir.js'
import type { ServerMetrics } from '../server/metrics.js'
import { TURN_STATS_METRICS } from '../server/stats-metrics.js'
import { createRestApiCredentials } from '../server/turn/auth.js'
import type { TurnServerOptions } from '../server/turn/turn-server-options.js'
import type { TurnServerStats } from '../server/turn/turn-server-stats.js'
import { TurnServer } from '../server/turn/turn-server.js'
import { LOOPBACK_HOSTS, displayHost, hostForUrl } from './server-common.js'

/** File in the data directory holding the generated TURN REST API secret. */
export const TURN_SECRET_FILE = 'turn_rest_secret.txt'

/** Lifetime of the username/password printed by `--loopback`, seconds. */
export const LOOPBACK_CREDENTIAL_TTL = 24 * 60 * 60

/** Whether this build has the TURN server (`peerlink-server turn`, and TURN in `all`). */
export const TURN_AVAILABLE: boolean = true

/** What the CLI needs of a running TURN server. */
export interface RunningTurnServer {
  /** Its counters (exposed as `peerlink_turn_…` metrics). */
  readonly stats: TurnServerStats
  /** The first listening IP. */
  readonly host: string
  /** The UDP/TCP port actually bound. */
  readonly port: number
  /** The TLS ports actually bound (empty without TLS). */
  readonly tlsPorts: readonly number[]
  /** Stops it. */
  close(): Promise<void>
}

/** Starts the TURN server: the one place the CLI touches `TurnServer`. */
async function listenTurnServer(options: TurnServerOptions): Promise<RunningTurnServer> {
  const server = await TurnServer.listen(options)
  const addresses = server.addresses
  const plain = addresses.find((a) => a.transport === 'udp') ?? addresses.find((a) => a.transport === 'tcp')
  const tlsPorts = [...new Set(addresses.filter((a) => a.transport === 'tls').map((a) => a.port))]
  return {
    stats: server.stats,
    host: plain?.host ?? addresses[0]?.host ?? '0.0.0.0',
    port: plain?.port ?? 0,
    tlsPorts,
    close: () => server.close(),
  }
}

/** What {@link startTurn} needs. */
export interface TurnStartContext {
  /** `--loopback`. */
  readonly loopback: boolean
  /** `--host`. */
  readonly host: string | undefined
  /** `--turn-port`. */
  readonly turnPort: number | undefined
  /** `--turns-port`. */
  readonly turnsPort: number | undefined
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
}

/** What the output says about the TURN server. */
export interface TurnReport {
  /** `turn:`/`turns:` URLs (RFC 7065) a peer can use. */
  urls: string[]
  /** `stun:` URL of the same server (it answers Binding over UDP). */
  stunUrl: string | undefined
  /** The UDP/TCP port. */
  port: number
  /** The realm. */
  realm: string
  /** The generated REST API secret (only with `--loopback`). */
  secret: string | undefined
  /** Where the generated REST API secret is stored. */
  secretFile: string | undefined
  /** A REST API username valid for 24 hours (only with `--loopback`). */
  username: string | undefined
  /** Its password. */
  credential: string | undefined
}

/** The TURN server's options with credentials and TLS filled in, and what to report. */
export interface PreparedTurn {
  /** Options for the TURN server (signal not included). */
  readonly options: TurnServerOptions
  /** Whether a taken default port may be replaced by a free one. */
  readonly fallBackToFreePort: boolean
  /** The generated REST secret, when one is used. */
  readonly generatedSecret: string | undefined
  /** Its file. */
  readonly secretFile: string | undefined
  /** The certificate hash clients pin in `turns:` URLs, when TLS uses the data directory's self-signed certificate. */
  readonly pin: string | undefined
}

/**
 * Builds the TURN server's options: the `[turn]` section, overridden by `--loopback`,
 * `--host` and the port options; TLS material and generated credentials added.
 *
 * @throws `KeyFilePermissionsError`, `KeyFileAccessError`, `DataDirError` when the TLS key, certificate or secret file cannot be used.
 */
export async function prepareTurn(context: Omit<TurnStartContext, 'log' | 'addSecret' | 'metrics' | 'signal'>): Promise<PreparedTurn> {
  const { config, dataDir } = context
  const turn = config.turn
  let tls: { cert: string; key: string } | undefined
  let pin: string | undefined
  if (!turn.noTls) {
    if (turn.cert !== undefined && turn.pkey !== undefined) {
      // An operator's certificate (often CA-issued and renewed): clients validate it, no pin.
      tls = { cert: await readCertificateFile(turn.cert), key: await readPrivateKeyFile(turn.pkey) }
    } else {
      tls = { cert: dataDir.cert, key: dataDir.key }
      pin = dataDir.certificateHash
    }
  }
  const options = turnServerOptions(turn, tls)
  if (context.host !== undefined || context.loopback) {
    const host = context.host ?? LOOPBACK_HOSTS[0]
    options.listeningIps = [host]
    if (context.loopback) {
      if (turn.relayIps === undefined) options.relayIps = [host]
      options.allowLoopbackPeers = true
      delete options.externalIp
    }
  }
  if (context.turnPort !== undefined) options.listeningPort = context.turnPort
  if (context.turnsPort !== undefined) options.tlsListeningPort = context.turnsPort

  let generatedSecret: string | undefined
  let secretFile: string | undefined
  if (turn.users.length === 0 && turn.staticAuthSecrets.length === 0 && !turn.noAuth && !turn.stunOnly) {
    secretFile = join(dataDir.dir, TURN_SECRET_FILE)
    generatedSecret = await loadOrCreateSecretFile(secretFile)
    options.staticAuthSecrets = [generatedSecret]
    options.useAuthSecret = true
  }
  const fallBack =
    context.loopback &&
    context.turnPort === undefined &&
    context.turnsPort === undefined &&
    !config.explicit.has('turn.listening-port') &&
    !config.explicit.has('turn.tls-listening-port')
  return { options, fallBackToFreePort: fallBack, generatedSecret, secretFile, pin }
}

/**
 * Starts the TURN server for the CLI.
 *
 * @returns what to print, and how to stop it.
 */
export async function startTurn(context: TurnStartContext): Promise<{ report: TurnReport; close: () => Promise<void> }> {
  const prepared = await prepareTurn(context)
  if (prepared.generatedSecret !== undefined) context.addSecret(prepared.generatedSecret)
  const { options } = prepared
  let server: RunningTurnServer
  try {
    server = await listenTurnServer({ ...options, logger: context.log, signal: context.signal })
  } catch (err) {
    if (!(prepared.fallBackToFreePort && err instanceof PeerlinkError && err.code === 'ERR_SOCKET_BIND')) throw err
    context.log.warn({ port: options.listeningPort, tlsPort: options.tlsListeningPort }, 'a TURN port is in use; using free ports instead')
    server = await listenTurnServer({ ...options, listeningPort: 0, tlsListeningPort: 0, logger: context.log, signal: context.signal })
  }
  const removeMetrics = context.metrics?.addStats('turn', () => server.stats, TURN_STATS_METRICS)

  const host = hostForUrl(displayHost(server.host))
  const urls: string[] = []
  if (options.noUdp !== true) urls.push(`turn:${host}:${server.port}?transport=udp`)
  if (options.noTcp !== true) urls.push(`turn:${host}:${server.port}?transport=tcp`)
  for (const port of server.tlsPorts) urls.push(`turns:${host}:${port}${prepared.pin === undefined ? '' : `#${prepared.pin}`}`)
  let username: string | undefined
  let credential: string | undefined
  if (context.loopback && prepared.generatedSecret !== undefined) {
    const made = createRestApiCredentials(prepared.generatedSecret, 'peerlink', LOOPBACK_CREDENTIAL_TTL, { separator: options.restApiSeparator })
    username = made.username
    credential = made.password
    context.addSecret(credential)
  }
  const report: TurnReport = {
    urls,
    stunUrl: options.noUdp === true ? undefined : `stun:${host}:${server.port}`,
    port: server.port,
    realm: options.realm ?? 'peerlink',
    secret: context.loopback ? prepared.generatedSecret : undefined,
    secretFile: prepared.secretFile,
    username,
    credential,
  }
  return {
    report,
    close: async () => {
      removeMetrics?.()
      await server.close()
    },
  }
}
