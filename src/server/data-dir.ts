/**
 * The server's data directory (ARCHITECTURE §5): everything `peerlink-server` needs to
 * come back as the same server after a restart or on a new machine.
 *
 * ```text
 * DIR/                       mode 0700
 *   peerlink-server.toml     every option, commented, with its default (0600: you may add secrets)
 *   cert.pem                 TLS certificate, self-signed ECDSA P-256 unless you put your own
 *   key.pem                  its private key, mode 0600 (refused when group/others can read it)
 *   certificate_hash.txt     base64url(SHA-256(DER of cert.pem)): the pin clients write after '#'
 *   logs/                    peerlink-server.log and its rotated predecessors
 * ```
 *
 * The first run creates what is missing; later runs reuse what is there and never
 * overwrite a file. Copying `cert.pem` and `key.pem` into a fresh directory restores
 * the same certificate hash (so one certificate can serve a fleet); `certificate_hash.txt`
 * is then recomputed. Inconsistent contents are refused with `DataDirError`
 * naming the file and the fix, never silently repaired.
 *
 * The default directory is `~/.peerlink-server` ({@link DEFAULT_DATA_DIR}): it does not
 * depend on the directory the server is started from, so every start finds the same
 * certificate. `--loopback` (what `npm start` runs) uses `./.peerlink-data` instead
 * ({@link LOOPBACK_DATA_DIR}), a throw-away directory inside the project.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import { access, link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { DataDirError, InvalidArgumentError, KeyFileAccessError, KeyFilePermissionsError, PeerlinkError, throwIfAborted } from '../errors.js'
import { certificateHash } from '../cert-pin.js'
import { type SelfSignedCertificateOptions, certificateMatchesKey, createSelfSignedCertificate } from './tls.js'

/**
 * Default data directory (`~` is the home directory).
 *
 * @example
 * ```ts
 * import { homedir } from 'node:os'
 * import { DEFAULT_DATA_DIR, openDataDir } from 'peerlink/server'
 *
 * // '~/.peerlink-server': expand the ~ yourself, openDataDir takes a plain path.
 * const dataDir = await openDataDir(DEFAULT_DATA_DIR.replace(/^~/, homedir()))
 * ```
 */
export const DEFAULT_DATA_DIR = '~/.peerlink-server'
/**
 * Data directory of `--loopback` (relative to the working directory).
 *
 * @example
 * ```ts
 * import { LOOPBACK_DATA_DIR, openDataDir } from 'peerlink/server'
 *
 * // What `peerlink-server all --loopback` (npm start) uses: ./.peerlink-data
 * const dataDir = await openDataDir(LOOPBACK_DATA_DIR)
 * ```
 */
export const LOOPBACK_DATA_DIR = './.peerlink-data'

/**
 * File names inside the data directory.
 *
 * @example
 * ```ts
 * import { readFile } from 'node:fs/promises'
 * import { join } from 'node:path'
 * import { DATA_DIR_FILES } from 'peerlink/server'
 *
 * const pin = (await readFile(join('/var/lib/peerlink', DATA_DIR_FILES.certificateHash), 'utf8')).trim()
 * console.log(`beacon.example.com:4264#${pin}`)
 * ```
 */
export const DATA_DIR_FILES = {
  config: 'peerlink-server.toml',
  cert: 'cert.pem',
  key: 'key.pem',
  certificateHash: 'certificate_hash.txt',
  logs: 'logs',
} as const

const IS_WINDOWS = process.platform === 'win32'
/** Group/other read and write bits: a secret file with any of them is refused. */
const UNSAFE_MODE_BITS = 0o066
const MAX_FILE_BYTES = 1024 * 1024

/** Options of {@link openDataDir}. */
export interface DataDirOptions {
  /**
   * Text of `peerlink-server.toml`, written when the file does not exist. The server
   * passes the commented template generated from its option table.
   * @default undefined (no config file is written, e.g. when `--config` points elsewhere)
   */
  configTemplate?: string
  /**
   * Names and validity of the certificate created on the first run.
   * @default {} (CN peerlink-server, localhost, 127.0.0.1, ::1; 10 years)
   */
  certificate?: SelfSignedCertificateOptions
  /**
   * Cancels between file-system steps; it then rejects with `AbortError`.
   * @default undefined
   */
  signal?: AbortSignal
}

/** An opened data directory: the paths, and the certificate loaded from it. */
export interface DataDir {
  /** Absolute path of the directory. */
  readonly dir: string
  /** `DIR/peerlink-server.toml`. */
  readonly configFile: string
  /** `DIR/cert.pem`. */
  readonly certFile: string
  /** `DIR/key.pem`. */
  readonly keyFile: string
  /** `DIR/certificate_hash.txt`. */
  readonly certificateHashFile: string
  /** `DIR/logs`. */
  readonly logDir: string
  /** The certificate (PEM). */
  readonly cert: string
  /** Its private key (PEM). */
  readonly key: string
  /** The certificate's pin, as in `certificate_hash.txt`. */
  readonly certificateHash: string
  /** Absolute paths of the files and directories this call created (empty on later runs). */
  readonly created: readonly string[]
}

