/**
 * The process surroundings a CLI command may touch, injected so commands can be run
 * and tested in-process.
 *
 * @module
 */

/** Something text can be written to (`process.stdout`, or a test's collector). */
export interface CliOutput {
  /** Writes `text` as is (add the newline yourself). */
  write(text: string): unknown
}

/** What a command may use of its process. */
export interface CliIo {
  /** Standard output: the command's result. */
  readonly stdout: CliOutput
  /** Standard error: progress, notices and errors (JSON lines with `--json`). */
  readonly stderr: CliOutput
  /** Environment variables. */
  readonly env: Readonly<Record<string, string | undefined>>
  /** Directory that relative paths are resolved against. */
  readonly cwd: string
  /**
   * Standard input, for commands that join it to a connection.
   * @default undefined (no input)
   */
  readonly stdin?: NodeJS.ReadableStream
  /**
   * Aborted when the command should stop (e.g. on SIGINT).
   * @default undefined (never aborted)
   */
  readonly signal?: AbortSignal
}

/** The {@link CliIo} of the running process. */
export function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    // A getter: touching process.stdin creates its stream, so only do it when a command reads it.
    get stdin() {
      return process.stdin
    },
  }
}

/** Writes `value` as one line of JSON. */
export function writeJsonLine(output: CliOutput, value: unknown): void {
  output.write(`${JSON.stringify(value)}\n`)
}
