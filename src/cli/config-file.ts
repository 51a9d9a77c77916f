/**
 * The client config file given with `peerlink --config FILE`: TOML with the same
 * names as `createPeer`'s options. Every key is optional; unknown keys are refused so
 * typos do not go unnoticed.
 *
 * ```toml
 * key     = "~/.peerlink/peer.key"        # relative paths: relative to this file
 * beacons = ["beacon.example.com:4264#weOsoMPwj976xqxRvLElsbb-gijWWn0netOtgPflZnk"]
 * stun    = ["stun:stun.example.com:3478"]
 * turn    = ["turns:turn.example.com:5349",
 *            { urls = "turn:turn.example.com:3478?transport=udp", username = "u", credential = "p" }]
 * tunnels = ["wss://tunnel.example.com:8443"]
 * paths   = ["direct", "turn", "tunnel"]
 * ```
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, resolve } from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { ConfigInvalidError, PeerlinkError } from '../errors.js'
import {
  type BeaconServerSpec,
  type StunServerSpec,
  type TunnelServerSpec,
  type TurnServerSpec,
  parseBeaconSpec,
  parseStunSpec,
  parseTunnelSpec,
  parseTurnSpec,
} from '../server-spec.js'

/** The ways a connection may travel, in the order they are tried. */
export type ConnectionPathName = 'direct' | 'turn' | 'tunnel'

/** A TURN server with its (optional) long-term credentials. */
export interface TurnServerConfig {
  /** The parsed `urls` spec. */
  readonly server: TurnServerSpec
  /** Long-term credential user name; `undefined` when not configured. */
  readonly username: string | undefined
  /** Long-term credential password; `undefined` when not configured. */
  readonly credential: string | undefined
}

/** A loaded, validated client config file. */
export interface ClientConfig {
  /** Absolute path of the config file. */
  readonly file: string
  /** Absolute key file path (`~` expanded, relative to the config file); `undefined` when not set. */
  readonly key: string | undefined
  /** Beacon servers. */
  readonly beacons: readonly BeaconServerSpec[]
  /** STUN servers. */
  readonly stun: readonly StunServerSpec[]
  /** TURN servers. */
  readonly turn: readonly TurnServerConfig[]
  /** Tunnel servers. */
  readonly tunnels: readonly TunnelServerSpec[]
  /** Allowed paths; `undefined` when not set (all). */
  readonly paths: readonly ConnectionPathName[] | undefined
}

const KNOWN_KEYS = ['key', 'beacons', 'stun', 'turn', 'tunnels', 'paths']
const PATH_NAMES: readonly ConnectionPathName[] = ['direct', 'turn', 'tunnel']
const MAX_CONFIG_BYTES = 1024 * 1024

/**
 * Reads and validates a client config file.
 *
 * @param home - directory `~` stands for.
 * @throws {@link ConfigInvalidError} when the file cannot be read or is invalid.
 */
export async function loadClientConfig(file: string, home: string = homedir()): Promise<ClientConfig> {
  const path = resolve(file)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as { code?: string }).code
    throw new ConfigInvalidError(`Config file ${path}: cannot read it (${code ?? (err as Error).message})`, { cause: err })
  }
  return parseClientConfig(text, path, home)
}

/**
 * Validates config file text.
 *
 * @param file - absolute path of the file (for messages and relative paths).
 * @param home - directory `~` stands for.
 * @throws {@link ConfigInvalidError} when the text is invalid.
 */
export function parseClientConfig(text: string, file: string, home: string = homedir()): ClientConfig {
  const fail = (message: string, cause?: unknown): never => {
    throw new ConfigInvalidError(`Config file ${file}: ${message}`, cause === undefined ? undefined : { cause })
  }
  if (text.length > MAX_CONFIG_BYTES) fail('too large')
  let document: Record<string, unknown> = {}
  try {
    document = parseToml(text) as Record<string, unknown>
  } catch (err) {
    fail(`not valid TOML: ${(err as Error).message.split('\n')[0]}`, err)
  }
  for (const key of Object.keys(document)) {
    if (!KNOWN_KEYS.includes(key)) fail(`unknown key "${key}" (known keys: ${KNOWN_KEYS.join(', ')})`)
  }

  const strings = (key: string): string[] => {
    const value = document[key]
    if (value === undefined) return []
    if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
      return fail(`"${key}" must be an array of strings`)
    }
    return value as string[]
  }
  const specs = <T>(key: string, parse: (text: string) => T): T[] =>
    strings(key).map((item, i) => {
      try {
        return parse(item)
      } catch (err) {
        return fail(`${key}[${i}]: ${(err as Error).message}`, err)
      }
    })

  let key: string | undefined
  if (document.key !== undefined) {
    if (typeof document.key !== 'string' || document.key.length === 0) fail('"key" must be a non-empty string')
    key = resolve(dirname(file), expandHome(document.key as string, home))
  }

  const turn: TurnServerConfig[] = []
  const turnValue = document.turn ?? []
  if (!Array.isArray(turnValue)) fail('"turn" must be an array of TURN URIs or { urls, username, credential } tables')
  ;(turnValue as unknown[]).forEach((item, i) => {
    const entry = typeof item === 'string' ? { urls: item } : item
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      return fail(`turn[${i}] must be a TURN URI or a { urls, username, credential } table`)
    }
    const { urls, username, credential, ...rest } = entry as Record<string, unknown>
    const extra = Object.keys(rest)
    if (extra.length > 0) fail(`turn[${i}]: unknown key "${extra[0]}" (known: urls, username, credential)`)
    if (typeof urls !== 'string') fail(`turn[${i}].urls must be a TURN URI string`)
    for (const [name, value] of [['username', username], ['credential', credential]] as const) {
      if (value !== undefined && typeof value !== 'string') fail(`turn[${i}].${name} must be a string`)
    }
    if ((username === undefined) !== (credential === undefined)) fail(`turn[${i}]: give both username and credential, or neither`)
    try {
      turn.push({ server: parseTurnSpec(urls as string), username: username as string | undefined, credential: credential as string | undefined })
    } catch (err) {
      if (err instanceof PeerlinkError) fail(`turn[${i}].urls: ${err.message}`, err)
      throw err
    }
  })

  let paths: ConnectionPathName[] | undefined
  if (document.paths !== undefined) {
    paths = strings('paths') as ConnectionPathName[]
    const bad = paths.find((p) => !PATH_NAMES.includes(p))
    if (bad !== undefined) fail(`paths: "${bad}" is not one of ${PATH_NAMES.join(', ')}`)
    if (paths.length === 0) fail('paths must name at least one of direct, turn, tunnel')
  }

  return {
    file,
    key,
    beacons: specs('beacons', parseBeaconSpec),
    stun: specs('stun', parseStunSpec),
    turn,
    tunnels: specs('tunnels', parseTunnelSpec),
    paths,
  }
}

/** Replaces a leading `~` or `~/` with `home`. */
export function expandHome(path: string, home: string): string {
  if (path === '~') return home
  if (path.startsWith('~/') || path.startsWith('~\\')) return resolve(home, path.slice(2))
  return path
}
