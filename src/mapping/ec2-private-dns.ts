import type { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2'
import type { STSClient } from '@aws-sdk/client-sts'
import type { AwsCredentialIdentity } from '@smithy/types'
import { MappingFailed } from '../errors.js'

/**
 * `{{EC2PrivateDNSName}}` lookups (spec 5.6): instance ID -> PrivateDnsName through EC2
 * DescribeInstances, cached, single-flighted, batched and rate limited.
 *
 * Differences from upstream's ec2provider, on purpose:
 * - positive entries expire (`cacheTtlMs`) and the cache is LRU-bounded; "not found" is cached briefly;
 * - the qps/burst token bucket limits the EC2 calls themselves (upstream limits only the STS client
 *   that assumes the EC2 role, quirk 9.10), so a node surge cannot exceed the configured rate;
 * - one in-flight lookup per ID is shared by every caller instead of polling the cache every 50 ms.
 */

export interface PrivateDnsOptions {
  readonly region: string
  /** Token-bucket rate for DescribeInstances calls; 0 = unlimited. Upstream default 15. */
  readonly qps: number
  /** Bucket size (>= 1). Upstream default 5. */
  readonly burst: number
  /** Assume this role for EC2 calls (ec2DescribeInstancesRoleARN); 60 min sessions, refreshed. */
  readonly roleArn?: string | undefined
  /** Adds x-amz-source-account / x-amz-source-arn to the AssumeRole call (confused-deputy protection). */
  readonly sourceArn?: string | undefined
  /** Default 6 h: positive entries expire (upstream's never do). */
  readonly cacheTtlMs?: number | undefined
  /** Default 30 s: "instance not found" is cached briefly. */
  readonly negativeTtlMs?: number | undefined
  /** Default 10 000 entries, least recently used evicted first. Also bounds lookups in flight. */
  readonly cacheSize?: number | undefined
  /** Default 50 ms: IDs requested within the window go in one DescribeInstances call. */
  readonly batchWindowMs?: number | undefined
  /** Default 100 IDs per call. */
  readonly maxBatch?: number | undefined
  /**
   * Default 5 s: how long one batch may take from its flush, waiting for the rate limiter, calling
   * EC2 (all pages) and retrying after "not found" included. So a lookup settles within
   * batchWindowMs + timeoutMs.
   */
  readonly timeoutMs?: number | undefined
}

export interface PrivateDnsDeps {
  readonly now: () => number
  /** Every DescribeInstances call (each page), e.g. metrics.ec2DescribeInstancesCalls.inc(). */
  readonly onCall?: () => void
  /** The outcome of every DescribeInstances call (not of calls refused by the local rate limiter). */
  readonly onResult?: (outcome: EC2Outcome) => void
  /** Replaces the EC2 call (tests of the batching logic only); default: @aws-sdk/client-ec2. */
  readonly describe?: (ids: string[]) => Promise<Map<string, string>>
  /**
   * AWS client settings that production leaves unset (then the SDK's default chain, and
   * AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL_STS, apply). `credentials` are the ones the EC2 client
   * uses, or, with `roleArn`, the ones that call AssumeRole.
   */
  readonly aws?: {
    readonly credentials?: AwsCredentialIdentity | undefined
    readonly ec2Endpoint?: string | undefined
    readonly stsEndpoint?: string | undefined
  }
}

export type EC2Outcome = 'ok' | 'not_found' | 'throttled' | 'error'

export interface PrivateDnsLookup {
  readonly resolve: (instanceId: string) => Promise<string>
  /** Rejects pending lookups, aborts calls in flight, clears timers and destroys the AWS clients. */
  readonly close: () => void
  /** Entries in the cache (positive and negative). */
  readonly size: number
}

const INSTANCE_ID = /^i-([0-9a-f]{8}|[0-9a-f]{17})$/
const ROLE_SESSION_SECONDS = 3600
/** Refresh assumed-role credentials this long before they expire. */
const CREDENTIALS_REFRESH_MS = 5 * 60 * 1000
const NOT_FOUND_CODES = new Set(['InvalidInstanceID.NotFound', 'InvalidInstanceID.Malformed'])
const THROTTLE_CODES = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
])

