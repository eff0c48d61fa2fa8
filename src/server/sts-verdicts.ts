import { createHash } from 'node:crypto'
import { detached } from '../shared/detached.js'
import type { StsRejected } from '../shared/errors.js'
import { TtlCache } from '../shared/ttl-cache.js'
import type { PresignedRequest } from '../token/parse.js'

/** How long a credential STS confirmed and the mapping let in keeps its place in the confirmed lane. */
const CONFIRMED_TTL_MS = 60 * 60_000
/** How long a token STS refused is refused locally (kube-apiserver caches the denial for about as long). */
const REJECTED_TOKEN_TTL_MS = 60_000
/**
 * How long a credential STS does not know (InvalidClientTokenId) is refused locally: short, because a
 * key created seconds ago may not have reached STS yet.
 */
const UNKNOWN_CREDENTIAL_TTL_MS = 30_000

/**
 * The credential a token was signed with: its access key ID, plus a hash of its session token for
 * temporary credentials (so that knowing someone's access key ID, which is no secret, is not enough
 * to pass for their credential).
 */
export function credentialOf(req: PresignedRequest): string {
  // a key of long-lived caches: a copy, not a view of the token's URL
  if (req.sessionToken === undefined) return detached(req.accessKeyId)
  return `${req.accessKeyId}:${createHash('sha256').update(req.sessionToken).digest('base64url').slice(0, 22)}`
}

/**
 * What STS said recently, kept so that it need not be asked again: which credentials it confirmed
 * (for users the mapping let in: see StsAdmission), which tokens it refused, and which credentials
 * it does not know at all. Both bounded LRUs: a flood of forged tokens can fill them with useless
 * entries, but not grow them.
 */
export class StsVerdicts {
  /** Confirmed credentials, each with the cluster ID its last confirmed token named. */
  readonly #confirmed: TtlCache<string>
  readonly #rejected: TtlCache<StsRejected>
  readonly #now: () => number

  constructor(opts: { now: () => number; maxEntries?: number }) {
    this.#now = opts.now
    this.#confirmed = new TtlCache(opts.maxEntries ?? 20_000, opts.now)
    this.#rejected = new TtlCache(opts.maxEntries ?? 20_000, opts.now)
  }

  get confirmedCount(): number {
    return this.#confirmed.size
  }

  isConfirmed(credential: string): boolean {
    return this.#confirmed.get(credential) !== undefined
  }

  /** `clusterId`: the ID its token named; the credential's next tokens try it first (see clusterIdOrder). */
  confirm(credential: string, clusterId: string): void {
    this.#confirmed.set(credential, clusterId, CONFIRMED_TTL_MS)
  }

  /** The cluster ID the last confirmed token of this credential named, while it is confirmed. */
  confirmedClusterId(credential: string): string | undefined {
    return this.#confirmed.get(credential)?.value
  }

  /**
   * STS refused a token of this credential: it leaves the confirmed lane until a genuine token
   * confirms it again. (Anyone can sign with a known access key ID and a wrong secret; they may make
   * its user a first-time user again, never keep the confirmed lane's slots for themselves.)
   */
  unconfirm(credential: string): void {
    this.#confirmed.set(credential, '', 0)
  }

  /** The refusal STS gave earlier for this token (by its hash), if still remembered. */
  tokenRejection(tokenKey: string): StsRejected | undefined {
    return this.#rejected.get(`t:${tokenKey}`)?.value
  }

  /**
   * The refusal STS gave earlier for this credential in this STS region, if still remembered (per
   * region: STS also says InvalidClientTokenId for a region the account has not enabled).
   */
  credentialRejection(credential: string, stsRegion: string): StsRejected | undefined {
    return this.#rejected.get(`c:${stsRegion}:${credential}`)?.value
  }

  /** Remembers a definitive refusal of the token, and of the whole credential when STS does not know it. */
  reject(tokenKey: string, req: { credential: string; stsRegion: string; validUntil: number }, err: StsRejected): void {
    const ttl = Math.min(REJECTED_TOKEN_TTL_MS, req.validUntil - this.#now())
    if (ttl > 0) this.#rejected.set(`t:${tokenKey}`, err, ttl)
    if (err.stsCode === 'InvalidClientTokenId') {
      this.#rejected.set(`c:${req.stsRegion}:${req.credential}`, err, UNKNOWN_CREDENTIAL_TTL_MS)
    }
  }
}
