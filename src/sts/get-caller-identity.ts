import { detached } from '../shared/detached.js'
import { ArnInvalid, StsRejected, StsThrottled, StsUnavailable } from '../shared/errors.js'
import type { PresignedRequest } from '../token/parse.js'
import { canonicalizeArn } from './arn.js'
import { ResponseTooLarge, type StsHttpResponse, type StsTransport } from './transport.js'

/** Who signed a token, as STS reports it, plus the fields upstream derives from it. */
export interface Identity {
  /** The ARN STS returned (an assumed-role session ARN for roles). */
  readonly arn: string
  /** The ARN mappings are keyed by (assumed-role -> iam role). */
  readonly canonicalArn: string
  readonly accountId: string
  /** The principal ID without the session part (AIDA... or AROA...). */
  readonly userId: string
  readonly sessionName: string
  /** From the token's single, validated X-Amz-Credential. */
  readonly accessKeyId: string
  readonly stsEndpoint: string
}

export interface CallerIdentityOptions {
  /** Sent as x-k8s-aws-id; STS checks it against the signature, which binds the token to this cluster. */
  readonly clusterId: string
  /** Send the request here instead of https://<token host> (same path, query and Host header). */
  readonly stsEndpoint?: string | undefined
  readonly timeoutMs: number
}

/** Sends the checked request to STS. Transport failures become StsUnavailable (transient). */
export async function requestCallerIdentity(
  req: PresignedRequest,
  opts: CallerIdentityOptions,
  send: StsTransport,
): Promise<StsHttpResponse> {
  const origin = opts.stsEndpoint === undefined ? `https://${req.host}` : opts.stsEndpoint.replace(/\/+$/, '')
  try {
    return await send({
      origin,
      pathAndQuery: req.pathAndQuery,
      headers: { host: req.host, 'x-k8s-aws-id': opts.clusterId, accept: 'application/json' },
      timeoutMs: opts.timeoutMs,
    })
  } catch (err) {
    const reason =
      err instanceof ResponseTooLarge
        ? err.message
        : (err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError'
          ? `timed out after ${opts.timeoutMs} ms`
          : describeNetworkError(err)
    throw new StsUnavailable(`error during GET: ${reason} on ${req.stsRegion} endpoint`, { cause: err })
  }
}

const THROTTLING_CODES = new Set([
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
])

/**
 * Judges STS's answer: 200 with a well-formed identity, or a classified error. 4xx answers are
 * definitive (signature, expiry, cluster ID) except throttling; 5xx, redirects and unreadable
 * bodies are transient.
 */
export function processCallerIdentityResponse(res: StsHttpResponse, req: PresignedRequest): Identity {
  if (res.status !== 200) {
    const { code, message } = parseStsError(res.body)
    const detail = code === undefined ? '' : `: ${code}${message === undefined ? '' : `: ${message}`}`
    if ((code !== undefined && THROTTLING_CODES.has(code)) || res.status === 429) {
      throw new StsThrottled(`STS answered ${res.status}${detail} on ${req.stsRegion} endpoint`, {
        status: res.status,
      })
    }
    const text = `error from AWS (expected 200, got ${res.status}) on ${req.stsRegion} endpoint${detail}`
    if (res.status >= 400 && res.status < 500) {
      const signatureMismatch = isSignatureMismatch(res.status, code, message)
      throw new StsRejected(text, {
        status: res.status,
        ...(code === undefined ? {} : { stsCode: code }),
        ...(signatureMismatch ? { signatureMismatch } : {}),
      })
    }
    throw new StsUnavailable(text, { status: res.status })
  }
  const result = parseIdentityBody(res.body)
  let canonical
  try {
    canonical = canonicalizeArn(result.Arn)
  } catch (err) {
    if (err instanceof ArnInvalid) throw new StsRejected(err.message, { status: 200 })
    throw err
  }
  const arnAccount = result.Arn.split(':')[4]
  if (arnAccount !== result.Account) {
    throw new StsRejected(`STS returned account ${result.Account} for an ARN of account ${arnAccount}`, {
      status: 200,
    })
  }
  let userId = result.UserId
  let sessionName = ''
  if (canonical.type === 'role' || canonical.type === 'assumed-role') {
    const parts = result.UserId.split(':')
    if (parts.length !== 2) throw new StsRejected(`malformed UserID "${result.UserId}"`, { status: 200 })
    userId = parts[0]!
    sessionName = parts[1]!
  }
  return {
    arn: result.Arn,
    canonicalArn: canonical.canonical,
    accountId: result.Account,
    userId,
    sessionName,
    // Kept in the identity cache: copies, not views of the token's URL (see detached()).
    accessKeyId: detached(req.accessKeyId),
    stsEndpoint: detached(req.host),
  }
}

/**
 * STS's answer when the signature it computes differs from the token's: the token was signed with
 * another secret, or for another x-k8s-aws-id than the one sent (the only answer another cluster ID
 * could change). STS gives the same code for a signing time outside its 15 minutes ("Signature
 * expired: ...", "Signature not yet current: ..."), which no cluster ID changes.
 */
function isSignatureMismatch(status: number, code: string | undefined, message: string | undefined): boolean {
  return (
    status === 403 && code === 'SignatureDoesNotMatch' && !/^Signature (expired|not yet current)\b/i.test(message ?? '')
  )
}

interface CallerIdentityResult {
  Account: string
  Arn: string
  UserId: string
}

function parseIdentityBody(body: string): CallerIdentityResult {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch (err) {
    throw new StsUnavailable(`STS returned a body that is not JSON: ${(err as Error).message}`, {
      status: 200,
    })
  }
  const result = (json as { GetCallerIdentityResponse?: { GetCallerIdentityResult?: unknown } } | null)
    ?.GetCallerIdentityResponse?.GetCallerIdentityResult as Partial<Record<keyof CallerIdentityResult, unknown>>
  if (
    typeof result !== 'object' ||
    result === null ||
    typeof result.Arn !== 'string' ||
    typeof result.Account !== 'string' ||
    typeof result.UserId !== 'string' ||
    result.UserId === ''
  ) {
    throw new StsUnavailable('STS returned JSON without GetCallerIdentityResult {Account, Arn, UserId}', {
      status: 200,
    })
  }
  return { Account: result.Account, Arn: result.Arn, UserId: result.UserId }
}

/** Reads `Code` and `Message` from an STS error body (JSON or the XML STS sends without Accept). */
export function parseStsError(body: string): { code?: string; message?: string } {
  try {
    const json = JSON.parse(body) as { Error?: { Code?: unknown; Message?: unknown } }
    const code = typeof json.Error?.Code === 'string' ? sanitize(json.Error.Code) : undefined
    const message = typeof json.Error?.Message === 'string' ? sanitize(json.Error.Message) : undefined
    return { ...(code === undefined ? {} : { code }), ...(message === undefined ? {} : { message }) }
  } catch {
    const code = /<Code>([^<]{1,128})<\/Code>/.exec(body)?.[1]
    const message = /<Message>([^<]{1,512})<\/Message>/.exec(body)?.[1]
    return {
      ...(code === undefined ? {} : { code: sanitize(code) }),
      ...(message === undefined ? {} : { message: sanitize(message) }),
    }
  }
}

function sanitize(s: string): string {
  const printable = s.replace(/[^\x20-\x7e]/g, '?')
  return printable.length > 256 ? `${printable.slice(0, 256)}...` : printable
}

function describeNetworkError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } }
  const code = e.code ?? e.cause?.code
  const message = e.cause?.message ?? e.message ?? String(err)
  return code === undefined ? message : `${code}: ${message}`
}
