/**
 * Where a tunnel server keeps what must survive a device's disconnection and, in a
 * fleet, be shared between servers: which device holds which name, which public ports,
 * until when, and which servers are alive with how many devices.
 *
 * Every method is asynchronous so that a shared store (Redis) can implement it; the
 * server never reads-then-writes: it calls the atomic "claim if free or already mine"
 * operations, so two servers (or two sockets of one server) racing for a name or a port
 * cannot both win.
 *
 * **Expiry.** Every holding has `expiresAt`: a time in milliseconds since the epoch
 * after which it is free, or `null` while its device is online. A `null` holding lasts
 * as long as the server holding it is alive: once that server's registration (see
 * {@link TunnelState.registerServer}) has expired, or the server unregistered, its
 * `null` holdings are free. (A holding of a server that never registered lasts until
 * it is released.) When a device disconnects, the server re-claims its holdings with
 * `expiresAt = now + retention`. Expired holdings are as good as absent: `get…` never
 * returns them and `claim…` treats them as free.
 *
 * Ports belong to one server (they are bound on its machine); names and device records
 * are fleet-wide. The name table also holds the registrations of listening peers (the
 * peer path), under `@<PeerId>`, which no device name can be (names are DNS labels).
 *
 * @module
 */
import type { TunnelPortMapping } from '../../tunnel/tunnel-messages.js'

/** Who holds a name. */
export interface TunnelNameRecord {
  /** The name. */
  name: string
  /** Key of the device holding it (`peer:<PeerId>` or `token:<hash>`). */
  device: string
  /** Id of the server the device is (or was last) connected to. */
  server: string
  /** When the holding expires (ms since the epoch), `null` while the device is online. */
  expiresAt: number | null
}

/** What a server remembers of a device, to restore it when it comes back. */
export interface TunnelDeviceRecord {
  /** Key of the device (`peer:<PeerId>` or `token:<hash>`). */
  device: string
  /** Id of the server the device is (or was last) connected to. */
  server: string
  /** Its name. */
  name: string
  /** Its ports on that server. */
  ports: TunnelPortMapping[]
  /** The local port of its HTTP service, 0 for none. */
  http: number
  /** When the record expires (ms since the epoch), `null` while the device is online. */
  expiresAt: number | null
}

/** A tunnel server as the fleet registry knows it. */
export interface TunnelServerRecord {
  /** The server's id. */
  id: string
  /** The tunnel URL devices use to reach it (`wss://host:8443/`), without pin. */
  url: string
  /** Devices online there. */
  devices: number
  /** Most devices it accepts. */
  maxDevices: number
  /** When the registration expires unless refreshed (ms since the epoch). */
  expiresAt: number
  /**
   * `HOST:PORT` of its HTTP port as the other servers of the fleet reach it (they
   * forward requests for its devices there); absent when it serves no HTTP.
   */
  http?: string
}

/** The state a tunnel server keeps (see the module notes). */
export interface TunnelState {
  /** What stores it (`'memory'`, `'redis'`), for logs. */
  readonly kind: string

  /**
   * Claims `name` for `device` on `server`: succeeds when the name is free, expired, or
   * already held by `device` (on any server); the holding then becomes
   * `{ device, server, expiresAt }`.
   *
   * @returns true when the claim succeeded.
   */
  claimName(name: string, device: string, server: string, expiresAt: number | null): Promise<boolean>
  /** Frees `name` if `device` holds it through `server`; otherwise does nothing. */
  releaseName(name: string, device: string, server: string): Promise<void>
  /** Who holds `name`, or `undefined` when nobody (or the holding expired). */
  getName(name: string): Promise<TunnelNameRecord | undefined>

  /**
   * Claims public `port` of `server` for `device`: succeeds when the port is free,
   * expired, or already held by `device`.
   *
   * @returns true when the claim succeeded.
   */
  claimPort(server: string, port: number, device: string, expiresAt: number | null): Promise<boolean>
  /** Frees `port` of `server` if `device` holds it; otherwise does nothing. */
  releasePort(server: string, port: number, device: string): Promise<void>

  /** The record of `device`, or `undefined` when there is none (or it expired). */
  getDevice(device: string): Promise<TunnelDeviceRecord | undefined>
  /** Stores (replaces) the record of `record.device`. */
  putDevice(record: TunnelDeviceRecord): Promise<void>
  /** Deletes the record of `device` if it names `server`; otherwise does nothing. */
  deleteDevice(device: string, server: string): Promise<void>

  /** Registers or refreshes a server in the fleet registry. */
  registerServer(record: TunnelServerRecord): Promise<void>
  /** Removes a server from the registry; its `null` holdings are freed. */
  unregisterServer(id: string): Promise<void>
  /** The servers whose registration has not expired. */
  listServers(): Promise<TunnelServerRecord[]>

  /**
   * A 32-byte secret shared by every server using this state (created on first use):
   * the key of the fleet's server-to-server proofs.
   */
  fleetKey(): Promise<Uint8Array>

  /** Releases the store's resources (connections, timers). The server calls it on close. */
  close(): Promise<void>
}