interface Entry {
  /** undefined: the instance does not exist (negative entry). */
  readonly dnsName: string | undefined
  readonly expiresAt: number
}

interface Pending {
  readonly id: string
  readonly promise: Promise<string>
  readonly resolve: (dnsName: string) => void
  readonly reject: (err: MappingFailed) => void
}

interface Page {
  readonly found: Map<string, string>
  readonly nextToken?: string | undefined
}

interface Clients {
  readonly ec2: EC2Client
  readonly sts: STSClient | undefined
  readonly DescribeInstancesCommand: typeof DescribeInstancesCommand
}

type PageFn = (ids: string[], nextToken: string | undefined, signal: AbortSignal) => Promise<Page>

const notFound = (id: string): MappingFailed => new MappingFailed(`failed to find node ${id}`)

export function createPrivateDnsResolver(opts: PrivateDnsOptions, deps: PrivateDnsDeps): PrivateDnsLookup {
  const cacheTtlMs = positive(opts.cacheTtlMs ?? 6 * 3600_000, 'cacheTtlMs')
  const negativeTtlMs = nonNegative(opts.negativeTtlMs ?? 30_000, 'negativeTtlMs')
  const cacheSize = integerAtLeast(opts.cacheSize ?? 10_000, 1, 'cacheSize')
  const batchWindowMs = nonNegative(opts.batchWindowMs ?? 50, 'batchWindowMs')
  const maxBatch = integerAtLeast(opts.maxBatch ?? 100, 1, 'maxBatch')
  const timeoutMs = positive(opts.timeoutMs ?? 5000, 'timeoutMs')
  const sourceHeaders = opts.sourceArn === undefined ? undefined : sourceArnHeaders(opts.sourceArn)
  const bucket = createTokenBucket(opts.qps, opts.burst, deps.now)
  /** Distinct IDs queued or being looked up; beyond this, lookups fail fast (transient). */
  const maxPending = Math.max(cacheSize, maxBatch)

  const cache = new Map<string, Entry>() // insertion order = recency order (LRU first)
  const pending = new Map<string, Pending>()
  let queue: Pending[] = []
  let batchTimer: NodeJS.Timeout | undefined
  const lifetime = new AbortController()
  let clients: Promise<Clients> | undefined

  const cacheGet = (id: string): Entry | undefined => {
    const entry = cache.get(id)
    if (entry === undefined) return undefined
    cache.delete(id)
    if (entry.expiresAt <= deps.now()) return undefined
    cache.set(id, entry)
    return entry
  }

  const cacheSet = (id: string, dnsName: string | undefined): void => {
    const ttl = dnsName === undefined ? negativeTtlMs : cacheTtlMs
    cache.delete(id)
    if (ttl === 0) return
    cache.set(id, { dnsName, expiresAt: deps.now() + ttl })
    while (cache.size > cacheSize) cache.delete(cache.keys().next().value!)
  }

  // ---- AWS clients, created on first use ----

  const getClients = (): Promise<Clients> => {
    clients ??= (async () => {
      const { EC2Client, DescribeInstancesCommand } = await import('@aws-sdk/client-ec2')
      let sts: STSClient | undefined
      let credentials: AwsCredentialIdentity | (() => Promise<AwsCredentialIdentity>) | undefined =
        deps.aws?.credentials
      if (opts.roleArn !== undefined) {
        const { STSClient } = await import('@aws-sdk/client-sts')
        sts = new STSClient({
          region: opts.region,
          ...(deps.aws?.credentials === undefined ? {} : { credentials: deps.aws.credentials }),
          ...(deps.aws?.stsEndpoint === undefined ? {} : { endpoint: deps.aws.stsEndpoint }),
        })
        if (sourceHeaders !== undefined) addHeaders(sts, sourceHeaders)
        credentials = assumeRoleCredentials(sts, opts.roleArn, deps.now)
      }
      const ec2 = new EC2Client({
        region: opts.region,
        // The token bucket paces calls; SDK retries would be extra calls it does not see. A failed
        // call fails the batch (transient) and kube-apiserver's client retries the review.
        maxAttempts: 1,
        ...(credentials === undefined ? {} : { credentials }),
        ...(deps.aws?.ec2Endpoint === undefined ? {} : { endpoint: deps.aws.ec2Endpoint }),
      })
      if (lifetime.signal.aborted) {
        ec2.destroy()
        sts?.destroy()
      }
      return { ec2, sts, DescribeInstancesCommand }
    })()
    return clients
  }

  const sdkPage: PageFn = async (ids, nextToken, signal) => {
    const { ec2, DescribeInstancesCommand } = await getClients()
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids, NextToken: nextToken }), {
      abortSignal: signal,
    })
    const found = new Map<string, string>()
    for (const reservation of out.Reservations ?? []) {
      for (const instance of reservation.Instances ?? []) {
        if (instance.InstanceId !== undefined && instance.PrivateDnsName) {
          found.set(instance.InstanceId, instance.PrivateDnsName)
        }
      }
    }
    return { found, nextToken: out.NextToken || undefined }
  }
  const describe = deps.describe
  const page: PageFn = describe === undefined ? sdkPage : async (ids) => ({ found: await describe(ids) })

  // ---- one DescribeInstances call: rate limiter, deadline, outcome ----

  const callOnce = async (ids: string[], nextToken: string | undefined, deadline: number): Promise<Page> => {
    if (deadline <= deps.now()) throw timedOut(timeoutMs)
    const wait = bucket.reserve(deadline - deps.now())
    if (wait === undefined) {
      const message = `EC2 DescribeInstances rate limit (${opts.qps}/s, burst ${opts.burst}) reached`
      throw new MappingFailed(message, { transient: true })
    }
    if (wait > 0) await sleep(wait, lifetime.signal)
    const remaining = Math.max(1, deadline - deps.now())
    deps.onCall?.()
    try {
      const result = await withTimeout((signal) => page(ids, nextToken, signal), remaining, lifetime.signal)
      deps.onResult?.('ok')
      return result
    } catch (err) {
      deps.onResult?.(outcomeOf(err))
      throw err
    }
  }

  /** Every page of DescribeInstances for `ids`. */
  const describeAll = async (ids: string[], deadline: number): Promise<Map<string, string>> => {
    const found = new Map<string, string>()
    let nextToken: string | undefined
    do {
      const result = await callOnce(ids, nextToken, deadline)
      for (const [id, dns] of result.found) found.set(id, dns)
      nextToken = result.nextToken
    } while (nextToken !== undefined)
    return found
  }

  /**
   * The outcome for each of `ids` (distinct, well-formed): its DNS name or the error to give its callers.
   * Never throws. EC2 fails the whole call with InvalidInstanceID.NotFound when any ID is unknown and
   * names the unknown IDs in the message: those are settled as not found and the call is repeated
   * for the rest. If the message names none of them (format changed), the IDs are bisected, so an
   * unknown ID costs O(log n) extra calls at worst and never fails the known ones.
   */
  const settle = async (ids: string[], deadline: number): Promise<Map<string, string | MappingFailed>> => {
    const out = new Map<string, string | MappingFailed>()
    let todo = ids
    while (todo.length > 0) {
      try {
        const found = await describeAll(todo, deadline)
        for (const id of todo) out.set(id, found.get(id) ?? notFound(id))
        return out
      } catch (err) {
        if (outcomeOf(err) !== 'not_found') {
          const failure = toMappingFailed(err)
          for (const id of todo) out.set(id, failure)
          return out
        }
        if (todo.length === 1) {
          out.set(todo[0]!, notFound(todo[0]!))
          return out
        }
        const named = new Set(instanceIdsIn(errorMessage(err)))
        const missing = todo.filter((id) => named.has(id))
        if (missing.length === 0) {
          const half = Math.ceil(todo.length / 2)
          const parts = await Promise.all([settle(todo.slice(0, half), deadline), settle(todo.slice(half), deadline)])
          for (const part of parts) for (const [id, result] of part) out.set(id, result)
          return out
        }
        for (const id of missing) out.set(id, notFound(id))
        todo = todo.filter((id) => !named.has(id))
      }
    }
    return out
  }

  // ---- batching ----

  const runBatch = async (batch: Pending[]): Promise<void> => {
    let results: Map<string, string | MappingFailed>
    const ids = batch.map((p) => p.id)
    try {
      results = await settle(ids, deps.now() + timeoutMs)
    } catch (err) {
      // settle() does not throw; this only guards against leaving callers waiting forever.
      const failure = toMappingFailed(err)
      results = new Map(batch.map((p) => [p.id, failure]))
    }
    for (const p of batch) {
      const result = results.get(p.id) ?? notFound(p.id)
      if (!lifetime.signal.aborted) {
        if (typeof result === 'string') cacheSet(p.id, result)
        else if (!result.transient) cacheSet(p.id, undefined)
      }
      pending.delete(p.id)
      if (typeof result === 'string') p.resolve(result)
      else p.reject(result)
    }
  }

  /** Sends full batches now; the rest when the window closes. */
  const flush = (all: boolean): void => {
    while (queue.length >= maxBatch || (all && queue.length > 0)) void runBatch(queue.splice(0, maxBatch))
    if (queue.length === 0 && batchTimer !== undefined) {
      clearTimeout(batchTimer)
      batchTimer = undefined
    }
  }

  const enqueue = (id: string): Promise<string> => {
    let resolve!: (dnsName: string) => void
    let reject!: (err: MappingFailed) => void
    const promise = new Promise<string>((res, rej) => {
      resolve = res
      reject = rej
    })
    const p: Pending = { id, promise, resolve, reject }
    pending.set(id, p)
    queue.push(p)
    if (queue.length >= maxBatch) flush(false)
    else if (batchTimer === undefined) {
      batchTimer = setTimeout(() => {
        batchTimer = undefined
        flush(true)
      }, batchWindowMs)
    }
    return promise
  }

  const resolve = async (instanceId: string): Promise<string> => {
    if (lifetime.signal.aborted) throw new MappingFailed('EC2 private DNS lookup is closed', { transient: true })
    if (!INSTANCE_ID.test(instanceId)) throw new MappingFailed(`failed to find node ${instanceId}: not an instance id`)
    const entry = cacheGet(instanceId)
    if (entry !== undefined) {
      if (entry.dnsName === undefined) throw notFound(instanceId)
      return entry.dnsName
    }
    const inFlight = pending.get(instanceId)
    if (inFlight !== undefined) return inFlight.promise
    if (pending.size >= maxPending) {
      throw new MappingFailed(`too many EC2 private DNS lookups in flight (${maxPending})`, {
        transient: true,
      })
    }
    return enqueue(instanceId)
  }

  const close = (): void => {
    if (lifetime.signal.aborted) return
    lifetime.abort()
    if (batchTimer !== undefined) clearTimeout(batchTimer)
    batchTimer = undefined
    const closed = new MappingFailed('EC2 private DNS lookup is closed', { transient: true })
    for (const p of pending.values()) p.reject(closed)
    pending.clear()
    queue = []
    cache.clear()
    void clients?.then(
      ({ ec2, sts }) => {
        ec2.destroy()
        sts?.destroy()
      },
      () => {},
    )
  }

  return {
    resolve,
    close,
    get size(): number {
      return cache.size
    },
  }
}

