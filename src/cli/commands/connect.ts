/**
 * `peerlink connect PEERID`: connect to a peer by its PeerId and join the verified
 * connection to stdin/stdout, or, with `--local-port`, forward a local TCP port to it
 * (one stream per TCP connection, no new hole punch).
 *
 * @module
 */
import { type Server, type Socket, createServer } from 'node:net'
import type { Duplex } from 'node:stream'
import { CliUsageError, ConnectionClosedError, SocketBindError } from '../../errors.js'
import { publicKeyFromPeerId } from '../../identity/peer-id.js'
import type { PeerConnection } from '../../peer/peer-connection.js'
import { CONNECTION_PATHS, type ConnectOptions, type ConnectionPath } from '../../peer/peer-options.js'
import type { CliCommand } from '../command.js'
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

/** Label of the streams `--local-port` opens, one per TCP connection. */
export const LOCAL_PORT_STREAM_LABEL = 'peerlink/tcp'

/** `peerlink connect PEERID [--paths LIST] [--timeout MS] [--local-port PORT] [--beacon SPEC]... [--json]` */
export const connectCommand: CliCommand = {
  name: 'connect',
  summary: 'connect to a peer by PeerId: stdin/stdout, or forward a local TCP port (--local-port)',
  usage: `peerlink connect PEERID [--paths direct,turn,tunnel] [--timeout MS]
                [--local-port PORT] [--beacon HOST:PORT#CERT_HASH]... [--stun stun:HOST:PORT]...
                [--turn URI]... [--tunnel URL]... [--host-address IP]... [--key FILE] [--json]

Connects to the peer PEERID through the Beacons — hole punching a direct UDP path,
else through a TURN relay (--turn), else through a tunnel server (--tunnel) — and
checks that the remote proves PEERID's key, whatever the path. Then, like \`nc\`, joins stdin/stdout to
the connection: stdin's end ends our side, the remote's end is passed on; exits 0 once
both sides have ended (stdout flushed), 1 with the error code if connecting fails
(ERR_PEER_NOT_FOUND, ERR_CONNECT_FAILED, ERR_PEER_IDENTITY_MISMATCH, ...) or the
connection fails before that.

With --local-port PORT (0: any free port), listens on 127.0.0.1:PORT instead and opens
one new stream on the connection per accepted TCP connection (the listener's
--forward connects each to its target), with half-close both ways. Runs until
Ctrl-C (SIGINT) or SIGTERM (exit 0), or until the connection is lost (exit 1).

  --paths LIST       paths the connection may take, from direct,turn,tunnel (default:
                     the config's "paths", else all that are configured)
  --timeout MS       give up connecting after MS milliseconds (default 30000)
  --local-port PORT  forward 127.0.0.1:PORT to the peer instead of stdin/stdout

Ctrl-C or SIGTERM while connecting exits 1 with ERR_ABORTED; once connected, it closes
the connection and exits 0.

With --json, one JSON object per line on stderr:
  {"event":"attempt","step":"offer|answer|candidate|selected|verified|failed","peer",
   "initiator":true,"ms",...}
  {"event":"connected","path","peer","initiator":true,"local","localType","remote",
   "remoteType","rttMs","ms","iceMs","handshakeMs"}
  {"event":"local-port","address":"127.0.0.1","port","peer"}     (--local-port)
  {"event":"forward-error","peer","side":"tcp|stream","code","message"}
  {"event":"error","code","message"}

${PEER_OPTIONS_HELP}`,
  options: {
    ...PEER_OPTIONS,
    paths: { type: 'string' },
    timeout: { type: 'string' },
    'local-port': { type: 'string' },
  },
  maxPositionals: 1,
  async run({ values, positionals, common }, io) {
    if (positionals.length === 0) throw new CliUsageError('connect needs the PeerId to connect to: peerlink connect PEERID')
    const peerId = positionals[0]!
    publicKeyFromPeerId(peerId)
    const paths = values.paths === undefined ? common.config?.paths : parsePaths(String(values.paths))
    const timeout = values.timeout === undefined ? undefined : parseTimeout(String(values.timeout))
    const localPort = values['local-port'] === undefined ? undefined : parseLocalPort(String(values['local-port']))
    const report = reporter(io, common.json)
    const stop = stopRequest(io)
    let closePeer: (() => Promise<void>) | undefined
    try {
      const { peer } = await openCliPeer('connect', values, common, io, report)
      closePeer = () => peer.close()
      const options: ConnectOptions = { signal: stop.signal }
      if (paths !== undefined) options.paths = paths
      if (timeout !== undefined) options.timeout = timeout
      const conn = await peer.connect(peerId, options)
      // Whoever joins the connection handles its errors; this keeps a late one from
      // crashing the process.
      conn.on('error', () => {})
      report(...connectedEvent(conn.info))
      // The listener opens no streams of its own; refuse any.
      conn.on('stream', (stream: Duplex) => stream.destroy())
      if (localPort !== undefined) return await forwardLocalPort(conn, localPort, report, stop)
      const joined = await untilStopped(joinStdio(conn, io), stop)
      if (joined.stopped) {
        conn.destroy()
        return 0
      }
      await conn.close()
      return 0
    } finally {
      stop.dispose()
      await closePeer?.()
    }
  },
}

