import { lstatSync, readFileSync, type Stats } from 'node:fs'
import { join } from 'node:path'
import { CacheError } from '../shared/errors.js'
import type { Dependency } from './file-state.js'
import { fnv1a64 } from './hash.js'

/**
 * The on-disk cache of tokens and of the temporary credentials that signed them, one small JSON
 * file per key. This module is the read side and imports nothing heavy (not even node:crypto): a
 * cache hit is served from it alone. Writing lives in token-cache-write.ts.
 */

export interface CacheKey {
  readonly clusterId: string
  readonly profile: string
  readonly roleArn: string
  /** The region asked for by flag or environment ('' when it comes from the profile). */
  readonly region: string
  readonly externalId: string
  readonly sessionName: string
  readonly forwardSessionName: boolean
  /** environmentFingerprint(): every AWS_* variable and the home directory, hashed. */
  readonly environment: string
  readonly fips: boolean
  readonly dualStack: boolean
}

export interface CachedCredentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken?: string | undefined
  /** Epoch milliseconds. Only expiring credentials are ever cached. */
  readonly expiration: number
}

export interface CacheEntry {
  /** cacheKeyString() of the key the entry was written for. */
  readonly key: string
  /** The files the credentials were resolved from, in the state they had before they were read. */
  readonly deps: readonly Dependency[]
  /** Where the signing credentials came from (`profile "dev" (SSO)`), for people reading the file. */
  readonly source: string
  /** The access key ID that signed the token (and of `credentials`, when present). */
  readonly signingAccessKeyId: string
  readonly token?: { readonly value: string; readonly expiresAt: number } | undefined
  readonly credentials?: CachedCredentials | undefined
}

/** A token is reused while more than this much of its validity remains. */
export const TOKEN_REUSE_MARGIN_MS = 60_000
/** Credentials are reused while more than this remains (the SDK's own refresh window). */
export const CREDENTIALS_REUSE_MARGIN_MS = 5 * 60_000

/** Larger files are not read: an entry is a few kilobytes. */
const MAX_ENTRY_BYTES = 256 * 1024

/** 2: entries record their dependencies and signing key; version 1 entries are misses. */
export const CACHE_FORMAT_VERSION = 2

export function cacheDirectory(env: Readonly<Record<string, string | undefined>>): string {
  if (env.KUBE_IAM_AUTH_CACHE_DIR) return env.KUBE_IAM_AUTH_CACHE_DIR
  // node:os only when HOME is unset: loading it costs a cache hit about 1.5 ms
  return join(env.HOME || process.getBuiltinModule('node:os').homedir(), '.kube', 'cache', 'kube-iam-auth')
}

/** The identity of an entry; stored in the file and compared on read, so a name collision is a miss. */
export function cacheKeyString(key: CacheKey): string {
  return JSON.stringify([
    key.clusterId,
    key.profile,
    key.roleArn,
    key.region,
    key.externalId,
    key.sessionName,
    key.forwardSessionName,
    key.environment,
    key.fips,
    key.dualStack,
  ])
}

export function cacheFile(dir: string, key: CacheKey): string {
  return join(dir, `token-${fnv1a64(cacheKeyString(key))}.json`)
}

/** The cached token if it still has more than a minute to live. */
export function usableToken(
  entry: CacheEntry | undefined,
  now: number,
): { value: string; expiresAt: Date } | undefined {
  const t = entry?.token
  if (t === undefined || t.expiresAt - now <= TOKEN_REUSE_MARGIN_MS) return undefined
  return { value: t.value, expiresAt: new Date(t.expiresAt) }
}

export function usableCredentials(entry: CacheEntry | undefined, now: number): CachedCredentials | undefined {
  const c = entry?.credentials
  if (c === undefined || c.expiration - now <= CREDENTIALS_REUSE_MARGIN_MS) return undefined
  return c
}

/**
 * Reads an entry. Missing or unparsable files are a miss; a file or directory that others could
 * read or replace is refused with CacheError, since it holds credentials.
 */
export function readCacheEntry(file: string, key: string): CacheEntry | undefined {
  let text: string
  try {
    // an entry is a few kilobytes; anything much larger is not one of ours
    if (checkPrivate(file, 'file').size > MAX_ENTRY_BYTES) return undefined
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    const parsed = JSON.parse(text) as { v?: unknown } & Record<keyof CacheEntry, unknown>
    if (parsed.v !== CACHE_FORMAT_VERSION || parsed.key !== key) return undefined
    const deps = validDependencies(parsed.deps)
    if (deps === undefined || typeof parsed.signingAccessKeyId !== 'string') return undefined
    return {
      key,
      deps,
      source: typeof parsed.source === 'string' ? parsed.source : '',
      signingAccessKeyId: parsed.signingAccessKeyId,
      token: validToken(parsed.token),
      credentials: validCredentials(parsed.credentials),
    }
  } catch {
    return undefined
  }
}

export function checkPrivate(path: string, what: 'file' | 'directory'): Stats {
  const st = lstatSync(path)
  const kindOk = what === 'file' ? st.isFile() : st.isDirectory()
  const uid = process.getuid?.()
  if (!kindOk) throw new CacheError(`cache ${what} ${path} is not a regular ${what}`)
  if (uid !== undefined && st.uid !== uid)
    throw new CacheError(`cache ${what} ${path} is not owned by the current user`)
  if ((st.mode & 0o077) !== 0) {
    throw new CacheError(
      `cache ${what} ${path} is not private (mode ${(st.mode & 0o777).toString(8)}); ` +
        `run: chmod ${what === 'file' ? '600' : '700'} ${path}`,
    )
  }
  return st
}

function validDependencies(d: unknown): Dependency[] | undefined {
  if (!Array.isArray(d)) return undefined
  const out: Dependency[] = []
  for (const item of d) {
    if (!Array.isArray(item) || item.length !== 2 || typeof item[0] !== 'string' || typeof item[1] !== 'string') {
      return undefined
    }
    out.push([item[0], item[1]])
  }
  return out
}

function validToken(t: unknown): CacheEntry['token'] {
  const o = t as { value?: unknown; expiresAt?: unknown } | undefined
  if (typeof o?.value !== 'string' || typeof o.expiresAt !== 'number') return undefined
  return { value: o.value, expiresAt: o.expiresAt }
}

function validCredentials(c: unknown): CachedCredentials | undefined {
  const o = c as Partial<Record<keyof CachedCredentials, unknown>> | undefined
  if (typeof o?.accessKeyId !== 'string' || typeof o.secretAccessKey !== 'string' || typeof o.expiration !== 'number') {
    return undefined
  }
  return {
    accessKeyId: o.accessKeyId,
    secretAccessKey: o.secretAccessKey,
    sessionToken: typeof o.sessionToken === 'string' ? o.sessionToken : undefined,
    expiration: o.expiration,
  }
}
