import { TokenInvalid } from '../shared/errors.js'
import { decodeToken } from './format.js'
import { checkStsHost, stsHostPolicy } from './hosts.js'

/** STS honours a presigned GetCallerIdentity for 15 minutes after X-Amz-Date, whatever X-Amz-Expires says. */
export const PRESIGN_VALIDITY_MS = 15 * 60 * 1000
/** How far ahead of our clock a signing time may be (the SigV4 skew allowance). */
export const MAX_FUTURE_SKEW_MS = 15 * 60 * 1000

export const STS_API_VERSION = '2011-06-15'
export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256'
/** The only signed-header list the server can reproduce: it sends Host and its own x-k8s-aws-id. */
export const REQUIRED_SIGNED_HEADERS = 'host;x-k8s-aws-id'

/** The allowed query keys, in their canonical spelling. */
const CANONICAL_KEYS = [
  'Action',
  'Version',
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-Security-Token',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
] as const
type CanonicalKey = (typeof CANONICAL_KEYS)[number]
const KEY_BY_LOWER = new Map<string, CanonicalKey>(CANONICAL_KEYS.map((k) => [k.toLowerCase(), k]))
const LOWER_BY_KEY = new Map<string, string>(CANONICAL_KEYS.map((k) => [k, k.toLowerCase()]))

/** A presigned GetCallerIdentity request that passed every local check. */
export interface PresignedRequest {
  readonly host: string
  /** `global` or the region in the host; used as the StsRegion metric label. */
  readonly stsRegion: string
  readonly accessKeyId: string
  readonly signedAt: Date
  /** When STS stops honouring the signature (signedAt + 15 minutes). */
  readonly expiresAt: Date
  readonly hasSessionToken: boolean
  /** X-Amz-Security-Token of temporary credentials: part of the bearer secret, never logged. */
  readonly sessionToken?: string | undefined
  /** Path and query to send to STS, exactly as checked. */
  readonly pathAndQuery: string
}

export interface ParseOptions {
  readonly partition: string
  /** Regions of `partition` accepted beyond those this release knows (server.extraRegions). */
  readonly extraRegions?: readonly string[] | undefined
  readonly now: Date
}

/**
 * Every check that can be made without STS. The query is parsed from the raw string (never through
 * WHATWG URL, which normalises), so what is checked is byte for byte what STS will receive.
 */
export function parsePresignedToken(token: string, opts: ParseOptions): PresignedRequest {
  const url = decodeToken(token)
  const { host, path, query } = splitUrl(url)
  // Host is validated first, as upstream does, so a foreign host is reported as such.
  const { stsRegion, signingRegion } = checkStsHost(host, stsHostPolicy(opts.partition, opts.extraRegions))
  if (path !== '/') throw new TokenInvalid('path', 'unexpected path in pre-signed URL')
  if (query === undefined) throw new TokenInvalid('query', 'pre-signed URL has no query')
  const params = parseQuery(query)

  const action = params.get('Action')
  if (action !== 'GetCallerIdentity') {
    throw new TokenInvalid('action', 'unexpected action parameter in pre-signed URL')
  }
  const version = params.get('Version')
  if (version !== STS_API_VERSION) {
    throw new TokenInvalid(
      'version',
      version === undefined
        ? 'Version parameter must be present in pre-signed URL'
        : `unexpected Version parameter "${clip(version)}" in pre-signed URL, expected "${STS_API_VERSION}"`,
    )
  }
  const algorithm = params.get('X-Amz-Algorithm')
  if (algorithm !== SIGV4_ALGORITHM) {
    throw new TokenInvalid(
      'algorithm',
      algorithm === undefined
        ? 'X-Amz-Algorithm parameter must be present in pre-signed URL'
        : `unexpected X-Amz-Algorithm "${clip(algorithm)}" in pre-signed URL, expected "${SIGV4_ALGORITHM}"`,
    )
  }
  checkSignedHeaders(params.get('X-Amz-SignedHeaders'))
  checkExpires(params.get('X-Amz-Expires'))

  const rawDate = params.get('X-Amz-Date')
  if (rawDate === undefined) {
    throw new TokenInvalid('date', 'X-Amz-Date parameter must be present in pre-signed URL')
  }
  const signedAt = parseAmzDate(rawDate)
  const expiresAt = new Date(signedAt.getTime() + PRESIGN_VALIDITY_MS)
  if (opts.now.getTime() > expiresAt.getTime()) {
    throw new TokenInvalid('expired', `X-Amz-Date parameter is expired (15 minute expiration) ${goTimeString(rawDate)}`)
  }
  if (signedAt.getTime() - opts.now.getTime() > MAX_FUTURE_SKEW_MS) {
    throw new TokenInvalid(
      'future',
      `X-Amz-Date parameter is more than 15 minutes in the future ${goTimeString(rawDate)}`,
    )
  }

  const accessKeyId = checkCredential(params.get('X-Amz-Credential'), rawDate.slice(0, 8), signingRegion)
  const signature = params.get('X-Amz-Signature')
  if (signature === undefined || !/^[0-9a-f]{64}$/.test(signature)) {
    throw new TokenInvalid(
      'signature',
      signature === undefined
        ? 'X-Amz-Signature parameter must be present in pre-signed URL'
        : 'X-Amz-Signature must be 64 lower-case hexadecimal characters',
    )
  }
  const securityToken = params.get('X-Amz-Security-Token')
  if (securityToken !== undefined && !/^[A-Za-z0-9+/]+={0,2}$/.test(securityToken)) {
    throw new TokenInvalid('security-token', 'X-Amz-Security-Token must be non-empty base64')
  }

  return {
    host,
    stsRegion,
    accessKeyId,
    signedAt,
    expiresAt,
    hasSessionToken: securityToken !== undefined,
    sessionToken: securityToken,
    // Every key passed the allow-list and every value is in SigV4's canonical encoding (checked by
    // decodeCanonical), so the query as received is exactly the one re-encoding would produce.
    pathAndQuery: `/?${query}`,
  }
}