// ---- token bucket ----

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

// ---- helpers ----

function assumeRoleCredentials(
  sts: STSClient,
  roleArn: string,
  now: () => number,
): () => Promise<AwsCredentialIdentity> {
  let current: AwsCredentialIdentity | undefined
  let refreshing: Promise<AwsCredentialIdentity> | undefined
  const fresh = (c: AwsCredentialIdentity | undefined): c is AwsCredentialIdentity =>
    c !== undefined && (c.expiration === undefined || c.expiration.getTime() - now() > CREDENTIALS_REFRESH_MS)
  return async () => {
    if (fresh(current)) return current
    refreshing ??= (async () => {
      const { AssumeRoleCommand } = await import('@aws-sdk/client-sts')
      try {
        const out = await sts.send(
          new AssumeRoleCommand({
            RoleArn: roleArn,
            RoleSessionName: `kube-iam-auth-${now()}`,
            DurationSeconds: ROLE_SESSION_SECONDS,
          }),
        )
        const c = out.Credentials
        if (c?.AccessKeyId === undefined || c.SecretAccessKey === undefined) {
          throw new Error('AssumeRole returned no credentials')
        }
        current = {
          accessKeyId: c.AccessKeyId,
          secretAccessKey: c.SecretAccessKey,
          ...(c.SessionToken === undefined ? {} : { sessionToken: c.SessionToken }),
          ...(c.Expiration === undefined ? {} : { expiration: c.Expiration }),
        }
        return current
      } catch (err) {
        throw new MappingFailed(`could not assume role ${roleArn} for EC2: ${errorMessage(err)}`, {
          transient: true,
          cause: err,
        })
      } finally {
        refreshing = undefined
      }
    })()
    return refreshing
  }
}

