/**
 * Options every `peerlink` command accepts, and how they are resolved.
 *
 * @module
 */
import { homedir } from 'node:os'
import { resolve } from 'node:path'
import type { CliOptionsConfig, CommonOptions } from './command.js'
import { expandHome, loadClientConfig } from './config-file.js'
import type { CliIo } from './io.js'

/** `parseArgs` definitions of the common options. */
export const COMMON_OPTIONS = {
  key: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const satisfies CliOptionsConfig

/** Help text of the common options. */
export const COMMON_OPTIONS_HELP = `Common options:
  --key FILE      identity key file; default: the config's "key", else $PEERLINK_KEY,
                  else ~/.peerlink/peer.key (created with mode 0600 when missing)
  --config FILE   TOML config file: key, beacons, stun, turn, tunnels, paths
  --json          machine-readable output: results as JSON on stdout, events and
                  errors as one JSON object per line on stderr
  -h, --help      show help (peerlink COMMAND --help for one command)
  --version       print the peerlink version`

/** Default key file, relative to the home directory. */
export const DEFAULT_KEY_FILE = '~/.peerlink/peer.key'

/** The home directory as the environment tells it (`HOME`, `USERPROFILE`), else the OS's. */
export function homeDirectory(io: CliIo): string {
  const fromEnv = process.platform === 'win32' ? io.env.USERPROFILE : io.env.HOME
  return fromEnv !== undefined && fromEnv.length > 0 ? fromEnv : homedir()
}

/**
 * Resolves the common options: loads `--config`, then picks the key file from
 * `--key`, the config's `key`, `$PEERLINK_KEY` or the default, in that order.
 *
 * @throws `ConfigInvalidError` when the config file is invalid.
 */
export async function resolveCommonOptions(
  values: Readonly<Record<string, unknown>>,
  io: CliIo,
): Promise<CommonOptions> {
  const home = homeDirectory(io)
  const configOption = values.config as string | undefined
  const config =
    configOption === undefined ? undefined : await loadClientConfig(resolve(io.cwd, expandHome(configOption, home)), home)
  const keyOption = values.key as string | undefined
  const envKey = io.env.PEERLINK_KEY !== undefined && io.env.PEERLINK_KEY.length > 0 ? io.env.PEERLINK_KEY : undefined
  const keyFile =
    keyOption !== undefined
      ? resolve(io.cwd, expandHome(keyOption, home))
      : config?.key ?? resolve(io.cwd, expandHome(envKey ?? DEFAULT_KEY_FILE, home))
  return { json: values.json === true, keyFile, config }
}
