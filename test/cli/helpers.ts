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

/**
 * Throws unless every source file the compiled `entry` loads (followed through relative
 * imports from `src/<entry>.ts`) is older than its `dist/` counterpart: the bin tests run
 * `dist/`, so `npm run build` must have run after the last edit. Files the entry does not
 * load (other helpers' work in progress) are not looked at.
 */
export async function assertDistFresh(root: string, entry: string): Promise<void> {
  const { readFile, stat } = await import('node:fs/promises')
  const { dirname, join, relative, resolve } = await import('node:path')
  const seen = new Set<string>()
  const queue = [resolve(root, 'src', `${entry}.ts`)]
  while (queue.length > 0) {
    const source = queue.pop()!
    if (seen.has(source)) continue
    seen.add(source)
    const text = await readFile(source, 'utf8')
    const built = join(root, 'dist', relative(join(root, 'src'), source).replace(/\.ts$/, '.js'))
    const [sourceInfo, builtInfo] = await Promise.all([stat(source), stat(built).catch(() => undefined)])
    if (builtInfo === undefined || builtInfo.mtimeMs < sourceInfo.mtimeMs) {
      throw new Error(`${relative(root, built)} is missing or older than ${relative(root, source)}: run \`npm run build\` before these tests`)
    }
    for (const [, path] of text.matchAll(/(?:from|import\()\s*['"](\.\.?\/[^'"]+)\.js['"]/g)) {
      const next = resolve(dirname(source), `${path}.ts`)
      if (!seen.has(next) && (await stat(next).catch(() => undefined)) !== undefined) queue.push(next)
    }
  }
}
