import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { Agent, type IncomingHttpHeaders, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts'
import { Hash } from '@smithy/hash-node'
import { SignatureV4 } from '@smithy/signature-v4'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { tool } from './cli.js'
import {
  type FakeSts,
  type FakeStsPrincipal,
  type SigV4VerifyRequest,
  startFakeSts,
  verifySigV4Request,
} from './fake-sts.js'

const AWS_CLI = tool('aws')

const Sha256 = Hash.bind(null, 'sha256')

// Known-answer vector: a presigned GetCallerIdentity URL signed at 2023-04-28T00:00:00Z for
// cluster `test-cluster` with the key pair below (no session token).
const KAV_AKID = Buffer.from('QVNJQVIyVEc0NFY2QVMzWlpFN0M=', 'base64').toString()
const KAV_SECRET = Buffer.from('NEtENWNudEdjVm1MV1JkRjV3dk5SdXpOTDVReG1wNk9LVlk2RnovUQ==', 'base64').toString()
const KAV_PATH =
  '/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256' +
  '&X-Amz-Credential=ASIAR2TG44V6AS3ZZE7C%2F20230428%2Fus-west-2%2Fsts%2Faws4_request' +
  '&X-Amz-Date=20230428T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id' +
  '&X-Amz-Signature=e211dba77aba9dc44b0b6be38b8eaad092599c5157f6314444c5b9d85747f5ce'
const KAV_HOST = 'sts.us-west-2.amazonaws.com'
const KAV_HEADERS = { host: KAV_HOST, 'x-k8s-aws-id': 'test-cluster', accept: 'application/json' }
const KAV_PRINCIPAL: FakeStsPrincipal = {
  accessKeyId: KAV_AKID,
  secretAccessKey: KAV_SECRET,
  arn: 'arn:aws:iam::111122223333:user/kav',
  account: '111122223333',
  userId: 'AIDAKAVKAVKAVKAVKAV01',
}

const ALICE: FakeStsPrincipal = {
  accessKeyId: 'AKIAFAKESTSALICE0001',
  secretAccessKey: 'alice/secret+key/0123456789abcdefghijklmn',
  arn: 'arn:aws:iam::111122223333:user/alice',
  account: '111122223333',
  userId: 'AIDAFAKESTSALICE0001',
}
const TEMP: FakeStsPrincipal = {
  accessKeyId: 'ASIAFAKESTSTEMP00001',
  secretAccessKey: 'temp+secret/ABCDEFGHIJKLMNOPQRSTUVWXYZ0123',
  sessionToken: 'IQoJb3JpZ2luX2Vj+session/token+with/special==',
  arn: 'arn:aws:sts::111122223333:assumed-role/Admin/sess',
  account: '111122223333',
  userId: 'AROAFAKESTSADMIN0001:sess',
}
const ADMIN_ROLE = 'arn:aws:iam::444455556666:role/team/Admin'

const at = (iso: string): Date => new Date(iso)
const lookupOf =
  (...ps: FakeStsPrincipal[]) =>
  (akid: string): FakeStsPrincipal | undefined =>
    ps.find((p) => p.accessKeyId === akid)

const kavRequest = (over: Partial<SigV4VerifyRequest> = {}): SigV4VerifyRequest => ({
  method: 'GET',
  path: KAV_PATH,
  headers: KAV_HEADERS,
  body: '',
  ...over,
})

function expectFailure(
  result: ReturnType<typeof verifySigV4Request>,
  status: number,
  code: string,
  message?: RegExp,
): void {
  expect(result.ok).toBe(false)
  if (result.ok) return
  expect({ status: result.status, code: result.code }).toEqual({ status, code })
  if (message) expect(result.message).toMatch(message)
}

const encode = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())

