import { StsRejected } from '../shared/errors.js'
import type { Identity } from '../sts/get-caller-identity.js'

/** An identity STS confirmed, and the cluster ID the token named (the x-k8s-aws-id STS accepted). */
export interface Verified {
  readonly identity: Identity
  readonly clusterId: string
}

/**
 * The accepted cluster IDs (clusterID first, then clusterIDs) in the order to try them for a token:
 * the one its credential last verified with first, so a returning user of another ID costs one STS
 * call, then the others in configured order.
 */
export function clusterIdOrder(accepted: readonly string[], preferred: string | undefined): readonly string[] {
  if (preferred === undefined || preferred === accepted[0] || !accepted.includes(preferred)) return accepted
  return [preferred, ...accepted.filter((id) => id !== preferred)]
}

/**
 * Finds which accepted cluster ID a token names. The ID is signed (x-k8s-aws-id), not written in the
 * token, so only STS can tell: each `attempt` is one STS call with one ID. Only the answer another ID
 * could change, a signature STS computes differently, moves on to the next ID; any other answer (an
 * identity, an unknown or expired credential, throttling, STS down) ends the search, so a token
 * costs at most one call per accepted ID. When every ID got a signature mismatch, the refusal says
 * which were tried.
 */
export async function searchClusterIds(
  order: readonly string[],
  attempt: (clusterId: string) => Promise<Identity>,
): Promise<Verified> {
  for (let i = 0; ; i++) {
    const clusterId = order[i]!
    try {
      return { identity: await attempt(clusterId), clusterId }
    } catch (err) {
      if (!(err instanceof StsRejected && err.signatureMismatch)) throw err
      if (i === order.length - 1) {
        throw order.length === 1 ? err : err.withNote(`(for every accepted cluster ID: ${order.join(', ')})`)
      }
    }
  }
}
