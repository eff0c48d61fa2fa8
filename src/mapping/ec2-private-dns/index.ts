import { MappingFailed } from '../../shared/errors.js'
import { createTokenBucket } from '../../shared/token-bucket.js'
import { Batcher } from './batcher.js'
import { createSettler } from './describe.js'
import { createEc2Pages } from './ec2-client.js'
import { closedError, notFound, toMappingFailed } from './outcome.js'
import { TtlCache } from '../../shared/ttl-cache.js'
import type { PageFn, PrivateDnsDeps, PrivateDnsLookup, PrivateDnsOptions } from './types.js'

export type { EC2Outcome, PrivateDnsDeps, PrivateDnsLookup, PrivateDnsOptions } from './types.js'

/**
 * `{{EC2PrivateDNSName}}` lookups: instance ID -> PrivateDnsName through EC2 DescribeInstances,
 * cached, single-flighted, batched and rate limited.
 *
 * Differences from upstream's EC2 provider (pkg/ec2provider), on purpose:
 * - positive entries expire (`cacheTtlMs`) and the cache is LRU-bounded; "not found" is cached briefly;
 * - the qps/burst token bucket limits the EC2 calls themselves (upstream's rate limiter sits on the
 *   STS client that assumes the EC2 role, so it never limits DescribeInstances), so a node surge
 *   cannot exceed the configured rate;
 * - one in-flight lookup per ID is shared by every caller instead of polling the cache every 50 ms.
 *
 * This module composes the parts: shared/ttl-cache (entries), batcher (the collection window),
 * describe (pages, rate limit, deadline, not-found handling), ec2-client and assume-role (the SDK).
 */

const INSTANCE_ID = /^i-([0-9a-f]{8}|[0-9a-f]{17})$/

interface Pending {
  readonly id: string
  readonly promise: Promise<string>
  readonly resolve: (dnsName: string) => void
  readonly reject: (err: MappingFailed) => void
}

export function createPrivateDnsResolver(opts: PrivateDnsOptions, deps: PrivateDnsDeps): PrivateDnsLookup {
  const cacheTtlMs = positive(opts.cacheTtlMs ?? 6 * 3600_000, 'cacheTtlMs')
  const negativeTtlMs = nonNegative(opts.negativeTtlMs ?? 30_000, 'negativeTtlMs')
  const cacheSize = integerAtLeast(opts.cacheSize ?? 10_000, 1, 'cacheSize')
  const batchWindowMs = nonNegative(opts.batchWindowMs ?? 50, 'batchWindowMs')
  const maxBatch = integerAtLeast(opts.maxBatch ?? 100, 1, 'maxBatch')
  const timeoutMs = positive(opts.timeoutMs ?? 5000, 'timeoutMs')
  /** Distinct IDs queued or being looked up; beyond this, lookups fail fast (transient). */
  const maxPending = Math.max(cacheSize, maxBatch)

  const lifetime = new AbortController()
  const ec2 = createEc2Pages(opts, deps.aws, deps.now)
  const describe = deps.describe
  const page: PageFn = describe === undefined ? ec2.page : async (ids) => ({ found: await describe(ids) })
  const settle = createSettler({
    page,
    bucket: createTokenBucket(opts.qps, opts.burst, deps.now),
    limits: { qps: opts.qps, burst: opts.burst, timeoutMs },
    now: deps.now,
    lifetime: lifetime.signal,
    onCall: deps.onCall,
    onResult: deps.onResult,
  })
  /** DNS name by instance ID; undefined: the instance does not exist (negative entry). */
  const cache = new TtlCache<string | undefined>(cacheSize, deps.now)
  const pending = new Map<string, Pending>()

  const runBatch = async (batch: Pending[]): Promise<void> => {
    let results: Map<string, string | MappingFailed>
    try {
      results = await settle(
        batch.map((p) => p.id),
        deps.now() + timeoutMs,
      )
    } catch (err) {
      // settle() does not throw; this only guards against leaving callers waiting forever.
      const failure = toMappingFailed(err)
      results = new Map(batch.map((p) => [p.id, failure]))
    }
    for (const p of batch) {
      const result = results.get(p.id) ?? notFound(p.id)
      if (!lifetime.signal.aborted) {
        if (typeof result === 'string') cache.set(p.id, result, cacheTtlMs)
        else if (!result.transient) cache.set(p.id, undefined, negativeTtlMs)
      }
      pending.delete(p.id)
      if (typeof result === 'string') p.resolve(result)
      else p.reject(result)
    }
  }
  const batcher = new Batcher<Pending>({ maxBatch, windowMs: batchWindowMs, run: (batch) => void runBatch(batch) })

  const enqueue = (id: string): Promise<string> => {
    let resolve!: (dnsName: string) => void
    let reject!: (err: MappingFailed) => void
    const promise = new Promise<string>((res, rej) => {
      resolve = res
      reject = rej
    })
    const p: Pending = { id, promise, resolve, reject }
    pending.set(id, p)
    batcher.add(p)
    return promise
  }

  const resolve = async (instanceId: string): Promise<string> => {
    if (lifetime.signal.aborted) throw closedError()
    if (!INSTANCE_ID.test(instanceId)) throw new MappingFailed(`failed to find node ${instanceId}: not an instance id`)
    const entry = cache.get(instanceId)
    if (entry !== undefined) {
      if (entry.value === undefined) throw notFound(instanceId)
      return entry.value
    }
    const inFlight = pending.get(instanceId)
    if (inFlight !== undefined) return inFlight.promise
    if (pending.size >= maxPending) {
      throw new MappingFailed(`too many EC2 private DNS lookups in flight (${maxPending})`, { transient: true })
    }
    return enqueue(instanceId)
  }

  const close = (): void => {
    if (lifetime.signal.aborted) return
    lifetime.abort()
    batcher.clear()
    const closed = closedError()
    for (const p of pending.values()) p.reject(closed)
    pending.clear()
    cache.clear()
    ec2.destroy()
  }

  return {
    resolve,
    close,
    get size(): number {
      return cache.size
    },
  }
}

function positive(n: number, name: string): number {
  if (!(Number.isFinite(n) && n > 0)) throw new TypeError(`${name} must be a number > 0, got ${n}`)
  return n
}

function nonNegative(n: number, name: string): number {
  if (!(Number.isFinite(n) && n >= 0)) throw new TypeError(`${name} must be a number >= 0, got ${n}`)
  return n
}

function integerAtLeast(n: number, min: number, name: string): number {
  if (!(Number.isInteger(n) && n >= min)) throw new TypeError(`${name} must be an integer >= ${min}, got ${n}`)
  return n
}
