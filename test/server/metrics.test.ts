import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { MetricsServer, ServerMetrics } from '../../src/server/metrics.js'
import { StunServer } from '../../src/server/stun/stun-server.js'
import { createDgramEndpoint, stunBinding } from '../../src/stun/index.js'
import dgram from 'node:dgram'

/** Value of an unlabelled sample in Prometheus text, undefined when absent. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

describe('ServerMetrics', () => {
  it('reads counters and gauges from a stats object at scrape time', async () => {
    const stats = { allocations: 2, bytesRelayed: 100, authFailures: 0, note: 'not a number' }
    const metrics = new ServerMetrics()
    const remove = metrics.addStats('turn', stats, {
      allocations: { type: 'gauge', help: 'Current allocations' },
      bytesRelayed: { type: 'counter', help: 'Bytes relayed' },
      authFailures: { type: 'counter', help: 'Failed authentications' },
    })
    let text = await metrics.metrics()
    expect(text).toContain('# HELP peerlink_turn_allocations Current allocations')
    expect(text).toContain('# TYPE peerlink_turn_allocations gauge')
    expect(text).toContain('# TYPE peerlink_turn_bytes_relayed_total counter')
    expect(sample(text, 'peerlink_turn_allocations')).toBe(2)
    expect(sample(text, 'peerlink_turn_bytes_relayed_total')).toBe(100)
    expect(sample(text, 'peerlink_turn_auth_failures_total')).toBe(0)
    stats.allocations = 1
    stats.bytesRelayed = 5000
    text = await metrics.metrics()
    expect(sample(text, 'peerlink_turn_allocations')).toBe(1)
    expect(sample(text, 'peerlink_turn_bytes_relayed_total')).toBe(5000)
    remove()
    remove()
    expect(await metrics.metrics()).not.toContain('peerlink_turn')
  })

  it('labelled samples, a failing collector keeps its last value, bad names refused', async () => {
    const metrics = new ServerMetrics({ prefix: 'test_', labels: { instance_name: 'a' } })
    metrics.add({
      name: 'relayed_bytes_total',
      help: 'by transport',
      type: 'counter',
      labelNames: ['transport'],
      collect: () => [
        { labels: { transport: 'udp' }, value: 7 },
        { labels: { transport: 'tcp' }, value: 3 },
      ],
    })
    let reads = 0
    metrics.add({
      name: 'broken',
      help: 'throws after the first read',
      type: 'gauge',
      collect: () => {
        if (reads++ > 0) throw new Error('boom')
        return 42
      },
    })
    expect(sample(await metrics.metrics(), 'test_broken')).toBe(42)
    const text = await metrics.metrics()
    expect(reads).toBe(2)
    expect(text).toContain('test_relayed_bytes_total{transport="udp",instance_name="a"} 7')
    expect(text).toContain('test_relayed_bytes_total{transport="tcp",instance_name="a"} 3')
    expect(sample(text, 'test_broken')).toBe(42)
    expect(() => metrics.add({ name: 'x', help: '', type: 'counter', collect: () => 1 })).toThrow(/_total/)
    expect(() => metrics.add({ name: 'bad-name', help: '', type: 'gauge', collect: () => 1 })).toThrow(/bad metric name/)
    expect(() => metrics.add({ name: 'broken', help: '', type: 'gauge', collect: () => 1 })).toThrow(/already registered/)
  })
})

describe('MetricsServer (HTTP on 127.0.0.1)', () => {
  it('serves /metrics with the STUN server\'s live stats, 404 elsewhere, and closes cleanly', async () => {
    const stun = await StunServer.listen({ host: '127.0.0.1', port: 0 })
    const metrics = new ServerMetrics({ defaultMetrics: true })
    metrics.addStats('stun', () => stun.stats, {
      bindingResponses: { type: 'counter', help: 'Binding requests answered' },
      malformed: { type: 'counter', help: 'Malformed datagrams dropped' },
    })
    const endpoint = await MetricsServer.listen({ metrics, port: 0 })
    const socket = dgram.createSocket('udp4')
    try {
      expect(endpoint.address.host).toBe('127.0.0.1')
      expect(endpoint.url).toBe(`http://127.0.0.1:${endpoint.address.port}/metrics`)
      let response = await fetch(endpoint.url)
      expect(response.status).toBe(200)
      expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
      let text = await response.text()
      expect(sample(text, 'peerlink_stun_binding_responses_total')).toBe(0)
      expect(text).toContain('peerlink_process_cpu_user_seconds_total')

      socket.bind(0, '127.0.0.1')
      await once(socket, 'listening')
      await stunBinding({ endpoint: createDgramEndpoint(socket), server: stun.primary })
      socket.send(Buffer.from('garbage'), stun.primary.port, '127.0.0.1')
      await new Promise((resolve) => setTimeout(resolve, 50))
      text = await (await fetch(endpoint.url)).text()
      expect(sample(text, 'peerlink_stun_binding_responses_total')).toBe(1)
      expect(sample(text, 'peerlink_stun_malformed_total')).toBe(1)

      response = await fetch(`http://127.0.0.1:${endpoint.address.port}/other`)
      expect(response.status).toBe(404)
      await response.text()
      response = await fetch(endpoint.url, { method: 'POST' })
      expect(response.status).toBe(405)
      await response.text()
    } finally {
      socket.close()
      await endpoint.close()
      await stun.close()
    }
    await expect(fetch(endpoint.url)).rejects.toThrow()
  })

  it('reports a taken port as ERR_SOCKET_BIND, and honours abort', async () => {
    const blocker = http.createServer()
    blocker.listen(0, '127.0.0.1')
    await once(blocker, 'listening')
    try {
      const port = (blocker.address() as AddressInfo).port
      await expect(MetricsServer.listen({ metrics: new ServerMetrics(), port })).rejects.toMatchObject({ code: 'ERR_SOCKET_BIND' })
      await expect(MetricsServer.listen({ metrics: new ServerMetrics(), port: 0, signal: AbortSignal.abort() })).rejects.toMatchObject({
        code: 'ERR_ABORTED',
      })
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()))
    }
  })
})
