/**
 * The in-memory {@link TunnelState} of a single tunnel server: maps with lazy expiry.
 * Expired entries are dropped when they are looked at, and by a sweep every time the
 * number of writes since the last sweep exceeds the number of entries. A `null`
 * holding is dropped the same way once its server's registration has expired, and at
 * once when its server unregisters.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import type { TunnelDeviceRecord, TunnelNameRecord, TunnelServerRecord, TunnelState } from './tunnel-state.js'

interface PortHolding {
  device: string
  server: string
  expiresAt: number | null
}

type Holding = { server: string; expiresAt: number | null }

/**
 * A {@link TunnelState} in memory: nothing persisted; shared only by servers of one process.
 *
 * @example
 * ```ts
 * import { MemoryTunnelState, TunnelServer } from 'peerlink/server'
 *
 * // Two tunnel servers in one process sharing names and ports (the default is one state per server).
 * const state = new MemoryTunnelState()
 * const a = await TunnelServer.listen({ tls: { cert, key }, controlPort: 0, httpPort: 0, allowPorts: '20000-20999', state })
 * const b = await TunnelServer.listen({ tls: { cert, key }, controlPort: 0, httpPort: 0, allowPorts: '21000-21999', state })
 * ```
 */
export class MemoryTunnelState implements TunnelState {
  /** Always `'memory'`. */
  readonly kind = 'memory'
  readonly #names = new Map<string, TunnelNameRecord>()
  readonly #ports = new Map<string, PortHolding>()
  readonly #devices = new Map<string, TunnelDeviceRecord>()
  readonly #servers = new Map<string, TunnelServerRecord>()
  readonly #key = new Uint8Array(randomBytes(32))
  readonly #now: () => number
  #writes = 0

  /** @param now - the clock (ms since the epoch); tests pass their own. */
  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  async claimName(name: string, device: string, server: string, expiresAt: number | null): Promise<boolean> {
    const held = this.#live(this.#names, name)
    if (held !== undefined && held.device !== device) return false
    this.#names.set(name, { name, device, server, expiresAt })
    this.#wrote()
    return true
  }

  async releaseName(name: string, device: string, server: string): Promise<void> {
    const held = this.#names.get(name)
    if (held !== undefined && held.device === device && held.server === server) this.#names.delete(name)
  }

  async getName(name: string): Promise<TunnelNameRecord | undefined> {
    const held = this.#live(this.#names, name)
    return held === undefined ? undefined : { ...held }
  }

  async claimPort(server: string, port: number, device: string, expiresAt: number | null): Promise<boolean> {
    const key = `${server}:${port}`
    const held = this.#live(this.#ports, key)
    if (held !== undefined && held.device !== device) return false
    this.#ports.set(key, { device, server, expiresAt })
    this.#wrote()
    return true
  }

  async releasePort(server: string, port: number, device: string): Promise<void> {
    const key = `${server}:${port}`
    if (this.#ports.get(key)?.device === device) this.#ports.delete(key)
  }

  async getDevice(device: string): Promise<TunnelDeviceRecord | undefined> {
    const record = this.#live(this.#devices, device)
    return record === undefined ? undefined : { ...record, ports: record.ports.map((p) => ({ ...p })) }
  }

  async putDevice(record: TunnelDeviceRecord): Promise<void> {
    this.#devices.set(record.device, { ...record, ports: record.ports.map((p) => ({ ...p })) })
    this.#wrote()
  }

  async deleteDevice(device: string, server: string): Promise<void> {
    if (this.#devices.get(device)?.server === server) this.#devices.delete(device)
  }

  async registerServer(record: TunnelServerRecord): Promise<void> {
    this.#servers.set(record.id, { ...record })
  }

  async unregisterServer(id: string): Promise<void> {
    this.#servers.delete(id)
    this.#dropHoldingsOf(id)
  }

  async listServers(): Promise<TunnelServerRecord[]> {
    const now = this.#now()
    const live: TunnelServerRecord[] = []
    for (const record of [...this.#servers.values()]) {
      if (record.expiresAt > now) live.push({ ...record })
      else {
        this.#servers.delete(record.id)
        this.#dropHoldingsOf(record.id)
      }
    }
    return live
  }

  async fleetKey(): Promise<Uint8Array> {
    return new Uint8Array(this.#key)
  }

  async close(): Promise<void> {
    this.#names.clear()
    this.#ports.clear()
    this.#devices.clear()
    this.#servers.clear()
  }

  /** Frees the `null` holdings of server `id` (it stopped, or its registration expired). */
  #dropHoldingsOf(id: string): void {
    for (const map of this.#maps()) {
      for (const [key, entry] of map) if (entry.expiresAt === null && entry.server === id) map.delete(key)
    }
  }

  #maps(): Array<Map<string, Holding>> {
    return [this.#names, this.#ports, this.#devices]
  }

  #expired(entry: Holding, now: number): boolean {
    if (entry.expiresAt !== null) return entry.expiresAt <= now
    const server = this.#servers.get(entry.server)
    return server !== undefined && server.expiresAt <= now
  }

  #live<T extends Holding>(map: Map<string, T>, key: string): T | undefined {
    const entry = map.get(key)
    if (entry === undefined) return undefined
    if (this.#expired(entry, this.#now())) {
      map.delete(key)
      return undefined
    }
    return entry
  }

  #wrote(): void {
    const size = this.#names.size + this.#ports.size + this.#devices.size
    if (++this.#writes <= size) return
    this.#writes = 0
    const now = this.#now()
    for (const map of this.#maps()) {
      for (const [key, entry] of map) if (this.#expired(entry, now)) map.delete(key)
    }
  }
}
