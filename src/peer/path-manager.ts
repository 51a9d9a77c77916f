/**
 * Path recovery and upgrade for a live UDP connection (ARCHITECTURE.md §2 item 6,
 * docs/relay-path.md "Recovery and upgrade").
 *
 * The attempt's ICE agent stays alive with the connection, and so do its TURN relays, so
 * relay pairs are ready when the selected pair dies:
 *
 * - **Failover** (controlling side): a check on the selected pair every `probeInterval`;
 *   when none has been answered for `failoverAfter` ms, every other pair is checked at
 *   once, the best that answers is renominated (USE-CANDIDATE) and selected. RFC 7675's
 *   consent timeout (30 s) stays the hard limit: the agent's `consent-lost` still ends
 *   the connection when no pair works.
 * - **Upgrade** (both sides): while the selected pair goes through a relay, the direct
 *   pairs are checked every `upgradeInterval` (the controlled side's checks open its own
 *   NAT's filter); when one answers, the controlling side renominates it.
 * - The controlled side follows the latest nomination (`IceAgent.reselect`).
 *
 * On every change of the selected pair both sides move their udx stream with
 * `changeRemote` — to the peer's socket for a local host/server-reflexive candidate, to the
 * relay shim's stream socket (a sibling on the same udx instance) for a local relayed
 * one — so the application sees no reset; the connection emits `path`.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js'
import type { CandidatePair } from '../ice/candidate-pair.js'
import { addressKey } from '../ice/canonical-address.js'
import type { IceAgent } from '../ice/ice-agent.js'
import type { IceSelection } from '../ice/ice-agent-options.js'
import { isRelayPair } from '../ice/nomination.js'
import { bestOf, failoverCandidates, upgradeCandidates } from '../ice/renomination.js'
import type { PeerSocket } from '../transport/peer-socket.js'
import type { TurnRelayShim } from '../turn/turn-relay-shim.js'
import type { ConnectionInfo, ConnectionPath } from './peer-options.js'
import { findUdxStream, udxSocketOf } from './udx-handles.js'

/** Why a connection changed path. */
export type PathChangeReason = 'consent-lost' | 'upgrade'

/** The `path` event of a `PeerConnection`. */
export interface PathChange {
  /** The path now in use. */
  path: ConnectionPath
  /** The path before. */
  previous: ConnectionPath
  /** `consent-lost`: the selected pair stopped answering; `upgrade`: a direct pair works again. */
  reason: PathChangeReason
  /** Our candidate on the new path. */
  local: { address: string; port: number; type: string }
  /** The remote's candidate on the new path. */
  remote: { address: string; port: number; type: string }
}

/** Timings of path recovery (`PeerOptions.recovery`). */
export interface PathRecoveryOptions {
  /**
   * Milliseconds between checks of the selected pair (controlling side).
   * @default 1000
   */
  probeInterval?: number
  /**
   * Milliseconds without an answer on the selected pair before moving to another pair.
   * @default 2500
   */
  failoverAfter?: number
  /**
   * Milliseconds between checks of the direct pairs while on a relay.
   * @default 2000
   */
  upgradeInterval?: number
}

/**
 * Checks `PeerOptions.recovery`.
 *
 * @throws InvalidArgumentError for a value that is neither `false` nor an object of positive numbers.
 */
export function checkPathRecoveryOptions(value: unknown): void {
  if (value === undefined || value === false) return
  if (value === null || typeof value !== 'object') throw new InvalidArgumentError('recovery must be false or { probeInterval?, failoverAfter?, upgradeInterval? }')
  for (const key of ['probeInterval', 'failoverAfter', 'upgradeInterval'] as const) {
    const v = (value as Record<string, unknown>)[key]
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0)) throw new InvalidArgumentError(`recovery.${key} must be a positive number`)
  }
}

/** Options of {@link PathManager}. */
export interface PathManagerOptions extends PathRecoveryOptions {
  /** The connection's ICE agent (connected). */
  agent: IceAgent
  /** The peer's socket. */
  socket: PeerSocket
  /** The relay shims, by relayed address (`addressKey`). */
  shims: () => ReadonlyMap<string, TurnRelayShim>
  /** Our udx stream id. */
  localStreamId: number
  /** The remote's udx stream id. */
  remoteStreamId: number
  /** The connection's info (updated in place). */
  info: ConnectionInfo
  /**
   * Keeps the stream's packets small enough for a relay (`StreamSplice.clampMtu`); called
   * every `probeInterval` and on every move.
   * @default undefined
   */
  clampMtu?: (() => void) | undefined
  /** Called on every path change. */
  onChange: (change: PathChange) => void
}

