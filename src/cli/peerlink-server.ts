/**
 * The `peerlink-server` command (`bin/peerlink-server` runs {@link main}): the reference
 * servers, with the data directory and config file of ARCHITECTURE §5.
 *
 * ```text
 * peerlink-server all|beacon|stun|turn|tunnel [--data-dir DIR] [--config FILE] [--loopback] [--json]
 * ```
 *
 * - The first run creates the data directory (default `~/.peerlink-server`; `--loopback`:
 *   `./.peerlink-data`) with `peerlink-server.toml` (every option, commented), the TLS
 *   certificate and key, `certificate_hash.txt` and `logs/`; later runs reuse them.
 * - Precedence: command-line options, then the config file, then defaults.
 * - stdout carries the result: what a peer needs (the Beacon spec `HOST:PORT#HASH`, URLs,
 *   credentials for `--loopback`, the certificate hash, the `peerlink expose` line of the
 *   tunnel), or with `--json` exactly one JSON line
 *   `{"event":"listening",…}`. Logs (pino) go to stderr and to `DIR/logs/`.
 * - `--loopback` (what `npm start` runs) binds 127.0.0.1 (plus 127.0.0.2 for RFC 5780),
 *   uses a free port when a default one is taken, lets TURN relay between loopback
 *   peers, and prints the generated TURN login and tunnel token.
 *
 * Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 1 on failure, 2 on a usage error.
 *
 * @module
 */
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { CliUsageError, PeerlinkError } from '../errors.js'
import { type ServerConfig, configSecrets, loadServerConfig, serverConfigTemplate, stunServerOptions, tunnelServerOptions } from '../server/config.js'
import { TUNNEL_OPTIONS } from '../server/config-options.js'
import { DEFAULT_DATA_DIR, LOOPBACK_DATA_DIR, type DataDir, openDataDir } from '../server/data-dir.js'
import { createServerLogger } from '../server/logger.js'
import { MetricsServer, ServerMetrics } from '../server/metrics.js'
import { STUN_STATS_METRICS } from '../server/stats-metrics.js'
import { type StunServerOptions, StunServer } from '../server/stun/stun-server.js'
import { PortRange } from '../server/tunnel/port-range.js'
import type { Logger } from 'pino'
import { homeDirectory } from './common-options.js'
import { expandHome } from './config-file.js'
import { type CliIo, processIo, writeJsonLine } from './io.js'
import { type BeaconReport, startBeacon } from './peerlink-server-beacon.js'
import { TUNNEL_AVAILABLE, type TunnelReport, startTunnel } from './peerlink-server-tunnel.js'
import { TURN_AVAILABLE, type TurnReport, startTurn } from './peerlink-server-turn.js'
import { LOOPBACK_HOSTS, displayHost, hostForUrl } from './server-common.js'

export { LOOPBACK_HOSTS } from './server-common.js'

/** Environment variable naming the data directory when `--data-dir` is not given. */
export const DATA_DIR_ENV = 'PEERLINK_SERVER_DATA_DIR'

/** Log file name inside `DIR/logs/`. */
export const LOG_FILE_NAME = 'peerlink-server.log'

