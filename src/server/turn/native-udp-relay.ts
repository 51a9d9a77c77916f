/**
 * The optional native data path of the TURN server (`native/udp_relay.c`, built by
 * `npm install` when a C compiler is present): UDP sockets whose ChannelData traffic
 * on bound channels is relayed in C, without entering JavaScript.
 *
 * Why: relaying a packet in JavaScript costs two crossings between libuv and V8 (the
 * receive callback and the send) on top of the two system calls; with them the
 * reference server used about 2.3x coturn's CPU per relayed packet (`node
 * bench/turn.mjs`), with the native path about the same as coturn. See
 * `docs/turn-server.md` ("Native data path").
 *
 * When the addon is missing (no compiler at install time) or `PEERLINK_NATIVE_RELAY=0`
 * is set, {@link nativeUdpRelay} is undefined and the server relays in JavaScript on
 * udx-native sockets: the same behaviour, more CPU per packet.
 *
 * @module
 */

import { loadNativeAddon } from '../../native-addon.js'

/** An opaque native socket handle. */
export type NativeSocketHandle = object & { readonly __nativeUdpSocket: unique symbol }

/** The functions of `peerlink_udp_relay.node`. */
export interface NativeUdpRelay {
  /** A new unbound socket; `listener` sockets face clients, the others are relay sockets. */
  create(onMessage: (data: Buffer, host: string, port: number, family: 4 | 6) => void, listener: boolean): NativeSocketHandle
  /** Binds (IPv6 sockets IPv6-only) and starts receiving; returns the bound port. Throws with the system `code`. */
  bind(socket: NativeSocketHandle, host: string, port: number, bufferBytes: number): number
  /** Sends one datagram; false when closed, the address is invalid or the send failed. */
  send(socket: NativeSocketHandle, data: Uint8Array, port: number, host: string): boolean
  /** Closes the socket and drops its routes; `onClose` runs once it is closed. */
  close(socket: NativeSocketHandle, onClose: () => void): void
  /** Installs a channel route for `ttlMs`; returns its handle (slot and generation: a stale handle never reaches a later route), 0 when refused. */
  addRoute(
    listener: NativeSocketHandle,
    clientHost: string,
    clientPort: number,
    channel: number,
    relay: NativeSocketHandle,
    peerHost: string,
    peerPort: number,
    ttlMs: number,
  ): number
  /** Sets a route's remaining lifetime. */
  setRouteTtl(id: number, ttlMs: number): void
  /** Removes a route. */
  removeRoute(id: number): void
  /** Counters of the fast path through a client-facing socket since the last call (then zeroed). */
  takeStats(socket: NativeSocketHandle): [number, number, number, number, number]
  /** Routes installed in this process (or worker). */
  routeCount(): number
  /** Sockets created and not yet asked to close in this process (or worker): for leak checks. */
  openSockets(): number
}

/** The native data path, or undefined when it is not built or disabled. */
export const nativeUdpRelay: NativeUdpRelay | undefined = loadNativeAddon<NativeUdpRelay>('peerlink_udp_relay', 'PEERLINK_NATIVE_RELAY')
