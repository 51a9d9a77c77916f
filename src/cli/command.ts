/**
 * The shape of a `peerlink` subcommand. Each command lives in
 * `src/cli/commands/<name>.ts` and is registered with one line in
 * `src/cli/commands/registry.ts`.
 *
 * @module
 */
import type { ParseArgsConfig } from 'node:util'
import type { ClientConfig } from './config-file.js'
import type { CliIo } from './io.js'

/** Option definitions in the format of `node:util` `parseArgs`. */
export type CliOptionsConfig = NonNullable<ParseArgsConfig['options']>

/** Parsed option values, as `parseArgs` returns them. */
export type CliOptionValues = Readonly<Record<string, string | boolean | Array<string | boolean> | undefined>>

/** The options every command accepts, resolved. */
export interface CommonOptions {
  /** `--json`: machine-readable output. */
  readonly json: boolean
  /** Absolute key file path: `--key`, else the config's `key`, else `$PEERLINK_KEY`, else `~/.peerlink/peer.key`. */
  readonly keyFile: string
  /** The `--config` file, loaded and validated; `undefined` without `--config`. */
  readonly config: ClientConfig | undefined
}

/** What a command's `run` receives. */
export interface CommandArgs {
  /** All option values, common ones included, by long name. */
  readonly values: CliOptionValues
  /** Positional arguments after the command name. */
  readonly positionals: readonly string[]
  /** The common options, resolved. */
  readonly common: CommonOptions
}

/** A `peerlink` subcommand. */
export interface CliCommand {
  /** The word that selects it: `peerlink <name>`. */
  readonly name: string
  /** One line for the command list in `peerlink --help`. */
  readonly summary: string
  /** Its help text: a synopsis line (`peerlink id [--key FILE]`), a blank line, a description. */
  readonly usage: string
  /**
   * Its own options (the common ones are added).
   * @default {} (only the common options)
   */
  readonly options?: CliOptionsConfig
  /**
   * How many positional arguments it takes at most.
   * @default 0
   */
  readonly maxPositionals?: number
  /** Runs the command; resolves to the exit code. Throw a `PeerlinkError` to fail with a code. */
  run(args: CommandArgs, io: CliIo): Promise<number>
}
