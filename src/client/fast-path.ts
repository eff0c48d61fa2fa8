import { cacheDirectory, cacheFile, cacheKeyString, readCacheEntry, usableToken, type CacheKey } from './token-cache.js'

/** What the `token` command asks for, after flags, environment and config file are merged. */
export interface TokenRequest {
  readonly clusterId: string
  readonly region?: string | undefined
  readonly roleArn?: string | undefined
  readonly externalId?: string | undefined
  readonly sessionName?: string | undefined
  readonly forwardSessionName?: boolean
  readonly cache?: boolean
}

export interface IssuedToken {
  readonly token: string
  readonly expiresAt: Date
  readonly fromCache: boolean
}

type Env = Readonly<Record<string, string | undefined>>

export function cacheKeyFor(req: TokenRequest, env: Env): CacheKey {
  const { fips, dualStack } = endpointVariant(env)
  return {
    clusterId: req.clusterId,
    profile: env.AWS_PROFILE || 'default',
    roleArn: req.roleArn ?? '',
    region: requestedRegion(req.region, env),
    externalId: req.externalId ?? '',
    sessionName: req.sessionName ?? '',
    forwardSessionName: req.forwardSessionName ?? false,
    envAccessKeyId: env.AWS_PROFILE ? '' : (env.AWS_ACCESS_KEY_ID ?? ''),
    fips,
    dualStack,
  }
}

/**
 * The cached token for this request if it has more than a minute left. Reads one small file and
 * loads nothing of the AWS SDK: this is what every kubectl call pays when the cache is on.
 */
export function cachedToken(
  req: TokenRequest,
  env: Env,
  now: Date,
  warn: (m: string) => void,
): IssuedToken | undefined {
  try {
    const key = cacheKeyFor(req, env)
    const entry = readCacheEntry(cacheFile(cacheDirectory(env), key), cacheKeyString(key))
    const hit = usableToken(entry, now.getTime())
    return hit === undefined ? undefined : { token: hit.value, expiresAt: hit.expiresAt, fromCache: true }
  } catch (err) {
    warn(`unable to use cache: ${(err as Error).message}`)
    return undefined
  }
}

/** AWS_USE_FIPS_ENDPOINT / AWS_USE_DUALSTACK_ENDPOINT, as the SDK reads them from the environment. */
export function endpointVariant(env: Env): { fips: boolean; dualStack: boolean } {
  return {
    fips: env.AWS_USE_FIPS_ENDPOINT?.toLowerCase() === 'true',
    dualStack: env.AWS_USE_DUALSTACK_ENDPOINT?.toLowerCase() === 'true',
  }
}

/** The region named by flag or environment, without reading any file ('' when none). */
export function requestedRegion(flag: string | undefined, env: Env): string {
  return flag || env.AWS_REGION || env.AWS_DEFAULT_REGION || ''
}
