// Distinct, genuinely valid tokens, presigned in-process by the product's own presigner.
//
// Token n is signed by principal n % P at anchor - s(n) seconds, where s(n) = (floor(n / P) * 7)
// mod 600 walks every second of the last 10 minutes (7 and 600 are coprime), so tokens 0 ..
// P*600-1 are pairwise distinct and spread over the whole window STS honours (15 minutes).
import { randomBytes } from 'node:crypto'
import { encodeToken } from '../../src/token/format.js'
import { presignToken } from '../../src/token/presign.js'
import type { FakeStsPrincipal } from '../../test/support/fake-sts.js'
import { benchPrincipal, BENCH_CLUSTER, BENCH_REGION, PRINCIPAL_COUNT } from './principals.js'

const WINDOW_S = 600

export function reviewBody(token: string): string {
  return `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"${token}"}}`
}

const amzDate = (d: Date) =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z')
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/**
 * A well-formed token nobody signed: a random access key ID in AWS's format, a fresh date and a
 * random signature. It passes every local check; only STS can tell (InvalidClientTokenId).
 */
export function forgedToken(now = Date.now(), region = BENCH_REGION): string {
  const bytes = randomBytes(48)
  let akid = 'AKIA'
  for (let i = 0; i < 16; i++) akid += BASE32[bytes[i]! & 31]
  const date = new Date(Math.floor(now / 1000) * 1000 - (bytes[16]! % 120) * 1000)
  const day = amzDate(date).slice(0, 8)
  const host = `sts.${region}.amazonaws.com`
  const query = [
    'Action=GetCallerIdentity',
    'Version=2011-06-15',
    'X-Amz-Algorithm=AWS4-HMAC-SHA256',
    `X-Amz-Credential=${akid}%2F${day}%2F${region}%2Fsts%2Faws4_request`,
    `X-Amz-Date=${amzDate(date)}`,
    'X-Amz-Expires=60',
    'X-Amz-SignedHeaders=host%3Bx-k8s-aws-id',
    `X-Amz-Signature=${bytes.subarray(16, 48).toString('hex')}`,
  ].join('&')
  return encodeToken(`https://${host}/?${query}`)
}

/** A forged token for a made-up region of the aws partition's shape: `us-<x * 1000 + i in letters>-1`. */
export function forgedRegionToken(i: number, now = Date.now()): string {
  const region = `us-${'x'.repeat(1000)}${i.toString(26).replace(/\d/g, (d) => 'qrstuvwxyz'[Number(d)]!)}-1`
  return forgedToken(now, region)
}

/** A genuine token signed 20 minutes ago: refused locally (expired), the last check a token meets. */
export async function expiredToken(principal = 0): Promise<string> {
  const p = benchPrincipal(principal)
  const { token } = await presignToken({
    clusterId: BENCH_CLUSTER,
    region: BENCH_REGION,
    credentials: { accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey },
    now: new Date(Date.now() - 20 * 60_000),
  })
  return token
}

export interface TokenFactoryOptions {
  /** Sign with principals first .. first + count - 1 (default all PRINCIPAL_COUNT of them). */
  readonly principals?: { readonly first: number; readonly count: number }
  /** Signing times from this many seconds before the anchor (default 0) ... */
  readonly windowStartS?: number
  /** ... over this many seconds (default 600). Tokens stay valid 900 s after signing. */
  readonly windowS?: number
  /** The cluster ID the tokens name (default BENCH_CLUSTER). */
  readonly clusterId?: string
}

export class TokenFactory {
  /** A whole second, not after now: no token is ever in the future. */
  readonly anchorMs: number
  #next = 0
  readonly #principals: FakeStsPrincipal[]
  readonly #windowStartS: number
  readonly #windowS: number
  readonly #clusterId: string
  /** Total presign time and count, for the presign rate. */
  signMs = 0
  signed = 0

  /**
   * Token n is signed by principal n % P at anchor - start - s(n) seconds, where
   * s(n) = (floor(n / P) * 7) mod window: factories with disjoint windows never make the same token.
   */
  constructor(now = Date.now(), opts: TokenFactoryOptions = {}) {
    this.anchorMs = Math.floor(now / 1000) * 1000 - 1000
    const { first, count } = opts.principals ?? { first: 0, count: PRINCIPAL_COUNT }
    this.#principals = Array.from({ length: count }, (_, i) => benchPrincipal(first + i))
    this.#windowStartS = opts.windowStartS ?? 0
    this.#windowS = opts.windowS ?? WINDOW_S
    this.#clusterId = opts.clusterId ?? BENCH_CLUSTER
    if (this.#windowS % 7 === 0) throw new Error('the window must be coprime with 7')
  }

  /** How many distinct tokens have been handed out. */
  get used(): number {
    return this.#next
  }

  /** How many distinct tokens this factory can make. */
  get capacity(): number {
    return this.#principals.length * this.#windowS
  }

  async token(n: number): Promise<string> {
    if (n >= this.capacity) throw new Error(`token index ${n} exceeds ${this.capacity} distinct tokens`)
    const p = this.#principals[n % this.#principals.length]!
    const offsetS = this.#windowStartS + ((Math.floor(n / this.#principals.length) * 7) % this.#windowS)
    const { token } = await presignToken({
      clusterId: this.#clusterId,
      region: BENCH_REGION,
      credentials: { accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey },
      now: new Date(this.anchorMs - offsetS * 1000),
    })
    return token
  }

  /** The next `count` never-used tokens, as TokenReview request bodies. */
  async freshBodies(count: number): Promise<string[]> {
    const start = this.#next
    this.#next += count
    const t0 = performance.now()
    const out = new Array<string>(count)
    for (let i = 0; i < count; i++) out[i] = reviewBody(await this.token(start + i))
    this.signMs += performance.now() - t0
    this.signed += count
    return out
  }

  /** Presigned tokens per second so far. */
  get signRate(): number {
    return this.signMs === 0 ? 0 : (this.signed * 1000) / this.signMs
  }
}
