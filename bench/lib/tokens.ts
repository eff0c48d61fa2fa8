// Distinct, genuinely valid tokens, presigned in-process by the product's own presigner.
//
// Token n is signed by principal n % P at anchor - s(n) seconds, where s(n) = (floor(n / P) * 7)
// mod 600 walks every second of the last 10 minutes (7 and 600 are coprime), so tokens 0 ..
// P*600-1 are pairwise distinct and spread over the whole window STS honours (15 minutes).
import { presignToken } from '../../src/token/presign.js'
import { benchPrincipal, BENCH_CLUSTER, BENCH_REGION, PRINCIPAL_COUNT } from './principals.js'

const WINDOW_S = 600
export const MAX_DISTINCT = PRINCIPAL_COUNT * WINDOW_S

export function reviewBody(token: string): string {
  return `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"${token}"}}`
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
