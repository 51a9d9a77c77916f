/**
 * A FIFO of buffers with O(1) push and shift (an array with a moving head, compacted
 * now and then), used for the received bytes a stream holds beyond what its reader has
 * asked for. Arrays' own `shift()` is O(n): with tiny hostile frames it would make the
 * multiplexer quadratic.
 *
 * @module
 */

/** A first-in first-out queue of buffers that tracks the bytes it holds. */
export class ChunkQueue {
  #items: Buffer[] = []
  #head = 0
  /** Bytes held. */
  bytes = 0

  /** Number of buffers held. */
  get length(): number {
    return this.#items.length - this.#head
  }

  /** Append a buffer. */
  push(chunk: Buffer): void {
    this.#items.push(chunk)
    this.bytes += chunk.length
  }

  /** Remove and return the oldest buffer (`undefined` when empty). */
  shift(): Buffer | undefined {
    if (this.#head >= this.#items.length) return undefined
    const chunk = this.#items[this.#head]!
    this.#items[this.#head++] = EMPTY
    this.bytes -= chunk.length
    if (this.#head === this.#items.length) {
      this.#items = []
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return chunk
  }

  /** Drop everything. */
  clear(): void {
    this.#items = []
    this.#head = 0
    this.bytes = 0
  }
}

const EMPTY = Buffer.alloc(0)