function splitUrl(url: string): { host: string; path: string; query: string | undefined } {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)
  if (scheme === null) {
    throw new TokenInvalid('url', 'pre-signed URL is not an absolute URL: missing protocol scheme')
  }
  if (scheme[1] !== 'https') {
    throw new TokenInvalid('scheme', `unexpected scheme "${clip(scheme[1]!)}" in pre-signed URL`)
  }
  if (!url.startsWith('https://')) {
    throw new TokenInvalid('url', 'pre-signed URL must start with "https://"')
  }
  if (url.includes('#')) throw new TokenInvalid('url', 'fragment is not allowed in pre-signed URL')
  const rest = url.slice('https://'.length)
  const end = rest.search(/[/?]/)
  const authority = end === -1 ? rest : rest.slice(0, end)
  if (authority.includes('@')) {
    throw new TokenInvalid('host', 'userinfo is not allowed in pre-signed URL host')
  }
  if (authority.includes(':') || authority.includes('[')) {
    throw new TokenInvalid('host', 'a port or IP literal is not allowed in pre-signed URL host')
  }
  if (authority.includes('%')) {
    throw new TokenInvalid('host', 'percent-encoding is not allowed in pre-signed URL host')
  }
  if (authority.endsWith('.')) {
    throw new TokenInvalid('host', `unexpected hostname "${clip(authority)}" in pre-signed URL: trailing dot`)
  }
  const afterHost = end === -1 ? '' : rest.slice(end)
  const q = afterHost.indexOf('?')
  const path = q === -1 ? afterHost : afterHost.slice(0, q)
  checkHostShape(authority)
  return { host: authority, path, query: q === -1 ? undefined : afterHost.slice(q + 1) }
}

function checkHostShape(host: string): void {
  if (host === '') throw new TokenInvalid('host', 'pre-signed URL has an empty host')
  if (/[A-Z]/.test(host)) {
    throw new TokenInvalid('host', `unexpected hostname "${clip(host)}" in pre-signed URL: host must be lower case`)
  }
}

const UNRESERVED = /^[A-Za-z0-9\-._~]$/

/**
 * Splits the raw query. Strict: `&` separators only, one `=` per pair, keys in the allow-list and in
 * their canonical spelling, values in SigV4's canonical percent-encoding (so decoding and
 * re-encoding give back the same bytes), and no key twice in any letter case (CVE-2022-2385).
 */
