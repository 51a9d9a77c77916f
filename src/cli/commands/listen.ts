/**
 * `peerlink listen`: make this peer reachable by its PeerId and accept verified
 * connections: the first one joined to stdin/stdout (like `nc -l`), or, with
 * `--forward HOST:PORT`, every stream of every connection forwarded to a TCP service.
 *
 * @module
 */
import { connect as tcpConnect, isIP } from 'node:net'
import type { Duplex } from 'node:stream'
import type { MuxStream } from '../../connection/mux-stream.js'
import { CliUsageError } from '../../errors.js'
import type { PeerConnection } from '../../peer/peer-connection.js'
import type { CliCommand } from '../command.js'
import type { CliIo } from '../io.js'
import {
  PEER_OPTIONS,
  PEER_OPTIONS_HELP,
  type Report,
  type StopRequest,
  codeOf,
  connectedEvent,
  formatAddress,
  openCliPeer,
  reporter,
  stopRequest,
  untilStopped,
} from '../peer-cli.js'
import { joinStdio, joinTcp } from '../stream-join.js'

/** A TCP service to forward to. */
export interface ForwardTarget {
  /** Host name or IP address. */
  readonly host: string
  /** TCP port. */
  readonly port: number
}

/** `peerlink listen [--forward HOST:PORT] [--beacon SPEC]... [--stun URL]... [--json]` */
export const listenCommand: CliCommand = {
  name: 'listen',
  summary: 'accept verified connections: the first on stdin/stdout, or each forwarded to HOST:PORT',
  usage: `peerlink listen [--forward HOST:PORT] [--beacon HOST:PORT#CERT_HASH]...
                [--stun stun:HOST:PORT]... [--turn URI]... [--tunnel URL]...
                [--host-address IP]... [--key FILE] [--json]

Registers this peer's PeerId at the Beacons (and the tunnel servers, if any), prints the PeerId as the first line of
stdout (with --json: in the "listening" event on stderr instead), and accepts
connections whose remote proved its PeerId.

Without --forward, like \`nc -l\`: the first connection is joined to stdin/stdout
(stdin's end ends our side; the remote's end is passed on), later ones are closed at
once. Exits 0 once both sides have ended, 1 if the connection fails first; Ctrl-C
(SIGINT) or SIGTERM stops it at any time (exit 0).

With --forward HOST:PORT, every connection's main stream, and every stream the remote
opens (\`peerlink connect --local-port\` opens one per TCP connection), is piped to a
new TCP connection to HOST:PORT, with half-close both ways; an error closes just that
stream (the main stream is ended rather than reset, so the connection's other streams
live on). Runs until Ctrl-C (SIGINT) or SIGTERM, then closes everything and exits 0.
Any peer that knows the PeerId can connect: forward only what you would expose.

With --json, one JSON object per line on stderr:
  {"event":"listening","peer","beacons","forward"}
  {"event":"attempt","step":"offer|answer|candidate|selected|verified|failed","peer",
   "initiator":false,"ms",...}
  {"event":"connected","path","peer","initiator":false,"local","localType","remote",
   "remoteType","rttMs","ms","iceMs","handshakeMs"}
  {"event":"refused","peer","reason":"busy"}   {"event":"closed","peer"}
  {"event":"forward-error","peer","stream","side":"tcp|stream","code","message"}
  {"event":"incoming-error","peer","code","message"}

${PEER_OPTIONS_HELP}`,
  options: {
    ...PEER_OPTIONS,
    forward: { type: 'string' },
  },
  async run({ values, common }, io) {
    const forward = values.forward === undefined ? undefined : parseForwardTarget(String(values.forward))
    const report = reporter(io, common.json)
    const stop = stopRequest(io)
    let closePeer: (() => Promise<void>) | undefined
    try {
      const { peer, beacons } = await openCliPeer('listen', values, common, io, report)
      closePeer = () => peer.close()
      const first = new Promise<PeerConnection>((resolve) => {
        let taken = false
        peer.on('connection', (conn) => {
          // Whoever joins the connection handles its errors; this keeps a late one
          // (after the joiner is done) from crashing the process.
          conn.on('error', () => {})
          if (forward !== undefined) {
            serveForward(conn, forward, report)
          } else if (taken) {
            report({ event: 'refused', peer: conn.remotePeerId, reason: 'busy' }, `refused a connection from ${conn.remotePeerId}: already connected`)
            conn.destroy()
          } else {
            taken = true
            resolve(conn)
          }
        })
      })
      const listening = await untilStopped(peer.listen({ signal: stop.signal }), stop)
      if (listening.stopped) return 0
      if (common.json) {
        report({ event: 'listening', peer: peer.peerId, beacons, ...(forward === undefined ? {} : { forward: formatAddress(forward.host, forward.port) }) })
      } else {
        io.stdout.write(`${peer.peerId}\n`)
        const what = forward === undefined ? 'the first connection joins stdin/stdout' : `forwarding to ${formatAddress(forward.host, forward.port)}`
        report({ event: 'listening' }, `listening as ${peer.peerId} (${what}; Ctrl-C to stop)`)
      }
      if (forward !== undefined) {
        await stop.stopped
        return 0
      }
      return await serveStdio(first, io, report, stop)
    } finally {
      stop.dispose()
      await closePeer?.()
    }
  },
}

/** `nc -l` mode: the first connection joined to stdin/stdout. */
async function serveStdio(first: Promise<PeerConnection>, io: CliIo, report: Report, stop: StopRequest): Promise<number> {
  const accepted = await untilStopped(first, stop)
  if (accepted.stopped) return 0
  const conn = accepted.value
  report(...connectedEvent(conn.info))
  conn.on('stream', (stream: Duplex) => stream.destroy())
  const joined = await untilStopped(joinStdio(conn, io), stop)
  if (joined.stopped) {
    conn.destroy()
    return 0
  }
  await conn.close()
  return 0
}

/** `--forward` mode: the main stream and every stream the remote opens, each to a new TCP connection. */
function serveForward(conn: PeerConnection, target: ForwardTarget, report: Report): void {
  const peer = conn.remotePeerId
  report(...connectedEvent(conn.info))
  const open = (stream: Duplex, label: string, main: boolean): void => {
    const socket = tcpConnect({ host: target.host, port: target.port, allowHalfOpen: true })
    void joinTcp(stream, socket, {
      onTcpError: main ? 'end' : 'reset',
      onError: (error, side) => {
        const code = codeOf(error)
        report(
          { event: 'forward-error', peer, stream: label, side, code, message: error.message },
          side === 'tcp' ? `forwarding a stream from ${peer} to ${formatAddress(target.host, target.port)}: ${error.message} (${code})` : undefined,
        )
      },
    })
  }
  open(conn, 'main', true)
  conn.on('stream', (stream: MuxStream) => open(stream, stream.label, false))
  conn.once('close', () => report({ event: 'closed', peer }, `connection from ${peer} closed`))
}

/**
 * Parses `HOST:PORT` (IPv6 in brackets: `[::1]:8080`).
 *
 * @throws CliUsageError when it is not one.
 */
export function parseForwardTarget(text: string): ForwardTarget {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(text.trim())
  const port = Number(match?.[2])
  if (match === null || port < 1 || port > 65535) throw new CliUsageError(`--forward: "${text}" is not HOST:PORT (port 1-65535)`)
  const host = match[1]!.replace(/^\[(.*)\]$/, '$1')
  if (match[1]!.startsWith('[') && isIP(host) !== 6) throw new CliUsageError(`--forward: ${host} is not an IPv6 address`)
  return { host, port }
}
