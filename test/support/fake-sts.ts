// A local AWS STS stand-in for tests and benchmarks.
//
// It listens on 127.0.0.1 (plain HTTP, random port) and really verifies AWS Signature Version 4,
// with an implementation written from the SigV4 specification on top of node:crypto only. It is
// deliberately independent from @smithy/signature-v4, the signer the product uses, so that a bug
// shared by the product and its tests cannot go unnoticed.
//
// Supported requests, like real STS:
// - query-presigned GET (X-Amz-* query parameters), e.g. GetCallerIdentity tokens made by
//   aws-iam-authenticator, `aws eks get-token` or kube-iam-auth;
// - header-signed (Authorization header) requests, e.g. form-encoded POSTs by @aws-sdk/client-sts.
// Actions: GetCallerIdentity, AssumeRole (with MFA when the role asks for it) and
// AssumeRoleWithWebIdentity (unsigned, like real STS; the web identity token must be one the role
// trusts). mintSession() registers temporary credentials handed out by other stand-ins (SSO portal,
// container endpoint, instance metadata), so tokens they sign verify here.

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { startStandInServer, type ConnectionFault, type StandInReply } from './standin-server.js'

export interface FakeStsPrincipal {
  accessKeyId: string
  secretAccessKey: string
  /** Required on requests when set (temporary credentials). */
  sessionToken?: string
  /** Requests signed or verified at or after this instant are rejected with ExpiredToken. */
  expiresAt?: Date
  /** e.g. arn:aws:iam::111122223333:user/alice or arn:aws:sts::111122223333:assumed-role/A/s */
  arn: string
  account: string
  /** e.g. AIDA... for users, AROA...:session for assumed roles. */
  userId: string
}

export interface FakeStsRole {
  roleArn: string
  /** AROA... */
  roleId: string
  /** Trust policy; default: any known principal may assume the role. */
  trusted?: (caller: FakeStsPrincipal) => boolean
  /** AssumeRole must carry this SerialNumber and TokenCode (the role's policy requires MFA). */
  mfa?: { serialNumber: string; code: string }
  /** Web identity tokens (exact strings) this role trusts for AssumeRoleWithWebIdentity. */
  webIdentityTokens?: string[]
}

/** What a session minted by mintSession() is made from. */
export interface FakeStsSessionSpec {
  arn: string
  account: string
  userId: string
  expiresAt: Date
}

export type FakeStsFault = 'none' | 'error500' | 'throttle' | 'hang' | 'reset'

export interface FakeStsCalls {
  getCallerIdentity: number
  assumeRole: number
  rejected: number
  total: number
}

export interface FakeStsAssumeRoleCall {
  roleArn: string
  sessionName: string
  externalId?: string
  serialNumber?: string
}

export interface FakeSts {
  /** http://127.0.0.1:<port> */
  readonly url: string
  readonly port: number
  /** A fresh snapshot of the counters. */
  readonly calls: FakeStsCalls
  /** The last 50 rejection messages (`Code: message`), oldest first. */
  readonly lastErrors: string[]
  /** The last authenticated AssumeRole request (recorded even when it is then denied). */
  readonly lastAssumeRole?: FakeStsAssumeRoleCall
  /** AssumeRoleWithWebIdentity requests received (also counted in calls.total). */
  readonly webIdentityCalls: number
  addPrincipal(p: FakeStsPrincipal): void
  /** New temporary credentials (ASIA key, session token) for the given identity, known from now on. */
  mintSession(spec: FakeStsSessionSpec): FakeStsPrincipal
  /** The principal an access key ID belongs to (minted sessions included). */
  lookup(accessKeyId: string): FakeStsPrincipal | undefined
  addRole(r: FakeStsRole): void
  setFault(fault: FakeStsFault): void
  /** Delay before answering every request. */
  setLatency(ms: number): void
  resetCalls(): void
  /** Stops listening and destroys every open connection, including hung and keep-alive ones. */
  close(): Promise<void>
}

export interface SigV4VerifyRequest {
  method: string
  /** Path and raw query exactly as received. */
  path: string
  headers: Record<string, string | string[] | undefined>
  body: string
}

