/**
 * Running the NAT lab's system commands (`ip`, `nft`, `sh`) with a time limit, an abort
 * signal and typed errors.
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { AbortError, NatLabCommandError, NatLabUnavailableError } from '../../errors.js'

/** Options of {@link runLabCommand}. */
export interface RunLabCommandOptions {
  /** Written to the command's stdin (then closed). */
  input?: string
  /** Milliseconds before the command is killed. */
  timeout: number
  /** Kills the command and rejects with AbortError. */
  signal?: AbortSignal | undefined
}

const MAX_OUTPUT = 1 << 20
const MAX_STDERR_IN_ERROR = 2_000

/**
 * Runs `file args…` and resolves with its stdout. Rejects with NatLabUnavailableError
 * when the program does not exist, NatLabCommandError when it fails or times out,
 * AbortError when `signal` fires.
 */
export function runLabCommand(file: string, args: readonly string[], options: RunLabCommandOptions): Promise<string> {
  const commandLine = [file, ...args].join(' ')
  return new Promise<string>((resolve, reject) => {
    if (options.signal?.aborted === true) {
      reject(new AbortError(undefined, { cause: options.signal.reason }))
      return
    }
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let settled = false
    let aborted = false
    let timedOut = false
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += chunk
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += chunk
    })
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, options.timeout)
    const onAbort = (): void => {
      aborted = true
      child.kill('SIGKILL')
    }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    const finish = (error: Error | undefined): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      if (error === undefined) resolve(stdout)
      else reject(error)
    }
    child.on('error', (err: NodeJS.ErrnoException) => {
      finish(
        err.code === 'ENOENT'
          ? new NatLabUnavailableError(`the command ${file} was not found (install ${file === 'nft' ? 'nftables' : 'iproute2'})`, { cause: err })
          : new NatLabCommandError(commandLine, null, err.message, { cause: err }),
      )
    })
    child.on('close', (code) => {
      if (aborted) finish(new AbortError(undefined, { cause: options.signal?.reason }))
      else if (code === 0) finish(undefined)
      else {
        const text = stderr.trim().slice(0, MAX_STDERR_IN_ERROR)
        finish(new NatLabCommandError(commandLine, code, timedOut ? `timed out after ${options.timeout} ms ${text}`.trim() : text))
      }
    })
    // A command that exits before reading its input closes the pipe: ignore EPIPE.
    child.stdin.on('error', () => {})
    child.stdin.end(options.input ?? '')
  })
}
