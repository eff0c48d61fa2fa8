import { UsageError } from '../shared/errors.js'
import type { Identity } from '../sts/get-caller-identity.js'
import { createStsTransport } from '../sts/transport.js'
import { DEFAULT_STS_TIMEOUT_MS, verifyToken } from '../sts/verify.js'
import type { Io } from './io.js'

export interface VerifyFlags {
  readonly token?: string | undefined
  readonly clusterId?: string | undefined
  readonly output?: string | undefined
  readonly partition: string
  readonly timeoutMs?: number | undefined
}

/** Verifies a token against STS and prints who signed it. `-t -` reads the token from stdin. */
export async function runVerify(flags: VerifyFlags, io: Io, readStdin: () => Promise<string>): Promise<number> {
  if (!flags.token) throw new UsageError('token not specified')
  if (!flags.clusterId) throw new UsageError('cluster ID not specified')
  if (flags.output !== undefined && flags.output !== 'json') {
    throw new UsageError(`unknown output format "${flags.output}" (only "json" is supported)`)
  }
  const token = flags.token === '-' ? (await readStdin()).trim() : flags.token
  const transport = createStsTransport({
    maxConnections: 1,
    connectTimeoutMs: flags.timeoutMs ?? DEFAULT_STS_TIMEOUT_MS,
  })
  try {
    const identity = await verifyToken(
      token,
      {
        clusterId: flags.clusterId,
        partition: flags.partition,
        stsEndpoint: io.env.KUBE_IAM_AUTH_STS_ENDPOINT || undefined,
        timeoutMs: flags.timeoutMs,
      },
      { now: io.now, sts: transport.send },
    )
    io.stdout.write(
      flags.output === 'json' ? `${JSON.stringify(identityJson(identity), null, 4)}\n` : formatGo(identity),
    )
    return 0
  } finally {
    await transport.close()
  }
}

/** The field names upstream's `verify -o json` prints. */
export function identityJson(id: Identity): Record<string, string> {
  return {
    ARN: id.arn,
    CanonicalARN: id.canonicalArn,
    AccountID: id.accountId,
    UserID: id.userId,
    SessionName: id.sessionName,
    AccessKeyID: id.accessKeyId,
    STSEndpoint: id.stsEndpoint,
  }
}

function formatGo(id: Identity): string {
  return `&{${Object.entries(identityJson(id))
    .map(([k, v]) => `${k}:${v}`)
    .join(' ')}}\n`
}
