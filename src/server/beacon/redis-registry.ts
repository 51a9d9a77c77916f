/**
 * A fleet of Beacon instances sharing registrations through Redis (`ioredis`, loaded
 * with a dynamic `import()` only when a `redis` URL is configured).
 *
 * Keys (under a prefix, `peerlink:beacon:` by default):
 *
 * | key | type | what |
 * |---|---|---|
 * | `i:<instance>` | string, `PX` ttl | liveness of an instance, refreshed every ttl/3 |
 * | `k:<registry key>` | hash | field `<instance>/<session>` → MessagePack entry |
 * | channel `f:<instance>` | pub/sub | envelopes forwarded to sessions of that instance |
 *
 * A lookup ignores (and deletes) the fields of instances whose liveness key has
 * expired: an instance that dies loses its registrations within `ttlMs`, without anyone
 * removing them. `PUBLISH` reports how many subscribers got a message, so forwarding to
 * a dead instance is noticed at once. Hash keys expire after `keyTtlMs` unless an
 * instance with registrations in them refreshes them. After Redis restarts (and loses
 * its data), each instance writes its registrations again on reconnect.
 *
 * @module
 */
import { decode, encode } from '@msgpack/msgpack'
import type { Redis as RedisClient } from 'ioredis'
import { isIP } from 'node:net'
import { InvalidArgumentError } from '../../errors.js'
import type { TransportAddress } from '../../stun/address.js'
import type { BeaconRegistry, RegistryEntry, RegistryRecord } from './registry.js'

/** Options of {@link RedisRegistry.connect}. */
export interface RedisRegistryOptions {
  /** `redis://[[user]:password@]host[:port][/db]` or `rediss://…`. */
  url: string
  /** This instance's id, unique in the fleet. */
  instanceId: string
  /**
   * Prefix of every key and channel.
   * @default 'peerlink:beacon:'
   */
  prefix?: string
  /**
   * Milliseconds an instance's registrations outlive its last liveness refresh.
   * @default 10_000
   */
  ttlMs?: number
  /**
   * Milliseconds a registration hash outlives its last refresh (garbage collection of
   * hashes only dead instances wrote to).
   * @default 3_600_000
   */
  keyTtlMs?: number
  /**
   * Called with Redis errors (connection lost, command failed); they are otherwise retried or reported to clients.
   * @default undefined (ignored)
   */
  onError?: (error: Error) => void
  /**
   * Milliseconds to wait for the first connection to Redis.
   * @default 10_000
   */
  connectTimeout?: number
}

type Envelope = (envelope: Uint8Array) => void

/** {@link BeaconRegistry} in Redis, shared by every instance of a fleet. */
export class RedisRegistry implements BeaconRegistry {
  readonly instanceId: string
  readonly kind = 'redis' as const
  readonly #cmd: RedisClient
  readonly #sub: RedisClient
  readonly #prefix: string
  readonly #ttlMs: number
  readonly #keyTtlMs: number
  readonly #onError: (error: Error) => void
  /** This instance's registrations, to refresh and to write again after Redis lost them. */
  readonly #own = new Map<string, Map<number, Buffer>>()
  readonly #timers: Array<ReturnType<typeof setInterval>> = []
  #handler: Envelope = () => {}
  #closing: Promise<void> | undefined

  private constructor(cmd: RedisClient, sub: RedisClient, options: Required<Omit<RedisRegistryOptions, 'url' | 'connectTimeout'>>) {
    this.#cmd = cmd
    this.#sub = sub
    this.instanceId = options.instanceId
    this.#prefix = options.prefix
    this.#ttlMs = options.ttlMs
    this.#keyTtlMs = options.keyTtlMs
    this.#onError = options.onError
  }

