import { createHash } from 'node:crypto'
import { isKiaError, RateLimited, StsRejected, StsThrottled, type KiaError } from '../shared/errors.js'
import { mapIdentity, type ChainResult } from '../mapping/chain.js'
import type { PrivateDnsResolver } from '../mapping/template.js'
import type { Mapper } from '../mapping/types.js'
import type { Identity } from '../sts/get-caller-identity.js'
import type { StsTransport } from '../sts/transport.js'
import { checkToken, identify } from '../sts/verify.js'
import type { PresignedRequest } from '../token/parse.js'
import { clusterIdOrder, searchClusterIds, type Verified } from './cluster-id-search.js'
import type { IdentityCache } from './identity-cache.js'
import type { StsAdmission } from './sts-admission.js'
import { credentialOf, type StsVerdicts } from './sts-verdicts.js'
import type { Metrics } from '../shared/metrics.js'
import { userInfo, type UserInfo } from './token-review.js'
import { VerifiedInterner } from './verified-interner.js'

/** Credentials whose verification object is shared by their tokens (see VerifiedInterner). */
const INTERNED_CREDENTIALS = 20_000

export interface AuthenticatorOptions {
  readonly clusterId: string
  /** Cluster IDs accepted alongside clusterId (clusterIDs), tried after it in this order. */
  readonly clusterIds?: readonly string[] | undefined
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
  readonly cache: IdentityCache<Verified>
  /** The gate in front of STS (lanes, per-credential bounds, queue). */
  readonly admission: StsAdmission
  /** What STS said recently: confirmed credentials (the admission's lanes) and remembered refusals. */
  readonly verdicts: StsVerdicts
  /** The backend chain in force (a function: the dynamic backend mode file can swap it). */
  readonly chain: () => readonly Mapper[]
  readonly resolveDns?: PrivateDnsResolver | undefined
  readonly metrics: Metrics
  /**
   * Operator-configured budget per caller for verifications of credentials STS has not confirmed
   * (callerRateLimitPerSecond); returning users and cache hits are never limited.
   */
  readonly callerLimit?: ((caller: string) => boolean) | undefined
}

export type CacheSource = 'hit' | 'miss' | 'shared'

/** What every decision may say about how the token was verified. */
interface Verification {
  /** The cluster ID the token named, once STS verified it. */
  readonly clusterId?: string | undefined
  /** STS calls this review made (absent when it made none: a cache hit, a shared or a local answer). */
  readonly stsCalls?: number | undefined
}

export type Decision =
  | (Verification & {
      readonly allowed: true
      readonly identity: Identity
      readonly mapped: ChainResult
      readonly user: UserInfo
      readonly scrubbed: boolean
      readonly cache: CacheSource
    })
  | (Verification & {
      readonly allowed: false
      /** A KiaError for expected failures; anything else is a bug, answered with 500. */
      readonly error: KiaError | Error
      readonly identity?: Identity | undefined
      readonly scrubbed: boolean
      readonly cache?: CacheSource | undefined
    })

/** What loading an identity did, for the decision and for what the server remembers. */
interface Loaded {
  /** Set once STS confirmed the token's credential. */
  credential?: string
  stsCalls: number
}

/** Hash of the token: the cache key, and the only form in which a token is ever kept. */
export function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

/**
 * Decides one token: identity (from the cache, or strict local checks then STS through the
 * admission gate, with each accepted cluster ID until one verifies), then the mapping chain.
 * Never throws; every failure is a Decision.
 */
