import { createHash } from 'node:crypto'
import { isKiaError, RateLimited, StsThrottled, type KiaError } from '../shared/errors.js'
import { mapIdentity, type ChainResult } from '../mapping/chain.js'
import type { PrivateDnsResolver } from '../mapping/template.js'
import type { Mapper } from '../mapping/types.js'
import type { Identity } from '../sts/get-caller-identity.js'
import type { StsTransport } from '../sts/transport.js'
import { checkToken, identify } from '../sts/verify.js'
import type { IdentityCache } from './identity-cache.js'
import type { ConcurrencyLimiter } from './limiter.js'
import type { Metrics } from '../shared/metrics.js'
import { userInfo, type UserInfo } from './token-review.js'

export interface AuthenticatorOptions {
  readonly clusterId: string
  readonly partition: string
  /** Regions of the partition accepted beyond those this release knows (server.extraRegions). */
  readonly extraRegions?: readonly string[] | undefined
  readonly stsEndpoint?: string | undefined
  readonly stsTimeoutMs: number
  readonly scrubbedAccounts: readonly string[]
}

export interface AuthenticatorDeps {
  readonly now: () => number
  readonly sts: StsTransport
  readonly cache: IdentityCache
  readonly limiter: ConcurrencyLimiter
  /** The backend chain in force (a function: the dynamic backend mode file can swap it). */
  readonly chain: () => readonly Mapper[]
  readonly resolveDns?: PrivateDnsResolver | undefined
  readonly metrics: Metrics
  /** Per-caller budget for reviews that need STS (cache misses); cache hits are never limited. */
  readonly callerLimit?: ((caller: string) => boolean) | undefined
}

export type CacheSource = 'hit' | 'miss' | 'shared'

export type Decision =
  | {
      readonly allowed: true
      readonly identity: Identity
      readonly mapped: ChainResult
      readonly user: UserInfo
      readonly scrubbed: boolean
      readonly cache: CacheSource
    }
  | {
      readonly allowed: false
      /** A KiaError for expected failures; anything else is a bug, answered with 500. */
      readonly error: KiaError | Error
      readonly identity?: Identity | undefined
      readonly scrubbed: boolean
      readonly cache?: CacheSource | undefined
    }

/** Hash of the token: the cache key, and the only form in which a token is ever kept. */
export function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

/**
 * Decides one token: identity (from the cache, or strict local checks then STS through the
 * concurrency limiter), then the mapping chain. Never throws; every failure is a Decision.
 */
export function createAuthenticator(
  opts: AuthenticatorOptions,
  deps: AuthenticatorDeps,
): (token: string, caller?: string) => Promise<Decision> {
  if (opts.clusterId === '') throw new TypeError('"clusterId" must not be empty')
  const scrubbed = new Set(opts.scrubbedAccounts)
  const verifyOpts = {
    clusterId: opts.clusterId,
    partition: opts.partition,
    extraRegions: opts.extraRegions,
    stsEndpoint: opts.stsEndpoint,
    timeoutMs: opts.stsTimeoutMs,
  }
  const { metrics } = deps

  const loadIdentity = async (token: string, caller: string) => {
    const req = checkToken(token, verifyOpts, new Date(deps.now()))
    if (deps.callerLimit !== undefined && !deps.callerLimit(caller)) {
      throw new RateLimited(`caller ${caller} is over its rate of STS verifications; try again later`)
    }
    const identity = await deps.limiter
      .run(() => identify(req, verifyOpts, deps.sts))
      .catch((err: unknown) => {
        if (err instanceof StsThrottled) metrics.stsThrottling.inc({ StsRegion: req.stsRegion })
        throw err
      })
    return { identity, validUntil: req.expiresAt.getTime() }
  }

  return async function authenticate(token: string, caller = 'local'): Promise<Decision> {
    let identity: Identity | undefined
    let cache: CacheSource | undefined
    try {
      const got = await deps.cache.getOrLoad(tokenKey(token), () => loadIdentity(token, caller))
      identity = got.identity
      cache = got.source
      if (cache === 'hit') metrics.identityCacheHits.inc()
      else metrics.identityCacheMisses.inc()
      const mapped = await mapIdentity(deps.chain(), identity, deps.resolveDns)
      const isScrubbed = scrubbed.has(identity.accountId)
      return {
        allowed: true,
        identity,
        mapped,
        user: userInfo(identity, mapped, isScrubbed),
        scrubbed: isScrubbed,
        cache,
      }
    } catch (err) {
      if (cache === undefined) metrics.identityCacheMisses.inc()
      return {
        allowed: false,
        error: isKiaError(err) ? err : (err as Error),
        identity,
        scrubbed: identity !== undefined && scrubbed.has(identity.accountId),
        cache,
      }
    } finally {
      metrics.identityCacheEntries.set(deps.cache.size)
    }
  }
}