/** `--local-port`: one stream per TCP connection accepted on 127.0.0.1:port. */
async function forwardLocalPort(conn: PeerConnection, port: number, report: Report, stop: StopRequest): Promise<number> {
  const peer = conn.remotePeerId
  // The main stream is not used in this mode: whatever the listener's target sends on
  // it is dropped, and it is never ended (ending both sides would end the connection).
  conn.resume()
  const sockets = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    let stream: Duplex
    try {
      stream = conn.openStream({ label: LOCAL_PORT_STREAM_LABEL })
    } catch {
      socket.destroy()
      return
    }
    void joinTcp(stream, socket, {
      onError: (error, side) => {
        const code = codeOf(error)
        report({ event: 'forward-error', peer, side, code, message: error.message }, side === 'stream' ? `a forwarded connection to ${peer} failed: ${error.message} (${code})` : undefined)
      },
    })
  })
  try {
    const address = await listenTcp(server, port)
    report({ event: 'local-port', address: '127.0.0.1', port: address, peer }, `forwarding ${formatAddress('127.0.0.1', address)} to ${peer} (Ctrl-C to stop)`)
    const closed = new Promise<void>((resolve) => conn.once('close', () => resolve()))
    const outcome = await untilStopped(closed, stop)
    if (!outcome.stopped) throw new ConnectionClosedError(`The connection to ${peer} closed`)
    return 0
  } finally {
    server.close()
    for (const socket of sockets) socket.destroy()
  }
}

function listenTcp(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(new SocketBindError(`Cannot listen on 127.0.0.1:${port}: ${err.code ?? err.message}`, { cause: err }))
    server.once('error', onError)
    server.listen({ host: '127.0.0.1', port }, () => {
      server.off('error', onError)
      const address = server.address()
      resolve(typeof address === 'object' && address !== null ? address.port : port)
    })
  })
}

/**
 * Parses `--paths direct,turn,tunnel`.
 *
 * @throws CliUsageError for an unknown or missing path name.
 */
export function parsePaths(text: string): ConnectionPath[] {
  const paths = text.split(',').map((item) => item.trim()).filter((item) => item.length > 0)
  const bad = paths.find((path) => !(CONNECTION_PATHS as readonly string[]).includes(path))
  if (bad !== undefined) throw new CliUsageError(`--paths: "${bad}" is not one of ${CONNECTION_PATHS.join(', ')}`)
  if (paths.length === 0) throw new CliUsageError(`--paths must name at least one of ${CONNECTION_PATHS.join(', ')}`)
  return [...new Set(paths)] as ConnectionPath[]
}

function parseTimeout(text: string): number {
  const ms = Number(text)
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(ms) || ms <= 0) throw new CliUsageError(`--timeout must be a positive number of milliseconds, got "${text}"`)
  return ms
}

function parseLocalPort(text: string): number {
  const port = Number(text)
  if (!/^[0-9]{1,5}$/.test(text) || port > 65535) throw new CliUsageError(`--local-port must be a port number (0-65535; 0 for any free port), got "${text}"`)
  return port
}