  /**
   * Connects to Redis (two connections: commands and pub/sub), marks this instance
   * alive and subscribes to its channel.
   *
   * @throws {@link InvalidArgumentError} for a bad URL or option.
   * @throws `Error` (rejects) when Redis cannot be reached.
   */
  static async connect(options: RedisRegistryOptions): Promise<RedisRegistry> {
    const { url, instanceId } = options
    if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) throw new InvalidArgumentError('redis must be a redis:// or rediss:// URL')
    if (typeof instanceId !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(instanceId)) {
      throw new InvalidArgumentError('instanceId must be 1 to 64 characters of A-Z a-z 0-9 _ . -')
    }
    const ttlMs = options.ttlMs ?? 10_000
    const keyTtlMs = options.keyTtlMs ?? 3_600_000
    if (!Number.isInteger(ttlMs) || ttlMs < 300) throw new InvalidArgumentError('ttlMs must be an integer of at least 300')
    if (!Number.isInteger(keyTtlMs) || keyTtlMs < ttlMs) throw new InvalidArgumentError('keyTtlMs must be an integer of at least ttlMs')
    const onError = options.onError ?? (() => {})
    const { Redis } = await import('ioredis')
    const clientOptions = {
      lazyConnect: true,
      // Fail commands at once while disconnected: clients get `unavailable` and retry,
      // rather than a Beacon queueing without bound.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: options.connectTimeout ?? 10_000,
      retryStrategy: (times: number) => Math.min(100 * times, 2_000),
    }
    const cmd = new Redis(url, clientOptions)
    const sub = new Redis(url, clientOptions)
    cmd.on('error', onError)
    sub.on('error', onError)
    const registry = new RedisRegistry(cmd, sub, { instanceId, prefix: options.prefix ?? 'peerlink:beacon:', ttlMs, keyTtlMs, onError })
    try {
      await Promise.all([cmd.connect(), sub.connect()])
      await registry.#markAlive()
      sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => registry.#handler(message))
      await sub.subscribe(registry.#channel(instanceId))
    } catch (err) {
      cmd.disconnect()
      sub.disconnect()
      throw err
    }
    registry.#start()
    return registry
  }