/**
 * Opens the data directory at `dir`, creating what is missing (see the module notes).
 *
 * @throws `KeyFilePermissionsError` when `key.pem` can be read or written by group/others (POSIX).
 * @throws `KeyFileAccessError` when `key.pem` cannot be read.
 * @throws `DataDirError` when a file or directory cannot be created or read, or
 *   the files disagree (`cert.pem` without `key.pem` or the reverse, a key that is not
 *   the certificate's, a `certificate_hash.txt` that does not match `cert.pem`).
 * @throws `InvalidArgumentError` when `dir` is not a non-empty path.
 *
 * @example
 * ```ts
 * import { openDataDir, serverConfigTemplate } from 'peerlink/server'
 *
 * const dir = await openDataDir('/var/lib/peerlink', { configTemplate: serverConfigTemplate() })
 * if (dir.created.length > 0) console.log('created', dir.created)
 * console.log(`clients pin #${dir.certificateHash}`)   // also in dir.certificateHashFile
 * ```
 */
export async function openDataDir(dir: string, options: DataDirOptions = {}): Promise<DataDir> {
  if (typeof dir !== 'string' || dir.length === 0 || dir.includes('\0')) throw new InvalidArgumentError('data directory must be a non-empty path')
  const root = resolve(dir)
  const paths = {
    dir: root,
    configFile: join(root, DATA_DIR_FILES.config),
    certFile: join(root, DATA_DIR_FILES.cert),
    keyFile: join(root, DATA_DIR_FILES.key),
    certificateHashFile: join(root, DATA_DIR_FILES.certificateHash),
    logDir: join(root, DATA_DIR_FILES.logs),
  }
  const created: string[] = []
  const { signal } = options

  throwIfAborted(signal)
  if (await makeDirectory(root)) created.push(root)
  if (await makeDirectory(paths.logDir)) created.push(paths.logDir)

  throwIfAborted(signal)
  let cert = await readTextFile(paths.certFile)
  let key = await readSecretFile(paths.keyFile)
  if (cert === undefined && key === undefined) {
    const made = createSelfSignedCertificate(options.certificate)
    // Key first: a crash in between leaves key.pem alone, which is reported (not reused silently).
    if (await publishFile(paths.keyFile, made.key, 0o600)) created.push(paths.keyFile)
    if (await publishFile(paths.certFile, made.cert, 0o644)) created.push(paths.certFile)
    cert = await readTextFile(paths.certFile)
    key = await readSecretFile(paths.keyFile)
  }
  if (cert === undefined) {
    throw new DataDirError(paths.certFile, `missing while ${DATA_DIR_FILES.key} exists: restore the certificate from your backup, or delete ${DATA_DIR_FILES.key} to create a new certificate (its hash will change)`)
  }
  if (key === undefined) {
    throw new DataDirError(paths.keyFile, `missing while ${DATA_DIR_FILES.cert} exists: restore the key from your backup, or delete ${DATA_DIR_FILES.cert} to create a new certificate (its hash will change)`)
  }
  let hash: string
  let matches: boolean
  try {
    hash = certificateHash(cert)
  } catch (err) {
    throw new DataDirError(paths.certFile, 'not a PEM certificate', { cause: err })
  }
  try {
    matches = certificateMatchesKey(cert, key)
  } catch {
    throw new DataDirError(paths.keyFile, 'not a PEM private key')
  }
  if (!matches) throw new DataDirError(paths.keyFile, `is not the private key of ${DATA_DIR_FILES.cert}: copy both files from the same server`)

  throwIfAborted(signal)
  const written = await readTextFile(paths.certificateHashFile)
  if (written === undefined) {
    if (await publishFile(paths.certificateHashFile, `${hash}\n`, 0o644)) created.push(paths.certificateHashFile)
  } else if (written.trim() !== hash) {
    throw new DataDirError(
      paths.certificateHashFile,
      `says ${JSON.stringify(written.trim().slice(0, 60))} but ${DATA_DIR_FILES.cert} hashes to ${hash}: the certificate was replaced; delete ${DATA_DIR_FILES.certificateHash} to write the new hash (clients pinning the old one must be updated)`,
    )
  }

  if (options.configTemplate !== undefined) {
    throwIfAborted(signal)
    if (await publishFile(paths.configFile, options.configTemplate, 0o600)) created.push(paths.configFile)
  }
  return { ...paths, cert, key, certificateHash: hash, created }
}

/**
 * Reads a secret (one line of text) from `file`, creating the file (mode 0600) with a
 * new random secret (32 bytes, base64url) when it does not exist. Used for secrets the
 * server makes up itself, such as a TURN REST API secret for `--loopback`.
 *
 * @throws `KeyFilePermissionsError` when the file can be read or written by group/others (POSIX).
 * @throws `KeyFileAccessError` when it cannot be read.
 * @throws `DataDirError` when it cannot be created, or is empty.
 *
 * @example
 * ```ts
 * import { TurnServer, loadOrCreateSecretFile } from 'peerlink/server'
 *
 * // A TURN REST API secret made on the first run and kept (mode 0600) for the next ones.
 * const secret = await loadOrCreateSecretFile('./data/turn_secret.txt')
 * const turn = await TurnServer.listen({ staticAuthSecrets: [secret] })
 * ```
 */