/** Presigns GetCallerIdentity with the product's signer (@smithy/signature-v4). */
async function presign(
  p: FakeStsPrincipal,
  opts: { date: Date; host?: string; cluster?: string; service?: string; action?: string },
): Promise<{ path: string; headers: Record<string, string> }> {
  const host = opts.host ?? KAV_HOST
  const credentials = {
    accessKeyId: p.accessKeyId,
    secretAccessKey: p.secretAccessKey,
    ...(p.sessionToken === undefined ? {} : { sessionToken: p.sessionToken }),
  }
  const signer = new SignatureV4({
    credentials,
    region: 'us-west-2',
    service: opts.service ?? 'sts',
    sha256: Sha256,
  })
  const unsigned = {
    method: 'GET',
    protocol: 'https:',
    hostname: host,
    path: '/',
    query: { Action: opts.action ?? 'GetCallerIdentity', Version: '2011-06-15' },
    headers: { host, 'x-k8s-aws-id': opts.cluster ?? 'test-cluster' },
  }
  const signed = await signer.presign(unsigned, { expiresIn: 60, signingDate: opts.date })
  const query = Object.entries(signed.query ?? {})
    .map(([k, v]) => `${encode(k)}=${encode(String(v))}`)
    .join('&')
  return { path: `/?${query}`, headers: signed.headers }
}

/** Signs a form-encoded POST with an Authorization header, like @aws-sdk/client-sts does. */
async function signPost(p: FakeStsPrincipal, body: string, date: Date, service = 'sts'): Promise<SigV4VerifyRequest> {
  const signer = new SignatureV4({ credentials: p, region: 'eu-west-1', service, sha256: Sha256 })
  const unsigned = {
    method: 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 4321,
    path: '/',
    headers: { host: '127.0.0.1:4321', 'content-type': 'application/x-www-form-urlencoded' },
    body,
  }
  const signed = await signer.sign(unsigned, { signingDate: date })
  const headers = Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), v]))
  return { method: 'POST', path: '/', headers, body }
}

interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: string
  reusedSocket: boolean
}

function send(
  fake: FakeSts,
  path: string,
  opts: {
    method?: string
    headers?: Record<string, string>
    body?: string
    agent?: Agent
    timeoutMs?: number
  } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: fake.port,
        path,
        method: opts.method ?? 'GET',
        headers: opts.headers ?? {},
        agent: opts.agent ?? false,
        timeout: opts.timeoutMs ?? 5000,
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (body += chunk))
        res.on('end', () => {
          const { statusCode = 0, headers } = res
          resolve({ status: statusCode, headers, body, reusedSocket: req.reusedSocket })
        })
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error('client timeout')))
    req.on('error', reject)
    req.end(opts.body)
  })
}

