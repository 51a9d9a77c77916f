/**
 * The reconnecting life shared by the tunnel client and the tunnel peer listener: log in
 * to a server, serve the session until it ends, and start again after an exponential
 * backoff with jitter ({@link reconnectDelay}). A lost session is retried at the same
 * server (which kept its state for a while); a failed attempt moves on to the next
 * server. Refusals that retrying cannot fix close the loop.
 *
 * @module
 */
import { setMaxListeners } from 'node:events'
import type WebSocket from 'ws'
import { type BackoffOptions, checkBackoffOptions, reconnectDelay } from '../beacon/backoff.js'
import { AbortError, PeerlinkError, TunnelUnavailableError } from '../errors.js'

/** Where a {@link ReconnectLoop} is: `serving` a logged-in session, `waiting` before the next attempt. */
export type ReconnectLoopState = 'idle' | 'connecting' | 'serving' | 'waiting' | 'closed'

/** The owner's options a {@link ReconnectLoop} takes. */
export interface ReconnectLoopOptions extends BackoffOptions {
  /**
   * Closes the loop when aborted.
   * @default undefined
   */
  signal?: AbortSignal | undefined
}

/** What a {@link ReconnectLoop} does on its owner's behalf. */
export interface ReconnectLoopHooks<Server, Session> {
  /** Logs in to `server` (the loop's {@link ReconnectLoop.signal} cancels it). */
  login(server: Server): Promise<Session>
  /**
   * Serves a logged-in session until it ends; resolves with why (`undefined` when
   * closing). While it runs, the session is {@link ReconnectLoop.session}, whose socket
   * a close shuts.
   */
  serve(session: Session): Promise<PeerlinkError | undefined>
  /** Sees a failed attempt before the loop counts it. */
  attemptFailed?(error: PeerlinkError): void
  /** True for refusals that retrying cannot fix: the loop then closes with them. */
  isFatal(error: PeerlinkError): boolean
  /** An attempt failed or a session ended; `retryInMs` until the next attempt, absent when closing. */
  disconnected(error: PeerlinkError | undefined, retryInMs: number | undefined): void
  /** Releases what the owner holds (its connections) when the loop closes, once the session's socket is closed. */
  release(): Promise<void> | void
  /** The loop closed: `close()`, its signal, or a fatal refusal (`error`). */
  closed(error: PeerlinkError | undefined): void
}

/**
 * Runs the login → serve → backoff cycle of a reconnecting tunnel client (see the module
 * notes). `start` it once; `close` it (idempotent) to stop.
 *
 * @example
 * ```ts
 * const loop = new ReconnectLoop(servers, { maxDelayMs: 10_000, signal }, { login, serve, isFatal, disconnected, release, closed })
 * loop.start()
 * await loop.close()
 * ```
 */
export class ReconnectLoop<Server, Session extends { readonly ws: WebSocket }> {
  readonly #servers: readonly Server[]
  readonly #backoff: Required<BackoffOptions>
  readonly #signal: AbortSignal | undefined
  readonly #hooks: ReconnectLoopHooks<Server, Session>
  readonly #life = new AbortController()
  #state: ReconnectLoopState = 'idle'
  #session: Session | undefined
  #index = 0
  #failures = 0
  #running: Promise<void> | undefined
  #closing: Promise<void> | undefined
  #closeError: PeerlinkError | undefined
  readonly #onAbort = () => void this.close()

  /**
   * @param servers - tried in turn (at least one).
   * @throws `InvalidArgumentError` for bad backoff options.
   */
  constructor(servers: readonly Server[], options: ReconnectLoopOptions, hooks: ReconnectLoopHooks<Server, Session>) {
    this.#servers = servers
    this.#backoff = checkBackoffOptions(options)
    this.#signal = options.signal
    this.#hooks = hooks
    // Every login and transfer socket in progress listens to it: no listener limit.
    setMaxListeners(0, this.#life.signal)
  }

  /** Where the loop is. */
  get state(): ReconnectLoopState {
    return this.#state
  }

  /** The session being served, `undefined` between sessions. */
  get session(): Session | undefined {
    return this.#session
  }

  /** Aborted when the loop closes: logins, transfer sockets and handshakes in progress listen to it. */
  get signal(): AbortSignal {
    return this.#life.signal
  }

  get #closed(): boolean {
    return this.#state === 'closed'
  }

