// The load generator: N concurrent workers, each keeping one request in flight on an undici Pool
// over TLS keep-alive. Every phase is bounded both in time and in request count.
import type { Pool } from 'undici'
import { percentile, sorted } from './stats.js'

export interface LoadOptions {
  readonly concurrency: number
  /** Stop issuing new requests after this long. */
  readonly maxMs: number
  /** ... or after this many. */
  readonly maxRequests: number
  /** The TokenReview body for request i (0-based). */
  readonly body: (i: number) => string
}

export interface LoadResult {
  readonly requests: number
  readonly seconds: number
  readonly perSecond: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  /** 200 with authenticated:true */
  readonly authenticated: number
  /** Everything else, by kind: `200-denied`, `status-<code>`, `error-<code>`. */
  readonly failures: Record<string, number>
  readonly stoppedBy: 'time' | 'count'
}

const HEADERS = { 'content-type': 'application/json' }

export async function runLoad(pool: Pool, o: LoadOptions): Promise<LoadResult> {
  const latencies = new Float64Array(o.maxRequests)
  const failures: Record<string, number> = {}
  const fail = (kind: string) => (failures[kind] = (failures[kind] ?? 0) + 1)
  let issued = 0
  let done = 0
  let authenticated = 0
  let stoppedBy: 'time' | 'count' = 'count'
  const start = performance.now()
  const stopAt = start + o.maxMs

  const worker = async () => {
    for (;;) {
      if (issued >= o.maxRequests) return
      if (performance.now() >= stopAt) {
        stoppedBy = 'time'
        return
      }
      const i = issued++
      const t0 = performance.now()
      try {
        const res = await pool.request({ path: '/authenticate', method: 'POST', headers: HEADERS, body: o.body(i) })
        const text = await res.body.text()
        if (res.statusCode !== 200) fail(`status-${res.statusCode}`)
        else if (text.includes('"authenticated":true')) authenticated++
        else fail('200-denied')
      } catch (err) {
        fail(`error-${(err as { code?: string }).code ?? (err as Error).name}`)
      }
      latencies[done++] = performance.now() - t0
    }
  }
  await Promise.all(Array.from({ length: o.concurrency }, worker))
  const seconds = (performance.now() - start) / 1000
  const lat = sorted(latencies.subarray(0, done))
  return {
    requests: done,
    seconds,
    perSecond: done / seconds,
    p50Ms: percentile(lat, 50),
    p90Ms: percentile(lat, 90),
    p99Ms: percentile(lat, 99),
    maxMs: lat[lat.length - 1] ?? NaN,
    authenticated,
    failures,
    stoppedBy,
  }
}
