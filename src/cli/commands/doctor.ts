/**
 * `peerlink doctor`: what the network between this machine and the configured servers
 * looks like — UDP reachability and latency of each STUN server, the public
 * (server-reflexive) address, and, where the server supports RFC 5780, the NAT's
 * mapping and filtering behaviour; TURN over UDP, TCP and TLS (`doctor-turn.ts`); the
 * tunnel servers' reachability (`doctor-tunnel.ts`); and which step of the connection
 * ladder a connection would likely use (`doctor-ladder.ts`).
 *
 * @module
 */
import dgram from 'node:dgram'
import { once } from 'node:events'
import { isIP } from 'node:net'
import { CliUsageError, PeerlinkError } from '../../errors.js'
import { parseStunSpec, parseTunnelSpec, parseTurnSpec, type StunServerSpec, type TurnServerSpec, type TunnelServerSpec } from '../../server-spec.js'
import type { TransportAddress } from '../../stun/address.js'
import { resolveStunHost, stunBinding } from '../../stun/binding-client.js'
import { createDgramEndpoint } from '../../stun/datagram-endpoint.js'
import {
  discoverNatBehavior,
  type NatFilteringBehavior,
  type NatMappingBehavior,
} from '../../stun/nat-behavior-discovery.js'
import type { CliCommand } from '../command.js'
import { writeJsonLine } from '../io.js'
import { predictLadder, type DoctorLadderVerdict } from './doctor-ladder.js'
import { checkTurnServer, type DoctorTurnReport } from './doctor-turn.js'
import { checkTunnelServer, type DoctorTunnelReport } from './doctor-tunnel.js'

/** What doctor found out about one STUN server. */
export interface DoctorStunReport {
  /** The server as given (`stun:HOST:PORT`). */
  server: string
  /** The IP address it was reached at, when the name resolved. */
  address?: string
  /** Whether it answered a Binding request over UDP. */
  reachable: boolean
  /** Round-trip time of the Binding request, in milliseconds. */
  rttMs?: number
  /** Our public (server-reflexive) address as this server saw it. */
  mapped?: TransportAddress
  /** Whether the server supports RFC 5780 (sent OTHER-ADDRESS). */
  rfc5780?: boolean
  /** RFC 5780 mapping behaviour, when supported. */
  mapping?: NatMappingBehavior
  /** RFC 5780 filtering behaviour, when supported. */
  filtering?: NatFilteringBehavior
  /** Why the server could not be used, or why behaviour discovery failed. */
  error?: { code: string; message: string }
}

// Doctor should answer in seconds, not after RFC 8489's 39.5 s: 5 sends over ~5.75 s.
const RETRANSMIT = { rto: 250, rc: 5, rm: 8 } as const