const OPTIONS = {
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  loopback: { type: 'boolean' },
  host: { type: 'string' },
  'alternate-host': { type: 'string' },
  'beacon-port': { type: 'string' },
  'stun-port': { type: 'string' },
  'turn-port': { type: 'string' },
  'turns-port': { type: 'string' },
  'tunnel-port': { type: 'string' },
  'tunnel-http-port': { type: 'string' },
  'tunnel-ports': { type: 'string' },
  'metrics-port': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

const SERVERS = ['all', 'beacon', 'stun', 'turn', 'tunnel'] as const
type ServerChoice = (typeof SERVERS)[number]

const USAGE = `Usage: peerlink-server all|beacon|stun|turn|tunnel [options]

Runs peerlink's reference servers until SIGINT/SIGTERM.

Servers:
  all     every server: beacon, turn, stun and tunnel. TURN answers STUN Binding on
          its own port; the stun server (RFC 5780) runs beside it when its port
          differs (with --loopback a clash moves it to a free port)
  beacon  Beacon rendezvous server: WebSocket over TLS on TCP 4264, STUN Binding on
          UDP 4264; peers use --beacon HOST:PORT#CERT_HASH (the hash pins the data
          directory's certificate)
  stun    STUN Binding server (RFC 8489), with RFC 5780 NAT behaviour discovery
          when it has a second address
  turn    TURN relay server (RFC 8656), coturn's option names in [turn]; without
          configured credentials a REST API secret is generated in the data directory
  tunnel  WebSocket reverse tunnel: devices keep a control WebSocket (TLS, TCP 8443)
          and publish local TCP services (peerlink expose) on public ports (20000-29999)
          and by name on the HTTP port (8080: http://NAME.<domain>/); without
          configured tokens a device token is generated in the data directory

Options:
  --data-dir DIR          data directory: config, TLS certificate, logs; created on the
                          first run (default: $${DATA_DIR_ENV}, else ${DEFAULT_DATA_DIR};
                          with --loopback: ${LOOPBACK_DATA_DIR})
  --config FILE           config file instead of DIR/peerlink-server.toml
  --loopback              listen on 127.0.0.1 only, with 127.0.0.2 as the RFC 5780 second
                          address (what \`npm start\` does); a default port that is taken
                          is replaced by a free one, and everything a peer needs is printed
  --host ADDR             listen address (default: the config's listening-ip: 0.0.0.0,
                          and also :: for the Beacon)
  --alternate-host ADDR   a second IP address of this machine, enabling RFC 5780
  --beacon-port PORT      Beacon TCP (WSS) and UDP (STUN) port (default 4264)
  --stun-port PORT        STUN UDP port (default 3478; RFC 5780 also uses PORT+1)
  --turn-port PORT        TURN UDP/TCP port (default 3478)
  --turns-port PORT       TURN TLS port (default 5349)
  --tunnel-port PORT      tunnel control port, WebSocket over TLS (default 8443)
  --tunnel-http-port PORT tunnel HTTP port, routing NAME.<domain> (default 8080)
  --tunnel-ports RANGE    public TCP ports the tunnel gives devices, "A-B,C"
                          (default 20000-29999)
  --metrics-port PORT     serve Prometheus metrics on 127.0.0.1:PORT/metrics
  --json                  print the listening addresses as one JSON line on stdout;
                          logs on stderr are JSON too
  -h, --help              show this help

Every option of every server is in DIR/peerlink-server.toml, commented, with its default.

Exit codes: 0 after SIGINT/SIGTERM, 1 failure, 2 usage error.
`

/**
 * Runs `peerlink-server` with `argv` (arguments after the program name); resolves to the
 * exit code once the servers have stopped (on `io.signal`, or SIGINT/SIGTERM when `io`
 * is the process's). Never rejects.
 */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const json = argv.includes('--json')
  const stop = stopSignal(io)
  try {
    return await run(argv, io, stop.signal)
  } catch (err) {
    // A signal during startup is a clean stop, not a failure.
    if (stop.signal.aborted && err instanceof PeerlinkError && err.code === 'ERR_ABORTED') return 0
    const code = err instanceof PeerlinkError ? err.code : 'ERR_INTERNAL'
    const message = err instanceof Error ? err.message : String(err)
    if (json) writeJsonLine(io.stderr, { event: 'error', code, message })
    else if (err instanceof CliUsageError) io.stderr.write(`peerlink-server: ${message}\nRun 'peerlink-server --help' for usage.\n`)
    else io.stderr.write(`peerlink-server: ${message} (${code})\n`)
    return err instanceof CliUsageError ? 2 : 1
  } finally {
    stop.dispose()
  }
}

interface Arguments {
  which: ServerChoice
  json: boolean
  loopback: boolean
  dataDir: string
  configFile: string | undefined
  host: string | undefined
  alternateHost: string | undefined
  beaconPort: number | undefined
  stunPort: number | undefined
  turnPort: number | undefined
  turnsPort: number | undefined
  tunnelPort: number | undefined
  tunnelHttpPort: number | undefined
  tunnelPorts: string | undefined
  metricsPort: number | undefined
}

