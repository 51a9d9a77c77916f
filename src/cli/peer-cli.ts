/**
 * What `peerlink listen` and `peerlink connect` share: the peer options (`--beacon`,
 * `--stun`, `--turn`, `--tunnel`, `--host-address`), building the {@link Peer} from them and the config file,
 * the event lines on stderr (JSON with `--json`), and stopping on SIGINT/SIGTERM.
 *
 * @module
 */
import { isIP } from 'node:net'
import { AbortError, CliUsageError, PeerlinkError } from '../errors.js'
import { loadOrCreateIdentityFile } from '../identity/key-file.js'
import type { Peer } from '../peer/peer.js'
import { createPeer } from '../peer/peer.js'
import type { AttemptEvent, ConnectionInfo, PeerOptions } from '../peer/peer-options.js'
import type { PeerTurnServer } from '../peer/turn-relays.js'
import { type BeaconServerSpec, type TunnelServerSpec, formatServerSpec, parseBeaconSpec, parseStunSpec, parseTunnelSpec, parseTurnSpec } from '../server-spec.js'
import type { CliOptionValues, CliOptionsConfig, CommonOptions } from './command.js'
import { type CliIo, writeJsonLine } from './io.js'

/** `parseArgs` definitions of the options every peer command takes. */
export const PEER_OPTIONS = {
  beacon: { type: 'string', multiple: true },
  stun: { type: 'string', multiple: true },
  'host-address': { type: 'string', multiple: true },
  turn: { type: 'string', multiple: true },
  'turn-user': { type: 'string' },
  'turn-pass': { type: 'string' },
  'turn-secret': { type: 'string' },
  tunnel: { type: 'string', multiple: true },
  'tunnel-token': { type: 'string' },
} as const satisfies CliOptionsConfig

/** Help text of {@link PEER_OPTIONS}. */
export const PEER_OPTIONS_HELP = `Peer options:
  --beacon HOST:PORT#CERT_HASH   a Beacon (repeatable; the config's "beacons" are added;
                                 without #CERT_HASH the certificate is checked against CAs)
  --stun stun:HOST:PORT          a STUN server for the public address (repeatable; the
                                 config's "stun" are added; Beacons answer STUN as well)
  --turn URI                     a TURN relay, turn:HOST:PORT[?transport=tcp] or
                                 turns:HOST:PORT[#CERT_HASH] (repeatable; the config's
                                 "turn" are added), with --turn-user U --turn-pass P or
                                 --turn-secret S (TURN REST API secret)
  --tunnel URL                   a tunnel server, wss://HOST:PORT[#CERT_HASH] (repeatable;
                                 the config's "tunnels" are added): the last step of the
                                 ladder; a listener also registers there
  --tunnel-token T               the tunnel server's device token, if it wants one
  --host-address IP              offer only this local address as a host candidate
                                 (repeatable; loopback allowed): for tests and NAT labs,
                                 e.g. --host-address 127.0.0.1; default: every non-internal
                                 interface`

/** One event line: the JSON object for `--json`, and the human text (none: not shown). */
export type Report = (event: { event: string } & Record<string, unknown>, text?: string) => void

/** A {@link Report} writing to `io.stderr`: JSON lines with `json`, else `peerlink: text` lines. */
export function reporter(io: CliIo, json: boolean): Report {
  return (event, text) => {
    if (json) writeJsonLine(io.stderr, event)
    else if (text !== undefined) io.stderr.write(`peerlink: ${text}\n`)
  }
}

/** A peer built from the command line and config, and where its key came from. */
export interface CliPeer {
  /** The peer (its socket bound, its Beacons connecting). */
  readonly peer: Peer
  /** The Beacons it uses, as written. */
  readonly beacons: readonly string[]
}

