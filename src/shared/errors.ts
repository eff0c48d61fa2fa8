/**
 * Every error kube-iam-auth raises for untrusted input or failed dependencies.
 *
 * Caller misuse (a bad option passed by our own code) throws a plain TypeError instead.
 * Each class carries a literal `code`, so `switch (err.code)` narrows; server/outcome.ts and
 * cli/main.ts are the only places that turn these into HTTP statuses, metrics and exit codes.
 * Messages never contain the token or a presigned URL.
 */

export type ErrorCode =
  | 'ERR_TOKEN_INVALID'
  | 'ERR_STS_REJECTED'
  | 'ERR_STS_THROTTLED'
  | 'ERR_STS_UNAVAILABLE'
  | 'ERR_ARN_INVALID'
  | 'ERR_NOT_MAPPED'
  | 'ERR_MAPPING_FAILED'
  | 'ERR_CONFIG_INVALID'
  | 'ERR_CREDENTIALS'
  | 'ERR_CACHE'
  | 'ERR_USAGE'
  | 'ERR_RATE_LIMITED'
  | 'ERR_KUBE_API'

export abstract class KiaError extends Error {
  abstract readonly code: ErrorCode
  constructor(message: string, options?: ErrorOptions) {
    // No stack trace: these are answers to bad input or failed dependencies, thrown thousands of
    // times a second under a flood of junk tokens and never printed with a stack; capturing one
    // was the largest single cost of refusing a token.
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    try {
      super(message, options)
    } finally {
      Error.stackTraceLimit = limit
    }
    this.name = new.target.name
  }
}

/** Which local check rejected a token; stable, used in logs, metrics and tests. */
export type TokenCheck =
  | 'size'
  | 'prefix'
  | 'encoding'
  | 'url'
  | 'scheme'
  | 'host'
  | 'path'
  | 'query'
  | 'duplicate'
  | 'param'
  | 'action'
  | 'version'
  | 'algorithm'
  | 'credential'
  | 'signed-headers'
  | 'signature'
  | 'security-token'
  | 'expires'
  | 'date'
  | 'expired'
  | 'future'

/** The token failed a local check; STS was not asked. A definitive denial. */
export class TokenInvalid extends KiaError {
  readonly code = 'ERR_TOKEN_INVALID'
  readonly check: TokenCheck
  constructor(check: TokenCheck, message: string) {
    super(`input token was not properly formatted: ${message}`)
    this.check = check
  }
}

/** STS answered definitively that the request is not valid (bad signature, expired, wrong cluster). */
export class StsRejected extends KiaError {
  readonly code = 'ERR_STS_REJECTED'
  readonly status: number | undefined
  readonly stsCode: string | undefined
  /**
   * STS computed another signature than the token carries (SignatureDoesNotMatch, not about the
   * signing time): signed with another secret, or for another x-k8s-aws-id than the one sent.
   */
  readonly signatureMismatch: boolean
  readonly #text: string
  constructor(message: string, details: { status?: number; stsCode?: string; signatureMismatch?: boolean } = {}) {
    super(`sts getCallerIdentity failed: ${message}`)
    this.#text = message
    this.status = details.status
    this.stsCode = details.stsCode
    this.signatureMismatch = details.signatureMismatch ?? false
  }

  /** The same refusal, its message followed by `note`. */
  withNote(note: string): StsRejected {
    return new StsRejected(`${this.#text} ${note}`, {
      ...(this.status === undefined ? {} : { status: this.status }),
      ...(this.stsCode === undefined ? {} : { stsCode: this.stsCode }),
      signatureMismatch: this.signatureMismatch,
    })
  }
}

/** STS throttled the request: transient, worth retrying later. */
export class StsThrottled extends KiaError {
  readonly code = 'ERR_STS_THROTTLED'
  readonly status: number | undefined
  constructor(message: string, details: { status?: number } = {}) {
    super(`sts getCallerIdentity was throttled: ${message}`)
    this.status = details.status
  }
}

/** STS could not give an answer (5xx, timeout, network, unreadable response): transient. */
export class StsUnavailable extends KiaError {
  readonly code = 'ERR_STS_UNAVAILABLE'
  readonly status: number | undefined
  constructor(message: string, details: { status?: number; cause?: unknown } = {}) {
    super(
      `sts getCallerIdentity failed: ${message}`,
      details.cause === undefined ? undefined : { cause: details.cause },
    )
    this.status = details.status
  }
}

/** An ARN that cannot be parsed or canonicalized. */
export class ArnInvalid extends KiaError {
  readonly code = 'ERR_ARN_INVALID'
}

/** No mapping source maps this identity. A definitive denial. */
export class NotMapped extends KiaError {
  readonly code = 'ERR_NOT_MAPPED'
}

/** A mapping matched but could not be applied (template lookup failed, reserved prefix). */
export class MappingFailed extends KiaError {
  readonly code = 'ERR_MAPPING_FAILED'
  /** True when retrying later may succeed (for example EC2 DescribeInstances throttled). */
  readonly transient: boolean
  constructor(message: string, options: { transient?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.transient = options.transient ?? false
  }
}

/** A configuration file or mapping document is invalid; the message names the file, entry and field. */
export class ConfigInvalid extends KiaError {
  readonly code = 'ERR_CONFIG_INVALID'
  readonly problems: readonly string[]
  constructor(message: string, problems: readonly string[] = []) {
    super(problems.length === 0 ? message : `${message}:\n  - ${problems.join('\n  - ')}`)
    this.problems = problems
  }
}

/** AWS credentials could not be obtained or used on the client side. */
export class CredentialsError extends KiaError {
  readonly code = 'ERR_CREDENTIALS'
}

/** The on-disk token cache cannot be used safely. */
export class CacheError extends KiaError {
  readonly code = 'ERR_CACHE'
}

/** The command line or environment asks for something impossible. */
export class UsageError extends KiaError {
  readonly code = 'ERR_USAGE'
}

/** A caller asked for more STS verifications than its rate allows: transient, answered 429. */
export class RateLimited extends KiaError {
  readonly code = 'ERR_RATE_LIMITED'
}

/** The Kubernetes API could not be used; the message names the server and why, in one line. */
export class KubeApiFailed extends KiaError {
  readonly code = 'ERR_KUBE_API'
}

export function isKiaError(err: unknown): err is KiaError {
  return err instanceof KiaError
}
