/**
 * Test helper: runs coturn's client tools (Debian's `turnutils_peer`, `turnutils_uclient`)
 * against our TURN server on loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import dgram from 'node:dgram'

/** A free UDP port on 127.0.0.1 right now. */
export async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()))
  const { port } = socket.address()
  await new Promise<void>((resolve) => socket.close(() => resolve()))
  return port
}

/** A random relay port range of `size` ports somewhere in 20000–39999 (pool skips ports in use). */
export function randomPortRange(size: number): { minPort: number; maxPort: number } {
  const minPort = 20000 + Math.floor(Math.random() * (20000 - size))
  return { minPort, maxPort: minPort + size - 1 }
}

/** `turnutils_peer`: a UDP echo peer. */
export interface EchoPeer {
  port: number
  stop(): Promise<void>
}

function stopChild(child: ChildProcess, exited: Promise<void>): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000)
      await exited
      clearTimeout(timer)
    }
  }
}

/** Starts `turnutils_peer` on 127.0.0.1 and waits until it echoes. */
export async function startEchoPeer(): Promise<EchoPeer> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeUdpPort()
    // `timeout` kills it even if the test process dies before stop().
    const child = spawn('timeout', ['-k', '2', '120', 'turnutils_peer', '-L', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' })
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    const stop = stopChild(child, exited)
    if (await echoes(port)) return { port, stop }
    await stop()
  }
  throw new Error('turnutils_peer did not start')
}

async function echoes(port: number): Promise<boolean> {
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()))
  try {
    for (let i = 0; i < 40; i++) {
      const got = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          socket.off('message', onMessage)
          resolve(false)
        }, 50)
        const onMessage = (): void => {
          clearTimeout(timer)
          socket.off('message', onMessage)
          resolve(true)
        }
        socket.on('message', onMessage)
        socket.send('ping', port, '127.0.0.1')
      })
      if (got) return true
    }
    return false
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()))
  }
}

/** What `turnutils_uclient` reported. */
export interface UclientResult {
  code: number | null
  output: string
  sent: number | undefined
  received: number | undefined
  lost: number | undefined
}

/** Runs `turnutils_uclient ARGS` to completion (killed after `timeoutSeconds`). */
export async function runUclient(args: string[], timeoutSeconds = 40): Promise<UclientResult> {
  const child = spawn('timeout', ['-k', '2', String(timeoutSeconds), 'turnutils_uclient', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)))
  const totals = [...output.matchAll(/tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/gm)].at(-1)
  const lost = /Total lost packets (\d+)/.exec(output)
  return {
    code,
    output,
    sent: totals === undefined ? undefined : Number(totals[1]),
    received: totals === undefined ? undefined : Number(totals[2]),
    lost: lost === null ? undefined : Number(lost[1]),
  }
}
