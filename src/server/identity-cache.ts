import type { Identity } from '../sts/get-caller-identity.js'

interface Entry<V> {
  readonly identity: V
  readonly expiresAt: number
}

/**
 * Identities STS confirmed, keyed by a hash of the token (never the token itself), kept until the
 * token stops being valid or the TTL passes, whichever is first. Bounded LRU. Concurrent lookups of
 * one key share a single load (one STS call however many reviews of the same token arrive).
 * Only identities are cached: the mapping is applied on every review, so mapping edits apply at once.
 * `V` is what the server keeps of a verification (the identity and the cluster ID its token named).
 */
export class IdentityCache<V = Identity> {
  readonly #entries = new Map<string, Entry<V>>()
  readonly #pending = new Map<string, Promise<V>>()
  readonly #maxEntries: number
  readonly #ttlMs: number
  readonly #now: () => number

  constructor(opts: { maxEntries: number; ttlMs: number; now: () => number }) {
    if (!Number.isInteger(opts.maxEntries) || opts.maxEntries < 0)
      throw new TypeError('"maxEntries" must be an integer >= 0')
    this.#maxEntries = opts.maxEntries
    this.#ttlMs = opts.ttlMs
    this.#now = opts.now
  }

  get size(): number {
    return this.#entries.size
  }

  get(key: string): V | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key)
      return undefined
    }
    // Re-insert to mark it most recently used (Map keeps insertion order).
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    return entry.identity
  }

  /**
   * The cached identity, or the result of `load`, shared with every concurrent caller of the same
   * key. `load` returns the identity and when the token itself expires. Failures are not cached.
   */
  async getOrLoad(
    key: string,
    load: () => Promise<{ identity: V; validUntil: number }>,
  ): Promise<{ identity: V; source: 'hit' | 'miss' | 'shared' }> {
    const cached = this.get(key)
    if (cached !== undefined) return { identity: cached, source: 'hit' }
    const pending = this.#pending.get(key)
    if (pending !== undefined) return { identity: await pending, source: 'shared' }
    const promise = load().then(({ identity, validUntil }) => {
      this.#set(key, identity, Math.min(validUntil, this.#now() + this.#ttlMs))
      return identity
    })
    this.#pending.set(key, promise)
    try {
      return { identity: await promise, source: 'miss' }
    } finally {
      this.#pending.delete(key)
    }
  }

  clear(): void {
    this.#entries.clear()
  }

  #set(key: string, identity: V, expiresAt: number): void {
    if (this.#maxEntries === 0 || expiresAt <= this.#now()) return
    this.#entries.delete(key)
    this.#entries.set(key, { identity, expiresAt })
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string
      this.#entries.delete(oldest)
    }
  }
}
