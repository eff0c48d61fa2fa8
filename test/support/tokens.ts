// Shared helpers for the token tests: a frozen clock, principals the fake STS knows, a presigner
// for that clock, the raw token <-> URL conversions and exact-substring URL surgery.
//
// Everything here is deterministic: SigV4 signatures depend only on the key, the clock and the
// request, so every token built from these helpers is byte-for-byte the same on every run.

import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { expect } from 'vitest'
import { TokenInvalid, type TokenCheck } from '../../src/shared/errors.js'
import type { StsEndpointOptions } from '../../src/shared/partitions.js'
import { presignToken } from '../../src/token/presign.js'
import type { FakeStsPrincipal } from './fake-sts.js'

/** The frozen clock: tokens in test/token are signed, and verified, at this instant. */
export const NOW = new Date('2024-05-01T12:00:00Z')
/** NOW as X-Amz-Date. */
export const NOW_AMZ = '20240501T120000Z'
/** NOW as the credential-scope day. */
export const NOW_DAY = '20240501'
export const CLUSTER_ID = 'kia-test-cluster'
/** The prefix every TokenInvalid message carries. */
export const INVALID = 'input token was not properly formatted: '

/** A long-term IAM user (no session token). */
export const ALICE: FakeStsPrincipal = {
  accessKeyId: 'AKIAKIATESTALICE0001',
  secretAccessKey: 'alice/secret+key/0123456789abcdefghijklmn',
  arn: 'arn:aws:iam::111122223333:user/alice',
  account: '111122223333',
  userId: 'AIDAKIATESTALICE0001',
}

/** Temporary credentials of an assumed role: the token carries X-Amz-Security-Token. */
export const TEMP: FakeStsPrincipal = {
  accessKeyId: 'ASIAKIATESTTEMP00001',
  secretAccessKey: 'temp+secret/ABCDEFGHIJKLMNOPQRSTUVWXYZ0123',
  sessionToken: 'IQoJb3JpZ2luX2Vj+session/token+with/special==',
  arn: 'arn:aws:sts::444455556666:assumed-role/Admin/kia-session',
  account: '444455556666',
  userId: 'AROAKIATESTADMIN0001:kia-session',
}

/** `k8s-aws-v1.` + unpadded base64url of the URL's UTF-8 bytes (what upstream's T(url) does). */
export function toToken(url: string | Uint8Array): string {
  const bytes = typeof url === 'string' ? Buffer.from(url, 'utf8') : Buffer.from(url)
  return `k8s-aws-v1.${bytes.toString('base64url')}`
}

/** The URL a well-formed token carries (lenient: for building mutations, not for checking). */
export function fromToken(token: string): string {
  if (!token.startsWith('k8s-aws-v1.')) throw new Error(`not a token: ${token.slice(0, 20)}`)
  return Buffer.from(token.slice('k8s-aws-v1.'.length), 'base64url').toString('latin1')
}

/** `yyyymmddThhmmssZ` for a Date. */
export function amzDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z')
}

export interface PresignOptions {
  readonly principal?: FakeStsPrincipal
  readonly region?: string
  readonly clusterId?: string
  readonly now?: Date
  readonly endpoint?: StsEndpointOptions
}

/** A genuinely valid token made by the product's presigner for the given clock (default NOW). */
export async function presignedToken(opts: PresignOptions = {}): Promise<string> {
  const p = opts.principal ?? ALICE
  const { token } = await presignToken({
    clusterId: opts.clusterId ?? CLUSTER_ID,
    region: opts.region ?? 'us-west-2',
    credentials: {
      accessKeyId: p.accessKeyId,
      secretAccessKey: p.secretAccessKey,
      ...(p.sessionToken === undefined ? {} : { sessionToken: p.sessionToken }),
    },
    now: opts.now ?? NOW,
    ...(opts.endpoint === undefined ? {} : { endpoint: opts.endpoint }),
  })
  return token
}

/** The presigned URL of presignedToken(opts). */
export async function presignedUrl(opts: PresignOptions = {}): Promise<string> {
  return fromToken(await presignedToken(opts))
}

/**
 * Replaces the one occurrence of `from` in `s` by `to`. Throws when `from` occurs zero or several
 * times, so a mutation that silently does nothing (or too much) fails the test that builds it.
 */
export function replaceOnce(s: string, from: string, to: string): string {
  const at = s.indexOf(from)
  if (at === -1) throw new Error(`mutation target ${JSON.stringify(from)} not found`)
  if (s.indexOf(from, at + 1) !== -1) throw new Error(`mutation target ${JSON.stringify(from)} is ambiguous`)
  return s.slice(0, at) + to + s.slice(at + from.length)
}