function parseArguments(argv: string[], io: CliIo): Arguments | number {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true })
  } catch (err) {
    throw new CliUsageError((err as Error).message.split('\n')[0]!.split('. ')[0]!, { cause: err })
  }
  const { values, positionals } = parsed
  if (values.help === true || positionals.length === 0) {
    io.stdout.write(USAGE)
    return values.help === true ? 0 : 2
  }
  if (positionals.length > 1) throw new CliUsageError(`unexpected argument "${positionals[1]}"`)
  const which = positionals[0]!
  if ((which === 'turn' && !TURN_AVAILABLE) || (which === 'tunnel' && !TUNNEL_AVAILABLE)) {
    throw new CliUsageError(`the ${which} server is not in this version yet`)
  }
  if (!(SERVERS as readonly string[]).includes(which)) throw new CliUsageError(`unknown server "${which}" (available: ${SERVERS.join(', ')})`)
  const loopback = values.loopback === true
  const home = homeDirectory(io)
  const envDir = io.env[DATA_DIR_ENV] !== undefined && io.env[DATA_DIR_ENV] !== '' ? io.env[DATA_DIR_ENV] : undefined
  const dataDir = values['data-dir'] ?? (loopback ? LOOPBACK_DATA_DIR : envDir ?? DEFAULT_DATA_DIR)
  if (dataDir === '') throw new CliUsageError('--data-dir must not be empty')
  if (values.config === '') throw new CliUsageError('--config must not be empty')
  const tunnelPorts = values['tunnel-ports']
  if (tunnelPorts !== undefined) {
    try {
      PortRange.parse(tunnelPorts)
    } catch (err) {
      throw new CliUsageError(`--tunnel-ports must be ports or ranges like "20000-20999,21000", got "${tunnelPorts}"`, { cause: err })
    }
  }
  return {
    which: which as ServerChoice,
    json: values.json === true,
    loopback,
    dataDir: resolve(io.cwd, expandHome(dataDir, home)),
    configFile: values.config === undefined ? undefined : resolve(io.cwd, expandHome(values.config, home)),
    host: values.host,
    alternateHost: values['alternate-host'],
    beaconPort: optionalPort(values['beacon-port'], '--beacon-port'),
    stunPort: optionalPort(values['stun-port'], '--stun-port'),
    turnPort: optionalPort(values['turn-port'], '--turn-port'),
    turnsPort: optionalPort(values['turns-port'], '--turns-port'),
    tunnelPort: optionalPort(values['tunnel-port'], '--tunnel-port'),
    tunnelHttpPort: optionalPort(values['tunnel-http-port'], '--tunnel-http-port'),
    tunnelPorts,
    metricsPort: optionalPort(values['metrics-port'], '--metrics-port'),
  }
}