/** A triggered upgrade check of one pair at most this often, ms. */
const TRIGGERED_MIN_MS = 500

/** The path of a pair. */
export function pathOf(pair: Pick<CandidatePair, 'local' | 'remote'>): ConnectionPath {
  return pair.local.type === 'relay' || pair.remote.type === 'relay' ? 'turn' : 'direct'
}

/** See the module notes. */
export class PathManager {
  readonly #o: PathManagerOptions
  readonly #probeInterval: number
  readonly #failoverAfter: number
  readonly #upgradeInterval: number
  #lastOk = performance.now()
  #probing = false
  #failingOver = false
  #upgrading = false
  #closed = false
  #health: ReturnType<typeof setInterval> | undefined
  #upgrade: ReturnType<typeof setInterval> | undefined
  readonly #controller = new AbortController()
  readonly #triggered = new WeakMap<CandidatePair, number>()

  constructor(options: PathManagerOptions) {
    this.#o = options
    this.#probeInterval = options.probeInterval ?? 1000
    this.#failoverAfter = options.failoverAfter ?? 2500
    this.#upgradeInterval = options.upgradeInterval ?? 2000
  }

  /** Starts watching the selected pair. */
  start(): void {
    const { agent } = this.#o
    agent.on('reselected', this.#onReselected)
    agent.on('check-while-connected', this.#onCheck)
    this.#health = setInterval(this.#healthTick, this.#probeInterval)
    this.#upgrade = setInterval(this.#upgradeTick, this.#upgradeInterval)
    this.#health.unref?.()
    this.#upgrade.unref?.()
  }

  /** Stops every timer and check. Idempotent. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#health)
    clearInterval(this.#upgrade)
    this.#controller.abort()
    this.#o.agent.off('reselected', this.#onReselected)
    this.#o.agent.off('check-while-connected', this.#onCheck)
  }

  get #selection(): IceSelection | undefined {
    return this.#o.agent.state === 'connected' ? this.#o.agent.selection : undefined
  }

  // ------------------------------------------------------------------ failover

  readonly #healthTick = (): void => {
    this.#o.clampMtu?.()
    const selection = this.#selection
    if (this.#closed || selection === undefined || this.#o.agent.role !== 'controlling' || this.#failingOver) return
    if (performance.now() - this.#lastOk >= this.#failoverAfter) {
      void this.#failover(selection)
      return
    }
    if (this.#probing) return
    this.#probing = true
    const rto = Math.max(50, Math.round(this.#probeInterval / 4))
    this.#o.agent.probe(selection.pair, { signal: this.#controller.signal, rto, rc: 3 }).then(
      () => {
        this.#probing = false
        if (this.#o.agent.selection === selection) this.#lastOk = performance.now()
      },
      () => {
        this.#probing = false
      },
    )
  }

  async #failover(selection: IceSelection): Promise<void> {
    this.#failingOver = true
    try {
      const candidates = failoverCandidates(this.#o.agent.pairs, selection.pair)
      const best = await this.#firstGood(candidates)
      if (best === undefined || this.#closed || this.#o.agent.selection !== selection) return
      await this.#renominate(best)
    } finally {
      this.#failingOver = false
    }
  }

  /**
   * Checks `pairs` in parallel; resolves with the best valid pair among those that
   * answered within 150 ms of the first answer (or all settled).
   */
  #firstGood(pairs: readonly CandidatePair[]): Promise<CandidatePair | undefined> {
    if (pairs.length === 0) return Promise.resolve(undefined)
    return new Promise((resolve) => {
      const good: CandidatePair[] = []
      let left = pairs.length
      let timer: ReturnType<typeof setTimeout> | undefined
      let done = false
      const finish = (): void => {
        if (done) return
        done = true
        if (timer !== undefined) clearTimeout(timer)
        resolve(bestOf(good))
      }
      for (const pair of pairs) {
        this.#o.agent.probe(pair, { signal: this.#controller.signal, rto: 150, rc: 4 }).then(
          (valid) => {
            good.push(valid)
            timer ??= setTimeout(finish, 150)
          },
          () => {},
        ).finally(() => {
          if (--left === 0) finish()
        })
      }
    })
  }

