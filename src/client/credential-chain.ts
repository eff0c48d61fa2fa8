import { CredentialsError } from '../shared/errors.js'
import type { SigningCredentials } from '../token/presign.js'
import { KIND_NAMES, loadAwsConfig, profileKind, type AwsConfig } from './aws-config.js'
import { withChildDeadline } from './child-deadline.js'
import { usesEnvironmentKeys } from './credential-environment.js'
import { explainFailure, oneLine, type FailureSite } from './credential-errors.js'
import { mfaCodeProvider, type Prompt } from './mfa-prompt.js'

type Env = Readonly<Record<string, string | undefined>>

export interface ChainInput {
  readonly env: Env
  /** The shared files, when the caller has parsed them already. */
  readonly config?: AwsConfig | undefined
  readonly prompt: Prompt
  /** How long a credential_process may run. */
  readonly processTimeoutMs: number
  readonly now: () => Date
}

export interface ResolvedCredentials {
  readonly credentials: SigningCredentials
  /** Where they came from, as messages name it: `profile "dev" (IAM Identity Center (SSO))`. */
  readonly source: string
  /**
   * Temporary credentials whose identity is decided by the environment and the files the cache
   * records (assume role, SSO, web identity): worth keeping until they expire. Credentials from the
   * environment, access keys, credential_process, containers and instance metadata are not kept.
   */
  readonly cacheable: boolean
}

/**
 * Time limits for the STS and SSO calls the SDK makes inside the chain and for -r: it sets none by
 * default, and its requestTimeout only logs a warning unless throwOnRequestTimeout is set.
 */
export const CHAIN_CLIENT_CONFIG = {
  maxAttempts: 2,
  requestHandler: { connectionTimeout: 3_000, requestTimeout: 5_000, throwOnRequestTimeout: true },
}

/**
 * Per-request timeout and attempts for the container endpoint and instance metadata:
 * AWS_METADATA_SERVICE_TIMEOUT (seconds) and AWS_METADATA_SERVICE_NUM_ATTEMPTS, as botocore and the
 * Go SDK read them. Default 0.5 s and 1 attempt, so a missing metadata service (the token request,
 * then the IMDSv1 fallback) costs about a second, never the 20 s upstream users reported.
 */
export function metadataLimits(env: Env): { timeout: number; maxRetries: number } {
  const seconds = Number(env.AWS_METADATA_SERVICE_TIMEOUT)
  const attempts = Number(env.AWS_METADATA_SERVICE_NUM_ATTEMPTS)
  return {
    timeout: seconds > 0 && seconds <= 60 ? Math.round(seconds * 1000) : 500,
    maxRetries: Number.isInteger(attempts) && attempts >= 1 && attempts <= 10 ? attempts - 1 : 0,
  }
}

/**
 * The AWS SDK's default credential chain, link by link and in its order, using the SDK's own
 * providers: environment keys (skipped when AWS_PROFILE is set), the profile (keys, assume role with
 * MFA, web identity, credential_process, SSO), web identity from the environment, the container
 * endpoint, instance metadata. Run link by link so that a failure names the source that failed and
 * its fix, instead of "Could not load credentials from any providers"; a profile that exists and has
 * credential settings is final, as it is for the SDK.
 */
