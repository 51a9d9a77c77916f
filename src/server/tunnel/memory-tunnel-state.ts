/**
 * The in-memory {@link TunnelState} of a single tunnel server: maps with lazy expiry.
 * Expired entries are dropped when they are looked at, and by a sweep every time the
 * number of writes since the last sweep exceeds the number of entries.
 *
 * @module
 */
import type { TunnelDeviceRecord, TunnelNameRecord, TunnelServerRecord, TunnelState } from './tunnel-state.js'

interface PortHolding {
  device: string
  expiresAt: number | null
}

/** A {@link TunnelState} in memory: one server, nothing shared, nothing persisted. */
export class MemoryTunnelState implements TunnelState {
  /** Always `'memory'`. */
  readonly kind = 'memory'
  readonly #names = new Map<string, TunnelNameRecord>()
  readonly #ports = new Map<string, PortHolding>()
  readonly #devices = new Map<string, TunnelDeviceRecord>()
  readonly #servers = new Map<string, TunnelServerRecord>()
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
    this.#ports.set(key, { device, expiresAt })
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
  }

  async listServers(): Promise<TunnelServerRecord[]> {
    const now = this.#now()
    return [...this.#servers.values()].filter((s) => s.expiresAt > now).map((s) => ({ ...s }))
  }

  async close(): Promise<void> {
    this.#names.clear()
    this.#ports.clear()
    this.#devices.clear()
    this.#servers.clear()
  }

  #live<T extends { expiresAt: number | null }>(map: Map<string, T>, key: string): T | undefined {
    const entry = map.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt !== null && entry.expiresAt <= this.#now()) {
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
    for (const map of [this.#names, this.#ports, this.#devices] as Array<Map<string, { expiresAt: number | null }>>) {
      for (const [key, entry] of map) if (entry.expiresAt !== null && entry.expiresAt <= now) map.delete(key)
    }
  }
}
