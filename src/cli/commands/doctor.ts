/**
 * `peerlink doctor`: what the network between this machine and the configured servers
 * looks like — UDP reachability and latency of each STUN server, the public
 * (server-reflexive) address, and, where the server supports RFC 5780, the NAT's
 * mapping and filtering behaviour.
 *
 * @module
 */
import dgram from 'node:dgram'
import { once } from 'node:events'
import { isIP } from 'node:net'
import { CliUsageError, PeerlinkError } from '../../errors.js'
import { parseStunSpec, type StunServerSpec } from '../../server-spec.js'
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

/** `peerlink doctor --stun stun:HOST:PORT [--stun …] [--json]` */
export const doctorCommand: CliCommand = {
  name: 'doctor',
  summary: 'check UDP reachability, public address and NAT behaviour against STUN servers',
  usage: `peerlink doctor [--stun stun:HOST:PORT]... [--json]

Sends STUN Binding requests from one UDP socket to each STUN server (from --stun,
repeatable, and the config's "stun" list) and prints whether it answered, the
round-trip time and this machine's public address. Where a server supports RFC 5780
(it has a second IP address: coturn with two listening IPs, or peerlink-server),
also prints the NAT's mapping and filtering behaviour (RFC 4787 terms). Different
public ports seen by different servers also reveal endpoint-dependent mapping.
Exits 0 when at least one server answered, 1 otherwise.
With --json, prints one JSON object on stdout:
  {"event":"doctor","stun":[{"server","address","reachable","rttMs","mapped",
   "rfc5780","mapping","filtering","error"}],"mappingVariesByServer":false}`,
  options: {
    stun: { type: 'string', multiple: true },
  },
  async run({ values, common }, io) {
    const given = (values.stun as string[] | undefined) ?? []
    const specs: StunServerSpec[] = [...given.map((text) => parseStunSpec(text)), ...(common.config?.stun ?? [])]
    if (specs.length === 0) {
      throw new CliUsageError('doctor needs at least one STUN server: --stun stun:HOST:PORT (or "stun" in --config)')
    }
    const reports: DoctorStunReport[] = []
    for (const spec of specs) {
      const report = await checkStunServer(spec, io.signal)
      reports.push(report)
      if (!common.json) io.stdout.write(formatReport(report))
    }
    const varies = mappingVariesByServer(reports)
    if (common.json) {
      writeJsonLine(io.stdout, { event: 'doctor', stun: reports, mappingVariesByServer: varies })
    } else if (varies) {
      io.stdout.write('Different servers saw different public ports: the NAT maps endpoint-dependently (hard to punch).\n')
    }
    return reports.some((report) => report.reachable) ? 0 : 1
  },
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

