/**
 * Minimal type declarations for `udx-native` (an untyped CommonJS package), covering only
 * what peerlink uses. Source of truth: `node_modules/udx-native/lib/*.js` (v1.21).
 *
 * These types are internal: peerlink's public API never exposes udx-native objects.
 */
declare module 'udx-native' {
  import { EventEmitter } from 'node:events'

  namespace UDX {
    /** Address of a received datagram, or a bound socket's address. */
    interface UDXAddress {
      host: string
      port: number
      family: 4 | 6
    }

    interface UDXSocketOptions {
      ipv6Only?: boolean
      reuseAddress?: boolean
    }

    /** One UDP socket; streams and raw datagrams share it. */
    interface UDXSocket extends EventEmitter {
      readonly udx: UDX
      readonly streams: Set<UDXStream>
      readonly bound: boolean
      readonly closing: boolean
      readonly idle: boolean
      readonly busy: boolean
      readonly bytesTransmitted: number
      readonly packetsTransmitted: number
      readonly bytesReceived: number
      readonly packetsReceived: number
      readonly packetsDroppedByKernel: number
      userData: unknown
      address(): UDXAddress | null
      /** Binds synchronously; throws (e.g. `EADDRINUSE`) on failure. */
      bind(port?: number, host?: string): void
      /** Resolves once the socket and all of its streams are closed. */
      close(): Promise<void>
      setTTL(ttl: number): void
      getRecvBufferSize(): number
      setRecvBufferSize(size: number): number
      getSendBufferSize(): number
      setSendBufferSize(size: number): number
      /** Resolves `true` when the datagram was sent, `false` on failure or when closing. */
      send(buffer: Uint8Array, port: number, host?: string, ttl?: number): Promise<boolean>
      trySend(buffer: Uint8Array, port: number, host?: string, ttl?: number): void
      on(event: 'message', listener: (message: Buffer, from: UDXAddress) => void): this
      on(event: 'close' | 'idle' | 'busy' | 'listening', listener: () => void): this
      off(event: 'message', listener: (message: Buffer, from: UDXAddress) => void): this
      off(event: 'close' | 'idle' | 'busy' | 'listening', listener: () => void): this
    }

    interface UDXStreamOptions {
      firewall?: (socket: UDXSocket, port: number, host: string) => boolean
      framed?: boolean
      seq?: number
    }

    /** A reliable, congestion-controlled stream (a streamx Duplex). */
    interface UDXStream extends EventEmitter {
      readonly udx: UDX
      readonly socket: UDXSocket | null
      readonly id: number
      readonly remoteId: number
      readonly remoteHost: string | null
      readonly remoteFamily: 0 | 4 | 6
      readonly remotePort: number
      readonly connected: boolean
      readonly destroyed: boolean
      readonly destroying: boolean
      readonly mtu: number
      readonly rtt: number
      readonly cwnd: number
      readonly inflight: number
      readonly bytesTransmitted: number
      readonly bytesReceived: number
      userData: unknown
      connect(socket: UDXSocket, remoteId: number, port: number, host?: string, opts?: { ack?: number }): void
      changeRemote(socket: UDXSocket, remoteId: number, port: number, host?: string): Promise<void>
      setKeepalive(timeoutMs: number): void
      flush(): Promise<boolean>
      write(data: Uint8Array): boolean
      end(data?: Uint8Array): this
      pause(): this
      resume(): this
      destroy(err?: Error | null): void
    }
  }

  /** One UDX instance (an event-loop attachment); sockets and stream ids belong to it. */
  class UDX {
    constructor()
    static isIPv4(host: string): boolean
    static isIPv6(host: string): boolean
    static isIP(host: string): 0 | 4 | 6
    readonly bytesTransmitted: number
    readonly bytesReceived: number
    createSocket(opts?: UDX.UDXSocketOptions): UDX.UDXSocket
    createStream(id: number, opts?: UDX.UDXStreamOptions): UDX.UDXStream
  }

  export = UDX
}
