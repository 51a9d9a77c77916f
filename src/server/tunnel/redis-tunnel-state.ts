/**
 * The {@link TunnelState} of a fleet of tunnel servers, in Redis (`ioredis`, loaded
 * with a dynamic `import()` only when a `redis` URL is configured).
 *
 * Keys (under a prefix, `peerlink:tunnel:` by default):
 *
 * | key | type | what |
 * |---|---|---|
 * | `n:<name>` | hash `d s e` | who holds a name (device, server, expiry or `''`) |
 * | `p:<server>:<port>` | hash `d s e` | who holds a public port of a server |
 * | `d:<device>` | hash `d s e r` | a device's record (`r`: JSON of name, ports, http) |
 * | `o:<server>` | set | the keys a server holds with no expiry (`e = ''`) |
 * | `srv` | sorted set | server id → when its registration expires (ms) |
 * | `sv` | hash | server id → its registration (JSON) |
 * | `k` | string | the fleet key (base64url, created once with `SET NX`) |
 *
 * Every read-check-write runs in one Lua script, so two servers racing for a name or a
 * port cannot both win. A holding with an expiry also gets a Redis TTL (garbage
 * collection; the stored expiry is what counts). A holding without one (`e = ''`)
 * belongs to its server's registration: it is treated as free once the server's score
 * in `srv` has passed, and it is deleted when the server unregisters, or when any
 * server sweeps the expired registrations (on every `registerServer` and
 * `listServers`), using the `o:<server>` index. Times are the callers' clocks
 * (milliseconds since the epoch): keep the fleet's clocks in sync (NTP).
 *
 * One Redis (with replicas if wanted) serves a fleet; Redis Cluster is not supported
 * (the scripts touch keys of several slots). After Redis loses its data, online
 * devices' holdings are gone until they log in again.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import type { Redis as RedisClient } from 'ioredis'
import { AbortError, InvalidArgumentError, throwIfAborted } from '../../errors.js'
import type { TunnelPortMapping } from '../../tunnel/tunnel-messages.js'
import type { TunnelDeviceRecord, TunnelNameRecord, TunnelServerRecord, TunnelState } from './tunnel-state.js'

/** Options of {@link RedisTunnelState.connect}. */
export interface RedisTunnelStateOptions {
  /** `redis://[[user]:password@]host[:port][/db]` or `rediss://…`. */
  url: string
  /**
   * Prefix of every key (servers sharing a prefix form one fleet).
   * @default 'peerlink:tunnel:'
   */
  prefix?: string
  /**
   * Milliseconds to wait for the connection to Redis.
   * @default 10_000
   */
  connectTimeout?: number
  /**
   * Called with Redis errors (connection lost, …); commands that fail reject as well.
   * @default undefined (ignored)
   */
  onError?: (error: Error) => void
  /**
   * The clock (ms since the epoch); tests pass their own.
   * @default Date.now
   */
  now?: () => number
  /**
   * Cancels the connection attempt (rejects with `AbortError`).
   * @default undefined
   */
  signal?: AbortSignal
}

// Shared by the scripts: is a holding live, and the removal of a dead server's holdings.
const PRELUDE = `
local function expired(s, e, srv, now)
  if e and e ~= '' then return tonumber(e) <= now end
  local score = redis.call('ZSCORE', srv, s)
  return score ~= false and tonumber(score) <= now
end
local function live(key, srv, now)
  local h = redis.call('HMGET', key, 'd', 's', 'e')
  if h[1] == false then return nil end
  if expired(h[2], h[3], srv, now) then
    redis.call('DEL', key)
    return nil
  end
  return h
end
local function drop(srv, sv, prefix, id)
  local owned = prefix .. 'o:' .. id
  for _, key in ipairs(redis.call('SMEMBERS', owned)) do
    local h = redis.call('HMGET', key, 's', 'e')
    if h[1] == id and h[2] == '' then redis.call('DEL', key) end
  end
  redis.call('DEL', owned)
  redis.call('ZREM', srv, id)
  redis.call('HDEL', sv, id)
end
local function sweep(srv, sv, prefix, now)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', srv, '-inf', now, 'LIMIT', 0, 16)) do drop(srv, sv, prefix, id) end
end
`