async function run(argv: string[], io: CliIo, signal: AbortSignal): Promise<number> {
  const args = parseArguments(argv, io)
  if (typeof args === 'number') return args
  const dataDir = await openDataDir(args.dataDir, {
    configTemplate: args.configFile === undefined ? serverConfigTemplate() : undefined,
    certificate: certificateNames(),
    signal,
  })
  const config = await loadServerConfig(args.configFile ?? dataDir.configFile)
  const logger = createServerLogger({
    level: config.log.level,
    file: join(dataDir.logDir, LOG_FILE_NAME),
    maxFileBytes: config.log.maxFileBytes,
    maxFiles: config.log.maxFiles,
    console: io.stderr,
    consoleFormat: args.json ? 'json' : 'pretty',
    secrets: configSecrets(config),
  })
  const log = logger.log
  const closers: Array<{ name: string; close: () => Promise<void> }> = []
  try {
    for (const path of dataDir.created) log.info({ path }, 'created')
    log.info({ dataDir: dataDir.dir, config: config.file, certificateHash: dataDir.certificateHash }, 'starting')
    const metrics = config.metrics.enabled || args.metricsPort !== undefined ? new ServerMetrics({ defaultMetrics: config.metrics.defaultMetrics }) : undefined

    let beacon: BeaconReport | undefined
    let stun: StunReport | undefined
    let turn: TurnReport | undefined
    let tunnel: TunnelReport | undefined
    if (args.which === 'beacon' || args.which === 'all') {
      const started = await startBeacon({
        loopback: args.loopback,
        host: args.host,
        beaconPort: args.beaconPort,
        config,
        dataDir,
        log: log.child({ server: 'beacon' }),
        addSecret: logger.addSecret,
        metrics,
        signal,
      })
      closers.push({ name: 'beacon', close: started.close })
      beacon = started.report
    }
    if (args.which === 'turn' || (args.which === 'all' && TURN_AVAILABLE)) {
      const started = await startTurn({
        loopback: args.loopback,
        host: args.host,
        turnPort: args.turnPort,
        turnsPort: args.turnsPort,
        config,
        dataDir,
        log: log.child({ server: 'turn' }),
        addSecret: logger.addSecret,
        metrics,
        signal,
      })
      closers.push({ name: 'turn', close: started.close })
      turn = started.report
    }
    if (args.which === 'stun' || args.which === 'all') {
      const options = stunOptions(args, config)
      let fallBack = fallBackToFreePort(args, config, 'stun.listening-port', args.stunPort)
      // TURN answers STUN Binding on its own port (without RFC 5780). The standalone STUN
      // server runs beside it on another port; with --loopback a clash just moves it.
      const clash = turn?.stunUrl !== undefined && options.port !== 0 && options.port === turn.port
      if (clash && fallBack) {
        options.port = 0
        delete options.alternatePort
        fallBack = false
      }
      if (clash && options.port !== 0) {
        log.info({ port: turn!.port }, 'STUN Binding is answered by the TURN server; give [stun] listening-port another port for RFC 5780')
        stun = { url: turn!.stunUrl!, addresses: [], rfc5780: false, other: undefined }
      } else {
        const server = await listenStun(options, fallBack, log.child({ server: 'stun' }), signal)
        closers.push({ name: 'stun', close: () => server.close() })
        metrics?.addStats('stun', () => server.stats, STUN_STATS_METRICS)
        stun = stunReport(server)
      }
    }
    if (args.which === 'tunnel' || (args.which === 'all' && TUNNEL_AVAILABLE)) {
      const section = config.tunnel
      const started = await startTunnel({
        loopback: args.loopback,
        host: args.host,
        controlPort: args.tunnelPort,
        httpPort: args.tunnelHttpPort,
        allowPorts: args.tunnelPorts,
        section: { ...tunnelServerOptions(section), cert: section.cert, pkey: section.pkey, noTls: section.noTls },
        explicit: explicitProps(config, 'tunnel', TUNNEL_OPTIONS),
        dataDir,
        log: log.child({ server: 'tunnel' }),
        addSecret: logger.addSecret,
        metrics,
        signal,
      })
      closers.push({ name: 'tunnel', close: started.close })
      tunnel = started.report
    }
    let metricsUrl: string | undefined
    if (metrics !== undefined) {
      const endpoint = await MetricsServer.listen({
        metrics,
        host: args.loopback ? LOOPBACK_HOSTS[0] : config.metrics.host,
        port: args.metricsPort ?? config.metrics.port,
        signal,
      })
      closers.push({ name: 'metrics', close: () => endpoint.close() })
      metricsUrl = endpoint.url
    }

    const report = { event: 'listening', dataDir: dataDir.dir, certificateHash: dataDir.certificateHash, beacon, stun, turn, tunnel, metrics: metricsUrl === undefined ? undefined : { url: metricsUrl } }
    if (args.json) writeJsonLine(io.stdout, report)
    else io.stdout.write(banner(dataDir, { beacon, stun, turn, tunnel }, metricsUrl))
    log.info({ beacon: beacon?.spec, stun: stun?.url, turn: turn?.urls, tunnel: tunnel?.url, metrics: metricsUrl }, 'listening')

    await new Promise<void>((done) => (signal.aborted ? done() : signal.addEventListener('abort', () => done(), { once: true })))
    log.info('stopping')
  } catch (err) {
    // A signal during startup is a clean stop, not a failure.
    if (!(signal.aborted && err instanceof PeerlinkError && err.code === 'ERR_ABORTED')) {
      await closeAll(closers, log)
      logger.close()
      throw err
    }
  }
  await closeAll(closers, log)
  log.info('stopped')
  logger.close()
  return 0
}