export function createAuthenticator(
  opts: AuthenticatorOptions,
  deps: AuthenticatorDeps,
): (token: string, caller?: string) => Promise<Decision> {
  if (opts.clusterId === '') throw new TypeError('"clusterId" must not be empty')
  const scrubbed = new Set(opts.scrubbedAccounts)
  const accepted = [opts.clusterId, ...(opts.clusterIds ?? [])]
  const verifyOpts = {
    clusterId: opts.clusterId,
    partition: opts.partition,
    extraRegions: opts.extraRegions,
    stsEndpoint: opts.stsEndpoint,
    timeoutMs: opts.stsTimeoutMs,
  }
  const { metrics, verdicts } = deps
  // One series per accepted ID, there from the start (a dashboard sees 0, not nothing).
  const reviewsOf = new Map(accepted.map((id) => [id, metrics.clusterIdReviews.labels({ cluster_id: id })]))
  for (const series of reviewsOf.values()) series.inc(0)
  let cachedCount = -1
  const interner = new VerifiedInterner(INTERNED_CREDENTIALS)

  /**
   * Remembered refusals, then STS through the gate: one call per cluster ID tried, each admitted on
   * its own (a token for none of the accepted IDs costs 1 + clusterIds.length calls and takes as many
   * turns). A refusal is remembered only once no other ID could change it.
   */
  const loadIdentity = async (req: PresignedRequest, key: string, caller: string, loaded: Loaded) => {
    const credential = credentialOf(req)
    const remembered = verdicts.tokenRejection(key) ?? verdicts.credentialRejection(credential, req.stsRegion)
    if (remembered !== undefined) {
      metrics.rememberedRejections.inc()
      throw remembered
    }
    const lane = verdicts.isConfirmed(credential) ? 'confirmed' : 'unknown'
    metrics.stsLaneRequests.inc({ lane })
    if (lane === 'unknown' && deps.callerLimit !== undefined && !deps.callerLimit(caller)) {
      throw new RateLimited(`caller ${caller} is over its rate of STS verifications; try again later`)
    }
    const validUntil = req.expiresAt.getTime()
    const order = accepted.length === 1 ? accepted : clusterIdOrder(accepted, verdicts.confirmedClusterId(credential))
    const verified = await searchClusterIds(order, (clusterId) =>
      deps.admission.run(credential, async () => {
        // STS may have refused this credential while this review waited for its turn.
        const refused = verdicts.credentialRejection(credential, req.stsRegion)
        if (refused !== undefined) throw refused
        loaded.stsCalls++
        return identify(req, clusterId === opts.clusterId ? verifyOpts : { ...verifyOpts, clusterId }, deps.sts)
      }),
    ).catch((err: unknown) => {
      if (loaded.stsCalls > 0) metrics.stsCallsPerVerification.observe({ result: resultOf(err) }, loaded.stsCalls)
      if (err instanceof StsThrottled) metrics.stsThrottling.inc({ StsRegion: req.stsRegion })
      if (err instanceof StsRejected && err.status !== undefined && err.status >= 400 && err.status < 500) {
        verdicts.reject(key, { credential, stsRegion: req.stsRegion, validUntil }, err)
        if (lane === 'confirmed') {
          verdicts.unconfirm(credential)
          deps.admission.reclassify(credential)
        }
      }
      throw err
    })
    metrics.stsCallsPerVerification.observe({ result: 'verified' }, loaded.stsCalls)
    loaded.credential = credential
    return { identity: interner.intern(verified), validUntil }
  }

  return async function authenticate(token: string, caller = 'local'): Promise<Decision> {
    let verified: Verified | undefined
    let cache: CacheSource | undefined
    const key = tokenKey(token)
    const loaded: Loaded = { stsCalls: 0 }
    try {
      verified = deps.cache.get(key)
      if (verified !== undefined) {
        cache = 'hit'
      } else {
        // The local checks come before any shared load is set up: a refused token costs no more.
        const req = checkToken(token, verifyOpts, new Date(deps.now()))
        const got = await deps.cache.getOrLoad(key, () => loadIdentity(req, key, caller, loaded))
        verified = got.identity
        cache = got.source
      }
      if (cache === 'hit') metrics.identityCacheHits.inc()
      else metrics.identityCacheMisses.inc()
      const { identity, clusterId } = verified
      reviewsOf.get(clusterId)?.inc()
      const mapped = await mapIdentity(deps.chain(), identity, deps.resolveDns)
      if (loaded.credential !== undefined) {
        // A credential STS confirmed and the mapping let in: its next tokens use the confirmed lane,
        // and try the cluster ID this one named first.
        verdicts.confirm(loaded.credential, clusterId)
        metrics.confirmedCredentials.set(verdicts.confirmedCount)
        deps.admission.reclassify(loaded.credential)
      }
      const isScrubbed = scrubbed.has(identity.accountId)
      return {
        allowed: true,
        identity,
        mapped,
        user: userInfo(identity, mapped, isScrubbed),
        scrubbed: isScrubbed,
        cache,
        clusterId,
        ...(loaded.stsCalls > 0 ? { stsCalls: loaded.stsCalls } : {}),
      }
    } catch (err) {
      if (cache === undefined) metrics.identityCacheMisses.inc()
      const identity = verified?.identity
      return {
        allowed: false,
        error: isKiaError(err) ? err : (err as Error),
        identity,
        scrubbed: identity !== undefined && scrubbed.has(identity.accountId),
        cache,
        ...(verified === undefined ? {} : { clusterId: verified.clusterId }),
        ...(loaded.stsCalls > 0 ? { stsCalls: loaded.stsCalls } : {}),
      }
    } finally {
      // Only when it changed: setting a gauge is not free, and most reviews change nothing.
      if (deps.cache.size !== cachedCount) metrics.identityCacheEntries.set((cachedCount = deps.cache.size))
    }
  }
}

/** The `result` label of sts_calls_per_verification for a verification that found no identity. */
function resultOf(err: unknown): 'refused' | 'failed' {
  return err instanceof StsRejected ? 'refused' : 'failed'
}