/**
 * Builds a {@link Peer} from `--beacon`, `--stun`, `--host-address`, the config file and
 * the key file (created when missing, with a `key-created` event). Reports every step of
 * its connection attempts (`attempt` events, `--json` only) and failed incoming attempts.
 *
 * @param command - the command name, for messages.
 * @throws CliUsageError when no Beacon is configured or an option is malformed.
 */
export async function openCliPeer(
  command: string,
  values: CliOptionValues,
  common: CommonOptions,
  io: CliIo,
  report: Report,
): Promise<CliPeer> {
  const beaconSpecs: BeaconServerSpec[] = [...strings(values.beacon).map((text) => parseBeaconSpec(text)), ...(common.config?.beacons ?? [])]
  const tunnels: TunnelServerSpec[] = [...strings(values.tunnel).map((text) => parseTunnelSpec(text)), ...(common.config?.tunnels ?? [])]
  if (beaconSpecs.length === 0 && tunnels.length === 0) {
    throw new CliUsageError(`${command} needs a Beacon: --beacon HOST:PORT#CERT_HASH (or "beacons" in --config), or a tunnel server: --tunnel wss://HOST:PORT#CERT_HASH`)
  }
  const turn = turnServers(values, common)
  const stun = [...strings(values.stun).map((text) => parseStunSpec(text)), ...(common.config?.stun ?? [])].map((spec) => ({ host: spec.host, port: spec.port }))
  const hostAddresses = strings(values['host-address'])
  for (const address of hostAddresses) {
    if (isIP(address) === 0) throw new CliUsageError(`--host-address: "${address}" is not an IP address`)
  }
  const loaded = await loadOrCreateIdentityFile(common.keyFile, io.signal === undefined ? {} : { signal: io.signal })
  if (loaded.created) {
    report(
      { event: 'key-created', keyFile: loaded.path, peerId: loaded.identity.peerId },
      `created a new identity in ${loaded.path} (keep this file private and backed up)`,
    )
  }
  const options: PeerOptions = { identity: loaded.identity, beacons: beaconSpecs, stun, turn, tunnels }
  if (typeof values['tunnel-token'] === 'string') options.tunnel = { token: values['tunnel-token'] }
  if (hostAddresses.length > 0) {
    options.gather = { hostAddresses, includeLoopback: true }
    // An IPv6 host candidate needs a socket that receives IPv6 (dual-stack).
    if (hostAddresses.some((address) => isIP(address) === 6)) options.host = '::'
  }
  const peer = await createPeer(options)
  peer.on('attempt', (event: AttemptEvent) => report(attemptEvent(event)))
  peer.on('incoming-error', (error, peerId) => {
    const code = error instanceof PeerlinkError ? error.code : 'ERR_INTERNAL'
    report({ event: 'incoming-error', peer: peerId, code, message: error.message }, `incoming connection from ${peerId} failed: ${error.message} (${code})`)
  })
  return { peer, beacons: beaconSpecs.map(formatServerSpec) }
}

/** The `--json` line of an attempt step: `{"event":"attempt","step","peer","initiator","ms",…details}`. */
export function attemptEvent(event: AttemptEvent): { event: string } & Record<string, unknown> {
  return { ...event.detail, event: 'attempt', step: event.step, peer: event.peerId, initiator: event.initiator, ms: event.ms }
}

/**
 * The `connected` event of a verified connection:
 * `{"event":"connected","path","peer","initiator","local","localType","remote","remoteType","rttMs","ms","iceMs","handshakeMs"}`
 * and its human line.
 */
export function connectedEvent(info: ConnectionInfo): [{ event: string } & Record<string, unknown>, string] {
  const local = formatAddress(info.local.address, info.local.port)
  const remote = formatAddress(info.remote.address, info.remote.port)
  const event = {
    event: 'connected',
    path: info.path,
    peer: info.remotePeerId,
    initiator: info.initiator,
    local,
    localType: info.local.type,
    remote,
    remoteType: info.remote.type,
    rttMs: info.rttMs === undefined ? undefined : Math.round(info.rttMs * 10) / 10,
    ms: info.ms,
    iceMs: info.phases.iceMs,
    handshakeMs: info.phases.handshakeMs,
  }
  const text = `${info.initiator ? 'connected to' : 'connection from'} ${info.remotePeerId} (${info.path}, ${local} -> ${remote}, ${info.ms} ms)`
  return [event, text]
}

