/**
 * The `peerlink-server` command (`bin/peerlink-server` runs {@link main}): the reference
 * servers. This release has the STUN server (with RFC 5780 when given a second address);
 * the Beacon, TURN and tunnel servers join `all` as they are built.
 *
 * Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 1 on failure, 2 on a usage error.
 *
 * @module
 */
import { parseArgs } from 'node:util'
import { CliUsageError, PeerlinkError } from '../errors.js'
import { StunServer } from '../server/stun/stun-server.js'
import { type CliIo, processIo, writeJsonLine } from './io.js'

/** Loopback addresses `--loopback` (and `npm start`) uses: two, so RFC 5780 works. */
export const LOOPBACK_HOSTS = ['127.0.0.1', '127.0.0.2'] as const

const OPTIONS = {
  loopback: { type: 'boolean' },
  host: { type: 'string' },
  'alternate-host': { type: 'string' },
  'stun-port': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

const USAGE = `Usage: peerlink-server all|stun [options]

Runs peerlink's reference servers until SIGINT/SIGTERM.

Servers:
  all     every server this version has (today: stun)
  stun    STUN Binding server (RFC 8489), with RFC 5780 NAT behaviour discovery
          when it has a second address (--alternate-host)

Options:
  --loopback              listen on 127.0.0.1, with 127.0.0.2 as the RFC 5780 second
                          address (what \`npm start\` does); if the default port is
                          taken, a free one is used and printed
  --host ADDR             listen address (default 0.0.0.0: every interface)
  --alternate-host ADDR   a second IP address of this machine, enabling RFC 5780
  --stun-port PORT        STUN UDP port (default 3478; RFC 5780 also uses PORT+1)
  --json                  print the listening addresses as one JSON line on stdout
  -h, --help              show this help

The Beacon (4264), TURN (3478/5349) and tunnel (8443/8080) servers arrive in
later versions; see CHANGELOG.md.
`

/**
 * Runs `peerlink-server` with `argv` (arguments after the program name); resolves to the
 * exit code once the servers have stopped (on `io.signal`, or SIGINT/SIGTERM when `io`
 * is the process's).
 */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const json = argv.includes('--json')
  try {
    return await run(argv, io)
  } catch (err) {
    const code = err instanceof PeerlinkError ? err.code : 'ERR_INTERNAL'
    const message = err instanceof Error ? err.message : String(err)
    if (json) writeJsonLine(io.stderr, { event: 'error', code, message })
    else if (err instanceof CliUsageError) io.stderr.write(`peerlink-server: ${message}\nRun 'peerlink-server --help' for usage.\n`)
    else io.stderr.write(`peerlink-server: ${message} (${code})\n`)
    return err instanceof CliUsageError ? 2 : 1
  }
}

async function run(argv: string[], io: CliIo): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true })
  } catch (err) {
    throw new CliUsageError((err as Error).message.split('. ')[0]!, { cause: err })
  }
  const { values, positionals } = parsed
  if (values.help === true || positionals.length === 0) {
    io.stdout.write(USAGE)
    return values.help === true ? 0 : 2
  }
  if (positionals.length > 1) throw new CliUsageError(`unexpected argument "${positionals[1]}"`)
  const which = positionals[0]!
  if (which !== 'all' && which !== 'stun') {
    if (which === 'beacon' || which === 'turn' || which === 'tunnel') {
      throw new CliUsageError(`the ${which} server is not in this version yet (available: all, stun)`)
    }
    throw new CliUsageError(`unknown server "${which}"`)
  }
  const loopback = values.loopback === true
  const host = values.host ?? (loopback ? LOOPBACK_HOSTS[0] : '0.0.0.0')
  const alternateHost = values['alternate-host'] ?? (loopback && values.host === undefined ? LOOPBACK_HOSTS[1] : undefined)
  const stunPort = values['stun-port'] === undefined ? 3478 : parsePort(values['stun-port'], '--stun-port')

  const stun = await listenStun(host, stunPort, alternateHost, loopback && values['stun-port'] === undefined, io, values.json === true)
  const shown = hostForUrl(stun.primary.host)
  if (values.json === true) {
    writeJsonLine(io.stdout, {
      event: 'listening',
      stun: { url: `stun:${shown}:${stun.primary.port}`, addresses: stun.addresses, rfc5780: stun.other !== undefined },
    })
  } else {
    const rfc5780 =
      stun.other === undefined ? 'RFC 5780: off (no second address)' : `RFC 5780: second address ${hostForUrl(stun.other.host)}:${stun.other.port}`
    io.stdout.write(`peerlink-server is running (Ctrl-C to stop)

  STUN     stun:${shown}:${stun.primary.port}    ${rfc5780}

Try it from another terminal:
  ./bin/peerlink id
  ./bin/peerlink doctor --stun stun:${shown}:${stun.primary.port}
`)
  }

  await waitForStop(io)
  await stun.close()
  if (values.json === true) writeJsonLine(io.stderr, { event: 'stopped' })
  else io.stderr.write('peerlink-server: stopped\n')
  return 0
}

async function listenStun(
  host: string,
  port: number,
  alternateHost: string | undefined,
  fallBackToFreePort: boolean,
  io: CliIo,
  json: boolean,
): Promise<StunServer> {
  try {
    return await StunServer.listen({ host, port, alternateHost })
  } catch (err) {
    if (!(err instanceof PeerlinkError && err.code === 'ERR_SOCKET_BIND')) throw err
    if (alternateHost !== undefined && /not local/.test(err.message)) {
      // e.g. 127.0.0.2 on systems that only route 127.0.0.1 to loopback
      const notice = `${alternateHost} is not a local address; RFC 5780 is off`
      if (json) writeJsonLine(io.stderr, { event: 'notice', message: notice })
      else io.stderr.write(`peerlink-server: ${notice}\n`)
      return listenStun(host, port, undefined, fallBackToFreePort, io, json)
    }
    if (!fallBackToFreePort) throw err
    const notice = `UDP port ${port} (or ${port + 1}) is in use; using a free port instead`
    if (json) writeJsonLine(io.stderr, { event: 'notice', message: notice })
    else io.stderr.write(`peerlink-server: ${notice}\n`)
    return StunServer.listen({ host, port: 0, alternateHost })
  }
}

function parsePort(text: string, name: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN
  if (!(port >= 0 && port <= 65535)) throw new CliUsageError(`${name} must be a port number (0-65535), got "${text}"`)
  return port
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

function waitForStop(io: CliIo): Promise<void> {
  return new Promise((resolve) => {
    if (io.signal !== undefined) {
      if (io.signal.aborted) return resolve()
      io.signal.addEventListener('abort', () => resolve(), { once: true })
      return
    }
    const stop = () => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      resolve()
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
}
