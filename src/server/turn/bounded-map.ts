/**
 * A `Map` with a size cap, for memoising pure results (derived keys, verified nonces,
 * policy decisions) of the TURN control plane: memory stays bounded whatever clients
 * send, and the oldest entry is evicted first.
 *
 * @module
 */

/** A `Map` that forgets its oldest entry once it holds `capacity` entries. */
export class BoundedMap<K, V> {
  readonly #capacity: number
  readonly #map = new Map<K, V>()

  /** @param capacity - most entries held (at least 1). */
  constructor(capacity: number) {
    this.#capacity = Math.max(1, Math.floor(capacity))
  }

  /** Number of entries. */
  get size(): number {
    return this.#map.size
  }

  /** The value of `key`, if held. */
  get(key: K): V | undefined {
    return this.#map.get(key)
  }

  /** Stores `key` (evicting the oldest entry when full). */
  set(key: K, value: V): void {
    const map = this.#map
    if (map.size >= this.#capacity && !map.has(key)) {
      // Map iterates in insertion order: the first key is the oldest.
      map.delete(map.keys().next().value as K)
    }
    map.set(key, value)
  }

  /** Forgets everything. */
  clear(): void {
    this.#map.clear()
  }
}
