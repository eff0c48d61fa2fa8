import type { STSClient } from '@aws-sdk/client-sts'
import type { AwsCredentialIdentity } from '@smithy/types'
import { MappingFailed } from '../../shared/errors.js'
import { errorMessage } from './outcome.js'

const ROLE_SESSION_SECONDS = 3600
/** Refresh assumed-role credentials this long before they expire. */
const CREDENTIALS_REFRESH_MS = 5 * 60 * 1000

/**
 * Credentials of `roleArn` for the EC2 client (ec2DescribeInstancesRoleARN): assumed on first use,
 * reused until 5 minutes before they expire, one AssumeRole at a time however many callers wait.
 */
export function assumeRoleCredentials(
  sts: STSClient,
  roleArn: string,
  now: () => number,
): () => Promise<AwsCredentialIdentity> {
  let current: AwsCredentialIdentity | undefined
  let refreshing: Promise<AwsCredentialIdentity> | undefined
  const fresh = (c: AwsCredentialIdentity | undefined): c is AwsCredentialIdentity =>
    c !== undefined && (c.expiration === undefined || c.expiration.getTime() - now() > CREDENTIALS_REFRESH_MS)
  return async () => {
    if (fresh(current)) return current
    refreshing ??= (async () => {
      const { AssumeRoleCommand } = await import('@aws-sdk/client-sts')
      try {
        const out = await sts.send(
          new AssumeRoleCommand({
            RoleArn: roleArn,
            RoleSessionName: `kube-iam-auth-${now()}`,
            DurationSeconds: ROLE_SESSION_SECONDS,
          }),
        )
        const c = out.Credentials
        if (c?.AccessKeyId === undefined || c.SecretAccessKey === undefined) {
          throw new Error('AssumeRole returned no credentials')
        }
        current = {
          accessKeyId: c.AccessKeyId,
          secretAccessKey: c.SecretAccessKey,
          ...(c.SessionToken === undefined ? {} : { sessionToken: c.SessionToken }),
          ...(c.Expiration === undefined ? {} : { expiration: c.Expiration }),
        }
        return current
      } catch (err) {
        throw new MappingFailed(`could not assume role ${roleArn} for EC2: ${errorMessage(err)}`, {
          transient: true,
          cause: err,
        })
      } finally {
        refreshing = undefined
      }
    })()
    return refreshing
  }
}

/** Upstream's confused-deputy headers for sourceARN: `x-amz-source-account` (the ARN's account) and `x-amz-source-arn`. */
export function sourceArnHeaders(sourceArn: string): Record<string, string> {
  const parts = sourceArn.split(':')
  if (parts.length < 6 || parts[0] !== 'arn' || parts[1] === '' || parts[2] === '' || parts[4] === '') {
    throw new TypeError(`sourceArn '${sourceArn}' is not a valid ARN with an account`)
  }
  return { 'x-amz-source-account': parts[4]!, 'x-amz-source-arn': sourceArn }
}

/** Adds headers to every request of `client`, before signing (so they are signed). */
export function addHeaders(client: STSClient, headers: Record<string, string>): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> } | undefined
      if (request?.headers !== undefined) Object.assign(request.headers, headers)
      return next(args)
    },
    { step: 'build', name: 'kubeIamAuthSourceHeaders' },
  )
}