/** `peerlink doctor [--stun …] [--turn …] [--tunnel …] [--json]` */
export const doctorCommand: CliCommand = {
  name: 'doctor',
  summary: 'check UDP, STUN, TURN and tunnel reachability and predict the connection path',
  usage: `peerlink doctor [--stun stun:HOST:PORT]... [--turn URI]... [--turn-user U --turn-pass P | --turn-secret S]
                [--tunnel URL]... [--json]

Checks the network between this machine and the servers given (options are repeatable
and add to the --config file's "stun", "beacons", "turn" and "tunnels"):
- STUN (and each Beacon's UDP port): whether it answers over UDP, the round trip, this
  machine's public address and, where the server supports RFC 5780, the NAT's mapping
  and filtering behaviour (RFC 4787 terms). Different public ports seen by different
  servers also reveal endpoint-dependent mapping.
- TURN (turn:HOST:PORT[?transport=tcp], turns:HOST:PORT[#CERT_HASH]): an Allocate over
  UDP and TCP (turn:) or TLS (turns:), released at once. A server that refuses the
  credentials still counts as reachable; without credentials only reachability is tested.
- Tunnel (ws://HOST:PORT, wss://HOST:PORT[#CERT_HASH]): whether its control port answers
  HTTP (no login is attempted).
Then prints which step of the ladder (direct, turn-udp, turn-tcp, turn-tls, tunnel) a
connection from here would most likely use, and why. Exits 0 when some step works, 1
when none does.
With --json, prints one JSON object on stdout:
  {"event":"doctor","stun":[{"server","address","reachable","rttMs","mapped",
   "rfc5780","mapping","filtering","error"}],"mappingVariesByServer":false,
   "turn":[{"server","credentials","transports":[{"transport","reachable","allocated",
   "ms","relayed","error"}]}],"tunnels":[{"server","reachable","status","ms","error"}],
   "ladder":{"likely","available","reason"}}`,
  options: {
    stun: { type: 'string', multiple: true },
    turn: { type: 'string', multiple: true },
    'turn-user': { type: 'string' },
    'turn-pass': { type: 'string' },
    'turn-secret': { type: 'string' },
    tunnel: { type: 'string', multiple: true },
  },
  async run({ values, common }, io) {
    const config = common.config
    const stunSpecs: StunServerSpec[] = [
      ...((values.stun as string[] | undefined) ?? []).map((text) => parseStunSpec(text)),
      ...(config?.stun ?? []),
      // A Beacon answers STUN on UDP at its own port number.
      ...(config?.beacons ?? []).map((beacon): StunServerSpec => ({ kind: 'stun', host: beacon.host, hostType: beacon.hostType, port: beacon.port })),
    ]
    const cliCredentials = {
      username: values['turn-user'] as string | undefined,
      credential: values['turn-pass'] as string | undefined,
      secret: values['turn-secret'] as string | undefined,
    }
    if (cliCredentials.credential !== undefined && cliCredentials.username === undefined) {
      throw new CliUsageError('--turn-pass needs --turn-user')
    }
    const turnConfigs: DoctorTurnTarget[] = [
      ...((values.turn as string[] | undefined) ?? []).map((text) => parseTurnTarget(text)),
      ...(config?.turn ?? []).map((entry) => ({ server: entry.server, username: entry.username, credential: entry.credential, certHash: undefined })),
    ]
    const tunnelSpecs: TunnelServerSpec[] = [...((values.tunnel as string[] | undefined) ?? []).map((text) => parseTunnelSpec(text)), ...(config?.tunnels ?? [])]
    if (stunSpecs.length + turnConfigs.length + tunnelSpecs.length === 0) {
      throw new CliUsageError('doctor needs a server to check: --stun stun:HOST:PORT, --turn URI or --tunnel URL (or a --config file listing them)')
    }
    const reports: DoctorStunReport[] = []
    for (const spec of stunSpecs) {
      const report = await checkStunServer(spec, io.signal)
      reports.push(report)
      if (!common.json) io.stdout.write(formatReport(report))
    }
    const varies = mappingVariesByServer(reports)
    if (!common.json && varies) {
      io.stdout.write('Different servers saw different public ports: the NAT maps endpoint-dependently (hard to punch).\n')
    }
    const turn: DoctorTurnReport[] = []
    for (const entry of turnConfigs) {
      const credentials = entry.username !== undefined ? { username: entry.username, credential: entry.credential } : cliCredentials
      const report = await checkTurnServer(entry.server, credentials, { signal: io.signal, certHash: entry.certHash })
      turn.push(report)
      if (!common.json) io.stdout.write(formatTurnReport(report))
    }
    const tunnels: DoctorTunnelReport[] = []
    for (const spec of tunnelSpecs) {
      const report = await checkTunnelServer(spec, { signal: io.signal })
      tunnels.push(report)
      if (!common.json) io.stdout.write(formatTunnelReport(report))
    }
    const mapping = varies ? 'address-and-port-dependent' : reports.find((report) => report.mapping !== undefined)?.mapping
    const ladder = predictLadder({ udpReachable: reports.some((r) => r.reachable), udpTested: reports.length > 0, mapping, turn, tunnels })
    if (common.json) {
      writeJsonLine(io.stdout, { event: 'doctor', stun: reports, mappingVariesByServer: varies, turn, tunnels, ladder })
    } else {
      io.stdout.write(formatLadder(ladder))
    }
    return ladder.likely === 'none' ? 1 : 0
  },
}

/** A TURN server to probe, with its own credentials (from the config) and pin. */
interface DoctorTurnTarget {
  server: TurnServerSpec
  username: string | undefined
  credential: string | undefined
  certHash: string | undefined
}

/** `turn:…` / `turns:…[#CERT_HASH]` from the command line. */
function parseTurnTarget(text: string): DoctorTurnTarget {
  const hash = text.indexOf('#')
  const server = parseTurnSpec(hash < 0 ? text : text.slice(0, hash))
  const certHash = hash < 0 ? undefined : text.slice(hash + 1).trim()
  if (certHash !== undefined && server.transport !== 'tls') throw new CliUsageError(`--turn ${text}: a #CERT_HASH pin needs turns: (TLS)`)
  return { server, username: undefined, credential: undefined, certHash }
}

function formatTurnReport(report: DoctorTurnReport): string {
  const lines = [`TURN ${report.server}${report.credentials ? '' : ' (no credentials: reachability only)'}`]
  for (const t of report.transports) {
    const label = `  over ${t.transport.toUpperCase()}`.padEnd(20)
    if (t.allocated) lines.push(`${label}allocated in ${t.ms} ms, relayed address ${hostPort(t.relayed!.host, t.relayed!.port)}`)
    else if (t.reachable) lines.push(`${label}answers, but no allocation: ${t.error?.message ?? 'refused'} (${t.error?.code ?? 'unknown'})`)
    else lines.push(`${label}no: ${t.error?.message ?? 'no answer'} (${t.error?.code ?? 'unknown'})`)
  }
  return `${lines.join('\n')}\n`
}

