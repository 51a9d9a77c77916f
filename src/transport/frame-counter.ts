/**
 * Counts the length-prefixed frames secret-stream exchanges on the raw stream, so the
 * connection can tell when the remote's secretstream header has arrived — the proof
 * that the remote finished its own handshake and accepted our identity (it only writes
 * that header after its `'handshake'` event, where peerlink verifies the key).
 *
 * Frame format (secret-stream): a 3-byte little-endian length, then that many bytes.
 *
 * @module
 */

/**
 * Frames the remote sends before and including its secretstream header, in Noise XX
 * (`-> e`, `<- e, ee, s, es`, `-> s, se`, then one header each way): the initiator
 * receives message 2 and the header; the responder receives messages 1 and 3 and the header.
 *
 * @internal
 */
export function remoteFramesUntilHeader(isInitiator: boolean): number {
  return isInitiator ? 2 : 3
}

/**
 * Returns a `'data'` listener that calls `onDone` once, when `target` complete frames
 * have been seen. Bytes after the last counted frame are ignored.
 *
 * @internal
 */
export function createFrameCounter(target: number, onDone: () => void): (chunk: Uint8Array) => void {
  let frames = 0
  let headerBytes = 0
  let length = 0
  let remaining = 0
  return (chunk) => {
    if (frames >= target) return
    let offset = 0
    while (offset < chunk.length && frames < target) {
      if (headerBytes < 3) {
        length |= chunk[offset++]! << (8 * headerBytes)
        headerBytes++
        if (headerBytes < 3) continue
        remaining = length
      } else {
        const take = Math.min(remaining, chunk.length - offset)
        offset += take
        remaining -= take
      }
      if (remaining === 0) {
        frames++
        headerBytes = 0
        length = 0
      }
    }
    if (frames >= target) onDone()
  }
}
