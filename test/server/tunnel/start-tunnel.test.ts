// src/cli/peerlink-server-tunnel.ts: what `peerlink-server tunnel` will run — a generated
// device token in the data directory, the data directory's certificate pinned, loopback.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import type net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TUNNEL_TOKEN_FILE, prepareTunnel, startTunnel } from '../../../src/cli/peerlink-server-tunnel.js'
import { openDataDir, type DataDir } from '../../../src/server/data-dir.js'
import { exposeServices } from '../../../src/tunnel/tunnel-client.js'
import { closeServer, exchange, freePortRange, portOf, startEcho } from './helpers.js'

let dir: string
let dataDir: DataDir
let echo: net.Server

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerlink-tunnel-'))
  dataDir = await openDataDir(join(dir, 'data'))
  echo = await startEcho()
})
afterAll(async () => {
  await closeServer(echo)
  await rm(dir, { recursive: true, force: true })
})

describe('startTunnel', () => {
  it('generates a device token once (mode 0600) and pins the data directory certificate', async () => {
    const first = await prepareTunnel({ loopback: true, host: undefined, section: {}, dataDir })
    const second = await prepareTunnel({ loopback: true, host: undefined, section: {}, dataDir })
    expect(first.generatedToken).toBeDefined()
    expect(second.generatedToken).toBe(first.generatedToken)
    expect(first.tokenFile).toBe(join(dataDir.dir, TUNNEL_TOKEN_FILE))
    expect((await readFile(first.tokenFile!, 'utf8')).trim()).toBe(first.generatedToken)
    if (process.platform !== 'win32') expect((await stat(first.tokenFile!)).mode & 0o077).toBe(0)
    expect(first.pin).toBe(dataDir.certificateHash)
    expect(first.options).toMatchObject({ listeningIps: ['127.0.0.1'], publicHost: '127.0.0.1', tokens: [first.generatedToken] })
    expect(first.fallBackToFreePort).toBe(true)
    const configured = await prepareTunnel({ loopback: false, host: '127.0.0.1', section: { tokens: ['configured-token-1'], noTls: true }, dataDir })
    expect(configured.generatedToken).toBeUndefined()
    expect(configured.options.tls).toBeUndefined()
  })

  it('starts a server devices can use with the reported URL and token', async () => {
    const secrets: string[] = []
    const started = await startTunnel({
      loopback: true,
      host: undefined,
      controlPort: 0,
      httpPort: 0,
      section: { allowPorts: await freePortRange(4), domain: 'example.test' },
      dataDir,
      log: pino({ level: 'silent' }),
      addSecret: (secret) => secrets.push(secret),
      metrics: undefined,
      signal: new AbortController().signal,
    })
    try {
      const { report } = started
      expect(report.url).toBe(`wss://127.0.0.1:${report.controlPort}#${dataDir.certificateHash}`)
      expect(report.httpUrlPattern).toBe(`http://NAME.example.test:${report.httpPort}/`)
      expect(secrets).toEqual([report.token])
      const client = await exposeServices({ servers: report.url, ports: [portOf(echo)], token: report.token! })
      try {
        const data = Buffer.from('through the CLI-built server')
        expect((await exchange(client.endpoints!.ports[0]!.public, data)).equals(data)).toBe(true)
        expect(started.stats().devices).toBe(1)
      } finally {
        await client.close()
      }
    } finally {
      await started.close()
    }
  })
})