export async function resolveCredentials(input: ChainInput): Promise<ResolvedCredentials> {
  const { env } = input
  if (usesEnvironmentKeys(env)) {
    const { fromEnv } = await import('@aws-sdk/credential-provider-env')
    return link(input, { source: 'environment variables AWS_ACCESS_KEY_ID' }, false, () => fromEnv()())
  }
  const config = input.config ?? (await loadAwsConfig(env))
  const limits = metadataLimits(env)
  const tried: string[] = []
  if (!env.AWS_PROFILE) {
    tried.push(
      env.AWS_ACCESS_KEY_ID || env.AWS_SECRET_ACCESS_KEY
        ? 'environment: only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set'
        : 'environment: AWS_ACCESS_KEY_ID is not set',
    )
  }

  const name = env.AWS_PROFILE || 'default'
  const profile = config.profiles[name]
  if (env.AWS_PROFILE && profile === undefined) throw missingProfile(name, config)
  const kind = profileKind(profile)
  if (kind !== 'none') {
    const site = { source: `profile "${name}" (${KIND_NAMES[kind]})`, profile: name, kind }
    const cacheable = kind === 'assume-role' || kind === 'web-identity' || kind === 'sso'
    const { fromIni } = await import('@aws-sdk/credential-provider-ini')
    return link(input, site, cacheable, () =>
      fromIni({
        profile: name,
        filepath: config.credentialsFile,
        configFilepath: config.configFile,
        mfaCodeProvider: mfaCodeProvider(name, env, input.prompt),
        clientConfig: CHAIN_CLIENT_CONFIG,
        ...limits,
      })(),
    )
  }
  tried.push(
    profile === undefined
      ? `profile "default": not in ${config.configFile} or ${config.credentialsFile}`
      : `profile "${name}": has no credential settings`,
  )

  if (env.AWS_WEB_IDENTITY_TOKEN_FILE && env.AWS_ROLE_ARN) {
    const site = { source: `web identity (AWS_ROLE_ARN ${env.AWS_ROLE_ARN})` }
    const { fromTokenFile } = await import('@aws-sdk/credential-provider-web-identity')
    return link(input, site, true, () => fromTokenFile({ clientConfig: CHAIN_CLIENT_CONFIG })())
  }
  if (env.AWS_WEB_IDENTITY_TOKEN_FILE || env.AWS_ROLE_ARN) {
    tried.push('web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN must both be set')
  }

  const containerUri = env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
    ? `http://169.254.170.2${env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI}`
    : env.AWS_CONTAINER_CREDENTIALS_FULL_URI
  if (containerUri) {
    const { fromHttp } = await import('@aws-sdk/credential-provider-http')
    return link(input, { source: `container credentials (${containerUri})` }, false, async () => {
      try {
        return await fromHttp(limits)()
      } catch (err) {
        // the SDK's older provider for the same endpoint, as its chain does; loaded only now
        const { fromContainerMetadata } = await import('@smithy/credential-provider-imds')
        return fromContainerMetadata(limits)().catch(() => Promise.reject(err))
      }
    })
  }

  const endpoint =
    env.AWS_EC2_METADATA_SERVICE_ENDPOINT ||
    (env.AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE?.toLowerCase() === 'ipv6'
      ? 'http://[fd00:ec2::254]'
      : 'http://169.254.169.254')
  if (env.AWS_EC2_METADATA_DISABLED && env.AWS_EC2_METADATA_DISABLED.toLowerCase() !== 'false') {
    tried.push('instance metadata: disabled by AWS_EC2_METADATA_DISABLED')
  } else {
    const { fromInstanceMetadata } = await import('@smithy/credential-provider-imds')
    try {
      return await link(input, { source: `instance metadata (${endpoint})` }, false, () =>
        fromInstanceMetadata({ ...limits, logger: quietLogger })(),
      )
    } catch (err) {
      tried.push(
        `instance metadata (${endpoint}): ${oneLine((err as Error).message).replace(/^instance metadata \([^)]*\): /, '')}`,
      )
    }
  }
  throw new CredentialsError(`no AWS credentials found: ${tried.join('; ')}`)
}

/** One link: the provider under the child deadline, its failure explained, its expiry checked. */
async function link(
  input: ChainInput,
  site: FailureSite,
  cacheable: boolean,
  provide: () => Promise<SigningCredentials>,
): Promise<ResolvedCredentials> {
  let credentials: SigningCredentials
  try {
    credentials = await withChildDeadline(input.processTimeoutMs, provide)
  } catch (err) {
    throw explainFailure(err, site)
  }
  const { accessKeyId, secretAccessKey, sessionToken, expiration } = credentials
  if (expiration !== undefined && expiration.getTime() <= input.now().getTime()) {
    throw new CredentialsError(`${site.source}: the credentials it gave expired at ${expiration.toISOString()}`)
  }
  return {
    credentials: { accessKeyId, secretAccessKey, sessionToken, expiration },
    source: site.source,
    cacheable: cacheable && sessionToken !== undefined && expiration !== undefined,
  }
}

function missingProfile(name: string, config: AwsConfig): CredentialsError {
  const seen = Object.keys(config.profiles).sort()
  return new CredentialsError(
    `profile "${name}" (AWS_PROFILE) does not exist in ${config.configFile} or ${config.credentialsFile}; ` +
      (seen.length === 0 ? 'no profiles were found in either file' : `profiles seen: ${seen.join(', ')}`),
  )
}

/** The SDK's instance metadata provider logs through console unless given a logger. */
const quietLogger = { debug() {}, info() {}, warn() {}, error() {} }
