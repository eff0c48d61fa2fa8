// A local IAM Identity Center (SSO) portal stand-in for tests: the GetRoleCredentials call the AWS
// SDK makes for SSO profiles (GET /federation/credentials?account_id=..&role_name=.. with the access
// token from `aws sso login` in the x-amz-sso_bearer_token header), on 127.0.0.1. The SDK is pointed
// at it with AWS_ENDPOINT_URL_SSO. The temporary credentials it hands out are minted in the STS
// stand-in, so tokens signed with them verify there as the permission set's role session.
//
// writeSsoTokenCache() writes the token cache file exactly where and how `aws sso login` leaves it.

import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FakeSts, FakeStsPrincipal } from './fake-sts.js'
import { startStandInServer, type StandInReply } from './standin-server.js'

export interface FakeSsoAssignment {
  accountId: string
  /** The permission set name, as sso_role_name. */
  roleName: string
}

export interface FakeSsoSession {
  /** The user the session belongs to: the role session name of the credentials. */
  user: string
  assignments: FakeSsoAssignment[]
}

export interface FakeSso {
  readonly url: string
  /** GetRoleCredentials requests received. */
  readonly calls: number
  /** The ARN each minted access key ID stands for. */
  readonly minted: ReadonlyMap<string, FakeStsPrincipal>
  addSession(accessToken: string, session: FakeSsoSession): void
  setFault(fault: 'none' | 'hang'): void
  close(): Promise<void>
}

/** The role IAM Identity Center creates for a permission set (`AWSReservedSSO_<set>_<suffix>`). */
export function ssoRoleName(permissionSet: string): string {
  return `AWSReservedSSO_${permissionSet}_0123456789abcdef`
}

export async function startFakeSso(opts: { sts: FakeSts; credentialLifetimeSeconds?: number }): Promise<FakeSso> {
  const sessions = new Map<string, FakeSsoSession>()
  const minted = new Map<string, FakeStsPrincipal>()
  let calls = 0
  const lifetime = opts.credentialLifetimeSeconds ?? 3600
  const error = (status: number, type: string, message: string): StandInReply => ({
    status,
    contentType: 'application/json',
    body: JSON.stringify({ __type: type, message }),
  })
  const server = await startStandInServer<'hang'>({
    respond(req) {
      calls++
      const url = new URL(req.url ?? '/', 'http://sso')
      if (req.method !== 'GET' || url.pathname !== '/federation/credentials') {
        return error(404, 'ResourceNotFoundException', `no route ${req.method} ${url.pathname}`)
      }
      const bearer = req.headers['x-amz-sso_bearer_token']
      const session = typeof bearer === 'string' ? sessions.get(bearer) : undefined
      if (session === undefined) return error(401, 'UnauthorizedException', 'Session token not found or invalid')
      const accountId = url.searchParams.get('account_id') ?? ''
      const roleName = url.searchParams.get('role_name') ?? ''
      if (!session.assignments.some((a) => a.accountId === accountId && a.roleName === roleName)) {
        return error(403, 'ForbiddenException', 'No access')
      }
      const principal = opts.sts.mintSession({
        arn: `arn:aws:sts::${accountId}:assumed-role/${ssoRoleName(roleName)}/${session.user}`,
        account: accountId,
        userId: `AROASSOFAKE${roleName.toUpperCase().slice(0, 9)}:${session.user}`,
        expiresAt: new Date(Math.floor(Date.now() / 1000) * 1000 + lifetime * 1000),
      })
      minted.set(principal.accessKeyId, principal)
      return {
        status: 200,
        contentType: 'application/json',
        body: JSON.stringify({
          roleCredentials: {
            accessKeyId: principal.accessKeyId,
            secretAccessKey: principal.secretAccessKey,
            sessionToken: principal.sessionToken,
            expiration: principal.expiresAt!.getTime(),
          },
        }),
      }
    },
  })
  return {
    url: server.url,
    get calls() {
      return calls
    },
    minted,
    addSession(accessToken, session) {
      sessions.set(accessToken, session)
    },
    setFault(fault) {
      server.setFault(fault)
    },
    close: () => server.close(),
  }
}

/**
 * The token cache file `aws sso login` writes: ~/.aws/sso/cache/<sha1 of the sso-session name, or
 * of the start URL for a legacy profile>.json. Returns its path.
 */
export function writeSsoTokenCache(
  home: string,
  id: string,
  token: { accessToken: string; expiresAt: Date; startUrl: string; region: string },
): string {
  const dir = join(home, '.aws', 'sso', 'cache')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const file = join(dir, `${createHash('sha1').update(id).digest('hex')}.json`)
  writeFileSync(
    file,
    JSON.stringify({
      startUrl: token.startUrl,
      region: token.region,
      accessToken: token.accessToken,
      expiresAt: token.expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    }),
    { mode: 0o600 },
  )
  return file
}
