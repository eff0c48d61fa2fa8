import { createTokenBucket, type TokenBucket } from '../shared/token-bucket.js'

/**
 * Per-caller token buckets, bounded in the number of callers tracked (least recently seen
 * forgotten first). `perSecond` 0 disables limiting.
 */
export class CallerRateLimiter {
  readonly #buckets = new Map<string, TokenBucket>()
  readonly #perSecond: number
  readonly #burst: number
  readonly #now: () => number
  readonly #maxCallers: number

  constructor(opts: { perSecond: number; burst: number; now: () => number; maxCallers?: number }) {
    if (opts.perSecond < 0 || opts.burst < 1) throw new TypeError('"perSecond" must be >= 0 and "burst" >= 1')
    this.#perSecond = opts.perSecond
    this.#burst = opts.burst
    this.#now = opts.now
    this.#maxCallers = opts.maxCallers ?? 10_000
  }

  /** Takes one token for `caller`; false when the caller is over its rate. */
  take(caller: string): boolean {
    if (this.#perSecond === 0) return true
    const bucket = this.#buckets.get(caller) ?? createTokenBucket(this.#perSecond, this.#burst, this.#now)
    // Re-inserted on every use, so the Map's first key is the caller seen least recently.
    this.#buckets.delete(caller)
    this.#buckets.set(caller, bucket)
    if (this.#buckets.size > this.#maxCallers) this.#buckets.delete(this.#buckets.keys().next().value as string)
    return bucket.reserve(0) !== undefined
  }
}