  async #renominate(pair: CandidatePair): Promise<boolean> {
    const { agent } = this.#o
    try {
      // RFC 8445 §8.1.1 (renomination): a check with USE-CANDIDATE on the new pair.
      const valid = await agent.probe(pair, { nominate: true, signal: this.#controller.signal, rto: 150, rc: 5 })
      if (this.#closed) return false
      agent.reselect(valid)
      return true
    } catch {
      return false
    }
  }

  // ------------------------------------------------------------------ upgrade

  readonly #upgradeTick = (): void => {
    const selection = this.#selection
    if (this.#closed || selection === undefined || this.#upgrading || this.#failingOver || !isRelayPair(selection.pair)) return
    void this.#tryUpgrade(selection, upgradeCandidates(this.#o.agent.pairs, selection.pair))
  }

  async #tryUpgrade(selection: IceSelection, pairs: readonly CandidatePair[]): Promise<void> {
    if (pairs.length === 0) return
    this.#upgrading = true
    try {
      const best = await this.#firstGood(pairs)
      if (best === undefined || this.#closed || this.#o.agent.selection !== selection || this.#o.agent.role !== 'controlling') return
      await this.#renominate(best)
    } finally {
      this.#upgrading = false
    }
  }

  /** A check from the peer on another pair: while on a relay, check a direct one back at once. */
  readonly #onCheck = (pair: CandidatePair): void => {
    const selection = this.#selection
    if (this.#closed || selection === undefined || this.#upgrading || this.#failingOver) return
    if (!isRelayPair(selection.pair) || isRelayPair(pair)) return
    const now = performance.now()
    if (now - (this.#triggered.get(pair) ?? -Infinity) < TRIGGERED_MIN_MS) return
    this.#triggered.set(pair, now)
    void this.#tryUpgrade(selection, [pair])
  }

  // ------------------------------------------------------------------ moving the stream

  readonly #onReselected = ({ selection, previous }: { selection: IceSelection; previous: IceSelection }): void => {
    if (this.#closed) return
    this.#lastOk = performance.now()
    const { info } = this.#o
    const before = info.path
    const path = pathOf(selection.pair)
    const reason: PathChangeReason = isRelayPair(previous.pair) && path === 'direct' ? 'upgrade' : 'consent-lost'
    const local = selection.local
    let shim: TurnRelayShim | undefined
    if (local.type === 'relay') {
      shim = this.#o.shims().get(addressKey(local.base.address, local.base.port))
      if (shim === undefined) return // the relay is gone: the next failover picks another pair
      try {
        shim.connect({ host: selection.remote.address, port: selection.remote.port })
      } catch {
        return
      }
    }
    this.#move(shim === undefined ? this.#o.socket : shim.socket, shim === undefined ? { host: selection.remote.address, port: selection.remote.port } : shim.proxyAddress)
    info.path = path
    info.local = { address: local.address, port: local.port, type: local.type }
    info.remote = { address: selection.remote.address, port: selection.remote.port, type: selection.remote.type }
    info.rttMs = selection.rttMs
    if (shim !== undefined) info.relay = { server: shim.relay.url, transport: shim.relay.transport, relayed: { address: local.address, port: local.port } }
    else delete info.relay
    this.#o.onChange({ path, previous: before, reason, local: { ...info.local }, remote: { ...info.remote } })
  }

  /** Moves the udx stream (the splice's outer relay) to `socket`, sending to `to`. */
  #move(socket: PeerSocket, to: { host: string; port: number }): void {
    this.#o.clampMtu?.()
    const sockets = [this.#o.socket, ...[...this.#o.shims().values()].map((s) => s.socket)]
    const raw = findUdxStream(sockets, this.#o.localStreamId)
    if (raw === undefined) return
    if (raw.destroyed || this.#closed) return
    // With the splice the stream moved is the outer relay, whose remote address changes at
    // once (udx relays to the current remote); its "change pending" state (it relays the
    // peer's sequence numbers, never acked to it) means nothing and must not block the
    // next move.
    ;(raw as unknown as { _remoteChanging: Promise<void> | null })._remoteChanging = null
    try {
      // Resolves when udx has moved (null when it moved at once: nothing was in flight).
      Promise.resolve(raw.changeRemote(udxSocketOf(socket), this.#o.remoteStreamId, to.port, to.host)).catch(() => {})
    } catch {
      // A stream closing under us: the connection ends by itself.
    }
  }
}