async function closeAll(closers: Array<{ name: string; close: () => Promise<void> }>, log: Logger): Promise<void> {
  for (const { name, close } of closers.reverse()) {
    try {
      await close()
    } catch (err) {
      log.error({ server: name, err }, 'error while closing')
    }
  }
  closers.length = 0
}

/** What the output says about the STUN server. */
interface StunReport {
  url: string
  addresses: Array<{ family: string; host: string; port: number }>
  rfc5780: boolean
  other: { host: string; port: number } | undefined
}

function stunReport(server: StunServer): StunReport {
  const other = server.other
  return {
    url: `stun:${hostForUrl(displayHost(server.primary.host))}:${server.primary.port}`,
    addresses: server.addresses,
    rfc5780: other !== undefined,
    other: other === undefined ? undefined : { host: other.host, port: other.port },
  }
}

function stunOptions(args: Arguments, config: ServerConfig): StunServerOptions {
  const options = stunServerOptions(config.stun)
  if (args.host !== undefined || args.loopback) {
    options.host = args.host ?? LOOPBACK_HOSTS[0]
    delete options.alternateHost
    if (args.alternateHost === undefined && args.loopback && args.host === undefined) options.alternateHost = LOOPBACK_HOSTS[1]
  }
  if (args.alternateHost !== undefined) options.alternateHost = args.alternateHost
  if (args.stunPort !== undefined) {
    options.port = args.stunPort
    delete options.alternatePort
  }
  return options
}

/** The option names (camelCase) of `section` that the config file sets explicitly. */
function explicitProps(config: ServerConfig, section: string, options: Record<string, { key: string }>): Set<string> {
  const props = new Set<string>()
  for (const [prop, { key }] of Object.entries(options)) if (config.explicit.has(`${section}.${key}`)) props.add(prop)
  return props
}

/** With --loopback, a default port (not set on the command line or in the file) may be replaced by a free one. */
function fallBackToFreePort(args: Pick<Arguments, 'loopback'>, config: ServerConfig, key: string, cliPort: number | undefined): boolean {
  return args.loopback && cliPort === undefined && !config.explicit.has(key)
}

async function listenStun(options: StunServerOptions, fallBack: boolean, log: Logger, signal: AbortSignal): Promise<StunServer> {
  try {
    return await StunServer.listen({ ...options, signal })
  } catch (err) {
    if (!(err instanceof PeerlinkError && err.code === 'ERR_SOCKET_BIND')) throw err
    if (options.alternateHost !== undefined && /not local/.test(err.message)) {
      // e.g. 127.0.0.2 on systems that only route 127.0.0.1 to loopback
      log.warn({ alternateHost: options.alternateHost }, 'the alternate address is not local; RFC 5780 is off')
      const { alternateHost: _dropped, ...rest } = options
      return listenStun(rest, fallBack, log, signal)
    }
    if (!fallBack) throw err
    log.warn({ port: options.port }, 'the STUN port (or the next one) is in use; using a free port instead')
    return StunServer.listen({ ...options, port: 0, alternatePort: undefined, signal })
  }
}

interface Reports {
  beacon: BeaconReport | undefined
  stun: StunReport | undefined
  turn: TurnReport | undefined
  tunnel: TunnelReport | undefined
}

