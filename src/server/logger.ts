/**
 * The servers' logger: pino, writing one JSON object per line to the console and to
 * `DATA_DIR/logs/peerlink-server.log`.
 *
 * Secrets are kept out of the output twice over: pino's `redact` replaces the values
 * of secret-named fields ({@link REDACTED_KEYS}, at the top level and two levels down)
 * with `[redacted]`, and every line is scrubbed of the literal secret values the server
 * knows (its TURN secrets and passwords, given as `secrets` or with
 * {@link ServerLogger.addSecret}) wherever they appear, messages and error texts included.
 *
 * The log file rotates by size, without a dependency: when a line would take it past
 * `maxFileBytes`, `peerlink-server.log` becomes `peerlink-server.log.1`, `.1` becomes
 * `.2`, …, and the oldest beyond `maxFiles` is deleted. Writes are synchronous appends
 * (as pino's own `sync: true` destination does); one process per log file — two
 * servers sharing a data directory would rotate each other's files.
 *
 * @module
 */
import { closeSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { pino, type Logger } from 'pino'
import { InvalidArgumentError } from '../errors.js'

/** pino's levels, and `silent`. */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

/**
 * The levels {@link LogLevel} allows, most severe first.
 *
 * @example
 * ```ts
 * import { LOG_LEVELS, type LogLevel, createServerLogger } from 'peerlink/server'
 *
 * const wanted = process.env.LOG_LEVEL ?? 'info'
 * if (!(LOG_LEVELS as readonly string[]).includes(wanted)) throw new Error(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`)
 * const { log } = createServerLogger({ level: wanted as LogLevel })
 * ```
 */
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** How lines are written to the console. */
export type ConsoleLogFormat = 'json' | 'pretty'

/**
 * Field names whose values never reach a log (exact, case-sensitive, as pino matches them).
 *
 * @example
 * ```ts
 * import { REDACTED_KEYS, createServerLogger } from 'peerlink/server'
 *
 * const { log } = createServerLogger()
 * console.log(REDACTED_KEYS.includes('password'))   // true
 * log.info({ user: 'alice', password: 'hunter2' }, 'login')   // "user":"[redacted]","password":"[redacted]"
 * ```
 */
export const REDACTED_KEYS: readonly string[] = [
  'password',
  'pass',
  'passwd',
  'credential',
  'credentials',
  'secret',
  'secrets',
  'static-auth-secret',
  'staticAuthSecret',
  'auth-secret',
  'authSecret',
  'user',
  'users',
  'key',
  'pkey',
  'privateKey',
  'secretKey',
  'token',
  'authorization',
  'Authorization',
  'cookie',
  'Cookie',
]

/**
 * What a redacted value is replaced with.
 *
 * @example
 * ```ts
 * import { REDACTED, createServerLogger } from 'peerlink/server'
 *
 * const lines: string[] = []
 * const { log } = createServerLogger({ console: { write: (text) => lines.push(text) }, secrets: ['hunter2'] })
 * log.info('the password is hunter2')
 * console.log(lines[0]?.includes(REDACTED))   // true: '[redacted]' replaces the secret
 * ```
 */
export const REDACTED = '[redacted]'

/** Something a log line can be written to (`process.stdout`, `process.stderr`, a test's collector). */
export interface LogOutput {
  /** Writes `text` as is. */
  write(text: string): unknown
}

/** Options of {@link createServerLogger}. */
export interface ServerLoggerOptions {
  /**
   * Minimum level written.
   * @default 'info'
   */
  level?: LogLevel
  /**
   * Log file (appended to, created with mode 0640 when missing).
   * @default undefined (no file)
   */
  file?: string
  /**
   * Size at which the log file is rotated.
   * @default 10485760 (10 MiB)
   */
  maxFileBytes?: number
  /**
   * Rotated files kept (`.1` … `.N`); 0 truncates instead of keeping any.
   * @default 5
   */
  maxFiles?: number
  /**
   * Console stream; `false` for none.
   * @default process.stdout
   */
  console?: LogOutput | false
  /**
   * Format of console lines: pino's JSON, or `TIME LEVEL message key=value…` for people.
   * @default 'json'
   */
  consoleFormat?: ConsoleLogFormat
  /**
   * Literal secret values to scrub from every line (values shorter than 4 characters are ignored).
   * @default []
   */
  secrets?: readonly string[]
}

/** A logger made by {@link createServerLogger}. */
export interface ServerLogger {
  /** The pino logger: `log.info({ allocations: 3 }, 'relay started')`, `log.child({ server: 'turn' })`. */
  readonly log: Logger
  /** Adds a literal value to scrub from all later lines (e.g. a password generated at start). */
  addSecret(secret: string): void
  /** Closes the log file; later lines go to the console only. Idempotent. */
  close(): void
}

/**
 * Creates the servers' logger (see the module notes).
 *
 * @throws `InvalidArgumentError` for a bad level or size.
 * @example
 * ```ts
 * import { createServerLogger } from 'peerlink/server'
 *
 * const { log, close } = createServerLogger({ file: 'data/logs/peerlink-server.log', secrets: [secret] })
 * log.child({ server: 'turn' }).info({ port: 3478 }, 'listening')
 * ```
 */
export function createServerLogger(options: ServerLoggerOptions = {}): ServerLogger {
  const level = options.level ?? 'info'
  if (!LOG_LEVELS.includes(level)) throw new InvalidArgumentError(`log level must be one of ${LOG_LEVELS.join(', ')}`)
  const consoleOutput = options.console === undefined ? process.stdout : options.console
  const pretty = (options.consoleFormat ?? 'json') === 'pretty'
  const file = options.file === undefined ? undefined : new RotatingLogFile(options.file, options)
  const secrets = new Set<string>()
  const addSecret = (secret: string) => {
    if (typeof secret !== 'string' || secret.length < 4) return
    secrets.add(secret)
    // The JSON-escaped form too, as it appears inside a string value.
    secrets.add(JSON.stringify(secret).slice(1, -1))
  }
  for (const secret of options.secrets ?? []) addSecret(secret)

  const destination = {
    write(line: string): void {
      let text = line
      for (const secret of secrets) if (text.includes(secret)) text = text.split(secret).join(REDACTED)
      file?.write(text)
      if (consoleOutput !== false) consoleOutput.write(pretty ? prettyLine(text) : text)
    },
  }
  const log = pino(
    {
      level,
      redact: { paths: redactPaths(), censor: REDACTED },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  )
  return { log, addSecret, close: () => file?.close() }
}

/** pino redact paths: every secret key at the top level and one or two levels down. */
function redactPaths(): string[] {
  return REDACTED_KEYS.flatMap((key) => {
    const step = /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `["${key}"]`
    const top = step.startsWith('.') ? key : step
    return [top, `*${step}`, `*.*${step}`]
  })
}

const PRETTY_SKIP = new Set(['level', 'time', 'msg', 'pid', 'hostname'])

/** `TIME LEVEL message key=value…` from one JSON line (the line itself if it is not JSON). */
function prettyLine(line: string): string {
  let record: Record<string, unknown>
  try {
    record = JSON.parse(line) as Record<string, unknown>
  } catch {
    return line
  }
  const fields = Object.entries(record)
    .filter(([name]) => !PRETTY_SKIP.has(name))
    .map(([name, value]) => `${name}=${typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`)
  const level = String(record.level ?? '').toUpperCase().padEnd(5)
  return `${String(record.time ?? '')} ${level} ${String(record.msg ?? '')}${fields.length > 0 ? ` ${fields.join(' ')}` : ''}\n`
}

/**
 * An append-only log file rotated by size (see the module notes). Write errors (a full
 * disk, a deleted directory) never throw: the line is dropped and the next write tries
 * again.
 *
 * @example
 * ```ts
 * import { RotatingLogFile } from 'peerlink/server'
 *
 * const file = new RotatingLogFile('/var/log/myapp.log', { maxFileBytes: 1024 * 1024, maxFiles: 3 })
 * file.write(`${JSON.stringify({ time: Date.now(), msg: 'started' })}\n`)   // myapp.log → .1 → .2 → .3
 * file.close()
 * ```
 */
export class RotatingLogFile {
  /** The log file. */
  readonly path: string
  /** Write errors since the file was opened (lines lost). */
  errors = 0
  readonly #maxBytes: number
  readonly #maxFiles: number
  #fd: number | undefined
  #size = 0
  #closed = false

  /**
   * @throws `InvalidArgumentError` for a bad size or count.
   */
  constructor(path: string, options: Pick<ServerLoggerOptions, 'maxFileBytes' | 'maxFiles'> = {}) {
    this.path = path
    this.#maxBytes = options.maxFileBytes ?? 10 * 1024 * 1024
    this.#maxFiles = options.maxFiles ?? 5
    if (!(Number.isSafeInteger(this.#maxBytes) && this.#maxBytes >= 1024)) throw new InvalidArgumentError('maxFileBytes must be an integer of at least 1024')
    if (!(Number.isSafeInteger(this.#maxFiles) && this.#maxFiles >= 0 && this.#maxFiles <= 100)) {
      throw new InvalidArgumentError('maxFiles must be an integer from 0 to 100')
    }
  }

  /** Appends `text` (one or more whole lines), rotating first when it would not fit. */
  write(text: string): void {
    if (this.#closed) return
    const bytes = Buffer.from(text, 'utf8')
    try {
      this.#open()
      if (this.#size > 0 && this.#size + bytes.byteLength > this.#maxBytes) this.#rotate()
      writeSync(this.#fd!, bytes)
      this.#size += bytes.byteLength
    } catch {
      this.errors++
      this.#release()
    }
  }

  /** Closes the file; later writes are ignored. Idempotent. */
  close(): void {
    this.#closed = true
    this.#release()
  }

  #open(): void {
    if (this.#fd !== undefined) return
    this.#fd = openSync(this.path, 'a', 0o640)
    this.#size = fstatSync(this.#fd).size
  }

  #rotate(): void {
    this.#release()
    if (this.#maxFiles === 0) {
      rmSync(this.path, { force: true })
    } else {
      rmSync(`${this.path}.${this.#maxFiles}`, { force: true })
      for (let i = this.#maxFiles - 1; i >= 1; i--) {
        try {
          renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`)
        } catch (err) {
          if ((err as { code?: string }).code !== 'ENOENT') throw err
        }
      }
      renameSync(this.path, `${this.path}.1`)
    }
    this.#open()
  }

  #release(): void {
    if (this.#fd === undefined) return
    try {
      closeSync(this.#fd)
    } catch {
      // Already closed or invalid: nothing left to release.
    }
    this.#fd = undefined
  }
}
