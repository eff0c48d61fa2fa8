import { CredentialsError } from '../shared/errors.js'
import type { SigningCredentials } from '../token/presign.js'
import { CHAIN_CLIENT_CONFIG } from './credential-chain.js'
import { oneLine, serviceCode } from './credential-errors.js'

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
 * AssumeRole (`-r`) with the base credentials, through the SDK's STS client (which honours
 * AWS_ENDPOINT_URL_STS), with bounded time. The returned credentials carry their expiration.
 */
export async function assumeRole(base: SigningCredentials, input: AssumeRoleInput): Promise<SigningCredentials> {
  const { STSClient, AssumeRoleCommand, GetCallerIdentityCommand } = await import('@aws-sdk/client-sts')
  const client = new STSClient({ region: input.region, credentials: base, ...CHAIN_CLIENT_CONFIG })
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
    const detail = `${serviceCode(err as Error)}${oneLine((err as Error).message)}`
    throw new CredentialsError(`could not assume role ${input.roleArn}: ${detail}`, { cause: err })
  } finally {
    client.destroy()
  }
}
