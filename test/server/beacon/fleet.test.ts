// Two Beacon instances sharing a real redis-server: one in this process, one in a child
// process (running dist/, so that it can be killed with SIGKILL for real).
import { type ChildProcess, spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { beaconPeerKey, beaconTopicKey } from '../../../src/beacon/beacon-auth.js'
import { BeaconClient, type IncomingSignal, type Introduction } from '../../../src/beacon/beacon-client.js'
import { PeerlinkError } from '../../../src/errors.js'
import type { BeaconServer } from '../../../src/server/beacon/index.js'
import { certificate, id16, identity, next, startBeacon, until } from '../../beacon/helpers.js'
import { type RedisProcess, startRedis } from './redis.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const childScript = fileURLToPath(new URL('./fixtures/beacon-child.mjs', import.meta.url))
const fast = { minDelayMs: 50, maxDelayMs: 300, connectTimeout: 3_000, requestTimeout: 3_000 }
const TTL_MS = 2_000 // refreshed every TTL/3: the key outlives a kill by at least 1.3 s
const PREFIX = 'peerlink:beacon:'

/** The child runs the compiled server: dist/ must exist and be newer than the Beacon sources. */
function checkDist(): void {
  const built = join(root, 'dist/server/beacon/beacon-server.js')
  let builtAt: number
  try {
    builtAt = statSync(built).mtimeMs
  } catch {
    throw new Error('dist/ is missing: run `npm run build` first')
  }
  for (const dir of ['src/beacon', 'src/server/beacon']) {
    for (const file of readdirSync(join(root, dir))) {
      if (statSync(join(root, dir, file)).mtimeMs > builtAt) throw new Error(`dist/ is older than ${dir}/${file}: run \`npm run build\` first`)
    }
  }
}

interface ChildBeacon {
  child: ChildProcess
  port: number
  instanceId: string
  exited: Promise<void>
}

async function startChildBeacon(options: Record<string, unknown>): Promise<ChildBeacon> {
  const child = spawn(process.execPath, [childScript, JSON.stringify(options)], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let output = ''
      const timer = setTimeout(() => reject(new Error('the child Beacon did not start')), 10_000)
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes('\n')) {
          clearTimeout(timer)
          resolve(output.split('\n')[0]!)
        }
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`the child Beacon exited with ${code}`))
      })
    })
    const { port, instanceId } = JSON.parse(line) as { port: number; instanceId: string }
    return { child, port, instanceId, exited }
  } catch (err) {
    child.kill('SIGKILL')
    await exited
    throw err
  }
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    expect(err).toBeInstanceOf(PeerlinkError)
    return (err as PeerlinkError).code
  }
  throw new Error('expected a rejection')
}

