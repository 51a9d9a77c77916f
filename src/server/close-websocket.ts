/**
 * The servers' way to end a WebSocket: the closing handshake, and a hard close when the
 * other side does not complete it in time (a client that stopped reading must not hold
 * the socket).
 *
 * @module
 */
import type { WebSocket } from 'ws'

/**
 * Starts the closing handshake with `code` and `reason`; the socket is destroyed if it
 * has not closed after `graceMs`. Does nothing on a closed socket.
 */
export function closeWebSocket(ws: WebSocket, code: number, reason: string, graceMs = 2_000): void {
  if (ws.readyState === ws.CLOSED) return
  ws.close(code, reason)
  const timer = setTimeout(() => ws.terminate(), graceMs)
  ws.once('close', () => clearTimeout(timer))
}
