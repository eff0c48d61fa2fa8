import { dirname } from 'node:path'
import { CacheError } from '../shared/errors.js'
import { presignToken, type SigningCredentials } from '../token/presign.js'
import type { AwsConfig } from './aws-config.js'
import { assumeRole } from './assume-role.js'
import { withCacheLock } from './cache-lock.js'
import { resolveCredentials } from './credential-chain.js'
import { snapshotDependencies } from './dependency-files.js'
import {
  cacheKeyFor,
  currentEntry,
  endpointVariant,
  requestedRegion,
  type IssuedToken,
  type TokenRequest,
} from './fast-path.js'
import { unknownRegionWarning } from './known-regions.js'
import type { Prompt } from './mfa-prompt.js'
import { resolveRegion } from './region.js'
import {
  cacheDirectory,
  cacheFile,
  cacheKeyString,
  readCacheEntry,
  usableCredentials,
  usableToken,
  type CachedCredentials,
} from './token-cache.js'
import { ensurePrivateDirectory, writeCacheEntry } from './token-cache-write.js'

export type { IssuedToken, TokenRequest }

/** How long a credential_process may run unless --process-credential-timeout says otherwise (the Go SDK's default). */
export const DEFAULT_PROCESS_TIMEOUT_MS = 60_000

export interface TokenDeps {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly now: () => Date
  readonly prompt: Prompt
  /** Where warnings go ("unable to use cache: ...", unknown regions). */
  readonly warn: (message: string) => void
}

interface Signed extends IssuedToken {
  readonly credentials: SigningCredentials
  readonly source: string
  readonly cacheable: boolean
}

/**
 * A token for the request, from the cache when allowed and still current, else newly signed. Any
 * problem with the cache is one warning, and the token is made without it.
 */
export async function getToken(req: TokenRequest, deps: TokenDeps): Promise<IssuedToken> {
  if (!req.cache) return issued(await sign(req, deps, undefined))
  const cacheKey = cacheKeyFor(req, deps.env)
  const key = cacheKeyString(cacheKey)
  const file = cacheFile(cacheDirectory(deps.env), cacheKey)
  if (attempt(() => (ensurePrivateDirectory(dirname(file)), true), deps.warn) === undefined) {
    return issued(await sign(req, deps, undefined))
  }
  return withCacheLock(
    file,
    async () => {
      // Another invocation may have refreshed the entry while this one waited for the lock.
      const entry = currentEntry(
        attempt(() => readCacheEntry(file, key), deps.warn),
        req,
        deps.env,
      )
      const hit = usableToken(entry, deps.now().getTime())
      if (hit !== undefined) return { token: hit.value, expiresAt: hit.expiresAt, fromCache: true }
      // The files are recorded before the chain reads them: an edit in between costs a miss later.
      let snapshot: Awaited<ReturnType<typeof snapshotDependencies>> | undefined
      try {
        snapshot = await snapshotDependencies(deps.env, deps.now().getTime())
      } catch (err) {
        if (!(err instanceof CacheError)) throw err
        deps.warn(`unable to use cache: ${err.message}`)
      }
      const reuse = usableCredentials(entry, deps.now().getTime())
      const signed = await sign(
        req,
        deps,
        reuse === undefined ? undefined : { credentials: reuse, source: entry!.source },
        snapshot?.config,
      )
      if (snapshot !== undefined) {
        const { credentials } = signed
        attempt(
          () =>
            writeCacheEntry(file, {
              key,
              deps: snapshot.deps,
              source: signed.source,
              signingAccessKeyId: credentials.accessKeyId,
              token: { value: signed.token, expiresAt: signed.expiresAt.getTime() },
              // Only temporary credentials whose identity the key and the recorded files decide.
              credentials:
                signed.cacheable && credentials.expiration !== undefined && credentials.sessionToken !== undefined
                  ? { ...credentials, expiration: credentials.expiration.getTime() }
                  : undefined,
            }),
          deps.warn,
        )
      }
      return issued(signed)
    },
    { warn: deps.warn },
  )
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

function issued({ token, expiresAt, fromCache }: IssuedToken): IssuedToken {
  return { token, expiresAt, fromCache }
}

async function sign(
  req: TokenRequest,
  deps: TokenDeps,
  cached: { credentials: CachedCredentials; source: string } | undefined,
  config?: AwsConfig,
): Promise<Signed> {
  const { region, origin } = await resolveRegion(req.region, deps.env)
  if (requestedRegion(req.region, deps.env) === '') {
    // A region named by flag or environment was checked before the cache was even read.
    const warning = unknownRegionWarning(region, origin)
    if (warning !== undefined) deps.warn(warning)
  }
  let credentials: SigningCredentials
  let source: string
  let cacheable: boolean
  if (cached !== undefined) {
    credentials = { ...cached.credentials, expiration: new Date(cached.credentials.expiration) }
    source = cached.source
    cacheable = true
  } else {
    const base = await resolveCredentials({
      env: deps.env,
      config,
      prompt: deps.prompt,
      processTimeoutMs: req.processTimeoutMs ?? DEFAULT_PROCESS_TIMEOUT_MS,
      now: deps.now,
    })
    ;({ credentials, source, cacheable } = base)
    if (req.roleArn) {
      credentials = await assumeRole(credentials, {
        roleArn: req.roleArn,
        region,
        externalId: req.externalId,
        sessionName: req.sessionName,
        forwardSessionName: req.forwardSessionName ?? false,
        now: deps.now(),
      })
      source = `role ${req.roleArn}, assumed with ${source}`
      cacheable = true
    }
  }
  const { token, expiresAt } = await presignToken({
    clusterId: req.clusterId,
    region,
    credentials,
    now: deps.now(),
    endpoint: endpointVariant(deps.env),
  })
  return { token, expiresAt, fromCache: false, credentials, source, cacheable }
}
