/**
 * Prometheus metrics for the servers: a prom-client registry fed by `collect()`
 * callbacks, and an HTTP endpoint serving it (`GET /metrics`).
 *
 * Servers do not import prom-client. They keep plain counters (a `stats` object, as
 * `StunServer.stats`), and whoever runs them registers those once:
 *
 * ```ts
 * const metrics = new ServerMetrics()
 * metrics.addStats('stun', () => stun.stats, {
 *   bindingResponses: { type: 'counter', help: 'Binding requests answered' },
 * })                                          // → peerlink_stun_binding_responses_total
 * const endpoint = await MetricsServer.listen({ metrics, port: 9641 })   // 127.0.0.1 by default
 * ```
 *
 * Values are read when Prometheus scrapes, never pushed. The endpoint binds the loopback
 * address unless told otherwise: metrics reveal load and usage, so exposing them is a
 * deliberate choice (`[metrics] host` in the config).
 *
 * @module
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import { AbortError, InvalidArgumentError, SocketBindError, throwIfAborted } from '../errors.js'

/** Kinds of metric: a counter only goes up (name ends in `_total`), a gauge goes both ways. */
export type MetricType = 'counter' | 'gauge'

/** One labelled value of a metric. */
export interface MetricSample {
  /**
   * Label values, by label name.
   * @default {}
   */
  labels?: Readonly<Record<string, string>>
  /** The value. */
  value: number
}

/** A metric whose value is read by a callback at scrape time. */
export interface MetricDefinition {
  /** Name without the registry prefix, snake_case; counters end in `_total`. */
  name: string
  /** One-line description (`# HELP`). */
  help: string
  /** Counter or gauge. */
  type: MetricType
  /**
   * Label names the samples use.
   * @default []
   */
  labelNames?: readonly string[]
  /** Reads the current value, or labelled values. When it throws, the metric keeps the values of the last successful read. */
  collect(): number | readonly MetricSample[]
}

/** How one field of a stats object is exposed by {@link ServerMetrics.addStats}. */
export interface StatsField {
  /** Counter (a monotonic count since start) or gauge (a current level). */
  type: MetricType
  /** One-line description. */
  help: string
  /**
   * Metric name without prefix.
   * @default `<prefix>_<field in snake_case>` plus `_total` for counters
   */
  name?: string
}

/** Options of {@link ServerMetrics}. */
export interface ServerMetricsOptions {
  /**
   * Prefix of every metric name.
   * @default 'peerlink_'
   */
  prefix?: string
  /**
   * Also expose prom-client's process metrics (CPU, memory, event loop lag, …).
   * @default false
   */
  defaultMetrics?: boolean
  /**
   * Labels added to every metric (e.g. `{ instance_name: 'turn-1' }`).
   * @default {}
   */
  labels?: Readonly<Record<string, string>>
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/**
 * A registry of metrics read through callbacks.
 *
 * @example
 * ```ts
 * import { MetricsServer, ServerMetrics, StunServer, STUN_STATS_METRICS } from 'peerlink/server'
 *
 * const stun = await StunServer.listen({ port: 3478 })
 * const metrics = new ServerMetrics({ labels: { instance_name: 'stun-1' } })
 * metrics.addStats('stun', () => stun.stats, STUN_STATS_METRICS)   // peerlink_stun_binding_responses_total, …
 * metrics.add({ name: 'uptime_seconds', help: 'Seconds since start', type: 'gauge', collect: () => process.uptime() })
 * const endpoint = await MetricsServer.listen({ metrics, port: 9641 })
 * ```
 */
export class ServerMetrics {
  /** The prom-client registry (for callers that want to add their own prom-client metrics). */
  readonly registry: Registry
  readonly #prefix: string