export type SigV4VerifyResult =
  | { ok: true; principal: FakeStsPrincipal; params: URLSearchParams }
  | { ok: false; status: number; code: string; message: string }

type Failure = Extract<SigV4VerifyResult, { ok: false }>
type Headers = SigV4VerifyRequest['headers']

const ALGORITHM = 'AWS4-HMAC-SHA256'
const SERVICE = 'sts'
const STS_VERSION = '2011-06-15'
const XMLNS = 'https://sts.amazonaws.com/doc/2011-06-15/'
const MAX_SKEW_MS = 15 * 60 * 1000
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
const AMZ_DATE_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/
const SESSION_NAME_RE = /^[\w+=,.@-]{2,64}$/

const MSG_INVALID_TOKEN = 'The security token included in the request is invalid.'
const MSG_EXPIRED_TOKEN = 'The security token included in the request is expired'
const MSG_BAD_SIGNATURE =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. ' +
  'Consult the service documentation for details.'

const fail = (status: number, code: string, message: string): Failure => ({
  ok: false,
  status,
  code,
  message,
})
const incomplete = (message: string): Failure => fail(400, 'IncompleteSignature', message)
const mismatch = (message: string): Failure => fail(403, 'SignatureDoesNotMatch', message)

/** SigV4 URI encoding: unreserved A-Za-z0-9-_.~ literal, everything else as uppercase %XX. */
function uriEncode(s: string): string {
  const hex = (c: string): string => '%' + c.charCodeAt(0).toString(16).toUpperCase()
  return encodeURIComponent(s).replace(/[!'()*]/g, hex)
}

/** Decodes one query component; '+' means a space, as in form encoding. Throws on bad escapes. */
function queryDecode(s: string): string {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s
  return decodeURIComponent(s.replace(/\+/g, ' '))
}

function parseQuery(rawQuery: string): [string, string][] {
  const pairs: [string, string][] = []
  if (rawQuery === '') return pairs
  for (const part of rawQuery.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const key = eq < 0 ? part : part.slice(0, eq)
    const value = eq < 0 ? '' : part.slice(eq + 1)
    pairs.push([queryDecode(key), queryDecode(value)])
  }
  return pairs
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** Every parameter but `skipKey`, keys and values URI-encoded, sorted by key then value. */
function canonicalQuery(pairs: [string, string][], skipKey?: string): string {
  const encoded: [string, string][] = []
  for (const [k, v] of pairs) if (k !== skipKey) encoded.push([uriEncode(k), uriEncode(v)])
  encoded.sort((a, b) => compare(a[0], b[0]) || compare(a[1], b[1]))
  return encoded.map(([k, v]) => `${k}=${v}`).join('&')
}

/** Canonical URI for non-S3 services: normalized path, each raw segment URI-encoded (again). */
function canonicalUri(rawPath: string): string {
  if (rawPath === '/' || rawPath === '') return '/'
  const segments: string[] = []
  for (const seg of rawPath.split('/')) {
    if (seg === '' || seg === '.') continue
    if (seg === '..') segments.pop()
    else segments.push(uriEncode(seg))
  }
  const trailing = segments.length > 0 && rawPath.endsWith('/') ? '/' : ''
  return '/' + segments.join('/') + trailing
}

/** Header lookup by lower-case name (Node already lower-cases; other callers may not). */
function headerValue(headers: Headers, name: string): string | undefined {
  let v = headers[name]
  if (v === undefined) {
    for (const key of Object.keys(headers)) {
      if (key.toLowerCase() === name) {
        v = headers[key]
        break
      }
    }
  }
  if (v === undefined) return undefined
  return Array.isArray(v) ? v.join(',') : v
}

function isFormEncoded(headers: Headers): boolean {
  const contentType = headerValue(headers, 'content-type')
  return contentType?.toLowerCase().includes('application/x-www-form-urlencoded') ?? false
}

function parseAmzDate(s: string): Date | undefined {
  const m = AMZ_DATE_RE.exec(s)
  if (!m) return undefined
  const [y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0] = m.slice(1).map(Number)
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, se))
  // Reject impossible dates such as 20230231 rather than letting Date.UTC roll them over.
  const exact =
    date.getUTCMonth() === mo - 1 &&
    date.getUTCDate() === d &&
    date.getUTCHours() === h &&
    date.getUTCMinutes() === mi &&
    date.getUTCSeconds() === se
  return exact ? date : undefined
}

function toAmzDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '')
}

