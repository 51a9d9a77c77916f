import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { TurnAuthenticator, createRestApiCredentials, restApiPassword } from '../../../src/server/turn/auth.js'
import { TurnServer } from '../../../src/server/turn/turn-server.js'
import type { TurnServerLogger } from '../../../src/server/turn/turn-server-options.js'
import {
  createTransactionId,
  decodeStunMessage,
  encodeStunMessage,
  getAttribute,
  longTermKey,
  type StunAttribute,
} from '../../../src/stun/index.js'
import { randomPortRange } from './coturn-tools.js'
import { TestTurnClient, errorCode } from './turn-test-client.js'

const REALM = 'example.org'

function signed(attributes: StunAttribute[], key?: Uint8Array, sha256 = false) {
  const bytes = encodeStunMessage(
    { method: 'allocate', class: 'request', transactionId: createTransactionId(), attributes: [{ type: 'requested-transport', value: 17 }, ...attributes] },
    sha256 ? { integritySha256: key } : { integrity: key },
  )
  return decodeStunMessage(bytes)
}

describe('TurnAuthenticator', () => {
  let now = 1_700_000_000_000
  const auth = new TurnAuthenticator({
    realm: REALM,
    users: new Map([['alice', longTermKey('alice', REALM, 'pw')]]),
    staticAuthSecrets: ['old-secret', 'new-secret'],
    nonceLifetimeMs: 60_000,
    now: () => now,
  })

  it('issues stateless nonces bound to the client IP that go stale', () => {
    const nonce = auth.createNonce('192.0.2.1')
    expect(auth.checkNonce(nonce, '192.0.2.1')).toBe(true)
    expect(auth.checkNonce(nonce, '192.0.2.2')).toBe(false)
    expect(auth.checkNonce(nonce.slice(0, -1) + (nonce.endsWith('A') ? 'B' : 'A'), '192.0.2.1')).toBe(false)
    expect(auth.checkNonce('ffffffff' + nonce.slice(8), '192.0.2.1')).toBe(false) // expiry not covered by the MAC
    expect(auth.checkNonce('short', '192.0.2.1')).toBe(false)
    now += 61_000
    expect(auth.checkNonce(nonce, '192.0.2.1')).toBe(false)
    const other = new TurnAuthenticator({ realm: REALM, now: () => now })
    expect(other.checkNonce(auth.createNonce('192.0.2.1'), '192.0.2.1')).toBe(false) // another server secret
  })

  it('computes REST API passwords as base64(HMAC-SHA1(secret, username))', () => {
    expect(restApiPassword('s3cret', '1700000000:bob')).toBe(createHmac('sha1', 's3cret').update('1700000000:bob').digest('base64'))
    const credentials = createRestApiCredentials('s3cret', 'bob', 3600, { now: 1_700_000_000_000 })
    expect(credentials.username).toBe('1700003600:bob')
    expect(credentials.password).toBe(restApiPassword('s3cret', '1700003600:bob'))
    expect(createRestApiCredentials('s3cret', undefined, 10, { now: 0 }).username).toBe('10')
  })

  it('follows RFC 8489 §9.2.4: challenge, 400, 438, then credentials', () => {
    const ip = '192.0.2.1'
    const nonce = auth.createNonce(ip)
    const key = longTermKey('alice', REALM, 'pw')
    const base = (username: string): StunAttribute[] => [
      { type: 'username', value: username },
      { type: 'realm', value: REALM },
      { type: 'nonce', value: nonce },
    ]
    expect(auth.authenticate(signed([]), ip)).toMatchObject({ ok: false, code: 401, failure: 'challenge' })
    expect(auth.authenticate(signed([{ type: 'username', value: 'alice' }], key), ip)).toMatchObject({ ok: false, code: 400 })
    expect(auth.authenticate(signed([...base('alice').slice(0, 2), { type: 'nonce', value: 'stale' }], key), ip)).toMatchObject({ ok: false, code: 438 })
    expect(auth.authenticate(signed(base('alice'), key), '192.0.2.9')).toMatchObject({ ok: false, code: 438 })
    expect(auth.authenticate(signed(base('alice'), key), ip)).toMatchObject({ ok: true, username: 'alice' })
    expect(auth.authenticate(signed(base('alice'), key, true), ip)).toMatchObject({ ok: true, username: 'alice' })
    expect(auth.authenticate(signed(base('alice'), longTermKey('alice', REALM, 'wrong')), ip)).toMatchObject({ ok: false, code: 401, failure: 'wrong-password' })
    expect(auth.authenticate(signed(base('mallory'), key), ip)).toMatchObject({ ok: false, code: 401, failure: 'unknown-user' })
    const wrongRealm = [base('alice')[0]!, { type: 'realm' as const, value: 'other' }, base('alice')[2]!]
    expect(auth.authenticate(signed(wrongRealm, key), ip)).toMatchObject({ ok: false, code: 401, failure: 'wrong-realm' })
  })

  it('accepts REST API usernames signed with any configured secret until they expire', () => {
    const ip = '192.0.2.1'
    const nonce = auth.createNonce(ip)
    const attempt = (secret: string, user: string | undefined, ttl: number) => {
      const { username, password } = createRestApiCredentials(secret, user, ttl, { now })
      return auth.authenticate(
        signed([{ type: 'username', value: username }, { type: 'realm', value: REALM }, { type: 'nonce', value: nonce }], longTermKey(username, REALM, password)),
        ip,
      )
    }
    expect(attempt('old-secret', 'bob', 600)).toMatchObject({ ok: true })
    expect(attempt('new-secret', 'bob', 600)).toMatchObject({ ok: true })
    expect(attempt('new-secret', undefined, 600)).toMatchObject({ ok: true })
    expect(attempt('unknown-secret', 'bob', 600)).toMatchObject({ ok: false, code: 401, failure: 'wrong-password' })
    expect(attempt('new-secret', 'bob', -1)).toMatchObject({ ok: false, code: 401, failure: 'expired' })
    expect(auth.keysFor('bob')).toBeUndefined() // no timestamp: not a REST username
  })

  it('keeps refusing memoised nonces from other IPs and memoised keys and nonces once expired', () => {
    const ip = '192.0.2.1'
    const nonce = auth.createNonce(ip)
    const { username, password } = createRestApiCredentials('new-secret', 'frank', 30, { now })
    const request = signed([{ type: 'username', value: username }, { type: 'realm', value: REALM }, { type: 'nonce', value: nonce }], longTermKey(username, REALM, password))
    expect(auth.authenticate(request, ip)).toMatchObject({ ok: true, username })
    expect(auth.authenticate(request, ip)).toMatchObject({ ok: true, username }) // from the memos
    expect(auth.checkNonce(nonce, '192.0.2.2')).toBe(false)
    expect(auth.keysFor(username)).toHaveLength(2) // one key per secret
    now += 31_000 // the REST username expires before the nonce
    expect(auth.authenticate(request, ip)).toMatchObject({ ok: false, code: 401, failure: 'expired' })
    now += 30_000 // and then the nonce
    expect(auth.authenticate(request, ip)).toMatchObject({ ok: false, code: 438 })
  })
})

