/**
 * `peerlink expose`: publish local TCP services through a tunnel server, print where
 * they are reachable, and keep them published (reconnecting by itself) until Ctrl-C.
 *
 * @module
 */
import { isIP } from 'node:net'
import { CliUsageError, type PeerlinkError } from '../../errors.js'
import type { Identity } from '../../identity/identity.js'
import { loadOrCreateIdentityFile } from '../../identity/key-file.js'
import { type TunnelServerSpec, parseTunnelSpec } from '../../server-spec.js'
import type { ExposedPort, TunnelEndpoints } from '../../tunnel/tunnel-client-options.js'
import { TunnelClient } from '../../tunnel/tunnel-client.js'
import type { CliCommand } from '../command.js'
import { type CliIo, writeJsonLine } from '../io.js'

/** `peerlink expose PORT[,PORT…] --tunnel URL [--name NAME] [--token T] [--http PORT|none] [--json]` */
export const exposeCommand: CliCommand = {
  name: 'expose',
  summary: 'publish local TCP services through a tunnel server (HTTP by name, TCP by port)',
  usage: `peerlink expose PORT[,PORT...] --tunnel URL [--name NAME] [--token TOKEN]
                [--http PORT|none] [--json]

Publishes the local TCP services at PORT,... (on 127.0.0.1; write HOST:PORT for
another address) through the tunnel server at URL (ws://HOST:PORT or
wss://HOST:PORT#CERT_HASH; --tunnel is repeatable, and the config's "tunnels" are
tried after: the next one after a failure). The server gives each port a public TCP
port, and routes http://NAME.<its domain>/ to the HTTP service (the first port,
or --http PORT; --http none for no HTTP).

Logs in with --token (or $PEERLINK_TUNNEL_TOKEN), else with the identity of the key
file. Without --name the server gives back the name this device had, or a random
one. Prints the public endpoints on every (re)connection, reconnects by itself
(with backoff), and keeps the same name and ports when it comes back within the
server's retention time. Ctrl-C closes the tunnel and exits 0; a refusal that
retrying cannot fix (bad token, name taken) exits 1.
With --json, prints one JSON object per (re)connection on stdout:
  {"event":"endpoints","server","name","httpUrl","host","ports":[{"local","public",
   "address"}],"resumed"}
and events on stderr: {"event":"disconnected","code","message","retryInMs"}.`,
  options: {
    tunnel: { type: 'string', multiple: true },
    name: { type: 'string' },
    token: { type: 'string' },
    http: { type: 'string' },
  },
  maxPositionals: 1,
  async run({ values, positionals, common }, io) {
    if (positionals.length === 0) throw new CliUsageError('expose needs the ports to publish: peerlink expose PORT[,PORT...] --tunnel URL')
    const ports = parsePorts(positionals[0]!)
    const given = (values.tunnel as string[] | undefined) ?? []
    const servers: TunnelServerSpec[] = [...given.map((text) => parseTunnelSpec(text)), ...(common.config?.tunnels ?? [])]
    if (servers.length === 0) throw new CliUsageError('expose needs a tunnel server: --tunnel ws://HOST:PORT (or "tunnels" in --config)')
    const http = parseHttp(values.http as string | undefined, ports)
    const token = (values.token as string | undefined) ?? nonEmpty(io.env.PEERLINK_TUNNEL_TOKEN)
    let identity: Identity | undefined
    if (token === undefined) {
      const loaded = await loadOrCreateIdentityFile(common.keyFile, { signal: io.signal })
      identity = loaded.identity
      if (loaded.created) notice(io, common.json, { event: 'key-created', keyFile: loaded.path, peerId: identity.peerId }, `created a new identity in ${loaded.path}`)
    }
    const name = values.name as string | undefined
    const client = new TunnelClient({
      servers,
      ports,
      ...(http === undefined ? {} : { http }),
      ...(name === undefined ? {} : { name }),
      ...(token === undefined ? {} : { token }),
      ...(identity === undefined ? {} : { identity }),
    })
    client.on('connected', (endpoints) => {
      if (common.json) writeJsonLine(io.stdout, { event: 'endpoints', ...endpoints })
      else io.stdout.write(formatEndpoints(endpoints, ports, http === undefined || http === false ? ports[0]!.port : http))
    })
    client.on('disconnected', (error, retryInMs) => {
      const text = `${error?.message ?? 'disconnected'}${retryInMs === undefined ? '' : `; retrying in ${(retryInMs / 1000).toFixed(1)} s`}`
      notice(io, common.json, { event: 'disconnected', code: error?.code, message: error?.message, retryInMs }, text)
    })
    const stopped = new Promise<PeerlinkError | undefined>((resolve) => client.once('close', resolve))
    const stop = () => void client.close()
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']
    for (const signal of signals) process.once(signal, stop)
    io.signal?.addEventListener('abort', stop, { once: true })
    try {
      client.start()
      const error = await stopped
      if (error !== undefined) throw error
      return 0
    } finally {
      for (const signal of signals) process.off(signal, stop)
      io.signal?.removeEventListener('abort', stop)
      await client.close()
    }
  },
}

/** `PORT[,PORT…]`, each `PORT` or `HOST:PORT` (IPv6 in brackets). */
function parsePorts(text: string): ExposedPort[] {
  const ports: ExposedPort[] = []
  for (const item of text.split(',')) {
    const match = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):)?([0-9]{1,5})$/.exec(item.trim())
    const port = Number(match?.[2])
    if (match === null || port < 1 || port > 65535) throw new CliUsageError(`"${item}" is not a port (1-65535) or HOST:PORT`)
    const host = match[1]?.replace(/^\[(.*)\]$/, '$1')
    if (host !== undefined && host.includes(':') && isIP(host) !== 6) throw new CliUsageError(`"${item}": ${host} is not an IPv6 address`)
    if (ports.some((p) => p.port === port)) throw new CliUsageError(`port ${port} is listed twice`)
    ports.push(host === undefined ? { port } : { port, host })
  }
  return ports
}

function parseHttp(text: string | undefined, ports: readonly ExposedPort[]): number | false | undefined {
  if (text === undefined) return undefined
  if (text === 'none') return false
  const port = Number(text)
  if (!ports.some((p) => p.port === port)) throw new CliUsageError(`--http must be one of the exposed ports, or none`)
  return port
}

function formatEndpoints(endpoints: TunnelEndpoints, ports: readonly ExposedPort[], httpPort: number): string {
  const local = (port: number) => {
    const host = ports.find((p) => p.port === port)?.host ?? '127.0.0.1'
    return `${host.includes(':') ? `[${host}]` : host}:${port}`
  }
  const lines = [`Exposed through ${endpoints.server} as "${endpoints.name}"${endpoints.resumed ? ' (restored)' : ''}:`]
  if (endpoints.httpUrl !== undefined) lines.push(`  ${endpoints.httpUrl.padEnd(30)} -> http ${local(httpPort)}`)
  for (const port of endpoints.ports) lines.push(`  tcp://${port.address}`.padEnd(32) + ` -> ${local(port.local)}`)
  return `${lines.join('\n')}\n`
}

function notice(io: CliIo, json: boolean, event: Record<string, unknown>, text: string): void {
  if (json) writeJsonLine(io.stderr, event)
  else io.stderr.write(`peerlink: ${text}\n`)
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.length === 0 ? undefined : value
}