describe('verifySigV4Request', () => {
  const lookup = lookupOf(KAV_PRINCIPAL)

  it('accepts the known-answer presigned URL within its 15 minutes', () => {
    for (const now of ['2023-04-28T00:05:00Z', '2023-04-28T00:15:00Z', '2023-04-27T23:45:00Z']) {
      const result = verifySigV4Request(kavRequest(), lookup, at(now))
      expect(result.ok, now).toBe(true)
      if (!result.ok) continue
      expect(result.principal).toBe(KAV_PRINCIPAL)
      expect(result.params.get('Action')).toBe('GetCallerIdentity')
      expect(result.params.get('Version')).toBe('2011-06-15')
    }
  })

  it('rejects the known-answer URL once expired, ignoring X-Amz-Expires', () => {
    const result = verifySigV4Request(kavRequest(), lookup, at('2023-04-28T00:15:01Z'))
    expectFailure(result, 403, 'SignatureDoesNotMatch', /^Signature expired: 20230428T000000Z/)
  })

  it('rejects the known-answer URL when signed more than 15 minutes in the future', () => {
    const result = verifySigV4Request(kavRequest(), lookup, at('2023-04-27T23:44:59Z'))
    expectFailure(result, 403, 'SignatureDoesNotMatch', /^Signature not yet current/)
  })

  it('rejects a different cluster id or Host header', () => {
    const now = at('2023-04-28T00:05:00Z')
    for (const headers of [
      { ...KAV_HEADERS, 'x-k8s-aws-id': 'other-cluster' },
      { ...KAV_HEADERS, host: 'sts.us-east-1.amazonaws.com' },
      { ...KAV_HEADERS, host: `${KAV_HOST}:443` },
    ]) {
      const result = verifySigV4Request(kavRequest({ headers }), lookup, now)
      expectFailure(result, 403, 'SignatureDoesNotMatch', /does not match the signature/)
    }
  })

  it('still accepts mixed-case header names and extra whitespace in header values', () => {
    const headers = { Host: `  ${KAV_HOST} `, 'X-K8s-Aws-Id': 'test-cluster' }
    const result = verifySigV4Request(kavRequest({ headers }), lookup, at('2023-04-28T00:05:00Z'))
    expect(result.ok).toBe(true)
  })

  it('rejects every single-byte change of the query string', () => {
    const now = at('2023-04-28T00:05:00Z')
    const start = KAV_PATH.indexOf('?') + 1
    const mutate = (c: string): string => {
      if (/[0-9]/.test(c)) return String((Number(c) + 1) % 10)
      if (/[a-y]/i.test(c)) return String.fromCharCode(c.charCodeAt(0) + 1)
      if (c === 'z' || c === 'Z') return c === 'z' ? 'a' : 'A'
      return c === '~' ? '_' : '~'
    }
    let checked = 0
    for (let i = start; i < KAV_PATH.length; i++) {
      const path = KAV_PATH.slice(0, i) + mutate(KAV_PATH[i]!) + KAV_PATH.slice(i + 1)
      const result = verifySigV4Request(kavRequest({ path }), lookup, now)
      expect(result.ok, `byte ${i} of ${path}`).toBe(false)
      checked++
    }
    expect(checked).toBeGreaterThan(300)
    // Swapping the order of parameters is not a change: the canonical query is sorted.
    const [head, query] = KAV_PATH.split('?') as [string, string]
    const reordered = `${head}?${query.split('&').reverse().join('&')}`
    expect(verifySigV4Request(kavRequest({ path: reordered }), lookup, now).ok).toBe(true)
  })

  it('rejects an unknown key, a missing signature and unsigned Host', () => {
    const now = at('2023-04-28T00:05:00Z')
    expectFailure(
      verifySigV4Request(kavRequest(), lookupOf(ALICE), now),
      403,
      'InvalidClientTokenId',
      /security token included in the request is invalid/,
    )
    expectFailure(
      verifySigV4Request(kavRequest({ path: '/?Action=GetCallerIdentity' }), lookup, now),
      400,
      'MissingAuthenticationToken',
    )
    const noHost = KAV_PATH.replace('host%3Bx-k8s-aws-id', 'x-k8s-aws-id')
    const noHostResult = verifySigV4Request(kavRequest({ path: noHost }), lookup, now)
    expectFailure(noHostResult, 400, 'IncompleteSignature', /'Host' or ':authority' must be/)
    const noSig = KAV_PATH.replace(/&X-Amz-Signature=.*$/, '')
    const noSigResult = verifySigV4Request(kavRequest({ path: noSig }), lookup, now)
    expectFailure(noSigResult, 400, 'IncompleteSignature', /'X-Amz-Signature'/)
  })

  it('accepts URLs presigned by @smithy/signature-v4, with and without session token', async () => {
    const date = at('2024-02-29T12:00:00Z')
    const lookup2 = lookupOf(ALICE, TEMP)
    for (const p of [ALICE, TEMP]) {
      const { path, headers } = await presign(p, { date })
      const result = verifySigV4Request({ method: 'GET', path, headers, body: '' }, lookup2, date)
      expect(result.ok, p.arn).toBe(true)
      if (result.ok) expect(result.principal.arn).toBe(p.arn)
    }
    // The session token travels percent-encoded in the query ('+', '/' and '=').
    const { path } = await presign(TEMP, { date })
    expect(path).toContain(`X-Amz-Security-Token=${encode(TEMP.sessionToken!)}`)
  })

  it('requires the exact session token of temporary credentials', async () => {
    const date = at('2024-02-29T12:00:00Z')
    const { path, headers } = await presign(TEMP, { date })
    const otherToken = lookupOf({ ...TEMP, sessionToken: 'another-token' })
    const noToken = lookupOf({ ...TEMP, sessionToken: undefined })
    for (const lookup2 of [otherToken, noToken]) {
      const result = verifySigV4Request({ method: 'GET', path, headers, body: '' }, lookup2, date)
      expectFailure(result, 403, 'InvalidClientTokenId')
    }
    const stripped = path.replace(/&X-Amz-Security-Token=[^&]*/, '')
    const result = verifySigV4Request({ method: 'GET', path: stripped, headers, body: '' }, lookupOf(TEMP), date)
    expectFailure(result, 403, 'InvalidClientTokenId')
  })

  it('rejects temporary credentials after their expiry with ExpiredToken', async () => {
    const date = at('2024-02-29T12:00:00Z')
    const expiring = { ...TEMP, expiresAt: at('2024-02-29T12:03:00Z') }
    const { path, headers } = await presign(expiring, { date })
    const req = { method: 'GET', path, headers, body: '' }
    expect(verifySigV4Request(req, lookupOf(expiring), at('2024-02-29T12:02:59Z')).ok).toBe(true)
    const later = verifySigV4Request(req, lookupOf(expiring), at('2024-02-29T12:03:00Z'))
    expectFailure(later, 403, 'ExpiredToken', /expired/)
  })

  it('requires the sts service in the credential scope', async () => {
    const date = at('2024-02-29T12:00:00Z')
    const { path, headers } = await presign(ALICE, { date, service: 'iam' })
    const req = { method: 'GET', path, headers, body: '' }
    const result = verifySigV4Request(req, lookupOf(ALICE), date)
    expectFailure(result, 403, 'SignatureDoesNotMatch', /correct service/)
  })

  it('verifies header-signed form POSTs, their body and their clock skew', async () => {
    const date = at('2024-02-29T12:00:00Z')
    const body = 'Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2FX'
    const req = await signPost(TEMP, body, date)
    expect(req.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=ASIA/)
    const ok = verifySigV4Request(req, lookupOf(TEMP), new Date(date.getTime() + 14 * 60_000))
    expect(ok.ok).toBe(true)
    if (ok.ok) {
      expect(ok.params.get('Action')).toBe('AssumeRole')
      expect(ok.params.get('RoleArn')).toBe('arn:aws:iam::1:role/X')
    }
    const early = verifySigV4Request(req, lookupOf(TEMP), new Date(date.getTime() - 14 * 60_000))
    expect(early.ok).toBe(true)

    const tampered = { ...req, body: body.replace('role%2FX', 'role%2FY') }
    const tamperedResult = verifySigV4Request(tampered, lookupOf(TEMP), date)
    expectFailure(tamperedResult, 400, 'XAmzContentSHA256Mismatch')
    const { ['x-amz-content-sha256']: _dropped, ...withoutHash } = tampered.headers
    expectFailure(
      verifySigV4Request({ ...tampered, headers: withoutHash }, lookupOf(TEMP), date),
      403,
      'SignatureDoesNotMatch',
    )
    const late = verifySigV4Request(req, lookupOf(TEMP), new Date(date.getTime() + 16 * 60_000))
    expectFailure(late, 403, 'SignatureDoesNotMatch', /^Signature expired/)
    const soon = verifySigV4Request(req, lookupOf(TEMP), new Date(date.getTime() - 16 * 60_000))
    expectFailure(soon, 403, 'SignatureDoesNotMatch', /^Signature not yet current/)
    const wrongSecret = lookupOf({ ...TEMP, secretAccessKey: 'x' + TEMP.secretAccessKey.slice(1) })
    expectFailure(verifySigV4Request(req, wrongSecret, date), 403, 'SignatureDoesNotMatch')
  })
})

