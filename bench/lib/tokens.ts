// Distinct, genuinely valid tokens, presigned in-process by the product's own presigner.
//
// Token n is signed by principal n % P at anchor - s(n) seconds, where s(n) = (floor(n / P) * 7)
// mod 600 walks every second of the last 10 minutes (7 and 600 are coprime), so tokens 0 ..
// P*600-1 are pairwise distinct and spread over the whole window STS honours (15 minutes).
import { randomBytes } from 'node:crypto'
import { encodeToken } from '../../src/token/format.js'
import { presignToken } from '../../src/token/presign.js'
import { benchPrincipal, BENCH_CLUSTER, BENCH_REGION, PRINCIPAL_COUNT } from './principals.js'

const WINDOW_S = 600
export const MAX_DISTINCT = PRINCIPAL_COUNT * WINDOW_S

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

export class TokenFactory {
  /** A whole second, not after now: no token is ever in the future. */
  readonly anchorMs: number
  #next = 0
  readonly #principals = Array.from({ length: PRINCIPAL_COUNT }, (_, i) => benchPrincipal(i))
  /** Total presign time and count, for the presign rate. */
  signMs = 0
  signed = 0

  constructor(now = Date.now()) {
    this.anchorMs = Math.floor(now / 1000) * 1000 - 1000
  }

  /** How many distinct tokens have been handed out. */
  get used(): number {
    return this.#next
  }

  async token(n: number): Promise<string> {
    if (n >= MAX_DISTINCT) throw new Error(`token index ${n} exceeds ${MAX_DISTINCT} distinct tokens`)
    const p = this.#principals[n % PRINCIPAL_COUNT]!
    const offsetS = (Math.floor(n / PRINCIPAL_COUNT) * 7) % WINDOW_S
    const { token } = await presignToken({
      clusterId: BENCH_CLUSTER,
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
