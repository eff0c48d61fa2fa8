import type { ChainResult } from '../mapping/chain.js'
import type { Identity } from '../sts/get-caller-identity.js'

export const TOKEN_REVIEW_VERSIONS = ['authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1'] as const
export type TokenReviewVersion = (typeof TOKEN_REVIEW_VERSIONS)[number]

export interface TokenReviewRequest {
  readonly apiVersion: TokenReviewVersion
  readonly token: string
}

export class MalformedReview extends Error {}

/**
 * Parses a TokenReview request strictly: JSON object, kind TokenReview, a version we answer in,
 * and a non-empty spec.token string. Anything else is a 400, never a guess.
 */
export function parseTokenReview(body: string): TokenReviewRequest {
  let doc: unknown
  try {
    doc = JSON.parse(body)
  } catch {
    throw new MalformedReview('expected a request body to be a TokenReview')
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new MalformedReview('expected a request body to be a TokenReview')
  }
  const { apiVersion, kind, spec } = doc as { apiVersion?: unknown; kind?: unknown; spec?: { token?: unknown } }
  if (kind !== 'TokenReview')
    throw new MalformedReview(`expected kind TokenReview, got ${JSON.stringify(kind ?? null)}`)
  if (typeof apiVersion !== 'string' || !(TOKEN_REVIEW_VERSIONS as readonly string[]).includes(apiVersion)) {
    throw new MalformedReview(
      `unsupported TokenReview apiVersion ${JSON.stringify(apiVersion ?? null)} (supported: ${TOKEN_REVIEW_VERSIONS.join(', ')})`,
    )
  }
  const token = typeof spec === 'object' && spec !== null ? spec.token : undefined
  if (typeof token !== 'string' || token === '')
    throw new MalformedReview('expected spec.token to be a non-empty string')
  return { apiVersion: apiVersion as TokenReviewVersion, token }
}

export interface UserInfo {
  readonly username: string
  readonly uid: string
  readonly groups?: readonly string[]
  readonly extra?: Readonly<Record<string, readonly string[]>>
}

/** The user kube-apiserver sees, as upstream builds it; scrubbed accounts reveal no ARN or IDs. */
export function userInfo(identity: Identity, mapped: ChainResult, scrubbed: boolean): UserInfo {
  const groups = mapped.groups.length > 0 ? { groups: mapped.groups } : {}
  if (scrubbed) {
    return { username: mapped.username, uid: `aws-iam-authenticator:administrative:${mapped.username}`, ...groups }
  }
  return {
    username: mapped.username,
    uid: `aws-iam-authenticator:${identity.accountId}:${identity.userId}`,
    ...groups,
    extra: {
      arn: [identity.arn],
      canonicalArn: [identity.canonicalArn],
      sessionName: [identity.sessionName],
      accessKeyId: [identity.accessKeyId],
      principalId: [identity.userId],
      'sigs.k8s.io/aws-iam-authenticator/principalId': [identity.userId],
    },
  }
}

export function allowedReview(apiVersion: TokenReviewVersion, user: UserInfo): object {
  return {
    apiVersion,
    kind: 'TokenReview',
    metadata: { creationTimestamp: null },
    spec: {},
    status: { authenticated: true, user },
  }
}

/** A definitive denial: authenticated false and no status.error, so kube-apiserver caches it. */
export function deniedReview(apiVersion: TokenReviewVersion): object {
  return {
    apiVersion,
    kind: 'TokenReview',
    metadata: { creationTimestamp: null },
    spec: {},
    status: { authenticated: false, user: {} },
  }
}

/** A transient failure (sent with 429/503): carries status.error for operators reading the apiserver log. */
export function failedReview(apiVersion: TokenReviewVersion, error: string): object {
  return {
    apiVersion,
    kind: 'TokenReview',
    metadata: { creationTimestamp: null },
    spec: {},
    status: { authenticated: false, user: {}, error },
  }
}
