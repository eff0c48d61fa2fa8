/**
 * Per-caller token buckets, bounded in the number of callers tracked (least recently seen
 * forgotten first). `perSecond` 0 disables limiting.
 */
export class CallerRateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>()
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
    const now = this.#now()
    const b = this.#buckets.get(caller) ?? { tokens: this.#burst, at: now }
    this.#buckets.delete(caller)
    // max(0, ...): a clock that steps back must not drain the bucket
    b.tokens = Math.min(this.#burst, b.tokens + (Math.max(0, now - b.at) / 1000) * this.#perSecond)
    b.at = now
    const ok = b.tokens >= 1
    if (ok) b.tokens -= 1
    this.#buckets.set(caller, b)
    if (this.#buckets.size > this.#maxCallers) this.#buckets.delete(this.#buckets.keys().next().value as string)
    return ok
  }
}
