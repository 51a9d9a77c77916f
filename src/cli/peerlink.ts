/**
 * The `peerlink` command (`bin/peerlink` runs {@link main}).
 *
 * Exit codes: 0 success, 1 failure (a `PeerlinkError`, printed as
 * `peerlink: <message> (<code>)`), 2 usage error (`ERR_CLI_USAGE`). With `--json`,
 * errors are one JSON object per line on stderr: `{"event":"error","code":"…","message":"…"}`;
 * an unexpected (non-peerlink) error is reported with code `ERR_INTERNAL`.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { CliUsageError, PeerlinkError } from '../errors.js'
import type { CliCommand, CliOptionValues, CliOptionsConfig } from './command.js'
import { commands, findCommand } from './commands/index.js'
import { COMMON_OPTIONS, COMMON_OPTIONS_HELP, resolveCommonOptions } from './common-options.js'
import { type CliIo, processIo, writeJsonLine } from './io.js'

/** Exit code of a usage error. */
export const EXIT_USAGE = 2
/** Exit code of any other failure. */
export const EXIT_FAILURE = 1

/**
 * Runs `peerlink` with `argv` (the arguments after the program name) and resolves to
 * the process exit code. Never rejects: errors are reported on `io.stderr`.
 *
 * @param io - the process surroundings; tests pass their own.
 */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const state: RunState = { json: wantsJson(argv), command: undefined }
  try {
    return await run(argv, io, state)
  } catch (err) {
    return reportError(err, io, state)
  }
}

/** The top-level help text. */
export function usage(): string {
  const width = Math.max(...commands.map((command) => command.name.length), 4) + 2
  const list = commands.map((command) => `  ${command.name.padEnd(width)}${command.summary}`).join('\n')
  return `Usage: peerlink COMMAND [options]

Connects to peers by public key (PeerId) through any NAT.

Commands:
${list}
  ${'help'.padEnd(width)}show help for a command: peerlink help COMMAND

${COMMON_OPTIONS_HELP}

Exit codes: 0 success, 1 failure, 2 usage error.
`
}

/** The help text of one command. */
export function commandUsage(command: CliCommand): string {
  return `Usage: ${command.usage}\n\n${COMMON_OPTIONS_HELP}\n`
}

interface RunState {
  json: boolean
  command: CliCommand | undefined
}

async function run(argv: string[], io: CliIo, state: RunState): Promise<number> {
  if (argv.length === 0) {
    io.stdout.write(usage())
    return 0
  }
  // Pass 1, lenient, knowing every command's options: where is the command word?
  const everyOption: CliOptionsConfig = {}
  for (const command of commands) Object.assign(everyOption, command.options)
  Object.assign(everyOption, COMMON_OPTIONS)
  const { tokens } = parseArgs({ args: argv, options: everyOption, strict: false, allowPositionals: true, tokens: true })
  const word = tokens.find((token) => token.kind === 'positional')

  if (word === undefined) {
    const { values } = strictParse(argv, COMMON_OPTIONS)
    if (values.help === true) return print(io, usage())
    if (values.version === true) return print(io, `${version()}\n`)
    throw new CliUsageError('no command given')
  }
  const rest = argv.filter((_, index) => index !== word.index)

  if (word.value === 'help') {
    const { positionals } = strictParse(rest, COMMON_OPTIONS)
    if (positionals.length === 0) return print(io, usage())
    const command = findCommand(positionals[0]!)
    if (command === undefined || positionals.length > 1) {
      throw new CliUsageError(`unknown command "${positionals.join(' ')}"`)
    }
    return print(io, commandUsage(command))
  }

  const command = findCommand(word.value)
  if (command === undefined) throw new CliUsageError(`unknown command "${word.value}"`)
  state.command = command
  const { values, positionals } = strictParse(rest, { ...command.options, ...COMMON_OPTIONS })
  if (values.help === true) return print(io, commandUsage(command))
  if (values.version === true) return print(io, `${version()}\n`)
  const max = command.maxPositionals ?? 0
  if (positionals.length > max) throw new CliUsageError(`unexpected argument "${positionals[max]}"`)
  const common = await resolveCommonOptions(values, io)
  return await command.run({ values, positionals, common }, io)
}

function strictParse(args: string[], options: CliOptionsConfig): { values: CliOptionValues; positionals: string[] } {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true })
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      const message = (err as Error).message
      const unknown = /^Unknown option '([^']+)'/.exec(message)
      throw new CliUsageError(unknown !== null ? `unknown option ${unknown[1]}` : message.split('. ')[0]!, { cause: err })
    }
    throw err
  }
}

function print(io: CliIo, text: string): number {
  io.stdout.write(text)
  return 0
}

function reportError(err: unknown, io: CliIo, state: RunState): number {
  const isUsage = err instanceof CliUsageError
  const code = err instanceof PeerlinkError ? err.code : 'ERR_INTERNAL'
  const message = err instanceof Error ? err.message : String(err)
  if (state.json) {
    writeJsonLine(io.stderr, { event: 'error', code, message })
  } else if (isUsage) {
    const help = state.command === undefined ? 'peerlink --help' : `peerlink ${state.command.name} --help`
    io.stderr.write(`peerlink: ${message}\nRun '${help}' for usage.\n`)
  } else if (err instanceof PeerlinkError) {
    io.stderr.write(`peerlink: ${message} (${code})\n`)
  } else {
    io.stderr.write(`peerlink: unexpected error: ${message} (${code})\n`)
    if (io.env.PEERLINK_DEBUG !== undefined && err instanceof Error && err.stack !== undefined) {
      io.stderr.write(`${err.stack}\n`)
    }
  }
  return isUsage ? EXIT_USAGE : EXIT_FAILURE
}

/** `--json` anywhere before a `--` terminator. */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--')
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json')
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown }
    return typeof pkg.version === 'string' ? pkg.version : 'unknown'
  } catch {
    return 'unknown'
  }
}
