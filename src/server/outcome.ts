import type { ErrorCode, KiaError } from '../shared/errors.js'

/** Upstream's values of the `result` label of authenticate_latency_seconds (typo kept for dashboards). */
export type ResultLabel =
  'success' | 'malformed_request' | 'invalid_token' | 'sts_error' | 'sts_throttling' | 'uknown_user'

export interface Outcome {
  /** HTTP status: 200 for definitive answers (kube-apiserver caches them), 429/503 for transient ones (it retries). */
  readonly status: 200 | 429 | 503 | 500
  readonly metric: ResultLabel
  readonly level: 'info' | 'warn' | 'error'
}

/**
 * The one table that turns an error code into an answer. A definitive denial is HTTP 200 with
 * `authenticated: false` and no `status.error`, as kube-apiserver's webhook contract expects; a
 * transient failure is 429 or 503, which kube-apiserver retries and never caches.
 */
const OUTCOMES = {
  ERR_TOKEN_INVALID: { status: 200, metric: 'invalid_token', level: 'info' },
  ERR_STS_REJECTED: { status: 200, metric: 'sts_error', level: 'info' },
  ERR_STS_THROTTLED: { status: 429, metric: 'sts_throttling', level: 'warn' },
  ERR_STS_UNAVAILABLE: { status: 503, metric: 'sts_error', level: 'error' },
  ERR_NOT_MAPPED: { status: 200, metric: 'uknown_user', level: 'info' },
  ERR_MAPPING_FAILED: { status: 200, metric: 'uknown_user', level: 'warn' },
  ERR_ARN_INVALID: { status: 200, metric: 'sts_error', level: 'warn' },
  ERR_CONFIG_INVALID: { status: 500, metric: 'sts_error', level: 'error' },
  ERR_CREDENTIALS: { status: 500, metric: 'sts_error', level: 'error' },
  ERR_CACHE: { status: 500, metric: 'sts_error', level: 'error' },
  ERR_USAGE: { status: 500, metric: 'sts_error', level: 'error' },
  ERR_KUBE_API: { status: 503, metric: 'sts_error', level: 'error' },
  ERR_RATE_LIMITED: { status: 429, metric: 'sts_throttling', level: 'warn' },
} as const satisfies Record<ErrorCode, Outcome>

export function outcomeOf(err: KiaError): Outcome {
  const base: Outcome = OUTCOMES[err.code]
  // A mapping that failed for a passing reason (EC2 throttled or down) must not be cached as a denial.
  if (err.code === 'ERR_MAPPING_FAILED' && (err as { transient?: boolean }).transient) {
    return { status: 503, metric: 'uknown_user', level: 'error' }
  }
  return base
}

/**
 * The error codes STS gives for a GetCallerIdentity it refuses. Any other code (a new one, or
 * whatever a misbehaving endpoint sends) is reported as `sts-other`: metric labels take values from
 * bounded sets only. The full code stays in the error message.
 */
const STS_CODES = new Set([
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'AccessDenied',
  'AccessDeniedException',
  'InvalidParameterValue',
  'InvalidAction',
  'MalformedQueryString',
  'OptInRequired',
  'RequestExpired',
  'InvalidQueryParameter',
  'UnrecognizedClientException',
])

/** A short, stable reason for logs and the reviews_total metric: the failed check or the error code. */
export function reasonOf(err: KiaError): string {
  const check = (err as { check?: string }).check
  if (check !== undefined) return check
  const stsCode = (err as { stsCode?: string }).stsCode
  if (stsCode !== undefined) return STS_CODES.has(stsCode) ? stsCode : 'sts-other'
  return err.code
}