const sha256Hex = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex')

const signingKeyCache = new Map<string, Buffer>()

function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const cacheKey = `${secret}\n${date}\n${region}\n${service}`
  let key = signingKeyCache.get(cacheKey)
  if (key === undefined) {
    const kDate = createHmac('sha256', 'AWS4' + secret)
      .update(date, 'utf8')
      .digest()
    const kRegion = createHmac('sha256', kDate).update(region, 'utf8').digest()
    const kService = createHmac('sha256', kRegion).update(service, 'utf8').digest()
    key = createHmac('sha256', kService).update('aws4_request', 'utf8').digest()
    if (signingKeyCache.size >= 1024) signingKeyCache.clear()
    signingKeyCache.set(cacheKey, key)
  }
  return key
}

function constantTimeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'utf8')
  const bb = Buffer.from(b, 'utf8')
  if (ba.length !== bb.length) {
    timingSafeEqual(ba, ba)
    return false
  }
  return timingSafeEqual(ba, bb)
}

interface AuthParts {
  credential: string
  signedHeaders: string
  signature: string
  amzDate: string
  securityToken: string | undefined
}

/** `AWS4-HMAC-SHA256 Credential=<scope>, SignedHeaders=<a;b>, Signature=<hex>` */
function parseAuthorizationHeader(headers: Headers, auth: string): AuthParts | Failure {
  const space = auth.indexOf(' ')
  const algorithm = space < 0 ? auth : auth.slice(0, space)
  if (algorithm !== ALGORITHM) return incomplete(`Unsupported AWS 'algorithm': '${algorithm}'.`)
  const fields = new Map<string, string>()
  for (const part of auth.slice(space + 1).split(',')) {
    const eq = part.indexOf('=')
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((f) => !fields.get(f))
  if (missing.length > 0) {
    const names = missing.map((f) => `'${f}'`).join(', ')
    return incomplete(`Authorization header requires ${names} parameter(s).`)
  }
  const amzDate = headerValue(headers, 'x-amz-date')
  if (amzDate === undefined) {
    return incomplete("Authorization header requires existence of a 'X-Amz-Date' header.")
  }
  return {
    credential: fields.get('Credential')!,
    signedHeaders: fields.get('SignedHeaders')!,
    signature: fields.get('Signature')!,
    amzDate,
    securityToken: headerValue(headers, 'x-amz-security-token'),
  }
}

function parsePresignedQuery(query: Map<string, string>): AuthParts | Failure {
  const algorithm = query.get('X-Amz-Algorithm')
  if (algorithm !== ALGORITHM) return incomplete(`Unsupported AWS 'algorithm': '${algorithm}'.`)
  const required = ['X-Amz-Credential', 'X-Amz-Date', 'X-Amz-SignedHeaders', 'X-Amz-Signature']
  const missing = required.filter((k) => !query.get(k))
  if (missing.length > 0) {
    const names = missing.map((m) => `'${m}'`).join(', ')
    return incomplete(`AWS query-string parameters must include ${names}. Re-examine the query-string parameters.`)
  }
  return {
    credential: query.get('X-Amz-Credential')!,
    signedHeaders: query.get('X-Amz-SignedHeaders')!,
    signature: query.get('X-Amz-Signature')!,
    amzDate: query.get('X-Amz-Date')!,
    securityToken: query.get('X-Amz-Security-Token'),
  }
}

/**
 * Verifies an AWS SigV4 signed STS request, query-presigned or with an Authorization header, the
 * way STS does. No sockets, no clock: `now` is the verification instant. `params` holds the query
 * parameters, plus the form body's for header-signed form-encoded requests. `service` is the
 * credential scope's service the request must be signed for (other fakes pass e.g. `ec2`).
 */
export function verifySigV4Request(
  req: SigV4VerifyRequest,
  lookup: (akid: string) => FakeStsPrincipal | undefined,
  now: Date,
  service: string = SERVICE,
): SigV4VerifyResult {
  const q = req.path.indexOf('?')
  const rawPath = q < 0 ? req.path : req.path.slice(0, q)
  const rawQuery = q < 0 ? '' : req.path.slice(q + 1)

  let queryPairs: [string, string][]
  try {
    queryPairs = parseQuery(rawQuery)
  } catch {
    return fail(400, 'MalformedQueryString', 'The query string contains an invalid escape.')
  }
  // First occurrence wins for the auth parameters; all occurrences are canonicalized.
  const query = new Map<string, string>()
  for (const [k, v] of queryPairs) if (!query.has(k)) query.set(k, v)

  const authorization = headerValue(req.headers, 'authorization')
  const presigned = query.has('X-Amz-Algorithm')
  if (authorization !== undefined && presigned) {
    return fail(
      400,
      'InvalidRequest',
      'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the ' +
        'Authorization header should be specified.',
    )
  }
  if (authorization === undefined && !presigned) {
    return fail(400, 'MissingAuthenticationToken', 'Request is missing Authentication Token')
  }

  const auth = presigned ? parsePresignedQuery(query) : parseAuthorizationHeader(req.headers, authorization!)
  if ('ok' in auth) return auth

  // Credential scope: <akid>/<yyyymmdd>/<region>/<service>/aws4_request
  const scopeParts = auth.credential.split('/')
  if (scopeParts.length !== 5) {
    return incomplete(
      'Credential must have exactly 5 slash-delimited elements, e.g. ' +
        `keyid/date/region/service/term, got '${auth.credential}'`,
    )
  }
  const [akid, scopeDate, region, scopeService, terminator] = scopeParts as [string, string, string, string, string]
  const signedAt = parseAmzDate(auth.amzDate)
  if (signedAt === undefined) {
    return incomplete(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'", got '${auth.amzDate}'`)
  }
  if (scopeDate !== auth.amzDate.slice(0, 8)) {
    return mismatch(
      'Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from ' +
        `HTTP: '${scopeDate}' != '${auth.amzDate.slice(0, 8)}'`,
    )
  }
  if (region === '') return mismatch('Credential should be scoped to a valid region.')
  if (scopeService !== service) {
    return mismatch(`Credential should be scoped to correct service: '${service}'.`)
  }
  if (terminator !== 'aws4_request') {
    return mismatch(`Credential should be scoped with a valid terminator: 'aws4_request', not '${terminator}'.`)
  }
  const signedHeaderNames = auth.signedHeaders.split(';')
  if (!signedHeaderNames.includes('host')) {
    return incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
  }

  const principal = lookup(akid)
  if (principal === undefined) return fail(403, 'InvalidClientTokenId', MSG_INVALID_TOKEN)
  const expectedToken = principal.sessionToken
  const givenToken = auth.securityToken
  if (expectedToken !== undefined || givenToken !== undefined) {
    if (expectedToken === undefined || givenToken === undefined || !constantTimeEqual(expectedToken, givenToken)) {
      return fail(403, 'InvalidClientTokenId', MSG_INVALID_TOKEN)
    }
  }

  const skew = now.getTime() - signedAt.getTime()
  if (skew > MAX_SKEW_MS) {
    const limit = toAmzDate(new Date(now.getTime() - MAX_SKEW_MS))
    return mismatch(
      `Signature expired: ${auth.amzDate} is now earlier than ${limit} ` + `(${toAmzDate(now)} - 15 min.)`,
    )
  }
  if (skew < -MAX_SKEW_MS) {
    const limit = toAmzDate(new Date(now.getTime() + MAX_SKEW_MS))
    return mismatch(
      `Signature not yet current: ${auth.amzDate} is still later than ${limit} ` + `(${toAmzDate(now)} + 15 min.)`,
    )
  }

  const sortedNames = [...signedHeaderNames].sort()
  let canonicalHeaders = ''
  for (const name of sortedNames) {
    const valid = name !== '' && name === name.toLowerCase()
    const value = valid ? headerValue(req.headers, name) : undefined
    if (value === undefined) {
      return mismatch(`${MSG_BAD_SIGNATURE} (Signed header '${name}' is missing from the request.)`)
    }
    canonicalHeaders += `${name}:${value.trim().replace(/\s+/g, ' ')}\n`
  }

  let payloadHash = EMPTY_SHA256
  if (!presigned) {
    payloadHash = req.body === '' ? EMPTY_SHA256 : sha256Hex(req.body)
    const declared = headerValue(req.headers, 'x-amz-content-sha256')
    if (declared !== undefined && declared !== payloadHash) {
      return fail(
        400,
        'XAmzContentSHA256Mismatch',
        'The provided x-amz-content-sha256 header does not match what was computed.',
      )
    }
  }

  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalUri(rawPath),
    canonicalQuery(queryPairs, presigned ? 'X-Amz-Signature' : undefined),
    canonicalHeaders,
    sortedNames.join(';'),
    payloadHash,
  ].join('\n')
  const scope = `${scopeDate}/${region}/${service}/aws4_request`
  const stringToSign = `${ALGORITHM}\n${auth.amzDate}\n${scope}\n${sha256Hex(canonicalRequest)}`
  const key = signingKey(principal.secretAccessKey, scopeDate, region, service)
  const expected = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex')
  if (!constantTimeEqual(expected, auth.signature)) return mismatch(MSG_BAD_SIGNATURE)

  if (principal.expiresAt !== undefined) {
    const expiry = principal.expiresAt.getTime()
    if (now.getTime() >= expiry || signedAt.getTime() >= expiry) {
      return fail(403, 'ExpiredToken', MSG_EXPIRED_TOKEN)
    }
  }

  const params = new URLSearchParams()
  for (const [k, v] of queryPairs) params.append(k, v)
  if (!presigned && req.body !== '' && isFormEncoded(req.headers)) {
    for (const [k, v] of new URLSearchParams(req.body)) params.append(k, v)
  }
  return { ok: true, principal, params }
}

const XML_ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
}

