// Local stand-ins for the two metadata endpoints the AWS SDK's chain asks last, on 127.0.0.1:
// - the container credentials endpoint (ECS task roles, EKS Pod Identity): GET on the URL in
//   AWS_CONTAINER_CREDENTIALS_FULL_URI with the Authorization header from
//   AWS_CONTAINER_AUTHORIZATION_TOKEN or the file in AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE;
// - EC2 instance metadata, IMDSv2 only (AWS_EC2_METADATA_SERVICE_ENDPOINT): PUT /latest/api/token
//   for a session token, then GET .../iam/security-credentials/ and .../<role> with it. Requests
//   without a valid session token get 401, as on an instance that requires IMDSv2.
// The credentials they hand out are minted in the STS stand-in, so tokens signed with them verify
// there. The `hang` fault answers nothing (a metadata service that is not there).

import { randomBytes } from 'node:crypto'
import type { FakeSts, FakeStsPrincipal } from './fake-sts.js'
import { startStandInServer, type StandInReply } from './standin-server.js'

export interface MetadataIdentity {
  /** The role the credentials are for, e.g. arn:aws:iam::111122223333:role/node */
  roleArn: string
  /** The role session name STS would report. */
  sessionName: string
}

export interface FakeMetadata {
  readonly url: string
  /** Requests answered or refused, by kind. */
  readonly calls: { token: number; credentials: number; unauthorized: number }
  setFault(fault: 'none' | 'hang'): void
  close(): Promise<void>
}

const json = (status: number, body: unknown): StandInReply => ({
  status,
  contentType: 'application/json',
  body: JSON.stringify(body),
})
const text = (status: number, body: string): StandInReply => ({ status, contentType: 'text/plain', body })

function mint(sts: FakeSts, who: MetadataIdentity, lifetimeSeconds: number): FakeStsPrincipal {
  const [, partition = 'aws', , , account = '000000000000', resource = 'role/r'] = who.roleArn.split(':')
  const roleName = resource.split('/').pop()!
  return sts.mintSession({
    arn: `arn:${partition}:sts::${account}:assumed-role/${roleName}/${who.sessionName}`,
    account,
    userId: `AROAFAKEMETADATA0001:${who.sessionName}`,
    expiresAt: new Date(Math.floor(Date.now() / 1000) * 1000 + lifetimeSeconds * 1000),
  })
}

const imdsCredentials = (p: FakeStsPrincipal) => ({
  Code: 'Success',
  LastUpdated: new Date().toISOString(),
  Type: 'AWS-HMAC',
  AccessKeyId: p.accessKeyId,
  SecretAccessKey: p.secretAccessKey,
  Token: p.sessionToken,
  Expiration: p.expiresAt!.toISOString().replace(/\.\d{3}Z$/, 'Z'),
})

/** The container credentials endpoint: one identity per authorization token, at path `/v1/credentials`. */
export async function startFakeContainerCredentials(opts: {
  sts: FakeSts
  tokens: Record<string, MetadataIdentity>
  credentialLifetimeSeconds?: number
}): Promise<FakeMetadata> {
  const calls = { token: 0, credentials: 0, unauthorized: 0 }
  const server = await startStandInServer<'hang'>({
    respond(req) {
      if (req.method !== 'GET' || req.url !== '/v1/credentials') return text(404, 'not found')
      const who = opts.tokens[req.headers.authorization ?? '']
      if (who === undefined) {
        calls.unauthorized++
        return json(401, { Code: 'AccessDenied', Message: 'invalid authorization token' })
      }
      calls.credentials++
      return json(200, imdsCredentials(mint(opts.sts, who, opts.credentialLifetimeSeconds ?? 3600)))
    },
  })
  return {
    url: `${server.url}/v1/credentials`,
    calls,
    setFault: (f) => server.setFault(f),
    close: () => server.close(),
  }
}

/** EC2 instance metadata with IMDSv2 required and an instance profile role. */
export async function startFakeImds(opts: {
  sts: FakeSts
  identity: MetadataIdentity
  credentialLifetimeSeconds?: number
}): Promise<FakeMetadata> {
  const calls = { token: 0, credentials: 0, unauthorized: 0 }
  const sessionTokens = new Set<string>()
  const roleName = opts.identity.roleArn.split('/').pop()!
  const base = '/latest/meta-data/iam/security-credentials/'
  const server = await startStandInServer<'hang'>({
    respond(req) {
      if (req.method === 'PUT' && req.url === '/latest/api/token') {
        const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds'])
        if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return text(400, 'bad ttl')
        calls.token++
        const t = randomBytes(24).toString('base64')
        sessionTokens.add(t)
        return text(200, t)
      }
      const given = req.headers['x-aws-ec2-metadata-token']
      if (typeof given !== 'string' || !sessionTokens.has(given)) {
        calls.unauthorized++
        return text(401, 'Unauthorized')
      }
      if (req.method === 'GET' && req.url === base) return text(200, roleName)
      if (req.method === 'GET' && req.url === `${base}${roleName}`) {
        calls.credentials++
        return json(200, imdsCredentials(mint(opts.sts, opts.identity, opts.credentialLifetimeSeconds ?? 3600)))
      }
      return text(404, 'Not Found')
    },
  })
  return { url: server.url, calls, setFault: (f) => server.setFault(f), close: () => server.close() }
}
