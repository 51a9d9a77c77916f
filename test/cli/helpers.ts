import type { CliIo } from '../../src/cli/io.js'

/** A {@link CliIo} that collects output in strings. */
export interface CapturedIo {
  readonly io: CliIo
  readonly stdout: () => string
  readonly stderr: () => string
}

export function captureIo(cwd: string, env: Record<string, string | undefined> = {}): CapturedIo {
  let out = ''
  let err = ''
  return {
    io: {
      stdout: { write: (text: string) => (out += text) },
      stderr: { write: (text: string) => (err += text) },
      env: { HOME: cwd, USERPROFILE: cwd, ...env },
      cwd,
    },
    stdout: () => out,
    stderr: () => err,
  }
}