describe('startFakeSts over sockets', () => {
  let fake: FakeSts
  let clock = at('2023-04-28T00:05:00Z')

  beforeAll(async () => {
    fake = await startFakeSts({
      now: () => clock,
      principals: [KAV_PRINCIPAL, ALICE],
      roles: [{ roleArn: ADMIN_ROLE, roleId: 'AROAFAKESTSADMIN0001' }],
    })
  })
  afterAll(async () => {
    await fake.close()
  })
  afterEach(() => {
    clock = at('2023-04-28T00:05:00Z')
    fake.setFault('none')
    fake.setLatency(0)
    fake.resetCalls()
  })

  it('listens on 127.0.0.1 only', () => {
    expect(fake.url).toBe(`http://127.0.0.1:${fake.port}`)
  })

  it('answers the known-answer token in JSON or XML, over one keep-alive connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const json = await send(fake, KAV_PATH, { headers: KAV_HEADERS, agent })
      expect(json.status).toBe(200)
      expect(json.headers['content-type']).toBe('application/json')
      const parsed = JSON.parse(json.body) as {
        GetCallerIdentityResponse: {
          GetCallerIdentityResult: Record<string, string>
          ResponseMetadata: { RequestId: string }
        }
      }
      expect(parsed.GetCallerIdentityResponse.GetCallerIdentityResult).toEqual({
        Account: '111122223333',
        Arn: 'arn:aws:iam::111122223333:user/kav',
        UserId: 'AIDAKAVKAVKAVKAVKAV01',
      })
      const requestId = parsed.GetCallerIdentityResponse.ResponseMetadata.RequestId
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/)
      expect(json.headers['x-amzn-requestid']).toBe(requestId)

      const xml = await send(fake, KAV_PATH, {
        headers: { ...KAV_HEADERS, accept: '*/*' },
        agent,
      })
      expect(xml.status).toBe(200)
      expect(xml.headers['content-type']).toBe('text/xml')
      expect(xml.body).toMatch(/^<GetCallerIdentityResponse xmlns="https:\/\/sts.amazonaws.com\/doc\/2011-06-15\/">/)
      expect(xml.body).toContain('<Arn>arn:aws:iam::111122223333:user/kav</Arn>')
      expect(xml.body).toContain('<Account>111122223333</Account>')
      expect(xml.reusedSocket).toBe(true)
    } finally {
      agent.destroy()
    }
  })

  it('answers rejections with the STS error shapes and codes', async () => {
    const other = await send(fake, KAV_PATH, {
      headers: { ...KAV_HEADERS, 'x-k8s-aws-id': 'other' },
    })
    expect(other.status).toBe(403)
    const err = JSON.parse(other.body) as { Error: Record<string, string>; RequestId: string }
    expect(err.Error).toMatchObject({ Code: 'SignatureDoesNotMatch', Type: 'Sender' })
    expect(err.RequestId).toMatch(/^[0-9a-f-]{36}$/)

    const host = await send(fake, KAV_PATH, { headers: { ...KAV_HEADERS, host: 'evil.example' } })
    expect(host.status).toBe(403)

    const tamperedPath = KAV_PATH.replace('Version=2011-06-15', 'Version=2011-06-16')
    const tampered = await send(fake, tamperedPath, { headers: KAV_HEADERS })
    expect(tampered.status).toBe(403)

    clock = at('2023-04-28T00:15:01Z')
    const expired = await send(fake, KAV_PATH, { headers: { ...KAV_HEADERS, accept: 'text/xml' } })
    expect(expired.status).toBe(403)
    expect(expired.headers['content-type']).toBe('text/xml')
    expect(expired.body).toMatch(/<Code>SignatureDoesNotMatch<\/Code><Message>Signature expired: /)
    expect(expired.body).toMatch(
      /^<ErrorResponse xmlns="https:\/\/sts.amazonaws.com\/doc\/2011-06-15\/"><Error><Type>Sender/,
    )

    clock = at('2023-04-27T23:44:59Z')
    const future = await send(fake, KAV_PATH, { headers: KAV_HEADERS })
    expect(JSON.parse(future.body).Error.Message).toMatch(/^Signature not yet current/)

    const anonymous = await send(fake, '/?Action=GetCallerIdentity&Version=2011-06-15', {
      headers: { accept: 'application/json' },
    })
    expect(anonymous.status).toBe(400)
    expect(JSON.parse(anonymous.body).Error.Code).toBe('MissingAuthenticationToken')

    clock = at('2024-02-29T12:00:00Z')
    const signed = await presign(ALICE, { date: clock, action: 'ListUsers' })
    const unknown = await send(fake, signed.path, {
      headers: { ...signed.headers, accept: 'application/json' },
    })
    expect(unknown.status).toBe(400)
    expect(JSON.parse(unknown.body).Error.Code).toBe('InvalidAction')

    expect(fake.calls).toEqual({ getCallerIdentity: 6, assumeRole: 0, rejected: 7, total: 7 })
    expect(fake.lastErrors).toHaveLength(7)
    expect(fake.lastErrors[0]).toMatch(/^SignatureDoesNotMatch: /)
  })

  it.skipIf(AWS_CLI.missing)(`accepts tokens made by the real AWS CLI${AWS_CLI.skipNote}`, async () => {
    const home = mkdtempSync(join(tmpdir(), 'fake-sts-aws-'))
    const cliUser: FakeStsPrincipal = {
      accessKeyId: 'AKIAFAKESTSCLI000001',
      secretAccessKey: 'cli/Secret+Key/For/Tests/0123456789abcdef',
      arn: 'arn:aws:iam::111122223333:user/cli',
      account: '111122223333',
      userId: 'AIDAFAKESTSCLI000001',
    }
    const cliTemp: FakeStsPrincipal = {
      accessKeyId: 'ASIAFAKESTSCLI000002',
      secretAccessKey: 'cli/Temp+Key/For/Tests/0123456789abcdefgh',
      sessionToken: 'IQoJb3JpZ2luX2Vj/cli+session/token==',
      arn: 'arn:aws:sts::111122223333:assumed-role/Cli/sess',
      account: '111122223333',
      userId: 'AROAFAKESTSCLI000002:sess',
    }
    fake.addPrincipal(cliUser)
    fake.addPrincipal(cliTemp)
    clock = new Date()
    const run = async (p: FakeStsPrincipal, cluster: string): Promise<string> => {
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '',
        HOME: home,
        AWS_ACCESS_KEY_ID: p.accessKeyId,
        AWS_SECRET_ACCESS_KEY: p.secretAccessKey,
        AWS_REGION: 'us-west-2',
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONFIG_FILE: join(home, 'no-such-config'),
        AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-such-credentials'),
      }
      if (p.sessionToken !== undefined) env.AWS_SESSION_TOKEN = p.sessionToken
      const args = ['eks', 'get-token', '--cluster-name', cluster, '--output', 'json']
      const { stdout } = await promisify(execFile)('aws', args, { env, timeout: 15_000 })
      const token = (JSON.parse(stdout) as { status: { token: string } }).status.token
      expect(token.startsWith('k8s-aws-v1.')).toBe(true)
      return Buffer.from(token.slice('k8s-aws-v1.'.length), 'base64url').toString('utf8')
    }
    try {
      const urls = await Promise.all([run(cliUser, 'cli-cluster'), run(cliTemp, 'cli-cluster-2')])
      for (const [i, p] of [cliUser, cliTemp].entries()) {
        const url = urls[i]!
        const { host } = new URL(url)
        expect(host).toMatch(/^sts\.([a-z0-9-]+\.)?amazonaws\.com$/)
        const path = url.slice(url.indexOf('/', 'https://'.length))
        expect(path).toContain('X-Amz-SignedHeaders=host%3Bx-k8s-aws-id')
        const cluster = i === 0 ? 'cli-cluster' : 'cli-cluster-2'
        const headers = { host, 'x-k8s-aws-id': cluster, accept: 'application/json' }
        const good = await send(fake, path, { headers })
        expect(good.status, good.body).toBe(200)
        const result = JSON.parse(good.body).GetCallerIdentityResponse.GetCallerIdentityResult
        expect(result).toEqual({ Account: p.account, Arn: p.arn, UserId: p.userId })
        const bad = await send(fake, path, { headers: { ...headers, 'x-k8s-aws-id': 'another' } })
        expect(bad.status).toBe(403)
        expect(JSON.parse(bad.body).Error.Code).toBe('SignatureDoesNotMatch')
      }
    } finally {
      rmSync(home, { recursive: true, force: true })
    }
  })

  describe('with @aws-sdk/client-sts', () => {
    const client = (credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }): STSClient =>
      new STSClient({ region: 'us-west-2', endpoint: fake.url, credentials, maxAttempts: 1 })

    it('assumes a role and uses the minted temporary credentials', async () => {
      clock = new Date()
      const sts = client(ALICE)
      const out = await sts.send(
        new AssumeRoleCommand({
          RoleArn: ADMIN_ROLE,
          RoleSessionName: 'alice@example.com',
          ExternalId: 'ext-123',
          DurationSeconds: 900,
        }),
      )
      sts.destroy()
      const creds = out.Credentials!
      expect(creds.AccessKeyId).toMatch(/^ASIA[A-Z0-9]{16}$/)
      expect(creds.SecretAccessKey).toHaveLength(40)
      expect(creds.SessionToken).toMatch(/^[A-Za-z0-9+/]{290,}=*$/)
      expect(creds.SessionToken).toMatch(/\+.*|\/.*/)
      const lifetime = creds.Expiration!.getTime() - clock.getTime()
      expect(lifetime).toBeGreaterThan(899_000)
      expect(lifetime).toBeLessThanOrEqual(900_000)
      expect(out.AssumedRoleUser).toEqual({
        Arn: 'arn:aws:sts::444455556666:assumed-role/Admin/alice@example.com',
        AssumedRoleId: 'AROAFAKESTSADMIN0001:alice@example.com',
      })
      expect(fake.lastAssumeRole).toEqual({
        roleArn: ADMIN_ROLE,
        sessionName: 'alice@example.com',
        externalId: 'ext-123',
      })

      const assumed = client({
        accessKeyId: creds.AccessKeyId!,
        secretAccessKey: creds.SecretAccessKey!,
        sessionToken: creds.SessionToken!,
      })
      const me = await assumed.send(new GetCallerIdentityCommand({}))
      assumed.destroy()
      expect(me.$metadata.requestId).toMatch(/^[0-9a-f-]{36}$/)
      expect(me).toMatchObject({
        Account: '444455556666',
        Arn: 'arn:aws:sts::444455556666:assumed-role/Admin/alice@example.com',
        UserId: 'AROAFAKESTSADMIN0001:alice@example.com',
      })
      expect(fake.calls).toEqual({ getCallerIdentity: 1, assumeRole: 1, rejected: 0, total: 2 })

      // Default duration (3600 s) when DurationSeconds is absent.
      const again = client(ALICE)
      const out2 = await again.send(new AssumeRoleCommand({ RoleArn: ADMIN_ROLE, RoleSessionName: 'second' }))
      expect(out2.Credentials!.Expiration!.getTime() - clock.getTime()).toBeGreaterThan(3599_000)
      expect(fake.lastAssumeRole).toEqual({ roleArn: ADMIN_ROLE, sessionName: 'second' })

      // Minted credentials expire on the fake clock. The SDK signs with the real clock, so keep
      // the fake one within the 15-minute skew window: mint 14.5 min "ago" for 15 min, then
      // move to 1 min from now.
      clock = new Date(Date.now() - 870_000)
      const out3 = await again.send(
        new AssumeRoleCommand({
          RoleArn: ADMIN_ROLE,
          RoleSessionName: 'short',
          DurationSeconds: 900,
        }),
      )
      again.destroy()
      const short = out3.Credentials!
      clock = new Date(Date.now() + 60_000)
      const stale = client({
        accessKeyId: short.AccessKeyId!,
        secretAccessKey: short.SecretAccessKey!,
        sessionToken: short.SessionToken!,
      })
      await expect(stale.send(new GetCallerIdentityCommand({}))).rejects.toMatchObject({
        name: 'ExpiredToken',
        $metadata: { httpStatusCode: 403 },
      })
      stale.destroy()
    })

    it('surfaces SignatureDoesNotMatch, AccessDenied and ValidationError to the SDK', async () => {
      clock = new Date()
      fake.addRole({
        roleArn: 'arn:aws:iam::444455556666:role/Locked',
        roleId: 'AROAFAKESTSLOCKED001',
        trusted: (caller) => caller.arn.endsWith(':user/bob'),
      })
      const wrong = client({ ...ALICE, secretAccessKey: 'not-the-secret' })
      await expect(wrong.send(new GetCallerIdentityCommand({}))).rejects.toMatchObject({
        name: 'SignatureDoesNotMatch',
        $metadata: { httpStatusCode: 403 },
      })
      wrong.destroy()

      const sts = client(ALICE)
      const assume = (RoleArn: string, RoleSessionName = 'sess'): Promise<unknown> =>
        sts.send(new AssumeRoleCommand({ RoleArn, RoleSessionName }))
      await expect(assume('arn:aws:iam::444455556666:role/Locked')).rejects.toMatchObject({
        name: 'AccessDenied',
        message: expect.stringContaining('user/alice is not authorized to perform: sts:AssumeRole'),
      })
      await expect(assume('arn:aws:iam::444455556666:role/Unknown')).rejects.toMatchObject({
        name: 'AccessDenied',
      })
      await expect(assume(ADMIN_ROLE, 'bad <session> & name')).rejects.toMatchObject({
        name: 'ValidationError',
        message: expect.stringContaining("Value 'bad <session> & name' at 'roleSessionName'"),
      })
      const unknownKey = client({ ...ALICE, accessKeyId: 'AKIAUNKNOWNUNKNOWN00' })
      await expect(unknownKey.send(new GetCallerIdentityCommand({}))).rejects.toMatchObject({
        name: 'InvalidClientTokenId',
      })
      unknownKey.destroy()
      sts.destroy()
      expect(fake.calls).toEqual({ getCallerIdentity: 2, assumeRole: 3, rejected: 5, total: 5 })
    })
  })

  describe('faults and latency', () => {
    it('throttles and fails before checking signatures', async () => {
      fake.setFault('throttle')
      const throttled = await send(fake, '/?Action=GetCallerIdentity', {
        headers: { accept: 'application/json' },
      })
      expect(throttled.status).toBe(400)
      expect(JSON.parse(throttled.body).Error).toEqual({
        Code: 'Throttling',
        Message: 'Rate exceeded',
        Type: 'Sender',
      })
      fake.setFault('error500')
      const failed = await send(fake, KAV_PATH, { headers: { ...KAV_HEADERS, accept: '*/*' } })
      expect(failed.status).toBe(500)
      expect(failed.body).toContain('<Code>InternalFailure</Code>')
      fake.setFault('none')
      expect((await send(fake, KAV_PATH, { headers: KAV_HEADERS })).status).toBe(200)
      expect(fake.calls).toEqual({ getCallerIdentity: 3, assumeRole: 0, rejected: 2, total: 3 })
    })

    it('hangs without answering, and resets connections', async () => {
      fake.setFault('hang')
      const started = Date.now()
      await expect(send(fake, KAV_PATH, { headers: KAV_HEADERS, timeoutMs: 300 })).rejects.toThrow('client timeout')
      expect(Date.now() - started).toBeGreaterThanOrEqual(290)
      fake.setFault('reset')
      await expect(send(fake, KAV_PATH, { headers: KAV_HEADERS })).rejects.toMatchObject({
        code: 'ECONNRESET',
      })
      expect(fake.calls).toMatchObject({ getCallerIdentity: 2, rejected: 0, total: 2 })
    })

    it('delays every answer by the configured latency', async () => {
      fake.setLatency(150)
      const started = Date.now()
      const [a, b] = await Promise.all([
        send(fake, KAV_PATH, { headers: KAV_HEADERS }),
        send(fake, KAV_PATH, { headers: { ...KAV_HEADERS, 'x-k8s-aws-id': 'nope' } }),
      ])
      const elapsed = Date.now() - started
      expect([a.status, b.status]).toEqual([200, 403])
      expect(elapsed).toBeGreaterThanOrEqual(145)
      expect(elapsed).toBeLessThan(1000)
    })
  })

  it('close() returns promptly and destroys hung and idle keep-alive connections', async () => {
    const own = await startFakeSts({ principals: [KAV_PRINCIPAL], latencyMs: 0 })
    const agent = new Agent({ keepAlive: true, maxSockets: 2 })
    try {
      const idle = await send(own, '/', { agent })
      expect(idle.status).toBe(400)
      const idleSocketClosed = new Promise<void>((resolve) => {
        const [socket] = Object.values(agent.freeSockets).flat()
        expect(socket).toBeDefined()
        socket!.once('close', () => resolve())
      })
      own.setFault('hang')
      const hung = send(own, KAV_PATH, { headers: KAV_HEADERS, agent, timeoutMs: 10_000 })
      const hungOutcome = hung.then(
        () => 'answered',
        (e: Error) => e.message,
      )
      while (own.calls.total < 2) await new Promise((r) => setTimeout(r, 5))
      const started = Date.now()
      await own.close()
      expect(Date.now() - started).toBeLessThan(500)
      await idleSocketClosed
      expect(await hungOutcome).toMatch(/socket hang up|ECONNRESET/)
      await own.close() // idempotent
      await expect(send(own, '/')).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    } finally {
      agent.destroy()
    }
  })
})