  #channel(instance: string): string {
    return `${this.#prefix}f:${instance}`
  }

  #aliveKey(instance: string): string {
    return `${this.#prefix}i:${instance}`
  }

  #hashKey(key: string): string {
    return `${this.#prefix}k:${key}`
  }

  #field(session: number): string {
    return `${this.instanceId}/${session}`
  }

  async #markAlive(): Promise<void> {
    await this.#cmd.set(this.#aliveKey(this.instanceId), '1', 'PX', this.#ttlMs)
  }

  #start(): void {
    // Called on reconnects only (the first connection is made before): Redis may have
    // restarted without our data, so write it again.
    this.#cmd.on('ready', () => this.#rewrite().catch(this.#onError))
    this.#timers.push(setInterval(() => this.#markAlive().catch(this.#onError), Math.floor(this.#ttlMs / 3)))
    this.#timers.push(setInterval(() => this.#refreshKeys().catch(this.#onError), Math.floor(this.#keyTtlMs / 3)))
  }

  async #rewrite(): Promise<void> {
    const pipeline = this.#cmd.pipeline()
    pipeline.set(this.#aliveKey(this.instanceId), '1', 'PX', this.#ttlMs)
    for (const [key, sessions] of this.#own) {
      for (const [session, value] of sessions) pipeline.hset(this.#hashKey(key), this.#field(session), value)
      pipeline.pexpire(this.#hashKey(key), this.#keyTtlMs)
    }
    await pipeline.exec()
  }

  async #refreshKeys(): Promise<void> {
    let pipeline = this.#cmd.pipeline()
    let n = 0
    for (const key of this.#own.keys()) {
      pipeline.pexpire(this.#hashKey(key), this.#keyTtlMs)
      if (++n % 1000 === 0) {
        await pipeline.exec()
        pipeline = this.#cmd.pipeline()
      }
    }
    if (n % 1000 !== 0) await pipeline.exec()
  }

  async add(key: string, session: number, entry: RegistryEntry): Promise<void> {
    const value = encodeEntry(entry)
    let sessions = this.#own.get(key)
    if (sessions === undefined) {
      sessions = new Map()
      this.#own.set(key, sessions)
    }
    sessions.set(session, value)
    const results = await this.#cmd
      .multi()
      .hset(this.#hashKey(key), this.#field(session), value)
      .pexpire(this.#hashKey(key), this.#keyTtlMs)
      .exec()
    for (const [err] of results ?? []) if (err) throw err
  }

  async remove(key: string, session: number): Promise<void> {
    const sessions = this.#own.get(key)
    if (sessions !== undefined && sessions.delete(session) && sessions.size === 0) this.#own.delete(key)
    await this.#cmd.hdel(this.#hashKey(key), this.#field(session))
  }

  async lookup(key: string, limit: number): Promise<RegistryRecord[]> {
    if (limit <= 0) return []
    const hash = await this.#cmd.hgetallBuffer(this.#hashKey(key))
    const found: Array<{ field: string; instance: string; session: number; value: Buffer }> = []
    for (const [field, value] of Object.entries(hash)) {
      const slash = field.lastIndexOf('/')
      const session = Number(field.slice(slash + 1))
      if (slash <= 0 || !Number.isSafeInteger(session)) continue
      found.push({ field, instance: field.slice(0, slash), session, value })
    }
    const others = [...new Set(found.map((f) => f.instance).filter((i) => i !== this.instanceId))]
    const alive = new Set([this.instanceId])
    if (others.length > 0) {
      const flags = await this.#cmd.mget(others.map((i) => this.#aliveKey(i)))
      others.forEach((instance, i) => {
        if (flags[i] !== null) alive.add(instance)
      })
    }
    const records: RegistryRecord[] = []
    const dead: string[] = []
    for (const f of found) {
      const entry = alive.has(f.instance) ? decodeEntry(f.value) : undefined
      if (entry === undefined) dead.push(f.field)
      else records.push({ instance: f.instance, session: f.session, entry })
    }
    // The instance died (its liveness key expired): its registrations are gone.
    if (dead.length > 0) this.#cmd.hdel(this.#hashKey(key), ...dead).catch(this.#onError)
    records.sort((a, b) => b.entry.at - a.entry.at)
    return records.slice(0, limit)
  }

  async forget(record: RegistryRecord, key: string): Promise<void> {
    await this.#cmd.hdel(this.#hashKey(key), `${record.instance}/${record.session}`)
  }

  async forward(instance: string, envelope: Uint8Array): Promise<boolean> {
    const receivers = await this.#cmd.publish(this.#channel(instance), Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength))
    return receivers > 0
  }

  onForward(handler: Envelope): void {
    this.#handler = handler
  }

  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer)
    try {
      const pipeline = this.#cmd.pipeline()
      for (const [key, sessions] of this.#own) {
        for (const session of sessions.keys()) pipeline.hdel(this.#hashKey(key), this.#field(session))
      }
      pipeline.del(this.#aliveKey(this.instanceId))
      await withTimeout(pipeline.exec(), 2_000)
    } catch (err) {
      this.#onError(err as Error)
    }
    this.#own.clear()
    await Promise.all([quit(this.#sub), quit(this.#cmd)])
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]).finally(() => clearTimeout(timer))
}

async function quit(client: RedisClient): Promise<void> {
  try {
    await withTimeout(client.quit(), 1_000)
  } catch {
    // already disconnected
  }
  client.disconnect()
}

function encodeEntry(entry: RegistryEntry): Buffer {
  const wire: Record<string, unknown> = { p: entry.peerId, o: entry.observed.map((a) => [a.host, a.port]), t: entry.at }
  if (entry.mid !== undefined) wire['m'] = entry.mid
  if (entry.payload !== undefined) wire['d'] = entry.payload
  const bytes = encode(wire)
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Decodes an entry written by `encodeEntry`; `undefined` for anything else. */
function decodeEntry(value: Buffer): RegistryEntry | undefined {
  try {
    const wire = decode(value) as Record<string, unknown>
    const { p, o, t, m, d } = wire
    if (typeof p !== 'string' || !Array.isArray(o) || typeof t !== 'number') return undefined
    const observed: TransportAddress[] = []
    for (const item of o) {
      if (!Array.isArray(item) || typeof item[0] !== 'string' || typeof item[1] !== 'number') return undefined
      const family = isIP(item[0])
      if (family === 0) return undefined
      observed.push({ family: family === 6 ? 'IPv6' : 'IPv4', host: item[0], port: item[1] })
    }
    const entry: RegistryEntry = { peerId: p, observed, at: t }
    if (m instanceof Uint8Array) entry.mid = m
    if (d instanceof Uint8Array) entry.payload = d
    return entry
  } catch {
    return undefined
  }
}