/** The raw (still percent-encoded) value of query key `key`, exact spelling. */
export function rawParam(url: string, key: string): string {
  const m = new RegExp(`[?&]${key}=([^&#]*)`).exec(url)
  if (m === null) throw new Error(`no ${key} in ${url}`)
  return m[1]!
}

/** Replaces the raw value of `key` (exact spelling, must be present once). */
export function setParam(url: string, key: string, rawValue: string): string {
  return replaceOnce(url, `${key}=${rawParam(url, key)}`, `${key}=${rawValue}`)
}

/** Removes `key=value` and its separator. */
export function dropParam(url: string, key: string): string {
  const pair = `${key}=${rawParam(url, key)}`
  return url.includes(`?${pair}&`) ? replaceOnce(url, `${pair}&`, '') : replaceOnce(url, `&${pair}`, '')
}

/** Replaces the host of an https URL. */
export function setHost(url: string, host: string): string {
  const m = /^https:\/\/([^/?]*)/.exec(url)
  if (m === null) throw new Error(`not an https URL: ${url}`)
  return `https://${host}${url.slice(m[0].length)}`
}

/** Runs `fn` and returns what it threw; fails the test when nothing was thrown. */
export async function rejectionOf(fn: () => unknown): Promise<unknown> {
  try {
    await fn()
  } catch (err) {
    return err
  }
  expect.fail('expected a rejection, got a result')
}

/** Asserts `err` is a TokenInvalid with exactly this check and this full message. */
export function expectTokenInvalid(err: unknown, check: TokenCheck, message: string): void {
  expect(err).toBeInstanceOf(TokenInvalid)
  const e = err as TokenInvalid
  expect({ check: e.check, message: e.message, code: e.code }).toEqual({ check, message, code: 'ERR_TOKEN_INVALID' })
}

export interface SdkPartition {
  readonly id: string
  readonly outputs: {
    readonly dnsSuffix: string
    readonly dualStackDnsSuffix: string
    readonly implicitGlobalRegion: string
    readonly name: string
    readonly supportsDualStack: boolean
    readonly supportsFIPS: boolean
  }
  readonly regionRegex: string
  readonly regions: Readonly<Record<string, { readonly description?: string }>>
}

/**
 * The AWS SDK's own partitions table as installed in node_modules (the file is not in the package's
 * export map, so it is imported by path).
 */
export async function loadSdkPartitions(): Promise<readonly SdkPartition[]> {
  const require = createRequire(import.meta.url)
  const root = dirname(require.resolve('@aws-sdk/core/package.json'))
  const file = join(root, 'dist-es/submodules/client/util-endpoints/lib/aws/partitions.js')
  const mod = (await import(pathToFileURL(file).href)) as { partitionsInfo: { partitions: SdkPartition[] } }
  return mod.partitionsInfo.partitions
}

/** Every real (non pseudo-global) region the SDK lists, with its partition id. */
export async function sdkRegions(): Promise<ReadonlyArray<{ region: string; partition: string }>> {
  const out: Array<{ region: string; partition: string }> = []
  for (const p of await loadSdkPartitions()) {
    for (const region of Object.keys(p.regions)) {
      if (!region.endsWith('-global')) out.push({ region, partition: p.id })
    }
  }
  return out
}

export interface SdkStsEndpoint {
  readonly host: string
  /** The SigV4 scope region the SDK would sign for (its authSchemes override, else the region). */
  readonly signingRegion: string
}

let sdkEndpointProvider:
  ((params: Record<string, unknown>) => { url: URL; properties?: Record<string, unknown> }) | undefined

/**
 * The STS endpoint the installed AWS SDK resolves for a region (regional endpoints, never the
 * legacy global one), or undefined when its rules refuse the combination. Loaded lazily so that
 * tests which do not need the SDK do not pay for it.
 */
export async function sdkStsEndpoint(
  region: string,
  opts: { fips: boolean; dualStack: boolean },
): Promise<SdkStsEndpoint | undefined> {
  if (sdkEndpointProvider === undefined) {
    const { STSClient } = await import('@aws-sdk/client-sts')
    const client = new STSClient({ region: 'us-east-1' })
    sdkEndpointProvider = client.config.endpointProvider as unknown as typeof sdkEndpointProvider
    client.destroy()
  }
  let endpoint
  try {
    endpoint = sdkEndpointProvider!({
      Region: region,
      UseFIPS: opts.fips,
      UseDualStack: opts.dualStack,
      UseGlobalEndpoint: false,
    })
  } catch {
    return undefined
  }
  const schemes = endpoint.properties?.['authSchemes'] as Array<{ signingRegion?: string }> | undefined
  return { host: endpoint.url.hostname, signingRegion: schemes?.[0]?.signingRegion ?? region }
}