const SCRIPTS = {
  // KEYS: holding, srv. ARGV: device, server, expiry|'', now, prefix, force, record|''.
  // Claims (or, with force, overwrites) a holding; 1 when it is ours now.
  tunnelHold: {
    numberOfKeys: 2,
    lua: `${PRELUDE}
local now = tonumber(ARGV[4])
local h = live(KEYS[1], KEYS[2], now)
if h and h[1] ~= ARGV[1] and ARGV[6] ~= '1' then return 0 end
if h and h[2] ~= ARGV[2] then redis.call('SREM', ARGV[5] .. 'o:' .. h[2], KEYS[1]) end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 's', ARGV[2], 'e', ARGV[3])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'r', ARGV[7]) end
local owned = ARGV[5] .. 'o:' .. ARGV[2]
if ARGV[3] == '' then
  redis.call('PERSIST', KEYS[1])
  redis.call('SADD', owned, KEYS[1])
else
  redis.call('SREM', owned, KEYS[1])
  local ttl = tonumber(ARGV[3]) - now
  if ttl <= 0 then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], math.ceil(ttl)) end
end
return 1`,
  },
  // KEYS: holding. ARGV: device, server, prefix. Deletes it if device holds it through server.
  tunnelRelease: {
    numberOfKeys: 1,
    lua: `
local h = redis.call('HMGET', KEYS[1], 'd', 's')
if h[1] == ARGV[1] and h[2] == ARGV[2] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', ARGV[3] .. 'o:' .. ARGV[2], KEYS[1])
  return 1
end
return 0`,
  },
  // KEYS: holding, srv. ARGV: now. The live holding as { d, s, e, r }, or nil.
  tunnelGet: {
    numberOfKeys: 2,
    lua: `${PRELUDE}
local h = live(KEYS[1], KEYS[2], tonumber(ARGV[1]))
if not h then return nil end
return { h[1], h[2], h[3] or '', redis.call('HGET', KEYS[1], 'r') or '' }`,
  },
  // KEYS: srv, sv. ARGV: id, expiresAt, record, now, prefix.
  tunnelRegister: {
    numberOfKeys: 2,
    lua: `${PRELUDE}
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
sweep(KEYS[1], KEYS[2], ARGV[5], ARGV[4])
return 1`,
  },
  // KEYS: srv, sv. ARGV: id, prefix.
  tunnelUnregister: {
    numberOfKeys: 2,
    lua: `${PRELUDE}
drop(KEYS[1], KEYS[2], ARGV[2], ARGV[1])
return 1`,
  },
  // KEYS: srv, sv. ARGV: prefix, now. The live registrations (JSON).
  tunnelList: {
    numberOfKeys: 2,
    lua: `${PRELUDE}
sweep(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf')
if #ids == 0 then return {} end
local records = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i = 1, #ids do
  if records[i] then table.insert(out, records[i]) end
end
return out`,
  },
} as const

type Arg = string | number
interface Scripted {
  tunnelHold(holding: string, srv: string, device: string, server: string, expiry: string, now: Arg, prefix: string, force: string, record: string): Promise<number>
  tunnelRelease(holding: string, device: string, server: string, prefix: string): Promise<number>
  tunnelGet(holding: string, srv: string, now: Arg): Promise<[string, string, string, string] | null>
  tunnelRegister(srv: string, sv: string, id: string, expiresAt: Arg, record: string, now: Arg, prefix: string): Promise<number>
  tunnelUnregister(srv: string, sv: string, id: string, prefix: string): Promise<number>
  tunnelList(srv: string, sv: string, prefix: string, now: Arg): Promise<string[]>
}

/**
 * {@link TunnelState} in Redis, shared by every server of a fleet (see the module notes).
 *
 * @example
 * ```ts
 * import { RedisTunnelState, TunnelServer } from 'peerlink/server'
 *
 * const state = await RedisTunnelState.connect({ url: 'redis://127.0.0.1:6379', prefix: 'peerlink:tunnel:' })
 * const tunnel = await TunnelServer.listen({ tls: { cert, key }, state, publicUrl: 'wss://tunnel-1.example.com:8443' })
 * // (TunnelServerOptions.redis does the same from a URL.)
 * ```
 */
