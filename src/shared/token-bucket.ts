/**
 * A token bucket: `qps` tokens per second, at most `burst` saved up. Shared by the EC2 lookup
 * (which waits for a token) and the per-caller STS limit (which never waits).
 */
export interface TokenBucket {
  /**
   * Takes a token, possibly one that will only exist later: returns how long to wait before using
   * it (0 = now), or undefined, taking nothing, when that wait would exceed `maxWaitMs`.
   */
  reserve(maxWaitMs: number): number | undefined
}

/** qps 0 = unlimited. Tokens may go negative: waiters queue up in order of reservation. */
export function createTokenBucket(qps: number, burst: number, now: () => number): TokenBucket {
  if (!(Number.isFinite(qps) && qps >= 0)) throw new TypeError(`qps must be a number >= 0, got ${qps}`)
  if (!(Number.isInteger(burst) && burst >= 1)) throw new TypeError(`burst must be an integer >= 1, got ${burst}`)
  if (qps === 0) return { reserve: () => 0 }
  let tokens = burst
  let last = now()
  return {
    reserve(maxWaitMs: number): number | undefined {
      const t = now()
      if (t > last) {
        tokens = Math.min(burst, tokens + ((t - last) * qps) / 1000)
        last = t
      }
      const wait = tokens >= 1 ? 0 : ((1 - tokens) * 1000) / qps
      if (wait > maxWaitMs) return undefined
      tokens -= 1
      return Math.ceil(wait)
    },
  }
}