/** Upstream: `x-amz-source-account` (the ARN's account) and `x-amz-source-arn`. */
function sourceArnHeaders(sourceArn: string): Record<string, string> {
  const parts = sourceArn.split(':')
  if (parts.length < 6 || parts[0] !== 'arn' || parts[1] === '' || parts[2] === '' || parts[4] === '') {
    throw new TypeError(`sourceArn '${sourceArn}' is not a valid ARN with an account`)
  }
  return { 'x-amz-source-account': parts[4]!, 'x-amz-source-arn': sourceArn }
}

/** Adds headers to every request of `client`, before signing (so they are signed). */
function addHeaders(client: STSClient, headers: Record<string, string>): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> } | undefined
      if (request?.headers !== undefined) Object.assign(request.headers, headers)
      return next(args)
    },
    { step: 'build', name: 'kubeIamAuthSourceHeaders' },
  )
}

function outcomeOf(err: unknown): EC2Outcome {
  if (err instanceof MappingFailed) return 'error'
  const e = err as { name?: unknown; Code?: unknown; $metadata?: { httpStatusCode?: number } } | null
  const code = typeof e?.Code === 'string' ? e.Code : typeof e?.name === 'string' ? e.name : ''
  if (NOT_FOUND_CODES.has(code)) return 'not_found'
  if (THROTTLE_CODES.has(code) || e?.$metadata?.httpStatusCode === 429) return 'throttled'
  return 'error'
}

