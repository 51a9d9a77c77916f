import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { REDACTED, REDACTED_KEYS, RotatingLogFile, createServerLogger } from '../../src/server/logger.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerlink-logger-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

function collector() {
  let text = ''
  return { output: { write: (chunk: string) => (text += chunk) }, text: () => text }
}

describe('createServerLogger', () => {
  it('writes the same JSON lines to the console and the log file', async () => {
    const file = join(dir, 'peerlink-server.log')
    const out = collector()
    const { log, close } = createServerLogger({ file, console: out.output })
    log.child({ server: 'turn' }).info({ port: 3478 }, 'listening')
    log.debug('not at info level')
    close()
    const lines = out.text().trim().split('\n').map((line) => JSON.parse(line))
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ level: 'info', server: 'turn', port: 3478, msg: 'listening' })
    expect(new Date(lines[0].time).getTime()).toBeGreaterThan(Date.now() - 60_000)
    expect(await readFile(file, 'utf8')).toBe(out.text())
    if (process.platform !== 'win32') expect((await stat(file)).mode & 0o777).toBe(0o640)
  })

  it('never writes a secret: by field name, nested, in messages, in errors, added later', async () => {
    const file = join(dir, 'peerlink-server.log')
    const out = collector()
    const secret = 'S3cr3t-shared-TURN-value'
    const password = 'hunter2-with-"quotes"'
    const generated = 'generated-at-start-9f8e7d'
    const { log, addSecret, close } = createServerLogger({ file, console: out.output, secrets: [secret, password], level: 'trace' })
    log.info({ password }, 'a password field')
    log.info({ 'static-auth-secret': secret, turn: { 'static-auth-secret': [secret], user: [`alice:${password}`] } }, 'config')
    log.info({ config: { turn: { credential: 'c-r-e-d-1234', key: 'k-e-y-5678' } } }, 'two levels down')
    log.info({ headers: { authorization: 'Bearer t0k3n-abcdef' } }, 'a request')
    log.warn(`the secret is ${secret} and the password is ${password}`)
    log.error(new Error(`bad secret ${secret}`), 'failed')
    addSecret(generated)
    log.info(`loopback password ${generated}`)
    close()
    const text = await readFile(file, 'utf8')
    expect(text).toBe(out.text())
    for (const value of [secret, password, JSON.stringify(password).slice(1, -1), 'c-r-e-d-1234', 'k-e-y-5678', 't0k3n-abcdef', generated, 'hunter2']) {
      expect(text).not.toContain(value)
    }
    expect(text.split(REDACTED).length).toBeGreaterThan(8)
    // The lines are still valid JSON and keep the non-secret parts.
    const lines = text.trim().split('\n').map((line) => JSON.parse(line))
    expect(lines[0].password).toBe(REDACTED)
    expect(lines[1].turn['static-auth-secret']).toBe(REDACTED)
    expect(lines[2].config.turn.credential).toBe(REDACTED)
    expect(lines[4].msg).toBe(`the secret is ${REDACTED} and the password is ${REDACTED}`)
    expect(lines[5].err.message).toBe(`bad secret ${REDACTED}`)
  })

  it('property: a registered secret never appears, whatever is logged around it', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 4, maxLength: 20 }), fc.string(), fc.string(), (secret, before, after) => {
        const out = collector()
        const { log } = createServerLogger({ console: out.output, secrets: [secret] })
        log.info({ note: `${before}${secret}${after}` }, `${after}${secret}${before}`)
        // The secret may be re-created by the surrounding text only if it contains the censor itself.
        if (!`${before}${REDACTED}${after}`.includes(secret) && !REDACTED.includes(secret)) {
          expect(out.text()).not.toContain(JSON.stringify(secret).slice(1, -1))
        }
      }),
      { numRuns: 200 },
    )
  })

  it('redacts every listed key', () => {
    const out = collector()
    const { log } = createServerLogger({ console: out.output })
    for (const key of REDACTED_KEYS) log.info({ [key]: 'v-a-l-u-e', nested: { [key]: 'v-a-l-u-e' } })
    expect(out.text()).not.toContain('v-a-l-u-e')
  })

  it('pretty console lines for people', () => {
    const out = collector()
    const { log } = createServerLogger({ console: out.output, consoleFormat: 'pretty' })
    log.child({ server: 'stun' }).warn({ port: 3478, note: 'two words' }, 'port in use')
    expect(out.text()).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z WARN  port in use server=stun port=3478 note="two words"\n$/)
  })

  it('refuses a bad level', () => {
    expect(() => createServerLogger({ level: 'loud' as 'info' })).toThrow(/log level/)
  })
})

describe('RotatingLogFile', () => {
  it('rotates by size and keeps maxFiles old files', async () => {
    const path = join(dir, 'server.log')
    const file = new RotatingLogFile(path, { maxFileBytes: 1024, maxFiles: 2 })
    const line = `${'x'.repeat(99)}\n` // 100 bytes
    for (let i = 0; i < 45; i++) file.write(line)
    file.close()
    file.write(line) // ignored after close
    expect((await readdir(dir)).sort()).toEqual(['server.log', 'server.log.1', 'server.log.2'])
    expect((await stat(path)).size).toBe(500) // 45 lines = 10 + 10 + 10 (.3 deleted) + 10 + 5
    expect((await stat(`${path}.1`)).size).toBe(1000)
    expect((await stat(`${path}.2`)).size).toBe(1000)
    expect(file.errors).toBe(0)
  })

  it('appends to an existing file and counts its size', async () => {
    const path = join(dir, 'server.log')
    const first = new RotatingLogFile(path, { maxFileBytes: 1024, maxFiles: 1 })
    first.write(`${'a'.repeat(899)}\n`)
    first.close()
    const second = new RotatingLogFile(path, { maxFileBytes: 1024, maxFiles: 1 })
    second.write(`${'b'.repeat(199)}\n`)
    second.close()
    expect(await readFile(`${path}.1`, 'utf8')).toBe(`${'a'.repeat(899)}\n`)
    expect(await readFile(path, 'utf8')).toBe(`${'b'.repeat(199)}\n`)
  })

  it('maxFiles 0 truncates; a write error drops the line instead of throwing', async () => {
    const path = join(dir, 'server.log')
    const file = new RotatingLogFile(path, { maxFileBytes: 1024, maxFiles: 0 })
    for (let i = 0; i < 11; i++) file.write(`${'x'.repeat(99)}\n`)
    file.close()
    expect(await readdir(dir)).toEqual(['server.log'])
    expect((await stat(path)).size).toBe(100)
    const broken = new RotatingLogFile(join(dir, 'missing', 'server.log'))
    expect(() => broken.write('line\n')).not.toThrow()
    expect(broken.errors).toBe(1)
    broken.close()
    expect(() => new RotatingLogFile(path, { maxFileBytes: 10 })).toThrow(/maxFileBytes/)
  })
})