export async function loadOrCreateSecretFile(file: string): Promise<string> {
  const path = resolve(file)
  let text = await readSecretFile(path)
  if (text === undefined) {
    await makeDirectory(dirname(path))
    await publishFile(path, `${randomBytes(32).toString('base64url')}\n`, 0o600)
    text = await readSecretFile(path)
  }
  const secret = text?.trim() ?? ''
  if (secret.length === 0) throw new DataDirError(path, 'is empty: delete it to generate a new secret')
  return secret
}

/**
 * Reads a private key file (PEM) given in the config (`[turn] pkey`), with the same
 * permission check as `key.pem`.
 *
 * @throws `KeyFilePermissionsError` when group/others can read or write it (POSIX).
 * @throws `KeyFileAccessError` when it does not exist or cannot be read.
 */
export async function readPrivateKeyFile(file: string): Promise<string> {
  const path = resolve(file)
  const text = await readSecretFile(path)
  if (text === undefined) throw new KeyFileAccessError(path, 'no such file')
  return text
}

/**
 * Reads a certificate file (PEM) given in the config (`[turn] cert`).
 *
 * @throws `DataDirError` when it does not exist or cannot be read.
 */
export async function readCertificateFile(file: string): Promise<string> {
  const path = resolve(file)
  const text = await readTextFile(path)
  if (text === undefined) throw new DataDirError(path, 'no such file')
  return text
}

/** Creates a directory (0700, parents too); true when this call created it. */
async function makeDirectory(path: string): Promise<boolean> {
  try {
    return (await mkdir(path, { recursive: true, mode: 0o700 })) !== undefined
  } catch (err) {
    throw new DataDirError(path, `cannot create directory: ${reason(err)}`, { cause: err })
  }
}

/** Reads a text file; `undefined` when it does not exist. */
async function readTextFile(file: string): Promise<string | undefined> {
  try {
    const text = await readFile(file)
    if (text.byteLength > MAX_FILE_BYTES) throw new DataDirError(file, 'too large')
    return text.toString('utf8')
  } catch (err) {
    if (err instanceof PeerlinkError) throw err
    if (errnoCode(err) === 'ENOENT') return undefined
    throw new DataDirError(file, `cannot read: ${reason(err)}`, { cause: err })
  }
}

/**
 * Reads a file holding a secret, refusing it when group/others may read or write it
 * (checked on the open descriptor, as the identity key files are); `undefined` when it
 * does not exist.
 */
async function readSecretFile(file: string): Promise<string | undefined> {
  // O_NONBLOCK: a FIFO planted at the path must not hang the server (no effect on regular files).
  const flags = fsConstants.O_RDONLY | (IS_WINDOWS ? 0 : fsConstants.O_NONBLOCK)
  let handle
  try {
    handle = await open(file, flags)
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined
    throw new KeyFileAccessError(file, `cannot open: ${reason(err)}`, { cause: err })
  }
  try {
    const stats = await handle.stat()
    if (!stats.isFile()) throw new DataDirError(file, 'not a regular file')
    if (!IS_WINDOWS && (stats.mode & UNSAFE_MODE_BITS) !== 0) throw new KeyFilePermissionsError(file, stats.mode)
    if (stats.size > MAX_FILE_BYTES) throw new DataDirError(file, 'too large')
    return await handle.readFile('utf8')
  } catch (err) {
    if (err instanceof PeerlinkError) throw err
    throw new KeyFileAccessError(file, `cannot read: ${reason(err)}`, { cause: err })
  } finally {
    await handle.close().catch(() => undefined)
  }
}

/**
 * Atomically creates `file` with `content` and `mode` unless something exists there
 * (a temporary file, then `link(2)`, which fails rather than replace): never overwrites.
 *
 * @returns true when this call created the file, false when it already existed.
 */
async function publishFile(file: string, content: string, mode: number): Promise<boolean> {
  const dir = dirname(file)
  const temp = join(dir, `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    const handle = await open(temp, 'wx', mode)
    try {
      // The umask may have removed bits but never adds any; make the mode exact.
      if (!IS_WINDOWS) await handle.chmod(mode)
      await handle.writeFile(content, 'utf8')
      await handle.sync()
    } finally {
      await handle.close()
    }
    try {
      await link(temp, file)
    } catch (err) {
      const code = errnoCode(err)
      if (code === 'EEXIST') return false
      if (!(code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS' || code === 'EMLINK')) throw err
      // File systems without hard links: check, then rename (a concurrent creator may slip in between).
      if (await exists(file)) return false
      await rename(temp, file)
    }
    return true
  } catch (err) {
    throw new DataDirError(file, `cannot create: ${reason(err)}`, { cause: err })
  } finally {
    await unlink(temp).catch(() => undefined)
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file)
    return true
  } catch {
    return false
  }
}

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

function reason(err: unknown): string {
  const code = errnoCode(err)
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied'
  return code ?? (err instanceof Error ? err.message : String(err))
}
