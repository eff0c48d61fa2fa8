import { CredentialsError } from '../shared/errors.js'
import type { SigningCredentials } from '../token/presign.js'
import { requestedRegion } from './fast-path.js'

type Env = Readonly<Record<string, string | undefined>>

export interface Prompt {
  /** Writes `question` to the terminal and resolves with the line typed. */
  (question: string): Promise<string>
}

/**
 * The AWS SDK's default credential chain (env, SSO, shared files, credential_process, web
 * identity, ECS/IMDS). Static env credentials are read without loading the rest of the chain; that
 * is exactly the chain's own first step, which it skips when AWS_PROFILE is set.
 */
export async function resolveBaseCredentials(env: Env, prompt: Prompt): Promise<SigningCredentials> {
  try {
    if (!env.AWS_PROFILE && env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
      const { fromEnv } = await import('@aws-sdk/credential-provider-env')
      return await fromEnv()()
    }
    const { defaultProvider } = await import('@aws-sdk/credential-provider-node')
    return await defaultProvider({
      mfaCodeProvider: (serial: string) => prompt(`Assume Role MFA token code (${serial}): `),
    })()
  } catch (err) {
    throw new CredentialsError(`could not load AWS credentials: ${(err as Error).message}`, { cause: err })
  }
}

export interface AssumeRoleInput {
  readonly roleArn: string
  readonly region: string
  readonly externalId?: string | undefined
  /** Explicit session name; when absent and forwardSessionName is set, taken from the caller's UserId. */
  readonly sessionName?: string | undefined
  readonly forwardSessionName?: boolean
  readonly now: Date
}

/**
 * AssumeRole with the base credentials, through the SDK's STS client (which honours
 * AWS_ENDPOINT_URL_STS). The returned credentials carry their expiration.
 */
export async function assumeRole(base: SigningCredentials, input: AssumeRoleInput): Promise<SigningCredentials> {
  const { STSClient, AssumeRoleCommand, GetCallerIdentityCommand } = await import('@aws-sdk/client-sts')
  const client = new STSClient({ region: input.region, credentials: base, maxAttempts: 2 })
  try {
    let sessionName = input.sessionName
    if (sessionName === undefined && input.forwardSessionName) {
      const me = await client.send(new GetCallerIdentityCommand({}))
      const parts = (me.UserId ?? '').split(':')
      if (parts.length === 2 && parts[1] !== '') sessionName = parts[1]
    }
    const out = await client.send(
      new AssumeRoleCommand({
        RoleArn: input.roleArn,
        RoleSessionName: sessionName ?? `kube-iam-auth-${input.now.getTime()}`,
        ...(input.externalId === undefined ? {} : { ExternalId: input.externalId }),
      }),
    )
    const c = out.Credentials
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken) {
      throw new CredentialsError('AssumeRole returned no credentials')
    }
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration,
    }
  } catch (err) {
    if (err instanceof CredentialsError) throw err
    throw new CredentialsError(`could not assume role ${input.roleArn}: ${(err as Error).message}`, { cause: err })
  } finally {
    client.destroy()
  }
}

/**
 * The region to sign for: --region, AWS_REGION, AWS_DEFAULT_REGION, the profile's `region`, then
 * us-east-1. Instance metadata is not asked: it would stall every kubectl call made off EC2.
 */
export async function resolveRegion(flag: string | undefined, env: Env): Promise<string> {
  const explicit = requestedRegion(flag, env)
  if (explicit) return explicit
  const { loadConfig, NODE_REGION_CONFIG_OPTIONS, NODE_REGION_CONFIG_FILE_OPTIONS } =
    await import('@smithy/core/config')
  try {
    const region = await loadConfig(NODE_REGION_CONFIG_OPTIONS, NODE_REGION_CONFIG_FILE_OPTIONS)()
    if (region) return region
  } catch {
    // no region configured anywhere
  }
  return 'us-east-1'
}