  constructor(options: ServerMetricsOptions = {}) {
    this.#prefix = options.prefix ?? 'peerlink_'
    if (this.#prefix !== '' && !METRIC_NAME.test(this.#prefix)) throw new InvalidArgumentError(`bad metric prefix ${JSON.stringify(this.#prefix)}`)
    this.registry = new Registry()
    if (options.labels !== undefined) {
      for (const name of Object.keys(options.labels)) if (!LABEL_NAME.test(name)) throw new InvalidArgumentError(`bad label name ${JSON.stringify(name)}`)
      this.registry.setDefaultLabels(options.labels)
    }
    if (options.defaultMetrics === true) collectDefaultMetrics({ register: this.registry, prefix: this.#prefix })
  }

  /** The `Content-Type` of {@link ServerMetrics.metrics}'s text. */
  get contentType(): string {
    return this.registry.contentType
  }

  /**
   * Registers a metric read by `definition.collect()` at every scrape.
   *
   * @returns a function that removes it again (call it when the server stops).
   * @throws `InvalidArgumentError` for a bad or already registered name.
   */
  add(definition: MetricDefinition): () => void {
    const name = `${this.#prefix}${definition.name}`
    if (!METRIC_NAME.test(name)) throw new InvalidArgumentError(`bad metric name ${JSON.stringify(name)}`)
    if (definition.type === 'counter' && !name.endsWith('_total')) throw new InvalidArgumentError(`counter ${name} must end in _total`)
    if (definition.type !== 'counter' && definition.type !== 'gauge') throw new InvalidArgumentError(`metric type must be counter or gauge`)
    if (this.registry.getSingleMetric(name) !== undefined) throw new InvalidArgumentError(`metric ${name} is already registered`)
    const labelNames = [...(definition.labelNames ?? [])]
    for (const label of labelNames) if (!LABEL_NAME.test(label)) throw new InvalidArgumentError(`bad label name ${JSON.stringify(label)}`)
    const read = (): readonly MetricSample[] | undefined => {
      try {
        const value = definition.collect()
        return typeof value === 'number' ? [{ value }] : value
      } catch {
        return undefined
      }
    }
    const common = { name, help: definition.help, labelNames, registers: [this.registry] }
    if (definition.type === 'counter') {
      new Counter({
        ...common,
        collect() {
          const samples = read()
          if (samples === undefined) return
          this.reset()
          for (const sample of samples) if (Number.isFinite(sample.value) && sample.value >= 0) this.inc(sample.labels ?? {}, sample.value)
        },
      })
    } else {
      new Gauge({
        ...common,
        collect() {
          const samples = read()
          if (samples === undefined) return
          this.reset()
          for (const sample of samples) if (!Number.isNaN(sample.value)) this.set(sample.labels ?? {}, sample.value)
        },
      })
    }
    let removed = false
    return () => {
      if (removed) return
      removed = true
      this.registry.removeSingleMetric(name)
    }
  }

  /**
   * Exposes numeric fields of a server's stats object, read at every scrape.
   *
   * @param prefix - name part after the registry prefix, e.g. `'turn'` → `peerlink_turn_…`.
   * @param stats - the object, or a function returning it.
   * @param fields - which fields, and how.
   * @returns a function that removes them all again.
   * @throws `InvalidArgumentError` for a bad or duplicate name.
   */
  addStats<S extends object>(prefix: string, stats: S | (() => S), fields: { readonly [K in keyof S]?: StatsField }): () => void {
    const read = typeof stats === 'function' ? (stats as () => S) : () => stats
    const removers: Array<() => void> = []
    try {
      for (const [field, spec] of Object.entries(fields) as Array<[string, StatsField | undefined]>) {
        if (spec === undefined) continue
        const base = spec.name ?? `${prefix}_${snakeCase(field)}${spec.type === 'counter' ? '_total' : ''}`
        removers.push(
          this.add({
            name: base,
            help: spec.help,
            type: spec.type,
            collect: () => {
              const value = (read() as Record<string, unknown>)[field]
              return typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : []
            },
          }),
        )
      }
    } catch (err) {
      for (const remove of removers) remove()
      throw err
    }
    return () => {
      for (const remove of removers) remove()
    }
  }

  /** The metrics in Prometheus text format. */
  metrics(): Promise<string> {
    return this.registry.metrics()
  }
}

/** Options of {@link MetricsServer.listen}. */
export interface MetricsServerOptions {
  /** What to serve. */
  metrics: ServerMetrics
  /**
   * Address to listen on. Loopback by default: exposing metrics is an explicit choice.
   * @default '127.0.0.1'
   */
  host?: string
  /**
   * TCP port (0: let the system pick).
   * @default 9641 (coturn's Prometheus port)
   */
  port?: number
  /**
   * Path of the endpoint.
   * @default '/metrics'
   */
  path?: string
  /**
   * Cancels a `listen` that has not finished.
   * @default undefined
   */
  signal?: AbortSignal
}

/** Default port of the metrics endpoint (coturn's Prometheus port). */
export const DEFAULT_METRICS_PORT = 9641

/**
 * An HTTP endpoint serving a {@link ServerMetrics} (`GET /metrics`).
 *
 * @example
 * ```ts
 * import { MetricsServer, ServerMetrics } from 'peerlink/server'
 *
 * const endpoint = await MetricsServer.listen({ metrics: new ServerMetrics({ defaultMetrics: true }), port: 0 })
 * console.log(await (await fetch(endpoint.url)).text())   // # HELP peerlink_process_cpu_user_seconds_total …
 * await endpoint.close()
 * ```
 */
export class MetricsServer {
  /** Where it listens. */
  readonly address: { readonly host: string; readonly port: number }
  /** The endpoint's URL, e.g. `http://127.0.0.1:9641/metrics`. */
  readonly url: string
  readonly #server: http.Server
  #closed: Promise<void> | undefined

  private constructor(server: http.Server, path: string) {
    this.#server = server
    const info = server.address() as AddressInfo
    this.address = { host: info.address, port: info.port }
    this.url = `http://${info.address.includes(':') ? `[${info.address}]` : info.address}:${info.port}${path}`
  }

  /**
   * Starts serving.
   *
   * @throws `SocketBindError` (rejects) when the port cannot be bound.
   * @throws `AbortError` (rejects) when `signal` fires first.
   */
  static async listen(options: MetricsServerOptions): Promise<MetricsServer> {
    const { metrics, host = '127.0.0.1', port = DEFAULT_METRICS_PORT, path = '/metrics', signal } = options
    if (!(metrics instanceof ServerMetrics)) throw new InvalidArgumentError('metrics must be a ServerMetrics')
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError(`port must be 0-65535, got ${port}`)
    if (!path.startsWith('/')) throw new InvalidArgumentError('path must start with /')
    throwIfAborted(signal)
    const server = http.createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://metrics')
      if (url.pathname !== path) {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('Not found\n')
        return
      }
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('Method not allowed\n')
        return
      }
      metrics.metrics().then(
        (text) => response.writeHead(200, { 'content-type': metrics.contentType }).end(request.method === 'HEAD' ? undefined : text),
        () => response.writeHead(500, { 'content-type': 'text/plain' }).end('Metrics collection failed\n'),
      )
    })
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        server.off('listening', onListening)
        server.off('error', onError)
        signal?.removeEventListener('abort', onAbort)
        if (err === undefined) return resolve()
        server.close()
        reject(err)
      }
      const onListening = () => done()
      const onError = (err: Error) => {
        const code = (err as { code?: unknown }).code
        done(new SocketBindError(`cannot listen on TCP ${host}:${port} for metrics: ${typeof code === 'string' ? code : err.message}`, { cause: err }))
      }
      const onAbort = () => done(new AbortError(undefined, { cause: signal?.reason }))
      server.once('listening', onListening)
      server.once('error', onError)
      signal?.addEventListener('abort', onAbort, { once: true })
      server.listen(port, host)
    })
    return new MetricsServer(server, path)
  }

  /** Stops serving and closes open connections; idempotent. */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve())
      this.#server.closeAllConnections()
    })
    return this.#closed
  }
}

function snakeCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9_]/g, '_')
    .toLowerCase()
}