/** `HOST:PORT`, with brackets around an IPv6 address. */
export function formatAddress(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`
}

/** A request to stop the command: SIGINT, SIGTERM or `io.signal`. */
export interface StopRequest {
  /** Aborted when a stop is requested. */
  readonly signal: AbortSignal
  /** Resolves when a stop is requested. */
  readonly stopped: Promise<void>
  /** Stops listening for SIGINT/SIGTERM and `io.signal`. */
  dispose(): void
}

/** Listens for SIGINT, SIGTERM and `io.signal` until `dispose()`. */
export function stopRequest(io: CliIo): StopRequest {
  const controller = new AbortController()
  const stopped = new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }))
  const stop = (): void => controller.abort(new AbortError('Stopped by a signal'))
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']
  for (const signal of signals) process.once(signal, stop)
  if (io.signal?.aborted === true) stop()
  io.signal?.addEventListener('abort', stop, { once: true })
  return {
    signal: controller.signal,
    stopped,
    dispose: () => {
      for (const signal of signals) process.off(signal, stop)
      io.signal?.removeEventListener('abort', stop)
    },
  }
}

/**
 * Waits for `promise` or a stop, whichever comes first: `{ stopped: true }` on a stop
 * (a later rejection of `promise` is then ignored), else `promise`'s value or rejection.
 */
export async function untilStopped<T>(promise: Promise<T>, stop: StopRequest): Promise<{ stopped: true } | { stopped: false; value: T }> {
  promise.catch(() => {})
  return Promise.race([promise.then((value) => ({ stopped: false as const, value })), stop.stopped.then(() => ({ stopped: true as const }))])
}

/** The error code of anything thrown. */
export function codeOf(err: unknown): string {
  return err instanceof PeerlinkError ? err.code : typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'ERR_INTERNAL'
}

function strings(value: CliOptionValues[string]): string[] {
  if (value === undefined) return []
  return (Array.isArray(value) ? value : [value]).filter((item): item is string => typeof item === 'string')
}

/** TURN servers from `--turn` (with `--turn-user/--turn-pass` or `--turn-secret`) and the config's `turn`. */
function turnServers(values: CliOptionValues, common: CommonOptions): PeerTurnServer[] {
  const user = values['turn-user'] as string | undefined
  const pass = values['turn-pass'] as string | undefined
  const secret = values['turn-secret'] as string | undefined
  if ((user === undefined) !== (pass === undefined) && secret === undefined) throw new CliUsageError('--turn-user and --turn-pass go together (or use --turn-secret)')
  const fromCli: PeerTurnServer[] = strings(values.turn).map((text) => {
    const hash = text.indexOf('#')
    const spec = parseTurnSpec(hash < 0 ? text : text.slice(0, hash))
    if (hash >= 0 && spec.transport !== 'tls') throw new CliUsageError(`--turn ${text}: a #CERT_HASH pin needs turns: (TLS)`)
    if (user === undefined && secret === undefined) throw new CliUsageError(`--turn ${text} needs credentials: --turn-user U --turn-pass P, or --turn-secret S`)
    return {
      urls: text,
      ...(user === undefined ? {} : { username: user }),
      ...(pass === undefined ? {} : { credential: pass }),
      ...(secret === undefined ? {} : { secret }),
    }
  })
  const fromConfig: PeerTurnServer[] = (common.config?.turn ?? []).map((entry) => ({
    urls: formatServerSpec(entry.server),
    ...(entry.username === undefined ? {} : { username: entry.username }),
    ...(entry.credential === undefined ? {} : { credential: entry.credential }),
  }))
  return [...fromCli, ...fromConfig]
}
