import { CacheError } from '../shared/errors.js'
import { presignToken, type SigningCredentials } from '../token/presign.js'
import { dirname } from 'node:path'
import { assumeRole, resolveBaseCredentials, resolveRegion, type Prompt } from './credentials.js'
import { cacheKeyFor, endpointVariant, type IssuedToken, type TokenRequest } from './fast-path.js'
import {
  cacheDirectory,
  cacheFile,
  cacheKeyString,
  readCacheEntry,
  usableCredentials,
  usableToken,
} from './token-cache.js'
import { ensurePrivateDirectory, withCacheLock, writeCacheEntry } from './token-cache-write.js'

export type { IssuedToken, TokenRequest }

export interface TokenDeps {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly now: () => Date
  readonly prompt: Prompt
  /** Where "unable to use cache" warnings go. */
  readonly warn: (message: string) => void
}

/** A token for the request, from the cache when allowed and still fresh, else newly signed. */
export async function getToken(req: TokenRequest, deps: TokenDeps): Promise<IssuedToken> {
  if (!req.cache) return withoutCredentials(await sign(req, deps, undefined))
  const cacheKey = cacheKeyFor(req, deps.env)
  const key = cacheKeyString(cacheKey)
  const file = cacheFile(cacheDirectory(deps.env), cacheKey)
  if (attempt(() => (ensurePrivateDirectory(dirname(file)), true), deps.warn) === undefined) {
    return withoutCredentials(await sign(req, deps, undefined))
  }
  return withCacheLock(file, async () => {
    // Another invocation may have refreshed the entry while this one waited for the lock.
    const entry = attempt(() => readCacheEntry(file, key), deps.warn)
    const hit = usableToken(entry, deps.now().getTime())
    if (hit !== undefined) return { token: hit.value, expiresAt: hit.expiresAt, fromCache: true }
    const issued = await sign(req, deps, usableCredentials(entry, deps.now().getTime()))
    const { credentials } = issued
    attempt(
      () =>
        writeCacheEntry(file, {
          key,
          token: { value: issued.token, expiresAt: issued.expiresAt.getTime() },
          // Long-term keys never go to disk; only temporary ones, to skip AssumeRole/SSO next time.
          credentials:
            credentials.expiration === undefined || credentials.sessionToken === undefined
              ? undefined
              : { ...credentials, expiration: credentials.expiration.getTime() },
        }),
      deps.warn,
    )
    return withoutCredentials(issued)
  })
}

/** Runs a cache operation; a failure is reported as a warning and the token is made without it. */
function attempt<T>(op: () => T, warn: (message: string) => void): T | undefined {
  try {
    return op()
  } catch (err) {
    if (!(err instanceof CacheError) && (err as NodeJS.ErrnoException).syscall === undefined) throw err
    warn(`unable to use cache: ${(err as Error).message}`)
    return undefined
  }
}

function withoutCredentials({ token, expiresAt, fromCache }: IssuedToken): IssuedToken {
  return { token, expiresAt, fromCache }
}

async function sign(
  req: TokenRequest,
  deps: TokenDeps,
  cached:
    { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined; expiration: number } | undefined,
): Promise<IssuedToken & { credentials: SigningCredentials }> {
  const region = await resolveRegion(req.region, deps.env)
  let credentials: SigningCredentials
  if (cached !== undefined) {
    credentials = { ...cached, expiration: new Date(cached.expiration) }
  } else {
    credentials = await resolveBaseCredentials(deps.env, deps.prompt)
    if (req.roleArn) {
      credentials = await assumeRole(credentials, {
        roleArn: req.roleArn,
        region,
        externalId: req.externalId,
        sessionName: req.sessionName,
        forwardSessionName: req.forwardSessionName ?? false,
        now: deps.now(),
      })
    }
  }
  const { token, expiresAt } = await presignToken({
    clusterId: req.clusterId,
    region,
    credentials,
    now: deps.now(),
    endpoint: endpointVariant(deps.env),
  })
  return { token, expiresAt, fromCache: false, credentials }
}