function parseQuery(query: string): Map<CanonicalKey, string> {
  if (query === '') throw new TokenInvalid('query', 'pre-signed URL has no query')
  if (query.includes(';')) throw new TokenInvalid('query', 'malformed query parameter: ";" is not a separator')
  const params = new Map<CanonicalKey, string>()
  /** Lower-cased key -> the spelling seen, for duplicates in any letter case. */
  const seen = new Map<string, string>()
  // Syntax, encoding and duplicates are refused as they are met; a key outside the allow-list (or
  // in another spelling) only once every pair is known to be well-formed, so those errors win.
  let notAllowed: TokenInvalid | undefined
  for (let from = 0; ;) {
    const amp = query.indexOf('&', from)
    const end = amp === -1 ? query.length : amp
    const eq = query.indexOf('=', from)
    if (eq <= from || eq > end) throw new TokenInvalid('query', 'malformed query parameter: expected key=value')
    const key = query.slice(from, eq)
    // The keys of every genuine token are canonical: known without a pattern or lower-casing.
    let lower = LOWER_BY_KEY.get(key)
    if (lower === undefined) {
      if (!/^[A-Za-z0-9-]+$/.test(key)) {
        throw new TokenInvalid('query', `malformed query parameter: unexpected characters in key "${clip(key)}"`)
      }
      lower = key.toLowerCase()
    }
    const value = decodeCanonical(key, query.slice(eq + 1, end))
    const earlier = seen.get(lower)
    if (earlier === key) {
      throw new TokenInvalid('param', `query parameter with multiple values not supported: "${key}"`)
    }
    if (earlier !== undefined) throw new TokenInvalid('duplicate', `duplicate query parameter found: "${key}"`)
    seen.set(lower, key)
    if (notAllowed === undefined) {
      const canonical = KEY_BY_LOWER.get(lower)
      if (canonical === undefined) {
        notAllowed = new TokenInvalid('param', `non-whitelisted query parameter "${clip(key)}"`)
      } else if (canonical !== key) {
        notAllowed = new TokenInvalid('param', `query parameter "${key}" must be spelled "${canonical}"`)
      } else {
        params.set(canonical, value)
      }
    }
    if (amp === -1) break
    from = amp + 1
  }
  if (notAllowed !== undefined) throw notAllowed
  return params
}

const ALL_UNRESERVED = /^[A-Za-z0-9\-._~]*$/

/**
 * A value in SigV4's canonical encoding of printable ASCII: unreserved characters as they are,
 * every other printable character as upper-case %XX. One pattern, so a valid value (the common case,
 * refused tokens included) is checked without walking it escape by escape.
 */
const CANONICAL_VALUE = new RegExp(
  `^(?:[A-Za-z0-9\\-._~]|%(?:${Array.from({ length: 0x7f - 0x20 }, (_, i) => 0x20 + i)
    .filter((c) => !/[A-Za-z0-9\-._~]/.test(String.fromCharCode(c)))
    .map((c) => c.toString(16).toUpperCase())
    .join('|')}))*$`,
)

function decodeCanonical(key: string, raw: string): string {
  if (ALL_UNRESERVED.test(raw)) return raw
  if (CANONICAL_VALUE.test(raw)) return decodeURIComponent(raw)
  // Not canonical: walk it to say exactly what is wrong.
  // Left to right, a run of unreserved characters then one %XX escape at a time.
  let out = ''
  let from = 0
  for (;;) {
    const at = raw.indexOf('%', from)
    const plain = raw.slice(from, at === -1 ? raw.length : at)
    if (!ALL_UNRESERVED.test(plain)) {
      throw new TokenInvalid('query', `query parameter "${clip(key)}" is not canonically percent-encoded`)
    }
    out += plain
    if (at === -1) return out
    const hex = raw.slice(at + 1, at + 3)
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) {
      throw new TokenInvalid('query', `malformed query parameter: invalid escape in "${clip(key)}"`)
    }
    const decoded = String.fromCharCode(parseInt(hex, 16))
    if (!/^[0-9A-F]{2}$/.test(hex) || UNRESERVED.test(decoded)) {
      throw new TokenInvalid('query', `query parameter "${clip(key)}" is not canonically percent-encoded`)
    }
    if (decoded.charCodeAt(0) < 0x20 || decoded.charCodeAt(0) > 0x7e) {
      throw new TokenInvalid('query', `query parameter "${clip(key)}" encodes a non-printable byte`)
    }
    out += decoded
    from = at + 3
  }
}