export class RedisTunnelState implements TunnelState {
  /** Always `'redis'`. */
  readonly kind = 'redis'
  /** The key prefix. */
  readonly prefix: string
  readonly #redis: RedisClient
  readonly #scripts: Scripted
  readonly #now: () => number
  #key: Promise<Uint8Array> | undefined
  #closing: Promise<void> | undefined

  private constructor(redis: RedisClient, prefix: string, now: () => number) {
    this.#redis = redis
    this.#scripts = redis as unknown as Scripted
    this.prefix = prefix
    this.#now = now
  }

  /**
   * Connects to Redis.
   *
   * @throws `InvalidArgumentError` for a bad URL or option.
   * @throws `Error` (rejects) when Redis cannot be reached.
   * @throws `AbortError` (rejects) when `signal` fires first.
   */
  static async connect(options: RedisTunnelStateOptions): Promise<RedisTunnelState> {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('RedisTunnelState.connect needs options')
    const { url, signal } = options
    if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) throw new InvalidArgumentError('redis must be a redis:// or rediss:// URL')
    const prefix = options.prefix ?? 'peerlink:tunnel:'
    if (typeof prefix !== 'string' || prefix.length > 200 || /\s/.test(prefix)) throw new InvalidArgumentError('redisPrefix must be a string of at most 200 characters without spaces')
    const connectTimeout = options.connectTimeout ?? 10_000
    if (!Number.isInteger(connectTimeout) || connectTimeout < 1) throw new InvalidArgumentError('connectTimeout must be a positive integer')
    const now = options.now ?? Date.now
    if (typeof now !== 'function') throw new InvalidArgumentError('now must be a function')
    throwIfAborted(signal)
    const onError = options.onError ?? (() => {})
    const { Redis } = await import('ioredis')
    const redis = new Redis(url, {
      lazyConnect: true,
      // Fail commands at once while disconnected: the server answers `unavailable` and
      // devices retry, rather than a queue growing without bound.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout,
      retryStrategy: (times: number) => Math.min(100 * times, 2_000),
    })
    redis.on('error', onError)
    for (const [name, script] of Object.entries(SCRIPTS)) redis.defineCommand(name, { numberOfKeys: script.numberOfKeys, lua: script.lua })
    const onAbort = () => redis.disconnect()
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      await redis.connect()
      throwIfAborted(signal)
    } catch (err) {
      redis.disconnect()
      if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
      throw err
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
    return new RedisTunnelState(redis, prefix, now)
  }

  #k(kind: string, id: string): string {
    return `${this.prefix}${kind}:${id}`
  }

  get #srv(): string {
    return `${this.prefix}srv`
  }

  get #sv(): string {
    return `${this.prefix}sv`
  }

  async #hold(key: string, device: string, server: string, expiresAt: number | null, force: boolean, record = ''): Promise<boolean> {
    const expiry = expiresAt === null ? '' : String(Math.round(expiresAt))
    return (await this.#scripts.tunnelHold(key, this.#srv, device, server, expiry, this.#now(), this.prefix, force ? '1' : '0', record)) === 1
  }

  async #get(key: string): Promise<{ device: string; server: string; expiresAt: number | null; record: string } | undefined> {
    const found = await this.#scripts.tunnelGet(key, this.#srv, this.#now())
    if (found === null || found === undefined) return undefined
    const [device, server, expiry, record] = found
    return { device, server, expiresAt: expiry === '' ? null : Number(expiry), record }
  }

  claimName(name: string, device: string, server: string, expiresAt: number | null): Promise<boolean> {
    return this.#hold(this.#k('n', name), device, server, expiresAt, false)
  }

  async releaseName(name: string, device: string, server: string): Promise<void> {
    await this.#scripts.tunnelRelease(this.#k('n', name), device, server, this.prefix)
  }

  async getName(name: string): Promise<TunnelNameRecord | undefined> {
    const held = await this.#get(this.#k('n', name))
    return held === undefined ? undefined : { name, device: held.device, server: held.server, expiresAt: held.expiresAt }
  }

  claimPort(server: string, port: number, device: string, expiresAt: number | null): Promise<boolean> {
    return this.#hold(this.#k('p', `${server}:${port}`), device, server, expiresAt, false)
  }

  async releasePort(server: string, port: number, device: string): Promise<void> {
    await this.#scripts.tunnelRelease(this.#k('p', `${server}:${port}`), device, server, this.prefix)
  }

  async getDevice(device: string): Promise<TunnelDeviceRecord | undefined> {
    const held = await this.#get(this.#k('d', device))
    if (held === undefined) return undefined
    const body = parseDeviceBody(held.record)
    return body === undefined ? undefined : { device, server: held.server, ...body, expiresAt: held.expiresAt }
  }

  async putDevice(record: TunnelDeviceRecord): Promise<void> {
    const body = JSON.stringify({ name: record.name, ports: record.ports.map((p) => ({ local: p.local, public: p.public })), http: record.http })
    await this.#hold(this.#k('d', record.device), record.device, record.server, record.expiresAt, true, body)
  }

  async deleteDevice(device: string, server: string): Promise<void> {
    await this.#scripts.tunnelRelease(this.#k('d', device), device, server, this.prefix)
  }

  async registerServer(record: TunnelServerRecord): Promise<void> {
    const json = JSON.stringify({ id: record.id, url: record.url, devices: record.devices, maxDevices: record.maxDevices, expiresAt: record.expiresAt, ...(record.http === undefined ? {} : { http: record.http }) })
    await this.#scripts.tunnelRegister(this.#srv, this.#sv, record.id, String(Math.round(record.expiresAt)), json, String(this.#now()), this.prefix)
  }

  async unregisterServer(id: string): Promise<void> {
    await this.#scripts.tunnelUnregister(this.#srv, this.#sv, id, this.prefix)
  }

  async listServers(): Promise<TunnelServerRecord[]> {
    const found = await this.#scripts.tunnelList(this.#srv, this.#sv, this.prefix, String(this.#now()))
    const servers: TunnelServerRecord[] = []
    for (const json of found) {
      const record = parseServerRecord(json)
      if (record !== undefined) servers.push(record)
    }
    return servers
  }

  fleetKey(): Promise<Uint8Array> {
    this.#key ??= this.#loadKey()
    this.#key.catch(() => (this.#key = undefined))
    return this.#key.then((key) => new Uint8Array(key))
  }

  async #loadKey(): Promise<Uint8Array> {
    const key = `${this.prefix}k`
    await this.#redis.set(key, randomBytes(32).toString('base64url'), 'NX')
    const text = await this.#redis.get(key)
    const bytes = text === null ? undefined : Buffer.from(text, 'base64url')
    if (bytes === undefined || bytes.byteLength !== 32) throw new Error(`Redis key ${key} does not hold a 32-byte base64url fleet key`)
    return new Uint8Array(bytes)
  }

  /** Closes the connection to Redis (nothing is deleted). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      await Promise.race([this.#redis.quit(), new Promise((resolve) => (timer = setTimeout(resolve, 1_000)))])
    } catch {
      // already disconnected
    } finally {
      clearTimeout(timer)
    }
    this.#redis.disconnect()
  }
}

function parseDeviceBody(json: string): { name: string; ports: TunnelPortMapping[]; http: number } | undefined {
  try {
    const body = JSON.parse(json) as { name?: unknown; ports?: unknown; http?: unknown }
    if (typeof body.name !== 'string' || typeof body.http !== 'number' || !Array.isArray(body.ports)) return undefined
    const ports: TunnelPortMapping[] = []
    for (const p of body.ports as Array<{ local?: unknown; public?: unknown }>) {
      if (typeof p?.local !== 'number' || typeof p.public !== 'number') return undefined
      ports.push({ local: p.local, public: p.public })
    }
    return { name: body.name, ports, http: body.http }
  } catch {
    return undefined
  }
}

function parseServerRecord(json: string): TunnelServerRecord | undefined {
  try {
    const r = JSON.parse(json) as Partial<TunnelServerRecord>
    if (typeof r.id !== 'string' || typeof r.url !== 'string' || typeof r.devices !== 'number' || typeof r.maxDevices !== 'number' || typeof r.expiresAt !== 'number') return undefined
    return { id: r.id, url: r.url, devices: r.devices, maxDevices: r.maxDevices, expiresAt: r.expiresAt, ...(typeof r.http === 'string' ? { http: r.http } : {}) }
  } catch {
    return undefined
  }
}
