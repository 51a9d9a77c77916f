/**
 * The public TCP ports a tunnel server may give devices: an `allow-ports` list in the
 * form rathole and frp use, `"20000-20999,21000,21005-21010"`.
 *
 * @module
 */
import { InvalidArgumentError } from '../../errors.js'

/**
 * A parsed `allow-ports` list.
 *
 * @example
 * ```ts
 * import { PortRange } from 'peerlink/server'
 *
 * const ports = PortRange.parse('20000-20999, 21000, 20500-21010')
 * ports.size          // 1011 (ranges merged: 20000-21010)
 * ports.has(21005)    // true
 * ports.toString()    // '20000-21010'
 * ```
 */
export class PortRange {
  /** The ranges, sorted and merged, each `[first, last]` inclusive. */
  readonly ranges: ReadonlyArray<readonly [number, number]>
  /** How many ports the list holds. */
  readonly size: number

  private constructor(ranges: Array<[number, number]>) {
    this.ranges = ranges
    this.size = ranges.reduce((sum, [first, last]) => sum + last - first + 1, 0)
  }

  /**
   * Parses `"A-B,C,…"` (white space around items is ignored).
   *
   * @throws `InvalidArgumentError` when the text is malformed, empty, or names port 0.
   */
  static parse(text: string): PortRange {
    if (typeof text !== 'string' || text.trim().length === 0) throw new InvalidArgumentError('allowPorts must be a list like "20000-20999,21000"')
    const ranges: Array<[number, number]> = []
    for (const item of text.split(',')) {
      const match = /^\s*([0-9]{1,5})\s*(?:-\s*([0-9]{1,5})\s*)?$/.exec(item)
      if (match === null) throw new InvalidArgumentError(`allowPorts: ${JSON.stringify(item.trim())} is not a port or a range A-B`)
      const first = Number(match[1])
      const last = match[2] === undefined ? first : Number(match[2])
      if (first < 1 || last > 65535 || first > last) throw new InvalidArgumentError(`allowPorts: ${JSON.stringify(item.trim())} is not within 1-65535 in ascending order`)
      ranges.push([first, last])
    }
    ranges.sort((a, b) => a[0] - b[0])
    const merged: Array<[number, number]> = []
    for (const range of ranges) {
      const previous = merged[merged.length - 1]
      if (previous !== undefined && range[0] <= previous[1] + 1) previous[1] = Math.max(previous[1], range[1])
      else merged.push([range[0], range[1]])
    }
    return new PortRange(merged)
  }

  /** True when `port` is in the list. */
  has(port: number): boolean {
    return this.ranges.some(([first, last]) => port >= first && port <= last)
  }

  /** The port at position `index` (0 ≤ index < size) in ascending order. */
  at(index: number): number {
    let rest = index
    for (const [first, last] of this.ranges) {
      const count = last - first + 1
      if (rest < count) return first + rest
      rest -= count
    }
    throw new InvalidArgumentError(`index ${index} is outside the port list`)
  }

  /**
   * Every port, starting at a random position and wrapping around, so that servers
   * hand out ports in an order that is hard to guess and that spreads the search.
   */
  *candidates(random: () => number = Math.random): Generator<number> {
    const start = Math.floor(random() * this.size)
    for (let i = 0; i < this.size; i++) yield this.at((start + i) % this.size)
  }

  /** The list written back in `allow-ports` form. */
  toString(): string {
    return this.ranges.map(([first, last]) => (first === last ? `${first}` : `${first}-${last}`)).join(',')
  }
}