function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => XML_ENTITIES[c]!)
}

const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
const BASE64_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

function randomFrom(alphabet: string, length: number): string {
  const bytes = randomBytes(length)
  let out = ''
  for (let i = 0; i < length; i++) out += alphabet[bytes[i]! % alphabet.length]
  return out
}

/** 316 base64 characters, always containing '+' and '/', ending in '='. */
function randomSessionToken(): string {
  const chars = randomBytes(224).toString('base64').split('') // 300 chars, one '=' of padding
  if (!chars.includes('+')) chars[20] = '+'
  if (!chars.includes('/')) chars[21] = '/'
  return 'IQoJb3JpZ2luX2Vj' + chars.join('') // real tokens start with base64("!\n\torigin_ec")
}

/** The Action parameter, for counters; lenient about encodings, never throws. */
function extractAction(url: string, body: string, headers: Headers): string | undefined {
  if (body !== '' && isFormEncoded(headers)) {
    const action = new URLSearchParams(body).get('Action')
    if (action !== null) return action
  }
  const q = url.indexOf('?')
  return q < 0 ? undefined : (new URLSearchParams(url.slice(q + 1)).get('Action') ?? undefined)
}

const isoSeconds = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z')

const validationError = (value: string | null, field: string, constraint: string): string =>
  `1 validation error detected: Value ${value === null ? 'null' : `'${value}'`} at '${field}' ` +
  `failed to satisfy constraint: Member ${constraint}`