function formatTunnelReport(report: DoctorTunnelReport): string {
  const state = report.reachable ? `reachable (HTTP ${report.status} in ${report.ms} ms)` : `no: ${report.error?.message ?? 'no answer'} (${report.error?.code ?? 'unknown'})`
  return `Tunnel ${report.server}\n  ${'reachable'.padEnd(18)}${state}\n`
}

function formatLadder(ladder: DoctorLadderVerdict): string {
  const available = ladder.available.length === 0 ? 'none' : ladder.available.join(', ')
  return `Connection ladder\n  ${'likely path'.padEnd(18)}${ladder.likely}\n  ${'available'.padEnd(18)}${available}\n  ${ladder.reason}\n`
}

/** Runs the Binding test, then RFC 5780 discovery when the server supports it. */
async function checkStunServer(spec: StunServerSpec, signal: AbortSignal | undefined): Promise<DoctorStunReport> {
  const server = formatSpec(spec)
  let address: string
  try {
    address = await resolveStunHost(spec.host, undefined, signal)
  } catch (err) {
    return { server, reachable: false, error: errorOf(err) }
  }
  const socket = dgram.createSocket(isIP(address) === 6 ? 'udp6' : 'udp4')
  try {
    socket.bind(0)
    await once(socket, 'listening')
    const endpoint = createDgramEndpoint(socket)
    const target = { host: address, port: spec.port }
    let binding
    try {
      binding = await stunBinding({ endpoint, server: target, signal, ...RETRANSMIT })
    } catch (err) {
      return { server, address, reachable: false, error: errorOf(err) }
    }
    const report: DoctorStunReport = {
      server,
      address,
      reachable: true,
      rttMs: Math.round(binding.rtt * 10) / 10,
      mapped: binding.mapped,
      rfc5780: binding.otherAddress !== undefined,
    }
    if (binding.otherAddress === undefined) return report
    try {
      const nat = await discoverNatBehavior({ endpoint, server: target, signal, ...RETRANSMIT })
      report.mapping = nat.mapping
      report.filtering = nat.filtering
    } catch (err) {
      report.error = errorOf(err)
    }
    return report
  } finally {
    socket.close()
  }
}

function mappingVariesByServer(reports: readonly DoctorStunReport[]): boolean {
  const ports = new Set(reports.flatMap((report) => (report.mapped === undefined ? [] : [`${report.mapped.family}:${report.mapped.port}`])))
  const families = new Set(reports.flatMap((report) => (report.mapped === undefined ? [] : [report.mapped.family])))
  return ports.size > families.size
}

const MAPPING_TEXT: Record<NatMappingBehavior, string> = {
  'no-nat': 'no NAT (the public address is this machine\'s own)',
  'endpoint-independent': 'endpoint-independent (easy to punch)',
  'address-dependent': 'address-dependent (hard to punch)',
  'address-and-port-dependent': 'address-and-port-dependent (symmetric: hard to punch)',
  unknown: 'unknown',
}

function formatReport(report: DoctorStunReport): string {
  const lines = [`STUN ${report.server}${report.address !== undefined ? ` (${hostPort(report.address)})` : ''}`]
  const row = (label: string, value: string) => lines.push(`  ${label.padEnd(18)}${value}`)
  if (!report.reachable) {
    row('reachable', `no: ${report.error?.message ?? 'no answer'} (${report.error?.code ?? 'unknown'})`)
    return `${lines.join('\n')}\n`
  }
  row('reachable', `yes, over UDP, rtt ${report.rttMs} ms`)
  row('public address', hostPort(report.mapped!.host, report.mapped!.port))
  if (report.rfc5780 !== true) {
    row('NAT behaviour', 'not available: the server does not support RFC 5780 (no OTHER-ADDRESS)')
  } else if (report.mapping !== undefined) {
    row('NAT mapping', MAPPING_TEXT[report.mapping])
    row('NAT filtering', report.filtering ?? 'unknown')
  } else {
    row('NAT behaviour', `failed: ${report.error?.message ?? 'unknown'} (${report.error?.code ?? 'unknown'})`)
  }
  return `${lines.join('\n')}\n`
}

function hostPort(host: string, port?: number): string {
  const shown = host.includes(':') ? `[${host}]` : host
  return port === undefined ? shown : `${shown}:${port}`
}

function formatSpec(spec: StunServerSpec): string {
  return `stun:${hostPort(spec.host, spec.port)}`
}

function errorOf(err: unknown): { code: string; message: string } {
  if (err instanceof PeerlinkError) {
    if (err.code === 'ERR_ABORTED') throw err
    return { code: err.code, message: err.message }
  }
  return { code: 'ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) }
}

