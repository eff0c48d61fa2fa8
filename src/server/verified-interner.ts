import type { Verified } from './cluster-id-search.js'

/**
 * One shared object for equal verifications. Every token of one credential verifies to the same
 * identity and cluster ID, so with this the identity cache keeps one copy per credential instead
 * of one per token, and so does every memo keyed by that object (the mapping's lookup keys). A
 * burst of new tokens from few credentials (CI jobs, kubectl without --cache, a restart of every
 * node) then costs memory per credential. Bounded, least recently used forgotten first; a
 * verification that finds no equal one is kept as it is.
 */
export class VerifiedInterner {
  readonly #byCredential = new Map<string, Verified>()
  readonly #maxEntries: number

  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new TypeError('"maxEntries" must be an integer >= 1')
    this.#maxEntries = maxEntries
  }

  get size(): number {
    return this.#byCredential.size
  }

  intern(v: Verified): Verified {
    const key = `${v.identity.accessKeyId} ${v.clusterId}`
    const known = this.#byCredential.get(key)
    this.#byCredential.delete(key)
    const shared = known !== undefined && sameVerification(known, v) ? known : v
    this.#byCredential.set(key, shared)
    if (this.#byCredential.size > this.#maxEntries) {
      this.#byCredential.delete(this.#byCredential.keys().next().value as string)
    }
    return shared
  }
}

function sameVerification(a: Verified, b: Verified): boolean {
  const x = a.identity
  const y = b.identity
  return (
    a.clusterId === b.clusterId &&
    x.arn === y.arn &&
    x.canonicalArn === y.canonicalArn &&
    x.accountId === y.accountId &&
    x.userId === y.userId &&
    x.sessionName === y.sessionName &&
    x.accessKeyId === y.accessKeyId &&
    x.stsEndpoint === y.stsEndpoint
  )
}
