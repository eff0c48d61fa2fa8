import type { Reader } from '../shared/reader.js'

/**
 * How many IDs `clusterIDs` may add to `clusterID`. A token names its cluster ID only inside its
 * signature, so a token for none of them (a forged one included) costs one STS call per accepted ID:
 * 1 + MAX_CLUSTER_IDS at most.
 */
export const MAX_CLUSTER_IDS = 4

/**
 * What `token -i` and `aws eks get-token --cluster-name` can sign and STS can be sent unchanged in
 * the x-k8s-aws-id header: visible ASCII. (SigV4 trims and folds spaces in header values, so an ID
 * with spaces would not even be one string.)
 */
const USABLE_ID = /^[\x21-\x7e]+$/

/**
 * The top-level `clusterIDs` key (or `--cluster-ids`, which replaces it): cluster IDs accepted
 * alongside `clusterID`, in the order they are tried. Every entry that would make the list ambiguous
 * or useless is an error: empty, not visible ASCII, `clusterID` itself, listed twice, too many.
 */
export function decodeClusterIds(root: Reader, clusterId: string, fromFlag: readonly string[] | undefined): string[] {
  const ids = fromFlag ?? root.stringList('clusterIDs') ?? []
  const via = fromFlag === undefined ? '' : ' (from --cluster-ids)'
  if (ids.length > MAX_CLUSTER_IDS) {
    root.error(
      'clusterIDs',
      `at most ${MAX_CLUSTER_IDS} cluster IDs besides clusterID, got ${ids.length}${via}: a token names its ID only ` +
        `inside its signature, so each one listed costs a token for none of them (a forged one) one more STS call`,
    )
  }
  const accepted: string[] = []
  ids.forEach((id, i) => {
    const key = `clusterIDs[${i}]`
    const first = ids.indexOf(id)
    if (id === '') {
      root.error(key, `empty${via}: a cluster ID cannot be empty`)
    } else if (!USABLE_ID.test(id)) {
      root.error(
        key,
        `${JSON.stringify(id)}${via} is not a usable cluster ID: only visible ASCII characters, no spaces ` +
          '(tokens carry it signed in the x-k8s-aws-id header)',
      )
    } else if (id === clusterId) {
      root.error(key, `${JSON.stringify(id)}${via} is clusterID already: list only the IDs accepted alongside it`)
    } else if (first !== i) {
      root.error(key, `${JSON.stringify(id)}${via} is listed twice (also clusterIDs[${first}])`)
    } else {
      accepted.push(id)
    }
  })
  return accepted
}
