import { environmentFingerprint, usesEnvironmentKeys } from './credential-environment.js'
import { dependenciesUnchanged } from './file-state.js'
import {
  cacheDirectory,
  cacheFile,
  cacheKeyString,
  readCacheEntry,
  usableToken,
  type CacheEntry,
  type CacheKey,
} from './token-cache.js'

/** What the `token` command asks for, after flags, environment and config file are merged. */
export interface TokenRequest {
  readonly clusterId: string
  readonly region?: string | undefined
  readonly roleArn?: string | undefined
  readonly externalId?: string | undefined
  readonly sessionName?: string | undefined
  readonly forwardSessionName?: boolean
  readonly cache?: boolean
  /** How long a credential_process may run (milliseconds). */
  readonly processTimeoutMs?: number | undefined
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
    environment: environmentFingerprint(env),
    fips,
    dualStack,
  }
}

/**
 * The entry if it may serve this request: the token and any cached credentials are those of the
 * access key the entry records; when the chain would sign with the environment's own keys, that
 * key is AWS_ACCESS_KEY_ID; and every file the credentials were resolved from is unchanged. (The
 * environment itself is part of the key.)
 */
export function currentEntry(entry: CacheEntry | undefined, req: TokenRequest, env: Env): CacheEntry | undefined {
  if (entry === undefined) return undefined
  const signer = entry.signingAccessKeyId
  if (entry.token !== undefined && tokenAccessKeyId(entry.token.value) !== signer) return undefined
  if (entry.credentials !== undefined && entry.credentials.accessKeyId !== signer) return undefined
  if (!req.roleArn && usesEnvironmentKeys(env) && signer !== env.AWS_ACCESS_KEY_ID) return undefined
  return dependenciesUnchanged(entry.deps) ? entry : undefined
}

/**
 * The cached token for this request if it has more than a minute left. Reads one small file and
 * stats the files it was made from, and loads nothing of the AWS SDK: this is what every kubectl
 * call pays when the cache is on.
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
    const hit = usableToken(currentEntry(entry, req, env), now.getTime())
    return hit === undefined ? undefined : { token: hit.value, expiresAt: hit.expiresAt, fromCache: true }
  } catch (err) {
    warn(`unable to use cache: ${(err as Error).message}`)
    return undefined
  }
}

/** The access key ID in a token's X-Amz-Credential ('' when there is none). */
export function tokenAccessKeyId(token: string): string {
  if (!token.startsWith('k8s-aws-v1.')) return ''
  const url = Buffer.from(token.slice('k8s-aws-v1.'.length), 'base64url').toString('latin1')
  return /[?&]X-Amz-Credential=([A-Za-z0-9]+)%2F/.exec(url)?.[1] ?? ''
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

/** Where requestedRegion() found it, for messages; `flagOrigin` names where the flag value came from. */
export function requestedRegionOrigin(flag: string | undefined, env: Env, flagOrigin = '--region'): string {
  return flag ? flagOrigin : env.AWS_REGION ? 'AWS_REGION' : 'AWS_DEFAULT_REGION'
}