type Reply = StandInReply

export async function startFakeSts(
  opts: {
    now?: () => Date
    principals?: FakeStsPrincipal[]
    roles?: FakeStsRole[]
    latencyMs?: number
    assumeRoleDurationSeconds?: number
  } = {},
): Promise<FakeSts> {
  const now = opts.now ?? (() => new Date())
  const defaultDuration = opts.assumeRoleDurationSeconds ?? 3600
  const principals = new Map<string, FakeStsPrincipal>()
  const roles = new Map<string, FakeStsRole>()
  for (const p of opts.principals ?? []) principals.set(p.accessKeyId, p)
  for (const r of opts.roles ?? []) roles.set(r.roleArn, r)

  let lastAssumeRole: FakeStsAssumeRoleCall | undefined
  const counters: FakeStsCalls = { getCallerIdentity: 0, assumeRole: 0, rejected: 0, total: 0 }
  const lastErrors: string[] = []

  const errorReply = (json: boolean, requestId: string, status: number, code: string, message: string): Reply => {
    counters.rejected++
    lastErrors.push(`${code}: ${message}`)
    if (lastErrors.length > 50) lastErrors.shift()
    const type = status >= 500 ? 'Receiver' : 'Sender'
    if (json) {
      const error = { Code: code, Message: message, Type: type }
      const body = JSON.stringify({ Error: error, RequestId: requestId })
      return { status, contentType: 'application/json', body }
    }
    const body =
      `<ErrorResponse xmlns="${XMLNS}"><Error><Type>${type}</Type><Code>${xmlEscape(code)}</Code>` +
      `<Message>${xmlEscape(message)}</Message></Error><RequestId>${requestId}</RequestId>` +
      `</ErrorResponse>`
    return { status, contentType: 'text/xml', body }
  }

  const getCallerIdentity = (p: FakeStsPrincipal, json: boolean, requestId: string): Reply => {
    if (json) {
      const body = JSON.stringify({
        GetCallerIdentityResponse: {
          GetCallerIdentityResult: { Account: p.account, Arn: p.arn, UserId: p.userId },
          ResponseMetadata: { RequestId: requestId },
        },
      })
      return { status: 200, contentType: 'application/json', body }
    }
    const body =
      `<GetCallerIdentityResponse xmlns="${XMLNS}"><GetCallerIdentityResult>` +
      `<Arn>${xmlEscape(p.arn)}</Arn><UserId>${xmlEscape(p.userId)}</UserId>` +
      `<Account>${xmlEscape(p.account)}</Account></GetCallerIdentityResult>` +
      `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata>` +
      `</GetCallerIdentityResponse>`
    return { status: 200, contentType: 'text/xml', body }
  }

  const mintSession = (spec: FakeStsSessionSpec): FakeStsPrincipal => {
    const minted: FakeStsPrincipal = {
      accessKeyId: 'ASIA' + randomFrom(UPPER_ALNUM, 16),
      secretAccessKey: randomFrom(BASE64_CHARS, 40),
      sessionToken: randomSessionToken(),
      expiresAt: spec.expiresAt,
      arn: spec.arn,
      account: spec.account,
      userId: spec.userId,
    }
    principals.set(minted.accessKeyId, minted)
    return minted
  }

  /** The session of `role` for `sessionName`, as AssumeRole and AssumeRoleWithWebIdentity mint it. */
  const roleSession = (role: FakeStsRole, sessionName: string, fallbackAccount: string, duration: number) => {
    // arn:<partition>:iam::<account>:role/<path/><name>
    const arnParts = role.roleArn.split(':')
    const partition = arnParts[1] || 'aws'
    const account = arnParts[4] || fallbackAccount
    const roleName = arnParts.slice(5).join(':').split('/').pop() || 'role'
    return mintSession({
      arn: `arn:${partition}:sts::${account}:assumed-role/${roleName}/${sessionName}`,
      account,
      userId: `${role.roleId}:${sessionName}`,
      expiresAt: new Date(Math.floor(now().getTime() / 1000) * 1000 + duration * 1000),
    })
  }

  const credentialsXml = (minted: FakeStsPrincipal): string =>
    `<Credentials><AccessKeyId>${minted.accessKeyId}</AccessKeyId>` +
    `<SecretAccessKey>${xmlEscape(minted.secretAccessKey)}</SecretAccessKey>` +
    `<SessionToken>${xmlEscape(minted.sessionToken!)}</SessionToken>` +
    `<Expiration>${isoSeconds(minted.expiresAt!)}</Expiration></Credentials>` +
    `<AssumedRoleUser><Arn>${xmlEscape(minted.arn)}</Arn>` +
    `<AssumedRoleId>${xmlEscape(minted.userId)}</AssumedRoleId></AssumedRoleUser>`

  let webIdentityCalls = 0
  /** Unsigned, as real STS takes it: the web identity token is the credential. */
  const assumeRoleWithWebIdentity = (params: URLSearchParams, json: boolean, requestId: string): Reply => {
    webIdentityCalls++
    const roleArn = params.get('RoleArn')
    const sessionName = params.get('RoleSessionName')
    const webToken = params.get('WebIdentityToken')
    if (roleArn === null || sessionName === null || webToken === null) {
      const field = roleArn === null ? 'roleArn' : sessionName === null ? 'roleSessionName' : 'webIdentityToken'
      return errorReply(json, requestId, 400, 'ValidationError', validationError(null, field, 'must not be null'))
    }
    if (!SESSION_NAME_RE.test(sessionName)) {
      const constraint = 'must satisfy regular expression pattern: [\\w+=,.@-]{2,64}'
      return errorReply(
        json,
        requestId,
        400,
        'ValidationError',
        validationError(sessionName, 'roleSessionName', constraint),
      )
    }
    const known = [...roles.values()].some((r) => r.webIdentityTokens?.includes(webToken))
    if (!known) {
      return errorReply(
        json,
        requestId,
        400,
        'InvalidIdentityToken',
        'The web identity token that was passed could not be validated by AWS.',
      )
    }
    const role = roles.get(roleArn)
    if (role === undefined || !role.webIdentityTokens?.includes(webToken)) {
      return errorReply(json, requestId, 403, 'AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity')
    }
    const minted = roleSession(role, sessionName, '000000000000', defaultDuration)
    const body =
      `<AssumeRoleWithWebIdentityResponse xmlns="${XMLNS}"><AssumeRoleWithWebIdentityResult>` +
      credentialsXml(minted) +
      `<SubjectFromWebIdentityToken>system:serviceaccount:fake</SubjectFromWebIdentityToken>` +
      `<Provider>fake-oidc</Provider><Audience>sts.amazonaws.com</Audience>` +
      `</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>${requestId}</RequestId>` +
      `</ResponseMetadata></AssumeRoleWithWebIdentityResponse>`
    return { status: 200, contentType: 'text/xml', body }
  }

  const assumeRole = (caller: FakeStsPrincipal, params: URLSearchParams, json: boolean, requestId: string): Reply => {
    const roleArn = params.get('RoleArn')
    const sessionName = params.get('RoleSessionName')
    if (roleArn === null || sessionName === null) {
      const field = roleArn === null ? 'roleArn' : 'roleSessionName'
      const message = validationError(null, field, 'must not be null')
      return errorReply(json, requestId, 400, 'ValidationError', message)
    }
    const externalId = params.get('ExternalId')
    const serialNumber = params.get('SerialNumber')
    lastAssumeRole = { roleArn, sessionName }
    if (externalId !== null) lastAssumeRole.externalId = externalId
    if (serialNumber !== null) lastAssumeRole.serialNumber = serialNumber
    if (!SESSION_NAME_RE.test(sessionName)) {
      const constraint = 'must satisfy regular expression pattern: [\\w+=,.@-]{2,64}'
      const message = validationError(sessionName, 'roleSessionName', constraint)
      return errorReply(json, requestId, 400, 'ValidationError', message)
    }
    const durationParam = params.get('DurationSeconds')
    const duration = durationParam === null ? defaultDuration : Number(durationParam)
    // an explicit DurationSeconds is checked as STS checks it; the stand-in's own default may be
    // shorter than STS allows, so that tests can see credentials expire before a token would
    if (durationParam !== null && (!Number.isInteger(duration) || duration < 900 || duration > 43200)) {
      const constraint = 'must have value between 900 and 43200'
      const message = validationError(durationParam, 'durationSeconds', constraint)
      return errorReply(json, requestId, 400, 'ValidationError', message)
    }
    const role = roles.get(roleArn)
    if (role === undefined || !(role.trusted?.(caller) ?? true)) {
      const message = `User: ${caller.arn} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`
      return errorReply(json, requestId, 403, 'AccessDenied', message)
    }

    if (
      role.mfa !== undefined &&
      (serialNumber !== role.mfa.serialNumber || params.get('TokenCode') !== role.mfa.code)
    ) {
      const message = 'MultiFactorAuthentication failed with invalid MFA one time pass code.'
      return errorReply(json, requestId, 403, 'AccessDenied', message)
    }
    const minted = roleSession(role, sessionName, caller.account, duration)
    const body =
      `<AssumeRoleResponse xmlns="${XMLNS}"><AssumeRoleResult>` +
      credentialsXml(minted) +
      `</AssumeRoleResult><ResponseMetadata><RequestId>${requestId}</RequestId>` +
      `</ResponseMetadata></AssumeRoleResponse>`
    return { status: 200, contentType: 'text/xml', body }
  }

  /** Answers one fully received request (hang and reset are the stand-in server's). */
  const handle = (
    req: IncomingMessage,
    body: string,
    activeFault: Exclude<FakeStsFault, ConnectionFault>,
    requestId: string,
  ): Reply => {
    const json = req.headers.accept?.includes('application/json') ?? false
    switch (activeFault) {
      case 'error500': {
        const message = 'The request processing has failed because of an unknown error, exception or failure.'
        return errorReply(json, requestId, 500, 'InternalFailure', message)
      }
      case 'throttle':
        return errorReply(json, requestId, 400, 'Throttling', 'Rate exceeded')
      case 'none':
        break
    }

    const unsigned =
      headerValue(req.headers, 'authorization') === undefined && !(req.url ?? '').includes('X-Amz-Algorithm')
    if (unsigned && extractAction(req.url ?? '/', body, req.headers) === 'AssumeRoleWithWebIdentity') {
      const params = new URLSearchParams(isFormEncoded(req.headers) ? body : (req.url ?? '').split('?')[1])
      return assumeRoleWithWebIdentity(params, json, requestId)
    }
    const verified = verifySigV4Request(
      { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body },
      (akid) => principals.get(akid),
      now(),
    )
    if (!verified.ok) {
      return errorReply(json, requestId, verified.status, verified.code, verified.message)
    }
    const { principal, params } = verified
    const action = params.get('Action')
    const version = params.get('Version')
    if (version !== null && version !== STS_VERSION) {
      const message = `Could not find operation ${action} for version ${version}`
      return errorReply(json, requestId, 400, 'InvalidAction', message)
    }
    switch (action) {
      case 'GetCallerIdentity':
        return getCallerIdentity(principal, json, requestId)
      case 'AssumeRole':
        return assumeRole(principal, params, json, requestId)
      case null:
        return errorReply(json, requestId, 400, 'InvalidAction', 'Missing Action parameter')
      default: {
        const message = `Could not find operation ${action} for version ${STS_VERSION}`
        return errorReply(json, requestId, 400, 'InvalidAction', message)
      }
    }
  }

  const server = await startStandInServer<FakeStsFault>({
    latencyMs: opts.latencyMs,
    received(req, body) {
      counters.total++
      const action = extractAction(req.url ?? '/', body, req.headers)
      if (action === 'GetCallerIdentity') counters.getCallerIdentity++
      else if (action === 'AssumeRole') counters.assumeRole++
    },
    respond: handle,
  })

  return {
    url: server.url,
    port: server.port,
    get calls(): FakeStsCalls {
      return { ...counters }
    },
    get lastErrors(): string[] {
      return [...lastErrors]
    },
    get lastAssumeRole(): FakeStsAssumeRoleCall | undefined {
      return lastAssumeRole === undefined ? undefined : { ...lastAssumeRole }
    },
    get webIdentityCalls(): number {
      return webIdentityCalls
    },
    mintSession,
    lookup(accessKeyId: string): FakeStsPrincipal | undefined {
      return principals.get(accessKeyId)
    },
    addPrincipal(p: FakeStsPrincipal): void {
      principals.set(p.accessKeyId, p)
    },
    addRole(r: FakeStsRole): void {
      roles.set(r.roleArn, r)
    },
    setFault(f: FakeStsFault): void {
      server.setFault(f)
    },
    setLatency(ms: number): void {
      server.setLatency(ms)
    },
    resetCalls(): void {
      counters.getCallerIdentity = 0
      counters.assumeRole = 0
      counters.rejected = 0
      counters.total = 0
      webIdentityCalls = 0
      lastErrors.length = 0
    },
    close(): Promise<void> {
      return server.close()
    },
  }
}
