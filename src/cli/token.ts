import { join } from 'node:path'
import { UsageError } from '../shared/errors.js'
import { parseDuration } from '../shared/reader.js'
import { parseFlags } from './flags.js'
import {
  cachedToken,
  requestedRegion,
  requestedRegionOrigin,
  type IssuedToken,
  type TokenRequest,
} from '../client/fast-path.js'
import { unknownRegionWarning } from '../client/known-regions.js'
import { cacheDirectory, checkPrivate } from '../client/token-cache.js'
import { execCredentialVersion, formatExecCredential } from '../token/exec-credential.js'
import type { Io } from './io.js'

export const TOKEN_USAGE = `Usage: kube-iam-auth token -i CLUSTER_ID [options]

Prints a kubectl ExecCredential holding a token for the cluster.

Options:
  -i, --cluster-id ID          cluster ID the token is bound to (env KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID)
      --region REGION          region of the STS endpoint to sign for (default: AWS_REGION, profile, us-east-1)
  -r, --role ARN               assume this IAM role first (env DEFAULT_ROLE)
  -e, --external-id ID         external ID for the role assumption
  -s, --session-name NAME      session name for the role assumption
      --forward-session-name   use the caller's own session name for the role assumption
      --token-only             print only the token, not an ExecCredential
      --cache                  cache the token and temporary credentials on disk
      --process-credential-timeout DURATION
                               how long a profile's credential_process may run (default 1m; e.g. 30s)
  -c, --config FILE            read defaults from an aws-iam-authenticator config file
  -h, --help                   show this help
`

interface TokenFlags extends TokenRequest {
  readonly tokenOnly: boolean
  readonly help: boolean
  readonly configFile?: string | undefined
  /** Where `region` came from: the command line or the -c config file. */
  readonly regionOrigin?: string
}

/**
 * Flags exactly as upstream's `token` (plus its global flags, accepted so existing kubeconfigs keep
 * working), with pflag's syntax.
 */
export function parseTokenFlags(argv: readonly string[], env: Io['env']): TokenFlags {
  const values = parseFlags(argv, {
    'cluster-id': { type: 'string', short: 'i' },
    region: { type: 'string' },
    role: { type: 'string', short: 'r' },
    'external-id': { type: 'string', short: 'e' },
    'session-name': { type: 'string', short: 's' },
    'forward-session-name': { type: 'boolean' },
    'token-only': { type: 'boolean' },
    cache: { type: 'boolean' },
    'process-credential-timeout': { type: 'string' },
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
    'log-format': { type: 'string', short: 'l' },
    'log-verbosity': { type: 'string', short: 'v' },
    'feature-gates': { type: 'string' },
  })
  return {
    clusterId: values['cluster-id'] ?? env.KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID ?? '',
    region: values.region,
    roleArn: values.role ?? (env.DEFAULT_ROLE || undefined),
    externalId: values['external-id'],
    sessionName: values['session-name'],
    forwardSessionName: values['forward-session-name'] ?? false,
    tokenOnly: values['token-only'] ?? false,
    cache: values.cache ?? false,
    help: values.help ?? false,
    configFile: values.config,
    processTimeoutMs: processTimeout(values['process-credential-timeout']),
  }
}

/** --process-credential-timeout takes a Go duration (`2s`, `1m30s`, `500ms`), as upstream's proposal. */
function processTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = parseDuration(value)
  if (ms === undefined || ms <= 0 || ms > 3_600_000) {
    throw new UsageError(
      `invalid argument "${value}" for "--process-credential-timeout" flag: expected a duration such as 30s, 2m or 500ms (at most 1h)`,
    )
  }
  return Math.round(ms)
}

/** Fills what flags and environment left unset from the config file's top-level keys (as upstream). */
async function withConfigFile(flags: TokenFlags): Promise<TokenFlags> {
  if (flags.configFile === undefined) return flags
  const { readTokenDefaults } = await import('../client/token-defaults.js')
  const d = await readTokenDefaults(flags.configFile)
  return {
    ...flags,
    clusterId: flags.clusterId || d.clusterId || '',
    region: flags.region ?? d.region,
    regionOrigin: flags.region === undefined && d.region !== undefined ? `region in ${flags.configFile}` : '--region',
    roleArn: flags.roleArn ?? d.role,
    externalId: flags.externalId ?? d.externalId,
    sessionName: flags.sessionName ?? d.sessionName,
    forwardSessionName: flags.forwardSessionName || (d.forwardSessionName ?? false),
    tokenOnly: flags.tokenOnly || (d.tokenOnly ?? false),
    cache: flags.cache || (d.cache ?? false),
  }
}

export async function runToken(argv: readonly string[], io: Io): Promise<number> {
  let flags = parseTokenFlags(argv, io.env)
  if (flags.help) {
    io.stdout.write(TOKEN_USAGE)
    return 0
  }
  flags = await withConfigFile(flags)
  if (flags.clusterId === '') throw new UsageError('cluster ID not specified')
  if (flags.forwardSessionName && flags.sessionName !== undefined) {
    throw new UsageError('cannot specify both --forward-session-name and --session-name parameter')
  }
  // Validate the requested ExecCredential version before doing any work.
  const version = flags.tokenOnly ? undefined : execCredentialVersion(io.env.KUBERNETES_EXEC_INFO)
  const warn = (m: string) => io.stderr.write(`${m}\n`)
  // A mistyped region signs a token every server rejects; AWS adds regions, so it is a warning.
  const region = requestedRegion(flags.region, io.env)
  if (region !== '') {
    const warning = unknownRegionWarning(region, requestedRegionOrigin(flags.region, io.env, flags.regionOrigin))
    if (warning !== undefined) warn(warning)
  }
  // The fast path stays quiet on cache problems: the full path re-reads the entry and reports them once.
  let issued: IssuedToken | undefined = flags.cache ? cachedToken(flags, io.env, io.now(), () => {}) : undefined
  if (issued === undefined) {
    if (flags.cache) compileCacheForMiss(io.env)
    const { getToken } = await import('../client/get-token.js')
    issued = await getToken(flags, { env: io.env, now: io.now, prompt: io.prompt, warn })
  }
  io.stdout.write(
    version === undefined ? `${issued.token}\n` : formatExecCredential(version, issued.token, issued.expiresAt),
  )
  return 0
}

/**
 * Node's compile cache for what a cache miss loads (the signer, the AWS SDK's providers): about 5%
 * off a cold run with keys in the environment and 13% with a profile, measured; a hit never gets
 * here (it loads one small file and gained nothing). Kept only inside the private cache directory,
 * never in a shared one such as /tmp: a code cache is code.
 */
function compileCacheForMiss(env: Io['env']): void {
  try {
    const dir = cacheDirectory(env)
    checkPrivate(dir, 'directory')
    process.getBuiltinModule('node:module').enableCompileCache(join(dir, 'compile-cache'))
  } catch {
    // no private cache directory yet: this run goes without
  }
}
