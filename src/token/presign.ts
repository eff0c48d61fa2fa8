import { Hash } from '@smithy/hash-node'
import { SignatureV4 } from '@smithy/signature-v4'
import type { SourceData } from '@smithy/types'
import { encodeToken } from './format.js'
import { REQUIRED_SIGNED_HEADERS, STS_API_VERSION, uriEncode } from './parse.js'
import { stsEndpointFor, type StsEndpointOptions } from '../shared/partitions.js'

export interface SigningCredentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken?: string | undefined
  /** When temporary credentials stop working; the token must not claim to outlive them. */
  readonly expiration?: Date | undefined
}

export interface PresignInput {
  readonly clusterId: string
  readonly region: string
  readonly credentials: SigningCredentials
  readonly now: Date
  readonly endpoint?: StsEndpointOptions
}

export interface SignedToken {
  readonly token: string
  readonly expiresAt: Date
}

/** STS honours the URL for 15 minutes; clients are told 14 so they refresh before it dies. */
export const TOKEN_LIFETIME_MS = 14 * 60 * 1000
/** Upstream always sends 60 (verifiers up to 0.3.0 required 0..60); STS ignores it. */
const PRESIGN_EXPIRES_SECONDS = 60

class Sha256 extends Hash {
  constructor(secret?: SourceData) {
    super('sha256', secret)
  }
}

/**
 * Presigns STS GetCallerIdentity with the x-k8s-aws-id header signed, byte for byte as
 * aws-iam-authenticator does: sorted query, X-Amz-Signature last, empty-body payload hash.
 */
export async function presignToken(input: PresignInput): Promise<SignedToken> {
  if (input.clusterId === '') throw new TypeError('"clusterId" must not be empty')
  const { host, signingRegion } = stsEndpointFor(input.region, input.endpoint)
  const { expiration, ...credentials } = input.credentials
  const signer = new SignatureV4({ service: 'sts', region: signingRegion, credentials, sha256: Sha256 })
  const signed = await signer.presign(
    {
      method: 'GET',
      protocol: 'https:',
      hostname: host,
      path: '/',
      query: { Action: 'GetCallerIdentity', Version: STS_API_VERSION },
      headers: { host, 'x-k8s-aws-id': input.clusterId },
    },
    { expiresIn: PRESIGN_EXPIRES_SECONDS, signingDate: input.now },
  )
  const query = signed.query as Record<string, string>
  if (query['X-Amz-SignedHeaders'] !== REQUIRED_SIGNED_HEADERS) {
    throw new Error(`signer signed ${query['X-Amz-SignedHeaders']}, expected ${REQUIRED_SIGNED_HEADERS}`)
  }
  const keys = Object.keys(query)
    .filter((k) => k !== 'X-Amz-Signature')
    .sort()
  keys.push('X-Amz-Signature')
  const url = `https://${host}/?${keys.map((k) => `${k}=${uriEncode(query[k]!)}`).join('&')}`
  const limit = input.now.getTime() + TOKEN_LIFETIME_MS
  const expiresAt = new Date(expiration === undefined ? limit : Math.min(limit, expiration.getTime()))
  return { token: encodeToken(url), expiresAt }
}
