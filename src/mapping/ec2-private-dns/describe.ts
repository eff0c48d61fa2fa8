import { MappingFailed } from '../../shared/errors.js'
import type { TokenBucket } from '../../shared/token-bucket.js'
import { sleep, withTimeout } from './deadline.js'
import { errorMessage, instanceIdsIn, notFound, outcomeOf, timedOut, toMappingFailed } from './outcome.js'
import type { EC2Outcome, Page, PageFn } from './types.js'

export interface DescribeDeps {
  readonly page: PageFn
  /** Paces the EC2 calls themselves (each page is one call). */
  readonly bucket: TokenBucket
  readonly limits: { readonly qps: number; readonly burst: number; readonly timeoutMs: number }
  readonly now: () => number
  /** Aborted when the lookup is closed: waits and calls in flight stop at once. */
  readonly lifetime: AbortSignal
  readonly onCall?: (() => void) | undefined
  readonly onResult?: ((outcome: EC2Outcome) => void) | undefined
}

/**
 * Resolves a batch of instance IDs: the outcome for each of `ids` (distinct, well-formed), its DNS
 * name or the error to give its callers. Never throws.
 */
export function createSettler(
  deps: DescribeDeps,
): (ids: string[], deadline: number) => Promise<Map<string, string | MappingFailed>> {
  /** One DescribeInstances call: rate limiter, deadline, outcome. */
  const callOnce = async (ids: string[], nextToken: string | undefined, deadline: number): Promise<Page> => {
    if (deadline <= deps.now()) throw timedOut(deps.limits.timeoutMs)
    const wait = deps.bucket.reserve(deadline - deps.now())
    if (wait === undefined) {
      const message = `EC2 DescribeInstances rate limit (${deps.limits.qps}/s, burst ${deps.limits.burst}) reached`
      throw new MappingFailed(message, { transient: true })
    }
    if (wait > 0) await sleep(wait, deps.lifetime)
    const remaining = Math.max(1, deadline - deps.now())
    deps.onCall?.()
    try {
      const result = await withTimeout((signal) => deps.page(ids, nextToken, signal), remaining, deps.lifetime)
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
   * EC2 fails the whole call with InvalidInstanceID.NotFound when any ID is unknown and names the
   * unknown IDs in the message: those are settled as not found and the call is repeated for the
   * rest. If the message names none of them (format changed), the IDs are bisected, so an unknown
   * ID costs O(log n) extra calls at worst and never fails the known ones.
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
  return settle
}