describe('a Beacon fleet sharing Redis', () => {
  let redis: RedisProcess | undefined
  let inspect: Redis | undefined
  beforeAll(async () => {
    checkDist()
    redis = await startRedis()
    inspect = new Redis(redis.url)
  })
  afterAll(async () => {
    await inspect?.quit()
    await redis?.stop()
  })

  it('peers on different instances meet; after one instance is killed its registrations expire and its peers meet again through the other', async () => {
    const one: BeaconServer = await startBeacon({ redis: redis!.url, redisTtlMs: TTL_MS, instanceId: 'one' })
    const two = await startChildBeacon({ host: '127.0.0.1', port: 0, cert: certificate.cert, key: certificate.key, redis: redis!.url, redisTtlMs: TTL_MS, instanceId: 'two' })
    const specOne = `127.0.0.1:${one.port}#${certificate.hash}`
    const specTwo = `127.0.0.1:${two.port}#${certificate.hash}`
    const alice = identity()
    const bob = identity()
    const carol = identity()
    // Alice prefers instance one, Bob instance two (each can fail over to the other); Carol knows only two.
    const a = await BeaconClient.connect({ identity: alice, server: [specOne, specTwo], ...fast })
    const b = await BeaconClient.connect({ identity: bob, server: [specTwo, specOne], ...fast })
    const c = await BeaconClient.connect({ identity: carol, server: specTwo, ...fast })
    try {
      expect(a.server).toBe(`127.0.0.1:${one.port}`)
      expect(b.server).toBe(`127.0.0.1:${two.port}`)
      await Promise.all([a.listen(), b.listen(), c.listen()])

      // Connect-by-PeerId across instances, both ways.
      const offer = next<IncomingSignal>(b, 'signal')
      const sent = await a.signal(bob.peerId, { kind: 'offer', session: id16(), payload: Buffer.from('offer') })
      expect(sent.observed).toEqual([b.observed])
      expect(await offer).toMatchObject({ from: alice.peerId, kind: 'offer', observed: [a.observed] })
      const answer = next<IncomingSignal>(a, 'signal')
      await b.signal(alice.peerId, { kind: 'answer', session: id16(), payload: Buffer.from('answer') })
      expect(await answer).toMatchObject({ from: bob.peerId, kind: 'answer', observed: [b.observed] })
      expect(one.stats.signals).toBe(1)

      // Symmetric mode across instances.
      const introToA = next<Introduction>(a, 'introduction')
      const introToB = next<Introduction>(b, 'introduction')
      await a.announce('fleet-topic')
      await b.announce('fleet-topic')
      expect((await introToA).peerId).toBe(bob.peerId)
      expect((await introToB).peerId).toBe(alice.peerId)
      await c.announce('carol-topic')

      // Kill instance two for real: nothing removes its registrations …
      const again = next<Introduction>(a, 'introduction', 10_000)
      two.child.kill('SIGKILL')
      await two.exited
      const carolKey = `${PREFIX}k:${beaconPeerKey(carol.peerId)}`
      expect(Object.keys(await inspect!.hgetall(carolKey))).toEqual([expect.stringMatching(/^two\//)])
      expect(await inspect!.exists(`${PREFIX}i:two`)).toBe(1)
      // … they expire with the instance's liveness key.
      await until(async () => (await inspect!.exists(`${PREFIX}i:two`)) === 0, 3 * TTL_MS, 'instance two to expire')
      expect(await codeOf(a.signal(carol.peerId, { kind: 'offer', session: id16(), payload: new Uint8Array(1) }))).toBe('ERR_BEACON_PEER_NOT_FOUND')
      const toCarol: Introduction[] = []
      const onIntro = (intro: Introduction) => {
        if (Buffer.from(intro.topic).toString() === 'carol-topic') toCarol.push(intro)
      }
      a.on('introduction', onIntro)
      await a.announce('carol-topic') // Carol's announcement is gone too: no introduction …
      await a.ping()
      a.off('introduction', onIntro)
      expect(toCarol).toEqual([])
      expect(await inspect!.hlen(carolKey)).toBe(0) // … and the stale registrations were cleaned up.
      expect(await inspect!.hlen(`${PREFIX}k:${beaconTopicKey(Buffer.from('carol-topic'))}`)).toBe(1) // Alice's only

      // Bob reconnects to instance one, registers and announces again, and meets Alice again.
      await until(() => b.state === 'connected' && b.server === `127.0.0.1:${one.port}`, 5_000, 'bob to fail over')
      expect((await again).peerId).toBe(bob.peerId)
      await until(() => one.stats.registrations === 2, 3_000, 'bob to register again')
      const offerAgain = next<IncomingSignal>(b, 'signal')
      await a.signal(bob.peerId, { kind: 'offer', session: id16(), payload: Buffer.from('again') })
      expect(Buffer.from((await offerAgain).payload).toString()).toBe('again')
      expect(c.state).not.toBe('connected')
    } finally {
      await Promise.all([a.close(), b.close(), c.close()])
      if (two.child.exitCode === null && two.child.signalCode === null) two.child.kill('SIGKILL')
      await two.exited
      await one.close()
    }
    // A graceful close removes the instance's registrations and liveness key.
    expect(await inspect!.exists(`${PREFIX}i:one`)).toBe(0)
    // What is left belongs to the dead instance only (ignored by lookups, deleted by the
    // next lookup of its key or with the key's own expiry).
    for (const key of await inspect!.keys(`${PREFIX}k:*`)) {
      for (const field of Object.keys(await inspect!.hgetall(key))) expect(field).toMatch(/^two\//)
    }
  })

  it('answers unavailable while Redis is down and writes its registrations again when it is back', async () => {
    const own = await startRedis()
    const beacon = await startBeacon({ redis: own.url, redisTtlMs: TTL_MS })
    const alice = identity()
    const bob = identity()
    const a = await BeaconClient.connect({ identity: alice, server: `127.0.0.1:${beacon.port}#${certificate.hash}`, ...fast })
    const b = await BeaconClient.connect({ identity: bob, server: `127.0.0.1:${beacon.port}#${certificate.hash}`, ...fast })
    let restarted: RedisProcess | undefined
    try {
      await b.listen()
      await a.signal(bob.peerId, { kind: 'offer', session: id16(), payload: new Uint8Array(1) })
      await own.stop() // SIGKILL: Redis and all its data are gone
      expect(await codeOf(a.signal(bob.peerId, { kind: 'offer', session: id16(), payload: new Uint8Array(1) }))).toBe('ERR_BEACON_UNAVAILABLE')
      restarted = await startRedis(own.port) // empty
      await until(
        () => a.signal(bob.peerId, { kind: 'offer', session: id16(), payload: new Uint8Array(1) }).then(() => true, () => false),
        10_000,
        'the registration to be written again',
      )
      expect(beacon.stats.refused.unavailable).toBeGreaterThanOrEqual(1)
    } finally {
      await Promise.all([a.close(), b.close()])
      await beacon.close()
      await restarted?.stop()
    }
  })
})
