import type { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2'
import type { STSClient } from '@aws-sdk/client-sts'
import type { AwsCredentialIdentity } from '@smithy/types'
import { addHeaders, assumeRoleCredentials, sourceArnHeaders } from './assume-role.js'
import type { AwsClientSettings, PageFn } from './types.js'

interface Clients {
  readonly ec2: EC2Client
  readonly sts: STSClient | undefined
  readonly DescribeInstancesCommand: typeof DescribeInstancesCommand
}

/**
 * DescribeInstances through @aws-sdk/client-ec2, one page per call. The SDK is loaded and the
 * clients created on the first call (most clusters never render {{EC2PrivateDNSName}}).
 */
export function createEc2Pages(
  opts: { region: string; roleArn?: string | undefined; sourceArn?: string | undefined },
  settings: AwsClientSettings | undefined,
  now: () => number,
): { page: PageFn; destroy: () => void } {
  // Checked now, so a bad sourceARN fails at start-up rather than on the first lookup.
  const sourceHeaders = opts.sourceArn === undefined ? undefined : sourceArnHeaders(opts.sourceArn)
  let clients: Promise<Clients> | undefined
  let destroyed = false

  const getClients = (): Promise<Clients> =>
    (clients ??= (async () => {
      const { EC2Client, DescribeInstancesCommand } = await import('@aws-sdk/client-ec2')
      let sts: STSClient | undefined
      let credentials: AwsCredentialIdentity | (() => Promise<AwsCredentialIdentity>) | undefined =
        settings?.credentials
      if (opts.roleArn !== undefined) {
        const { STSClient } = await import('@aws-sdk/client-sts')
        sts = new STSClient({
          region: opts.region,
          ...(settings?.credentials === undefined ? {} : { credentials: settings.credentials }),
          ...(settings?.stsEndpoint === undefined ? {} : { endpoint: settings.stsEndpoint }),
        })
        if (sourceHeaders !== undefined) addHeaders(sts, sourceHeaders)
        credentials = assumeRoleCredentials(sts, opts.roleArn, now)
      }
      const ec2 = new EC2Client({
        region: opts.region,
        // The token bucket paces calls; SDK retries would be extra calls it does not see. A failed
        // call fails the batch (transient) and kube-apiserver's client retries the review.
        maxAttempts: 1,
        ...(credentials === undefined ? {} : { credentials }),
        ...(settings?.ec2Endpoint === undefined ? {} : { endpoint: settings.ec2Endpoint }),
      })
      if (destroyed) {
        ec2.destroy()
        sts?.destroy()
      }
      return { ec2, sts, DescribeInstancesCommand }
    })())

  const page: PageFn = async (ids, nextToken, signal) => {
    const { ec2, DescribeInstancesCommand } = await getClients()
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids, NextToken: nextToken }), {
      abortSignal: signal,
    })
    const found = new Map<string, string>()
    for (const reservation of out.Reservations ?? []) {
      for (const instance of reservation.Instances ?? []) {
        if (instance.InstanceId !== undefined && instance.PrivateDnsName) {
          found.set(instance.InstanceId, instance.PrivateDnsName)
        }
      }
    }
    return { found, nextToken: out.NextToken || undefined }
  }

  const destroy = (): void => {
    destroyed = true
    void clients?.then(
      ({ ec2, sts }) => {
        ec2.destroy()
        sts?.destroy()
      },
      () => {},
    )
  }
  return { page, destroy }
}
