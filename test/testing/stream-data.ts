import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'

/**
 * Reads a stream to its end without destroying it. Not `for await (… of stream)`: that
 * destroys a Duplex as soon as its readable side ends, which resets a connection under
 * the writes it still has in flight (a test's own `end(data)` in the other direction).
 */
export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of (stream as Readable).iterator({ destroyOnReturn: false })) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** SHA-256 of `data` in hex: compares megabytes sent and received in one short line. */
export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}
