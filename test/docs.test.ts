// The error codes in src/errors.ts and the table in docs/errors.md stay in step.
import { readFileSync } from 'node:fs'
import { expect, it } from 'vitest'

const root = new URL('../', import.meta.url)

it('docs/errors.md documents every error code, and only real ones', () => {
  const source = readFileSync(new URL('src/errors.ts', root), 'utf8')
  const union = /export type ErrorCode =([\s\S]*?)\n\n/.exec(source)?.[1] ?? ''
  const codes = [...union.matchAll(/'(ERR_[A-Z0-9_]+)'/g)].map((m) => m[1]).sort()
  expect(codes.length).toBeGreaterThan(20)
  const docs = readFileSync(new URL('docs/errors.md', root), 'utf8')
  const documented = [...docs.matchAll(/^\| `(ERR_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]).sort()
  expect(documented).toEqual(codes)
})