/** Anything but "not found" may go away on retry: throttling, 5xx, network, timeouts, and also
 * access denied (our configuration, not the node, is at fault; the review should not be a denial). */
function toMappingFailed(err: unknown): MappingFailed {
  if (err instanceof MappingFailed) return err
  const outcome = outcomeOf(err)
  const what = outcome === 'throttled' ? 'was throttled' : 'failed'
  return new MappingFailed(`EC2 DescribeInstances ${what}: ${errorMessage(err)}`, {
    transient: true,
    cause: err,
  })
}

function instanceIdsIn(message: string): string[] {
  return message.match(/\bi-[0-9a-f]{8}(?:[0-9a-f]{9})?\b/g) ?? []
}

function errorMessage(err: unknown): string {
  const e = err as { name?: unknown; message?: unknown } | null
  const message = typeof e?.message === 'string' ? e.message : String(err)
  return typeof e?.name === 'string' && e.name !== 'Error' && !message.includes(e.name)
    ? `${e.name}: ${message}`
    : message
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(closedError())
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(closedError())
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** Runs `fn` with a signal aborted after `ms` or when `lifetime` aborts, and rejects at that moment. */
async function withTimeout<T>(fn: (signal: AbortSignal) => Promise<T>, ms: number, lifetime: AbortSignal): Promise<T> {
  if (lifetime.aborted) throw closedError()
  const controller = new AbortController()
  let onStop!: () => void
  const stopped = new Promise<never>((_, reject) => {
    onStop = () => {
      controller.abort()
      reject(lifetime.aborted ? closedError() : timedOut(ms))
    }
  })
  const timer = setTimeout(onStop, ms)
  lifetime.addEventListener('abort', onStop, { once: true })
  try {
    return await Promise.race([fn(controller.signal), stopped])
  } finally {
    clearTimeout(timer)
    lifetime.removeEventListener('abort', onStop)
  }
}

const timedOut = (ms: number): MappingFailed =>
  new MappingFailed(`EC2 DescribeInstances timed out after ${ms} ms`, { transient: true })

const closedError = (): MappingFailed => new MappingFailed('EC2 private DNS lookup is closed', { transient: true })

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
