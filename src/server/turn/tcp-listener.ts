/**
 * TURN over TCP (and, through `tls-listener.ts`, TLS): each connection is one client
 * 5-tuple carrying a byte stream of STUN messages and ChannelData messages, the latter
 * padded to 4 bytes (RFC 8656 §12.5), framed with `streamFrameLength`.
 *
 * Hostile clients are contained: the receive buffer never holds more than one partial
 * frame (≤ 64 KiB + 4), a stream that is neither STUN nor ChannelData is closed,
 * connections without an allocation close after an idle time, and a client that does
 * not read loses relayed data and, past a larger backlog, its connection.
 *
 * @module
 */

import net from 'node:net'
import { SocketBindError } from '../../errors.js'
import type { AddressFamily, TransportAddress } from '../../stun/address.js'
import { streamFrameLength } from '../../stun/stream-framing.js'
import type { ChannelDataFramingOptions } from '../../stun/channel-data.js'
import { ClientLink, type ClientTransport } from './client-link.js'
import type { TurnRequestHandler } from './turn-request-handler.js'
import type { TurnServerStats } from './turn-server-stats.js'

/** A connection without an allocation is closed after this long without traffic. */
export const STREAM_IDLE_TIMEOUT_MS = 60_000
/** Relayed data is dropped while more than this is waiting to be written to the client. */
const DATA_BACKLOG = 512 * 1024
/** A connection whose client leaves more than this unread is closed. */
const CONTROL_BACKLOG = 4 * 1024 * 1024

function noop(): void {}

function family(value: string | undefined): AddressFamily {
  return value === 'IPv6' ? 'IPv6' : 'IPv4'
}

/** What a stream connection needs from its listener. */
export interface StreamContext {
  /** The control plane. */
  handler: TurnRequestHandler
  /** Counters. */
  stats: TurnServerStats
  /** ChannelData framing (RFC 5766 channel numbers). */
  framing: ChannelDataFramingOptions
  /** Idle timeout of connections without an allocation, ms. */
  idleTimeoutMs: number
}

/** A client 5-tuple over a TCP or TLS connection. */
export class StreamClientLink extends ClientLink {
  readonly #socket: net.Socket
  readonly #context: StreamContext
  #pending: Buffer | undefined

  constructor(socket: net.Socket, transport: ClientTransport, context: StreamContext) {
    super(
      transport,
      { family: family(socket.remoteFamily), host: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
      { family: family(socket.remoteFamily), host: socket.localAddress ?? '', port: socket.localPort ?? 0 },
    )
    this.#socket = socket
    this.#context = context
    context.stats.connections++
    socket.setNoDelay(true)
    socket.setTimeout(context.idleTimeoutMs)
    socket.on('data', this.#onData)
    socket.on('timeout', () => {
      if (this.allocation === undefined) socket.destroy()
    })
    socket.on('error', noop)
    socket.once('close', () => {
      this.closed = true
      this.#pending = undefined
      context.stats.connections--
      const allocation = this.allocation
      // RFC 8656 §3.1: over TCP/TLS the connection is the 5-tuple; the allocation goes with it.
      if (allocation !== undefined) void context.handler.deleteAllocation(allocation, 'connection-closed')
    })
  }

  protected onStateChange(): void {
    if (!this.closed) this.#socket.setTimeout(this.allocation === undefined ? this.#context.idleTimeoutMs : 0)
  }

  readonly #onData = (chunk: Buffer): void => {
    let buffer = chunk
    if (this.#pending !== undefined) {
      buffer = Buffer.concat([this.#pending, chunk])
      this.#pending = undefined
    }
    const { handler, stats, framing } = this.#context
    let at = 0
    while (buffer.length - at >= 4 && !this.closed) {
      let length: number
      let stun: boolean
      try {
        const frame = streamFrameLength(at === 0 ? buffer : buffer.subarray(at), framing)
        if (frame === undefined) break
        length = frame.length
        stun = frame.kind === 'stun'
      } catch {
        // Neither STUN nor ChannelData: the stream cannot be resynchronised.
        stats.malformed++
        this.close()
        return
      }
      if (buffer.length - at < length) break
      const frame = buffer.subarray(at, at + length)
      at += length
      if (stun) {
        handler.onStunFrame(this, frame)
      } else {
        const allocation = this.allocation
        if (allocation === undefined) stats.droppedPackets++
        else allocation.onChannelData(frame)
      }
    }
    // Keep only the partial frame, copied so the chunk it came in can be freed.
    if (at < buffer.length && !this.closed) this.#pending = Buffer.from(buffer.subarray(at))
  }

  sendMessage(message: Uint8Array): void {
    if (this.closed) return
    if (this.#socket.writableLength > CONTROL_BACKLOG) {
      this.close()
      return
    }
    this.#socket.write(message)
  }

  sendData(frame: Buffer): boolean {
    const socket = this.#socket
    if (this.closed || socket.writableLength > DATA_BACKLOG) return false
    socket.write(frame)
    return true
  }

  /** Closes the connection (its allocation goes with it). */
  close(): void {
    this.closed = true
    this.#socket.destroy()
  }
}

/** Listens for stream connections (a `net.Server` or a `tls.Server`) and serves TURN on them. */
export class StreamListener {
  /** The bound address. */
  readonly address: TransportAddress
  /** `'tcp'` or `'tls'`. */
  readonly transport: ClientTransport
  readonly #server: net.Server
  readonly #links = new Set<StreamClientLink>()

  /**
   * Wraps a listening server; `event` is `'connection'` (TCP) or `'secureConnection'` (TLS).
   */
  constructor(server: net.Server, transport: ClientTransport, event: 'connection' | 'secureConnection', context: StreamContext) {
    const bound = server.address() as net.AddressInfo
    this.address = { family: family(bound.family), host: bound.address, port: bound.port }
    this.transport = transport
    this.#server = server
    server.on('error', noop)
    server.on(event, (socket: net.Socket) => {
      if (socket.remoteAddress === undefined) {
        socket.destroy()
        return
      }
      const link = new StreamClientLink(socket, transport, context)
      this.#links.add(link)
      socket.once('close', () => this.#links.delete(link))
    })
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    for (const link of this.#links) link.close()
    await closed
  }
}

/** Starts listening on `host:port` with `server`; rejects with {@link SocketBindError}. */
export async function listenStream(server: net.Server, host: string, port: number, what: string): Promise<void> {
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host, port, ipv6Only: net.isIP(host) === 6, exclusive: true }, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (err) {
    throw new SocketBindError(`Cannot listen on ${what} ${host}:${port}: ${(err as Error).message}`, { cause: err })
  }
}

/** Creates a TCP listener on `host:port`. */
export async function listenTcp(host: string, port: number, context: StreamContext): Promise<StreamListener> {
  const server = net.createServer({ noDelay: true })
  await listenStream(server, host, port, 'TCP')
  return new StreamListener(server, 'tcp', 'connection', context)
}