describe('TurnServer credentials end to end', () => {
  it('refuses expired REST credentials with 401, accepts a rotated secret, never logs credentials', async () => {
    const logs: unknown[] = []
    const logger: TurnServerLogger = {
      info: (obj, msg) => logs.push(['info', obj, msg]),
      warn: (obj, msg) => logs.push(['warn', obj, msg]),
      error: (obj, msg) => logs.push(['error', obj, msg]),
    }
    const server = await TurnServer.listen({
      listeningIps: ['127.0.0.1'],
      listeningPort: 0,
      relayIps: ['127.0.0.1'],
      ...randomPortRange(100),
      realm: REALM,
      users: ['carol:carol-password-123'],
      staticAuthSecrets: ['first-secret-abc', 'second-secret-xyz'],
      logger,
    })
    const udp = server.addresses.find((a) => a.transport === 'udp')!
    const clients: TestTurnClient[] = []
    const client = async (username: string, password: string) => {
      const c = (await TestTurnClient.udp(udp)).useCredentials(username, password)
      clients.push(c)
      return c
    }
    try {
      const expired = createRestApiCredentials('first-secret-abc', 'dave', -10)
      const response = await (await client(expired.username, expired.password)).allocate()
      expect(errorCode(response)).toBe(401)
      expect(getAttribute(response, 'nonce')).toBeDefined()
      const rotated = createRestApiCredentials('second-secret-xyz', 'dave', 600)
      expect(errorCode(await (await client(rotated.username, rotated.password)).allocate())).toBeUndefined()
      const old = createRestApiCredentials('first-secret-abc', 'erin', 600)
      expect(errorCode(await (await client(old.username, old.password)).allocate())).toBeUndefined()
      expect(errorCode(await (await client('carol', 'carol-password-123')).allocate())).toBeUndefined()
      expect(errorCode(await (await client('carol', 'guessed-password-456')).allocate())).toBe(401)
      expect(server.stats.authFailures).toBe(2)

      const text = JSON.stringify(logs)
      expect(text).toContain('turn-allocation-created')
      expect(text).toContain('turn-auth-failed')
      for (const secret of ['first-secret-abc', 'second-secret-xyz', 'carol-password-123', 'guessed-password-456', expired.password, rotated.password, old.password]) {
        expect(text).not.toContain(secret)
      }
    } finally {
      await Promise.all(clients.map((c) => c.close()))
      await server.close()
    }
  })

  it('answers a nonce that went stale with 438 and a fresh nonce that works', async () => {
    const server = await TurnServer.listen({ listeningIps: ['127.0.0.1'], listeningPort: 0, ...randomPortRange(50), realm: REALM, users: ['carol:pw'], nonceLifetime: 1 })
    const c = (await TestTurnClient.udp(server.addresses.find((a) => a.transport === 'udp')!)).useCredentials('carol', 'pw')
    try {
      expect(errorCode(await c.allocate())).toBeUndefined()
      const stale = c.nonce
      await new Promise((resolve) => setTimeout(resolve, 2100))
      const response = await c.transact(
        { method: 'refresh', class: 'request', transactionId: createTransactionId(), attributes: c.authAttributes() },
        { integrity: c.key },
      )
      expect(errorCode(response!)).toBe(438)
      expect(getAttribute(response!, 'realm')?.value).toBe(REALM)
      const fresh = getAttribute(response!, 'nonce')?.value
      expect(fresh).toBeDefined()
      expect(fresh).not.toBe(stale)
      expect(server.stats.staleNonces).toBe(1)
      c.nonce = fresh
      expect(errorCode(await c.request('refresh'))).toBeUndefined()
    } finally {
      await c.close()
      await server.close()
    }
  })
})
