import { CredentialsError } from '../shared/errors.js'
import type { ProfileKind } from './aws-config.js'
import { ChildTimedOut } from './child-deadline.js'

/** Where the chain was looking when it failed, for the message. */
export interface FailureSite {
  /** e.g. `profile "dev" (IAM Identity Center (SSO))`, `web identity (AWS_WEB_IDENTITY_TOKEN_FILE)` */
  readonly source: string
  readonly profile?: string | undefined
  readonly kind?: ProfileKind | undefined
}

const MAX_DETAIL = 300

/**
 * The first line of a message, without control characters, the SDK's wrapper class names and
 * logger prefixes, clipped.
 */
export function oneLine(text: string): string {
  const first = text.split(/\r?\n/).find((l) => l.trim() !== '') ?? ''
  const timeout = /exceeded the configured (\d+) ms requestTimeout/.exec(first)
  if (timeout !== null) return `no answer within ${Number(timeout[1]) / 1000} s`
  const clean = first
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f]/g, ' ')
    .replace(/^(\w*Error: )+/, '')
    .replace(/^@[\w/-]+ - \[\w+\] /, '')
    .trim()
  return clean.length > MAX_DETAIL ? `${clean.slice(0, MAX_DETAIL)}...` : clean
}

/**
 * One line that names the credential source, what went wrong and, where there is one, the fix. The
 * AWS SDK's own messages are kept as the detail (first line only); they never contain secrets.
 */
export function explainFailure(err: unknown, site: FailureSite): CredentialsError {
  if (err instanceof CredentialsError) return err
  const e = err as { name?: string; message?: string; code?: string }
  const message = oneLine(e?.message ?? String(err))
  const profileFlag = site.profile === undefined ? '' : ` --profile ${site.profile}`
  if (err instanceof ChildTimedOut) {
    return new CredentialsError(
      `${site.source}: credential_process did not finish within ${formatMs(err.timeoutMs)} and was stopped ` +
        `(raise --process-credential-timeout if it needs longer)`,
    )
  }
  if (site.kind === 'sso' && ssoSessionGone(e, message)) {
    return new CredentialsError(
      `${site.source}: the IAM Identity Center session has expired or was never started; run: aws sso login${profileFlag}`,
    )
  }
  if (site.kind === 'process') {
    const detail = processFailure(message, e?.message ?? '')
    if (detail !== undefined)
      return new CredentialsError(`${site.source}: credential_process ${detail}`, { cause: err })
  }
  if (e?.code === 'ENOENT' && /open '([^']+)'/.test(e.message ?? '')) {
    return new CredentialsError(`${site.source}: ${/open '([^']+)'/.exec(e.message!)![1]} does not exist`, {
      cause: err,
    })
  }
  return new CredentialsError(`${site.source}: ${serviceCode(e)}${message || 'failed'}`, { cause: err })
}

/** `AccessDenied: ` for a service's error (the SDK names the class after the code); '' for JS errors. */
export function serviceCode(e: { name?: string; message?: string } | undefined): string {
  const name = e?.name
  if (!name || /Error$/.test(name) || !/^[A-Z]\w+$/.test(name) || (e?.message ?? '').startsWith(name)) return ''
  return `${name}: `
}

function ssoSessionGone(e: { name?: string }, message: string): boolean {
  return (
    e?.name === 'UnauthorizedException' ||
    /UnauthorizedException|expired|not found or (is )?invalid|is invalid|Value not present|aws sso login/i.test(message)
  )
}

/** What the SDK's credential_process failures mean, in our words. */
function processFailure(message: string, full: string): string | undefined {
  if (/returned invalid JSON/.test(message)) {
    return 'printed something that is not JSON (expected {"Version": 1, "AccessKeyId": ..., "SecretAccessKey": ...})'
  }
  if (/did not return Version 1/.test(message)) return 'printed JSON without "Version": 1'
  if (/returned invalid credentials/.test(message)) return 'printed JSON without AccessKeyId and SecretAccessKey'
  if (/returned expired credentials/.test(message)) return 'printed credentials that have already expired'
  if (/^Command failed/.test(message)) {
    // the SDK's message is "Command failed: <command>\n<its stderr>": the command is not repeated
    // (it may carry secrets), the program's last word is
    const said = full
      .split(/\r?\n/)
      .slice(1)
      .filter((l) => l.trim() !== '')
      .at(-1)
    return `exited with an error${said === undefined ? '' : `: ${oneLine(said)}`}`
  }
  if (/maxBuffer/.test(message)) return 'printed more than 1 MiB'
  return undefined
}

export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}
