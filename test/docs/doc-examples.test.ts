// Every public export of peerlink has an `@example` (scripts/check-doc-examples.mjs,
// which converts the package with typedoc as `npm run docs` does).
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const script = 'scripts/check-doc-examples.mjs'

interface Outcome {
  code: number
  stdout: string
  stderr: string
}

function runCheck(...args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { cwd: root, timeout: 110_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

describe('check-doc-examples', () => {
  it('finds an @example on every exported class, function, variable and main options interface', async () => {
    const { code, stdout, stderr } = await runCheck()
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(stdout).toMatch(/^check-doc-examples: all \d{3,} public classes/)
  }, 120_000)

  it('fails and names the exports that lack one', async () => {
    const { code, stdout, stderr } = await runCheck('test/docs/fixtures/doc-examples-fixture.ts')
    expect(code).toBe(1)
    expect(stdout).toBe('')
    const named = [...stderr.matchAll(/^ {2}\S+: \w+ (\w+) \(/gm)].map((m) => m[1]).sort()
    expect(named).toEqual(['FixtureUnlinkedError', 'UNDOCUMENTED_CONSTANT', 'UndocumentedClass', 'undocumentedFunction'])
    expect(stderr).toMatch(/doc-examples-fixture\.ts:\d+/)
  }, 120_000)
})
