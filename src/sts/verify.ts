import { processCallerIdentityResponse, requestCallerIdentity, type Identity } from './get-caller-identity.js'
import type { StsTransport } from './transport.js'
import { parsePresignedToken, type PresignedRequest } from '../token/parse.js'

export interface VerifyOptions {
  readonly clusterId: string
  /** The server's partition; tokens for hosts of any other partition are refused. Default `aws`. */
  readonly partition?: string
  /** Regions of the partition accepted beyond those this release knows (server.extraRegions). */
  readonly extraRegions?: readonly string[] | undefined
  /** Base URL to send GetCallerIdentity to instead of the token's host (KUBE_IAM_AUTH_STS_ENDPOINT). */
  readonly stsEndpoint?: string | undefined
  /** Deadline for the STS round trip. Default 10 s, as upstream. */
  readonly timeoutMs?: number
}

export interface VerifyDeps {
  readonly now: () => Date
  readonly sts: StsTransport
}

export const DEFAULT_STS_TIMEOUT_MS = 10_000

/** Local checks only; throws TokenInvalid. Split out so callers can key caches on the parsed request. */
export function checkToken(token: string, opts: VerifyOptions, now: Date): PresignedRequest {
  if (opts.clusterId === '') throw new TypeError('"clusterId" must not be empty')
  return parsePresignedToken(token, { partition: opts.partition ?? 'aws', extraRegions: opts.extraRegions, now })
}

/** Asks STS who signed an already-checked request. Throws StsRejected, StsThrottled or StsUnavailable. */
export async function identify(req: PresignedRequest, opts: VerifyOptions, sts: StsTransport): Promise<Identity> {
  const res = await requestCallerIdentity(
    req,
    { clusterId: opts.clusterId, stsEndpoint: opts.stsEndpoint, timeoutMs: opts.timeoutMs ?? DEFAULT_STS_TIMEOUT_MS },
    sts,
  )
  return processCallerIdentityResponse(res, req)
}

/** Verifies a token end to end: every local check, then STS. */
export async function verifyToken(token: string, opts: VerifyOptions, deps: VerifyDeps): Promise<Identity> {
  return identify(checkToken(token, opts, deps.now()), opts, deps.sts)
}