  /** Starts the first attempt. Idempotent. */
  start(): void {
    if (this.#state !== 'idle') return
    const signal = this.#signal
    if (signal?.aborted === true) {
      void this.close()
      return
    }
    signal?.addEventListener('abort', this.#onAbort, { once: true })
    this.#running = this.#run()
  }

  /** Stops: aborts {@link ReconnectLoop.signal}, releases the owner's resources, waits for the loop. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    const wasIdle = this.#state === 'idle'
    this.#state = 'closed'
    this.#signal?.removeEventListener('abort', this.#onAbort)
    this.#life.abort()
    if (this.#session !== undefined) await closeWebSocket(this.#session.ws)
    await this.#hooks.release()
    if (!wasIdle) await this.#running
    this.#hooks.closed(this.#closeError)
  }

  async #run(): Promise<void> {
    const hooks = this.#hooks
    while (this.#state !== 'closed') {
      const server = this.#servers[this.#index]!
      this.#state = 'connecting'
      let error: PeerlinkError | undefined
      try {
        const session = await hooks.login(server)
        this.#failures = 0
        this.#state = 'serving'
        this.#session = session
        try {
          error = await hooks.serve(session)
        } finally {
          this.#session = undefined
        }
      } catch (err) {
        if (this.#closed) return
        error = err instanceof PeerlinkError ? err : new TunnelUnavailableError((err as Error).message, { cause: err })
        hooks.attemptFailed?.(error)
        this.#failures++
        this.#index = (this.#index + 1) % this.#servers.length
      }
      if (this.#closed) return
      if (error !== undefined && hooks.isFatal(error)) {
        this.#closeError = error
        hooks.disconnected(error, undefined)
        void this.close()
        return
      }
      const delay = reconnectDelay(this.#failures, this.#backoff)
      this.#state = 'waiting'
      hooks.disconnected(error, delay)
      await sleep(delay, this.#life.signal)
    }
  }
}

/** Closes a WebSocket with a closing handshake, cut after a second without an answer; resolves once closed. */
async function closeWebSocket(ws: WebSocket): Promise<void> {
  const closed = new Promise<void>((resolve) => (ws.readyState === ws.CLOSED ? resolve() : ws.once('close', () => resolve())))
  ws.close(1000, 'closing')
  const timer = setTimeout(() => ws.terminate(), 1_000)
  await closed
  clearTimeout(timer)
}

/** What {@link startReconnecting} needs of a reconnecting client. */
export interface Reconnecting {
  /** How many servers it was given. */
  readonly serverCount: number
  /** Starts it. */
  start(): void
  /** Closes it. */
  close(): Promise<void>
  /** Listens to its events. */
  on(event: string, listener: (...args: never[]) => void): unknown
  /** Stops listening. */
  off(event: string, listener: (...args: never[]) => void): unknown
}

/**
 * Starts a reconnecting client and resolves once it emits `upEvent` (its first session).
 * When every server has failed once, a refusal closes it, or it closes, it is closed and
 * the promise rejects.
 *
 * @param what - the client in the `AbortError` message when it closes (`TunnelClient`).
 * @throws the last attempt's error (rejects), `TunnelUnavailableError` without one, `AbortError` when it closes first.
 *
 * @example
 * ```ts
 * const client = await startReconnecting(new TunnelClient(options), 'connected', 'TunnelClient')
 * ```
 */
export async function startReconnecting<T extends Reconnecting>(client: T, upEvent: string, what: string): Promise<T> {
  let failures = 0
  const outcome = new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      client.off(upEvent, onUp)
      client.off('disconnected', onDisconnected)
      client.off('close', onClose)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onUp = () => done()
    const onDisconnected = (error: PeerlinkError | undefined) => {
      if (++failures >= client.serverCount || error === undefined) done(error ?? new TunnelUnavailableError('no tunnel server could be reached'))
    }
    const onClose = (error: PeerlinkError | undefined) => done(error ?? new AbortError(`${what} closed`))
    client.on(upEvent, onUp)
    client.on('disconnected', onDisconnected)
    client.on('close', onClose)
  })
  client.start()
  try {
    await outcome
  } catch (err) {
    await client.close()
    throw err
  }
  return client
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done(): void {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}