/** SigV4 URI encoding: everything but unreserved characters as upper-case %XX. Input is printable ASCII. */
export function uriEncode(value: string): string {
  let out = ''
  for (const c of value) {
    out += UNRESERVED.test(c) ? c : `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

function checkSignedHeaders(value: string | undefined): void {
  const headers = value === undefined ? [] : value.split(';')
  if (!headers.some((h) => h.toLowerCase() === 'x-k8s-aws-id')) {
    throw new TokenInvalid('signed-headers', 'client did not sign the x-k8s-aws-id header in the pre-signed URL')
  }
  if (!headers.includes('host')) {
    throw new TokenInvalid('signed-headers', 'client did not sign the host header in the pre-signed URL')
  }
  const extra = headers.find((h) => h !== 'host' && h !== 'x-k8s-aws-id')
  if (extra !== undefined) {
    throw new TokenInvalid(
      'signed-headers',
      `signed header "${clip(extra)}" cannot be reproduced by the server; sign exactly ${REQUIRED_SIGNED_HEADERS}`,
    )
  }
  if (value !== REQUIRED_SIGNED_HEADERS) {
    throw new TokenInvalid('signed-headers', `X-Amz-SignedHeaders must be exactly "${REQUIRED_SIGNED_HEADERS}"`)
  }
}

function checkExpires(value: string | undefined): void {
  // STS ignores X-Amz-Expires for a presigned GetCallerIdentity (the signature is honoured for 15
  // minutes after X-Amz-Date whatever it says), but every client sends it and upstream requires it.
  if (value === undefined) {
    throw new TokenInvalid('expires', 'X-Amz-Expires parameter must be present in pre-signed URL')
  }
  if (!/^\d{1,3}$/.test(value) || Number(value) > 900) {
    throw new TokenInvalid('expires', `invalid X-Amz-Expires parameter in pre-signed URL: ${clip(value)}`)
  }
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

function parseAmzDate(value: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value)
  if (m !== null) {
    const y = Number(m[1])
    const mo = Number(m[2])
    const d = Number(m[3])
    const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0)
    const days = mo === 2 && leap ? 29 : DAYS_IN_MONTH[mo - 1]
    const h = Number(m[4])
    const mi = Number(m[5])
    const sec = Number(m[6])
    if (days !== undefined && d >= 1 && d <= days && h < 24 && mi < 60 && sec < 60) {
      return new Date(Date.UTC(y, mo - 1, d, h, mi, sec))
    }
  }
  throw new TokenInvalid('date', `error parsing X-Amz-Date parameter ${clip(value)} into format 20060102T150405Z`)
}

function checkCredential(value: string | undefined, day: string, signingRegion: string): string {
  if (value === undefined) {
    throw new TokenInvalid('credential', 'X-Amz-Credential parameter must be present in pre-signed URL')
  }
  const parts = value.split('/')
  if (parts.length !== 5) {
    throw new TokenInvalid(
      'credential',
      'X-Amz-Credential must be <access key id>/<yyyymmdd>/<region>/sts/aws4_request',
    )
  }
  const [akid, scopeDay, region, service, terminator] = parts as [string, string, string, string, string]
  if (!/^[A-Z0-9]{16,128}$/.test(akid)) {
    throw new TokenInvalid('credential', 'X-Amz-Credential has a malformed access key id')
  }
  if (scopeDay !== day) {
    throw new TokenInvalid('credential', `X-Amz-Credential date ${clip(scopeDay)} does not match X-Amz-Date`)
  }
  if (region !== signingRegion) {
    throw new TokenInvalid(
      'credential',
      `X-Amz-Credential region "${clip(region)}" does not match the STS host (expected "${signingRegion}")`,
    )
  }
  if (service !== 'sts' || terminator !== 'aws4_request') {
    throw new TokenInvalid('credential', 'X-Amz-Credential scope must end with /sts/aws4_request')
  }
  return akid
}

/** Go's time.Time.String() for a UTC time, as upstream prints it: `1990-04-22 01:02:03 +0000 UTC`. */
/**
 * Go's time.Time.String() of a checked X-Amz-Date (`20230428T010203Z`), as upstream prints it:
 * `2023-04-28 01:02:03 +0000 UTC`.
 */
function goTimeString(amzDate: string): string {
  const at = (from: number, to: number) => amzDate.slice(from, to)
  return `${at(0, 4)}-${at(4, 6)}-${at(6, 8)} ${at(9, 11)}:${at(11, 13)}:${at(13, 15)} +0000 UTC`
}

function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 64)}...` : s
}
