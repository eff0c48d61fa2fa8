interface Entry<V> {
  readonly value: V
  readonly expiresAt: number
}

/** A Map with per-entry expiry and a size bound, least recently used evicted first. */
export class TtlCache<V> {
  // insertion order = recency order (least recently used first)
  readonly #entries = new Map<string, Entry<V>>()
  readonly #maxEntries: number
  readonly #now: () => number

  constructor(maxEntries: number, now: () => number) {
    this.#maxEntries = maxEntries
    this.#now = now
  }

  get size(): number {
    return this.#entries.size
  }

  /** The live entry for `key` (marked most recently used), or undefined when absent or expired. */
  get(key: string): { value: V } | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    this.#entries.delete(key)
    if (entry.expiresAt <= this.#now()) return undefined
    this.#entries.set(key, entry)
    return entry
  }

  /** Keeps `value` for `ttlMs` (0: forget the key). */
  set(key: string, value: V, ttlMs: number): void {
    this.#entries.delete(key)
    if (ttlMs === 0) return
    this.#entries.set(key, { value, expiresAt: this.#now() + ttlMs })
    while (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!)
  }

  clear(): void {
    this.#entries.clear()
  }
}
