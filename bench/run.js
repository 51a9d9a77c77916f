// Runs every bench/*.mjs in its own node process (against dist/: run `npm run build`
// first), prints each one's JSON result line and saves it to bench/results/<name>.json.
//
//   npm run bench            # all benchmarks
//   npm run bench -- secure  # only files whose name contains "secure"
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

const dir = fileURLToPath(new URL('.', import.meta.url))
const root = join(dir, '..')
if (!existsSync(join(root, 'dist'))) {
  console.error('bench: dist/ is missing; run `npm run build` first')
  process.exit(1)
}
const filters = process.argv.slice(2)
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.mjs'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort()
mkdirSync(join(dir, 'results'), { recursive: true })
let failed = false
for (const file of files) {
  const run = spawnSync(process.execPath, [join(dir, file)], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  const line = run.stdout.trim().split('\n').at(-1) ?? ''
  let result
  try {
    result = JSON.parse(line)
  } catch {
    console.error(`bench: ${file} exited with ${run.status} and printed no JSON result`)
    failed = true
    continue
  }
  console.log(JSON.stringify(result))
  writeFileSync(join(dir, 'results', file.replace(/\.mjs$/, '.json')), JSON.stringify(result, null, 2) + '\n')
}
process.exit(failed ? 1 : 0)