function banner(dataDir: DataDir, { beacon, stun, turn, tunnel }: Reports, metricsUrl: string | undefined): string {
  const lines = ['peerlink-server is running (Ctrl-C to stop)', '']
  lines.push(`  data dir     ${dataDir.dir}`)
  lines.push(`  cert hash    ${dataDir.certificateHash}   (clients pin it: HOST:PORT#HASH)`)
  if (beacon !== undefined) {
    const registry = beacon.registry === 'redis' ? 'fleet over Redis' : 'in memory'
    lines.push(`  Beacon       ${beacon.spec}    (WebSocket over TLS${beacon.stunUrl === undefined ? '' : `, STUN on UDP ${beacon.port}`}; ${registry})`)
    if (!beacon.pinned) lines.push(`  Beacon cert  [beacon] cert, validated by peers against CAs (hash ${beacon.certificateHash})`)
  }
  if (stun !== undefined) {
    const rfc5780 = stun.other === undefined ? 'RFC 5780: off (no second address)' : `RFC 5780: second address ${hostForUrl(stun.other.host)}:${stun.other.port}`
    lines.push(`  STUN         ${stun.url}    ${rfc5780}`)
  }
  if (turn !== undefined) {
    lines.push(`  TURN         ${turn.urls.join('  ')}`)
    if (turn.secret !== undefined) lines.push(`  TURN secret  ${turn.secret}   (REST API: peerlink --turn-secret)`)
    if (turn.secretFile !== undefined && turn.secret === undefined) lines.push(`  TURN secret  in ${turn.secretFile}`)
    if (turn.username !== undefined && turn.credential !== undefined) {
      lines.push(`  TURN login   --turn-user ${turn.username} --turn-pass ${turn.credential}   (valid 24 h)`)
    }
  }
  if (tunnel !== undefined) {
    const http = tunnel.httpUrlPattern === undefined ? 'no HTTP by name' : `HTTP by name ${tunnel.httpUrlPattern}`
    lines.push(`  Tunnel       ${tunnel.url}    (control WebSocket; ${http}; public TCP ports ${tunnel.allowPorts}; ${tunnel.state === 'redis' ? 'fleet over Redis' : 'in memory'})`)
    if (tunnel.token !== undefined) lines.push(`  Tunnel token ${tunnel.token}`)
    else if (tunnel.tokenFile !== undefined) lines.push(`  Tunnel token in ${tunnel.tokenFile}`)
  }
  if (metricsUrl !== undefined) lines.push(`  metrics      ${metricsUrl}`)
  if (beacon !== undefined) lines.push('', 'Peers use this Beacon with:', `  --beacon ${beacon.spec}`)
  if (tunnel !== undefined) {
    const token = tunnel.token ?? (tunnel.tokenFile === undefined ? 'TOKEN' : `"$(cat ${shellQuote(tunnel.tokenFile)})"`)
    lines.push('', 'Devices publish a local service (here TCP port 3000, as NAME) with:', `  ./bin/peerlink expose 3000 --name NAME --tunnel ${tunnel.url} --token ${token}`)
  }
  lines.push('', 'Try it from another terminal:', '  ./bin/peerlink id')
  const stunUrl = stun?.url ?? turn?.stunUrl ?? beacon?.stunUrl
  if (stunUrl !== undefined) lines.push(`  ./bin/peerlink doctor --stun ${stunUrl}`)
  return `${lines.join('\n')}\n`
}

/** `text` quoted for a POSIX shell when it needs it. */
function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./:@%+=-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`
}

/** Names for the first-run certificate: informational, since clients pin it by hash. */
function certificateNames(): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames = ['localhost']
  const name = hostname().toLowerCase()
  if (name !== 'localhost' && /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/.test(name) && name.length <= 253) {
    dnsNames.push(name)
  }
  return { dnsNames, ipAddresses: ['127.0.0.1', '::1'] }
}

function optionalPort(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN
  if (!(port >= 0 && port <= 65535)) throw new CliUsageError(`${name} must be a port number (0-65535), got "${text}"`)
  return port
}

/** Aborted on `io.signal`, or on SIGINT/SIGTERM when `io` has no signal. */
function stopSignal(io: CliIo): { signal: AbortSignal; dispose: () => void } {
  if (io.signal !== undefined) return { signal: io.signal, dispose: () => {} }
  const controller = new AbortController()
  const stop = () => controller.abort()
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
    },
  }
}
