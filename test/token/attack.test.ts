// Attack suite: malformed and malicious tokens, each built by breaking exactly one thing in a
// genuinely valid presigned URL, run end to end through verifyToken with the real transport and a
// running fake STS. Every row must be refused locally, with a pinned check and message, and must
// not cost a single request to STS (attack history: CVE-2022-2385, the duplicated
// x-amz-credential upstream's verifier let through, and Project Zero issue 2066's lax host check,
// followed redirect and silently dropped malformed query parameters).

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { StsRejected, type TokenCheck } from '../../src/shared/errors.js'
import { createStsTransport } from '../../src/sts/transport.js'
import { verifyToken, type VerifyOptions } from '../../src/sts/verify.js'
import { type FakeSts, startFakeSts } from '../support/fake-sts.js'
import {
  ALICE,
  CLUSTER_ID,
  INVALID as P,
  NOW,
  NOW_AMZ,
  TEMP,
  dropParam,
  expectTokenInvalid,
  presignedToken,
  presignedUrl,
  rawParam,
  rejectionOf,
  replaceOnce,
  setHost,
  setParam,
  toToken,
} from '../support/tokens.js'

/** The valid URLs and tokens every row starts from (ALICE: long-term key; TEMP: with session token). */
interface Base {
  readonly url: string
  readonly token: string
  readonly tempUrl: string
  readonly tempToken: string
}

interface AttackRow {
  readonly name: string
  /** Builds the malicious token from the valid one. */
  readonly make: (b: Base) => string
  /** The server's partition; default aws. */
  readonly partition?: string
  readonly check: TokenCheck
  /** The exact, full error message. */
  readonly message: string
}

/** A URL mutation of ALICE's valid URL. */
const U = (f: (url: string) => string) => (b: Base) => toToken(f(b.url))
/** A URL mutation of TEMP's valid URL (carries X-Amz-Security-Token). */
const T = (f: (url: string) => string) => (b: Base) => toToken(f(b.tempUrl))
/** A URL mutation producing raw bytes (for non-ASCII / control bytes). */
const BYTES = (f: (url: string) => Uint8Array) => (b: Base) => toToken(f(b.url))
/** A mutation of the token string itself. */
const TOK = (f: (token: string) => string) => (b: Base) => f(b.token)

const HOST = 'sts.us-west-2.amazonaws.com'
const cred = (akid: string, day: string, region: string, service = 'sts', term = 'aws4_request') =>
  [akid, day, region, service, term].join('%2F')
/** Replaces the character at `i` of the token body (after the prefix). */
const replaceBodyChar = (token: string, i: number, c: string) => {
  const at = 'k8s-aws-v1.'.length + i
  return token.slice(0, at) + c + token.slice(at + 1)
}
const insertInBody = (token: string, i: number, s: string) => {
  const at = 'k8s-aws-v1.'.length + i
  return token.slice(0, at) + s + token.slice(at)
}
const withByte = (url: string, at: string, byte: number) => {
  const i = url.indexOf(at)
  if (i === -1) throw new Error(`no ${at}`)
  return Buffer.concat([
    Buffer.from(url.slice(0, i), 'latin1'),
    Buffer.from([byte]),
    Buffer.from(url.slice(i), 'latin1'),
  ])
}

const NON_ASCII = `${P}decoded token is not a URL: it contains non-printable or non-ASCII bytes`
const B64_ALPHABET = 'only unpadded base64url (A-Z a-z 0-9 - _) is accepted'
const ONLY_SIGN = 'sign exactly host;x-k8s-aws-id'
const NOT_CANONICAL = (key: string) => `${P}query parameter "${key}" is not canonically percent-encoded`
const NON_PRINTABLE = (key: string) => `${P}query parameter "${key}" encodes a non-printable byte`
const NO_PARTITION_HOST = (host: string) => `${P}partition {aws} does not support hostname ${host}`
const UNKNOWN_REGION = (host: string, region: string) =>
  `${P}unexpected hostname "${host}" in pre-signed URL: unknown region "${region}"`
const CRED_SHAPE = `${P}X-Amz-Credential must be <access key id>/<yyyymmdd>/<region>/sts/aws4_request`
const BAD_SIG = `${P}X-Amz-Signature must be 64 lower-case hexadecimal characters`
const BAD_EXPIRES = (v: string) => `${P}invalid X-Amz-Expires parameter in pre-signed URL: ${v}`
const BAD_DATE = (v: string) => `${P}error parsing X-Amz-Date parameter ${v} into format 20060102T150405Z`
const BAD_PATH = `${P}unexpected path in pre-signed URL`
const KEY_VALUE = `${P}malformed query parameter: expected key=value`

const ROWS: readonly AttackRow[] = [
  // ---- host spoofing -------------------------------------------------------------------------
  {
    name: 'host: evil.com',
    make: U((u) => setHost(u, 'evil.com')),
    check: 'host',
    message: `${P}could not parse region for pre-signed URL evil.com, invalid host format: evil.com`,
  },
  {
    name: 'host: sts.amazonaws.com.evil.com',
    make: U((u) => setHost(u, 'sts.amazonaws.com.evil.com')),
    check: 'host',
    message: UNKNOWN_REGION('sts.amazonaws.com.evil.com', 'amazonaws'),
  },
  {
    name: 'host: sts.us-west-2.amazonaws.com.evil',
    make: U((u) => setHost(u, `${HOST}.evil`)),
    check: 'host',
    message: NO_PARTITION_HOST(`${HOST}.evil`),
  },
  {
    name: 'host: aws region under the aws-cn suffix (sts.us-west-2.amazonaws.com.cn) in aws',
    make: U((u) => setHost(u, `${HOST}.cn`)),
    check: 'host',
    message: NO_PARTITION_HOST(`${HOST}.cn`),
  },
  {
    name: 'host: GovCloud host sts.us-gov-west-1.amazonaws.com in aws',
    make: U((u) => setHost(u, 'sts.us-gov-west-1.amazonaws.com')),
    check: 'host',
    message: `${P}hostname "sts.us-gov-west-1.amazonaws.com" belongs to partition aws-us-gov; this server accepts only partition aws`,
  },
  {
    name: 'host: China host sts.cn-north-1.amazonaws.com.cn in aws',
    make: U((u) => setHost(u, 'sts.cn-north-1.amazonaws.com.cn')),
    check: 'host',
    message: `${P}hostname "sts.cn-north-1.amazonaws.com.cn" belongs to partition aws-cn; this server accepts only partition aws`,
  },
  {
    name: 'host: an unmodified aws token on an aws-cn server',
    make: U((u) => u),
    partition: 'aws-cn',
    check: 'host',
    message: `${P}hostname "${HOST}" belongs to partition aws; this server accepts only partition aws-cn`,
  },
  {
    name: 'host: global endpoint on an aws-us-gov server',
    make: U((u) => setHost(u, 'sts.amazonaws.com')),
    partition: 'aws-us-gov',
    check: 'host',
    message: `${P}global endpoint unsupported in partition aws-us-gov`,
  },
  {
    name: 'host: userinfo user@host',
    make: U((u) => setHost(u, `user@${HOST}`)),
    check: 'host',
    message: `${P}userinfo is not allowed in pre-signed URL host`,
  },
  {
    name: 'host: userinfo sts-host@evil.com',
    make: U((u) => setHost(u, `${HOST}@evil.com`)),
    check: 'host',
    message: `${P}userinfo is not allowed in pre-signed URL host`,
  },
  {
    name: 'host: explicit port :443',
    make: U((u) => setHost(u, `${HOST}:443`)),
    check: 'host',
    message: `${P}a port or IP literal is not allowed in pre-signed URL host`,
  },
  {
    name: 'host: trailing dot',
    make: U((u) => setHost(u, `${HOST}.`)),
    check: 'host',
    message: `${P}unexpected hostname "${HOST}." in pre-signed URL: trailing dot`,
  },
  {
    name: 'host: upper case',
    make: U((u) => setHost(u, HOST.toUpperCase())),
    check: 'host',
    message: `${P}unexpected hostname "${HOST.toUpperCase()}" in pre-signed URL: host must be lower case`,
  },
  {
    name: 'host: one upper-case letter',
    make: U((u) => setHost(u, 'sts.us-west-2.amazonaws.Com')),
    check: 'host',
    message: `${P}unexpected hostname "sts.us-west-2.amazonaws.Com" in pre-signed URL: host must be lower case`,
  },
  {
    name: 'host: %2e instead of a dot',
    make: U((u) => setHost(u, 'sts%2eus-west-2.amazonaws.com')),
    check: 'host',
    message: `${P}percent-encoding is not allowed in pre-signed URL host`,
  },
  {
    name: 'host: IDN (raw UTF-8 homoglyph)',
    make: U((u) => setHost(u, 'sts.us-west-2.amazonaws.c\u00f6m')),
    check: 'url',
    message: NON_ASCII,
  },
  {
    name: 'host: IDN (punycode label in front)',
    make: U((u) => setHost(u, 'xn--sts-9na.us-west-2.amazonaws.com')),
    check: 'host',
    message: NO_PARTITION_HOST('xn--sts-9na.us-west-2.amazonaws.com'),
  },
  {
    name: 'host: IDN (punycode region label)',
    make: U((u) => setHost(u, 'sts.xn--us-wst-2-s7a.amazonaws.com')),
    check: 'host',
    message: UNKNOWN_REGION('sts.xn--us-wst-2-s7a.amazonaws.com', 'xn--us-wst-2-s7a'),
  },
  {
    name: 'host: IPv4 literal',
    make: U((u) => setHost(u, '52.94.133.131')),
    check: 'host',
    message: `${P}an IP address is not allowed as pre-signed URL host: "52.94.133.131"`,
  },
  {
    name: 'host: IPv4 loopback',
    make: U((u) => setHost(u, '127.0.0.1')),
    check: 'host',
    message: `${P}an IP address is not allowed as pre-signed URL host: "127.0.0.1"`,
  },
  {
    name: 'host: IPv4 as one decimal number',
    make: U((u) => setHost(u, '2130706433')),
    check: 'host',
    message: `${P}an IP address is not allowed as pre-signed URL host: "2130706433"`,
  },
  {
    name: 'host: IPv6 literal',
    make: U((u) => setHost(u, '[2600:1f14::1]')),
    check: 'host',
    message: `${P}a port or IP literal is not allowed in pre-signed URL host`,
  },
  {
    name: 'host: IPv6 loopback',
    make: U((u) => setHost(u, '[::1]')),
    check: 'host',
    message: `${P}a port or IP literal is not allowed in pre-signed URL host`,
  },
  {
    name: 'host: sts.not-a-region.amazonaws.com',
    make: U((u) => setHost(u, 'sts.not-a-region.amazonaws.com')),
    check: 'host',
    message: UNKNOWN_REGION('sts.not-a-region.amazonaws.com', 'not-a-region'),
  },
  {
    name: 'host: pseudo-region sts.aws-global.amazonaws.com',
    make: U((u) => setHost(u, 'sts.aws-global.amazonaws.com')),
    check: 'host',
    message: UNKNOWN_REGION('sts.aws-global.amazonaws.com', 'aws-global'),
  },
  {
    name: 'host: another service s3.us-west-2.amazonaws.com',
    make: U((u) => setHost(u, 's3.us-west-2.amazonaws.com')),
    check: 'host',
    message: NO_PARTITION_HOST('s3.us-west-2.amazonaws.com'),
  },
  {
    name: 'host: empty',
    make: U((u) => setHost(u, '')),
    check: 'host',
    message: `${P}pre-signed URL has an empty host`,
  },
  {
    name: 'host: backslash trick',
    make: U((u) => setHost(u, `${HOST}\\.evil.com`)),
    check: 'host',
    message: `${P}unexpected hostname "${HOST}\\.evil.com" in pre-signed URL`,
  },
  {
    name: 'host: empty label',
    make: U((u) => setHost(u, 'sts..amazonaws.com')),
    check: 'host',
    message: `${P}unexpected hostname "sts..amazonaws.com" in pre-signed URL`,
  },

  // ---- smuggled parameters -------------------------------------------------------------------
  {
    name: 'param: extra unknown key',
    make: U((u) => `${u}&Foo=bar`),
    check: 'param',
    message: `${P}non-whitelisted query parameter "Foo"`,
  },
  {
    name: 'param: extra X-Amz-Content-Sha256',
    make: U((u) => `${u}&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD`),
    check: 'param',
    message: `${P}non-whitelisted query parameter "X-Amz-Content-Sha256"`,
  },
  {
    name: 'param: duplicate X-Amz-Credential (same spelling)',
    make: U((u) => `${u}&X-Amz-Credential=${cred('AKIAVICTIMVICTIM0001', '20240501', 'us-west-2')}`),
    check: 'param',
    message: `${P}query parameter with multiple values not supported: "X-Amz-Credential"`,
  },
  {
    name: 'param: CVE-2022-2385 x-amz-credential=eve appended',
    make: U((u) => `${u}&x-amz-credential=eve`),
    check: 'duplicate',
    message: `${P}duplicate query parameter found: "x-amz-credential"`,
  },
  {
    name: 'param: CVE-2022-2385 x-amz-credential=eve first',
    make: U((u) => replaceOnce(u, '/?', '/?x-amz-credential=eve&')),
    check: 'duplicate',
    message: `${P}duplicate query parameter found: "X-Amz-Credential"`,
  },
  {
    name: 'param: case-variant ACTION duplicate',
    make: U((u) => `${u}&ACTION=AssumeRole`),
    check: 'duplicate',
    message: `${P}duplicate query parameter found: "ACTION"`,
  },
  {
    name: 'param: lower-case key action=',
    make: U((u) => replaceOnce(u, '?Action=', '?action=')),
    check: 'param',
    message: `${P}query parameter "action" must be spelled "Action"`,
  },
  {
    name: 'param: ";" separator',
    make: U((u) => replaceOnce(u, '&Version=', ';Version=')),
    check: 'query',
    message: `${P}malformed query parameter: ";" is not a separator`,
  },
  {
    name: 'param: "&&" (empty pair)',
    make: U((u) => replaceOnce(u, '&Version=', '&&Version=')),
    check: 'query',
    message: KEY_VALUE,
  },
  { name: 'param: trailing "&"', make: U((u) => `${u}&`), check: 'query', message: KEY_VALUE },
  { name: 'param: key without "="', make: U((u) => `${u}&X-Amz-Security-Token`), check: 'query', message: KEY_VALUE },
  { name: 'param: empty key "=x"', make: U((u) => `${u}&=x`), check: 'query', message: KEY_VALUE },
  {
    name: 'param: percent-encoded key',
    make: U((u) => replaceOnce(u, 'X-Amz-Credential=', 'X-Amz-%43redential=')),
    check: 'query',
    message: `${P}malformed query parameter: unexpected characters in key "X-Amz-%43redential"`,
  },
  {
    name: 'param: fragment',
    make: U((u) => `${u}#X-Amz-Credential=eve`),
    check: 'url',
    message: `${P}fragment is not allowed in pre-signed URL`,
  },

  // ---- encodings -----------------------------------------------------------------------------
  {
    name: 'encoding: "+" instead of %2B in the session token',
    make: T((u) => setParam(u, 'X-Amz-Security-Token', rawParam(u, 'X-Amz-Security-Token').replace('%2B', '+'))),
    check: 'query',
    message: NOT_CANONICAL('X-Amz-Security-Token'),
  },
  {
    name: 'encoding: lower-case %2f in the credential',
    make: U((u) => setParam(u, 'X-Amz-Credential', rawParam(u, 'X-Amz-Credential').replaceAll('%2F', '%2f'))),
    check: 'query',
    message: NOT_CANONICAL('X-Amz-Credential'),
  },
  {
    name: 'encoding: %41 for an unreserved "A"',
    make: U((u) => setParam(u, 'X-Amz-Algorithm', '%41WS4-HMAC-SHA256')),
    check: 'query',
    message: NOT_CANONICAL('X-Amz-Algorithm'),
  },
  {
    name: 'encoding: %00',
    make: U((u) => setParam(u, 'X-Amz-Expires', '60%00')),
    check: 'query',
    message: NON_PRINTABLE('X-Amz-Expires'),
  },
  {
    name: 'encoding: %0a (lower-case hex)',
    make: U((u) => setParam(u, 'X-Amz-Date', `${NOW_AMZ}%0a`)),
    check: 'query',
    message: NOT_CANONICAL('X-Amz-Date'),
  },
  {
    name: 'encoding: %0A',
    make: U((u) => setParam(u, 'X-Amz-Date', `${NOW_AMZ}%0A`)),
    check: 'query',
    message: NON_PRINTABLE('X-Amz-Date'),
  },
  {
    name: 'encoding: %7F',
    make: U((u) => setParam(u, 'Action', 'GetCallerIdentity%7F')),
    check: 'query',
    message: NON_PRINTABLE('Action'),
  },
  {
    name: 'encoding: literal "/" in the credential',
    make: U((u) => setParam(u, 'X-Amz-Credential', rawParam(u, 'X-Amz-Credential').replaceAll('%2F', '/'))),
    check: 'query',
    message: NOT_CANONICAL('X-Amz-Credential'),
  },
  {
    name: 'encoding: literal "?" in a value',
    make: U((u) => setParam(u, 'Version', '2011-06-15?')),
    check: 'query',
    message: NOT_CANONICAL('Version'),
  },
  {
    name: 'encoding: literal ";" in the signed headers',
    make: U((u) => setParam(u, 'X-Amz-SignedHeaders', 'host;x-k8s-aws-id')),
    check: 'query',
    message: `${P}malformed query parameter: ";" is not a separator`,
  },
  {
    name: 'encoding: invalid escape %gh',
    make: U((u) => setParam(u, 'X-Amz-Expires', '60%gh')),
    check: 'query',
    message: `${P}malformed query parameter: invalid escape in "X-Amz-Expires"`,
  },
  {
    name: 'encoding: truncated escape at the end',
    make: U((u) => `${u}%4`),
    check: 'query',
    message: `${P}malformed query parameter: invalid escape in "X-Amz-Signature"`,
  },
  {
    name: 'encoding: %20 after the action',
    make: U((u) => setParam(u, 'Action', 'GetCallerIdentity%20')),
    check: 'action',
    message: `${P}unexpected action parameter in pre-signed URL`,
  },
  {
    name: 'encoding: double-encoded "/" in the credential (%252F)',
    make: U((u) => setParam(u, 'X-Amz-Credential', rawParam(u, 'X-Amz-Credential').replaceAll('%2F', '%252F'))),
    check: 'credential',
    message: CRED_SHAPE,
  },

  // ---- path tricks ---------------------------------------------------------------------------
  { name: 'path: "//"', make: U((u) => replaceOnce(u, '.com/?', '.com//?')), check: 'path', message: BAD_PATH },
  { name: 'path: "/./"', make: U((u) => replaceOnce(u, '.com/?', '.com/./?')), check: 'path', message: BAD_PATH },
  { name: 'path: "/../"', make: U((u) => replaceOnce(u, '.com/?', '.com/../?')), check: 'path', message: BAD_PATH },
  { name: 'path: "/%2F"', make: U((u) => replaceOnce(u, '.com/?', '.com/%2F?')), check: 'path', message: BAD_PATH },
  {
    name: 'path: empty ("?" right after the host)',
    make: U((u) => replaceOnce(u, '.com/?', '.com?')),
    check: 'path',
    message: BAD_PATH,
  },
  {
    name: 'path: "/?" missing its "?"',
    make: U((u) => replaceOnce(u, '.com/?', '.com/')),
    check: 'path',
    message: BAD_PATH,
  },
  {
    name: 'path: another path',
    make: U((u) => replaceOnce(u, '.com/?', '.com/index.html?')),
    check: 'path',
    message: BAD_PATH,
  },
  {
    name: 'query: none at all',
    make: U((u) => u.slice(0, u.indexOf('?'))),
    check: 'query',
    message: `${P}pre-signed URL has no query`,
  },
  {
    name: 'query: empty after "?"',
    make: U((u) => u.slice(0, u.indexOf('?') + 1)),
    check: 'query',
    message: `${P}pre-signed URL has no query`,
  },

  // ---- scheme tricks -------------------------------------------------------------------------
  {
    name: 'scheme: http',
    make: U((u) => replaceOnce(u, 'https://', 'http://')),
    check: 'scheme',
    message: `${P}unexpected scheme "http" in pre-signed URL`,
  },
  {
    name: 'scheme: HTTPS',
    make: U((u) => replaceOnce(u, 'https://', 'HTTPS://')),
    check: 'scheme',
    message: `${P}unexpected scheme "HTTPS" in pre-signed URL`,
  },
  {
    name: 'scheme: ftp',
    make: U((u) => replaceOnce(u, 'https://', 'ftp://')),
    check: 'scheme',
    message: `${P}unexpected scheme "ftp" in pre-signed URL`,
  },
  {
    name: 'scheme: https:/ (one slash)',
    make: U((u) => replaceOnce(u, 'https://', 'https:/')),
    check: 'url',
    message: `${P}pre-signed URL must start with "https://"`,
  },
  {
    name: 'scheme: https:\\\\',
    make: U((u) => replaceOnce(u, 'https://', 'https:\\\\')),
    check: 'url',
    message: `${P}pre-signed URL must start with "https://"`,
  },
  {
    name: 'scheme: https:/// (empty authority)',
    make: U((u) => replaceOnce(u, 'https://', 'https:///')),
    check: 'host',
    message: `${P}pre-signed URL has an empty host`,
  },
  {
    name: 'scheme: none',
    make: U((u) => replaceOnce(u, 'https://', '')),
    check: 'url',
    message: `${P}pre-signed URL is not an absolute URL: missing protocol scheme`,
  },
  {
    name: 'scheme: protocol-relative //host',
    make: U((u) => replaceOnce(u, 'https://', '//')),
    check: 'url',
    message: `${P}pre-signed URL is not an absolute URL: missing protocol scheme`,
  },

  // ---- action, version, algorithm ------------------------------------------------------------
  {
    name: 'action: AssumeRole',
    make: U((u) => setParam(u, 'Action', 'AssumeRole')),
    check: 'action',
    message: `${P}unexpected action parameter in pre-signed URL`,
  },
  {
    name: 'action: lower-case value',
    make: U((u) => setParam(u, 'Action', 'getcalleridentity')),
    check: 'action',
    message: `${P}unexpected action parameter in pre-signed URL`,
  },
  {
    name: 'action: missing',
    make: U((u) => dropParam(u, 'Action')),
    check: 'action',
    message: `${P}unexpected action parameter in pre-signed URL`,
  },
  {
    name: 'version: 2011-06-16',
    make: U((u) => setParam(u, 'Version', '2011-06-16')),
    check: 'version',
    message: `${P}unexpected Version parameter "2011-06-16" in pre-signed URL, expected "2011-06-15"`,
  },
  {
    name: 'version: missing',
    make: U((u) => dropParam(u, 'Version')),
    check: 'version',
    message: `${P}Version parameter must be present in pre-signed URL`,
  },
  {
    name: 'algorithm: AWS4-HMAC-SHA1',
    make: U((u) => setParam(u, 'X-Amz-Algorithm', 'AWS4-HMAC-SHA1')),
    check: 'algorithm',
    message: `${P}unexpected X-Amz-Algorithm "AWS4-HMAC-SHA1" in pre-signed URL, expected "AWS4-HMAC-SHA256"`,
  },
  {
    name: 'algorithm: SigV4a',
    make: U((u) => setParam(u, 'X-Amz-Algorithm', 'AWS4-ECDSA-P256-SHA256')),
    check: 'algorithm',
    message: `${P}unexpected X-Amz-Algorithm "AWS4-ECDSA-P256-SHA256" in pre-signed URL, expected "AWS4-HMAC-SHA256"`,
  },
  {
    name: 'algorithm: missing',
    make: U((u) => dropParam(u, 'X-Amz-Algorithm')),
    check: 'algorithm',
    message: `${P}X-Amz-Algorithm parameter must be present in pre-signed URL`,
  },

  // ---- signed headers ------------------------------------------------------------------------
  {
    name: 'signed headers: x-k8s-aws-id missing',
    make: U((u) => setParam(u, 'X-Amz-SignedHeaders', 'host')),
    check: 'signed-headers',
    message: `${P}client did not sign the x-k8s-aws-id header in the pre-signed URL`,
  },
  {
    name: 'signed headers: host missing',
    make: U((u) => setParam(u, 'X-Amz-SignedHeaders', 'x-k8s-aws-id')),
    check: 'signed-headers',
    message: `${P}client did not sign the host header in the pre-signed URL`,
  },
  {
    name: 'signed headers: parameter missing',
    make: U((u) => dropParam(u, 'X-Amz-SignedHeaders')),
    check: 'signed-headers',
    message: `${P}client did not sign the x-k8s-aws-id header in the pre-signed URL`,
  },
  {
    name: 'signed headers: extra amz-sdk-request',
    make: U((u) => setParam(u, 'X-Amz-SignedHeaders', 'amz-sdk-request%3Bhost%3Bx-k8s-aws-id')),
    check: 'signed-headers',
    message: `${P}signed header "amz-sdk-request" cannot be reproduced by the server; ${ONLY_SIGN}`,
  },
  {
    name: 'signed headers: different order',
    make: U((u) => setParam(u, 'X-Amz-SignedHeaders', 'x-k8s-aws-id%3Bhost')),
    check: 'signed-headers',
    message: `${P}X-Amz-SignedHeaders must be exactly "host;x-k8s-aws-id"`,
  },
  {
    name: 'signed headers: upper-case X-K8S-AWS-ID',
    make: U((u) => setParam(u, 'X-Amz-SignedHeaders', 'host%3BX-K8S-AWS-ID')),
    check: 'signed-headers',
    message: `${P}signed header "X-K8S-AWS-ID" cannot be reproduced by the server; ${ONLY_SIGN}`,
  },
  {
    name: 'signed headers: upper-case Host',
    make: U((u) => setParam(u, 'X-Amz-SignedHeaders', 'Host%3Bx-k8s-aws-id')),
    check: 'signed-headers',
    message: `${P}client did not sign the host header in the pre-signed URL`,
  },
  {
    name: 'signed headers: host twice',
    make: U((u) => setParam(u, 'X-Amz-SignedHeaders', 'host%3Bhost%3Bx-k8s-aws-id')),
    check: 'signed-headers',
    message: `${P}X-Amz-SignedHeaders must be exactly "host;x-k8s-aws-id"`,
  },

  // ---- dates ---------------------------------------------------------------------------------
  {
    name: 'date: stale by 15 min + 1 s',
    make: U((u) => setParam(u, 'X-Amz-Date', '20240501T114459Z')),
    check: 'expired',
    message: `${P}X-Amz-Date parameter is expired (15 minute expiration) 2024-05-01 11:44:59 +0000 UTC`,
  },
  {
    name: 'date: future by 15 min + 1 s',
    make: U((u) => setParam(u, 'X-Amz-Date', '20240501T121501Z')),
    check: 'future',
    message: `${P}X-Amz-Date parameter is more than 15 minutes in the future 2024-05-01 12:15:01 +0000 UTC`,
  },
  {
    name: 'date: hour 25',
    make: U((u) => setParam(u, 'X-Amz-Date', '20240501T250000Z')),
    check: 'date',
    message: BAD_DATE('20240501T250000Z'),
  },
  {
    name: 'date: minute 60',
    make: U((u) => setParam(u, 'X-Amz-Date', '20240501T126000Z')),
    check: 'date',
    message: BAD_DATE('20240501T126000Z'),
  },
  {
    name: 'date: leap second',
    make: U((u) => setParam(u, 'X-Amz-Date', '20240501T115960Z')),
    check: 'date',
    message: BAD_DATE('20240501T115960Z'),
  },
  {
    name: 'date: 30 February (credential scope moved along)',
    make: U((u) =>
      setParam(
        setParam(u, 'X-Amz-Date', '20240230T120000Z'),
        'X-Amz-Credential',
        cred(ALICE.accessKeyId, '20240230', 'us-west-2'),
      ),
    ),
    check: 'date',
    message: BAD_DATE('20240230T120000Z'),
  },
  {
    name: 'date: fractional seconds (Go accepts them)',
    make: U((u) => setParam(u, 'X-Amz-Date', '20240501T120000.5Z')),
    check: 'date',
    message: BAD_DATE('20240501T120000.5Z'),
  },
  {
    name: 'date: lower-case t and z',
    make: U((u) => setParam(u, 'X-Amz-Date', '20240501t120000z')),
    check: 'date',
    message: BAD_DATE('20240501t120000z'),
  },
  {
    name: 'date: missing Z',
    make: U((u) => setParam(u, 'X-Amz-Date', '20240501T120000')),
    check: 'date',
    message: BAD_DATE('20240501T120000'),
  },
  {
    name: 'date: ISO 8601 extended format',
    make: U((u) => setParam(u, 'X-Amz-Date', '2024-05-01T12%3A00%3A00Z')),
    check: 'date',
    message: BAD_DATE('2024-05-01T12:00:00Z'),
  },
  {
    name: 'date: missing',
    make: U((u) => dropParam(u, 'X-Amz-Date')),
    check: 'date',
    message: `${P}X-Amz-Date parameter must be present in pre-signed URL`,
  },

  // ---- credential scope ----------------------------------------------------------------------
  {
    name: 'credential: wrong region',
    make: U((u) => setParam(u, 'X-Amz-Credential', cred(ALICE.accessKeyId, '20240501', 'us-east-1'))),
    check: 'credential',
    message: `${P}X-Amz-Credential region "us-east-1" does not match the STS host (expected "us-west-2")`,
  },
  {
    name: 'credential: host swapped to sts.amazonaws.com (scope still us-west-2)',
    make: U((u) => setHost(u, 'sts.amazonaws.com')),
    check: 'credential',
    message: `${P}X-Amz-Credential region "us-west-2" does not match the STS host (expected "us-east-1")`,
  },
  {
    name: 'credential: host swapped to a FIPS host of another region',
    make: U((u) => setHost(u, 'sts-fips.us-east-1.amazonaws.com')),
    check: 'credential',
    message: `${P}X-Amz-Credential region "us-west-2" does not match the STS host (expected "us-east-1")`,
  },
  {
    name: 'credential: wrong service',
    make: U((u) => setParam(u, 'X-Amz-Credential', cred(ALICE.accessKeyId, '20240501', 'us-west-2', 's3'))),
    check: 'credential',
    message: `${P}X-Amz-Credential scope must end with /sts/aws4_request`,
  },
  {
    name: 'credential: wrong terminator',
    make: U((u) =>
      setParam(u, 'X-Amz-Credential', cred(ALICE.accessKeyId, '20240501', 'us-west-2', 'sts', 'aws4_requests')),
    ),
    check: 'credential',
    message: `${P}X-Amz-Credential scope must end with /sts/aws4_request`,
  },
  {
    name: 'credential: wrong day',
    make: U((u) => setParam(u, 'X-Amz-Credential', cred(ALICE.accessKeyId, '20240430', 'us-west-2'))),
    check: 'credential',
    message: `${P}X-Amz-Credential date 20240430 does not match X-Amz-Date`,
  },
  {
    name: 'credential: lower-case access key id',
    make: U((u) => setParam(u, 'X-Amz-Credential', cred(ALICE.accessKeyId.toLowerCase(), '20240501', 'us-west-2'))),
    check: 'credential',
    message: `${P}X-Amz-Credential has a malformed access key id`,
  },
  {
    name: 'credential: 15-character access key id',
    make: U((u) => setParam(u, 'X-Amz-Credential', cred(ALICE.accessKeyId.slice(0, 15), '20240501', 'us-west-2'))),
    check: 'credential',
    message: `${P}X-Amz-Credential has a malformed access key id`,
  },
  {
    name: 'credential: empty access key id',
    make: U((u) => setParam(u, 'X-Amz-Credential', cred('', '20240501', 'us-west-2'))),
    check: 'credential',
    message: `${P}X-Amz-Credential has a malformed access key id`,
  },
  {
    name: 'credential: missing the terminator part',
    make: U((u) => setParam(u, 'X-Amz-Credential', rawParam(u, 'X-Amz-Credential').replace('%2Faws4_request', ''))),
    check: 'credential',
    message: CRED_SHAPE,
  },
  {
    name: 'credential: an extra part',
    make: U((u) => setParam(u, 'X-Amz-Credential', `${rawParam(u, 'X-Amz-Credential')}%2Fx`)),
    check: 'credential',
    message: CRED_SHAPE,
  },
  {
    name: 'credential: access key id only',
    make: U((u) => setParam(u, 'X-Amz-Credential', ALICE.accessKeyId)),
    check: 'credential',
    message: CRED_SHAPE,
  },
  {
    name: 'credential: missing',
    make: U((u) => dropParam(u, 'X-Amz-Credential')),
    check: 'credential',
    message: `${P}X-Amz-Credential parameter must be present in pre-signed URL`,
  },

  // ---- signature -----------------------------------------------------------------------------
  {
    name: 'signature: upper-case hex',
    make: U((u) => setParam(u, 'X-Amz-Signature', rawParam(u, 'X-Amz-Signature').toUpperCase())),
    check: 'signature',
    message: BAD_SIG,
  },
  {
    name: 'signature: 63 characters',
    make: U((u) => setParam(u, 'X-Amz-Signature', rawParam(u, 'X-Amz-Signature').slice(1))),
    check: 'signature',
    message: BAD_SIG,
  },
  {
    name: 'signature: 65 characters',
    make: U((u) => setParam(u, 'X-Amz-Signature', `${rawParam(u, 'X-Amz-Signature')}0`)),
    check: 'signature',
    message: BAD_SIG,
  },
  {
    name: 'signature: not hex',
    make: U((u) => setParam(u, 'X-Amz-Signature', 'z'.repeat(64))),
    check: 'signature',
    message: BAD_SIG,
  },
  {
    name: 'signature: missing',
    make: U((u) => dropParam(u, 'X-Amz-Signature')),
    check: 'signature',
    message: `${P}X-Amz-Signature parameter must be present in pre-signed URL`,
  },

  // ---- expires -------------------------------------------------------------------------------
  {
    name: 'expires: absent (upstream refuses it too)',
    make: U((u) => dropParam(u, 'X-Amz-Expires')),
    check: 'expires',
    message: `${P}X-Amz-Expires parameter must be present in pre-signed URL`,
  },
  {
    name: 'expires: 9999',
    make: U((u) => setParam(u, 'X-Amz-Expires', '9999')),
    check: 'expires',
    message: BAD_EXPIRES('9999'),
  },
  {
    name: 'expires: 901',
    make: U((u) => setParam(u, 'X-Amz-Expires', '901')),
    check: 'expires',
    message: BAD_EXPIRES('901'),
  },
  {
    name: 'expires: -1',
    make: U((u) => setParam(u, 'X-Amz-Expires', '-1')),
    check: 'expires',
    message: BAD_EXPIRES('-1'),
  },
  {
    name: 'expires: +60 (encoded %2B)',
    make: U((u) => setParam(u, 'X-Amz-Expires', '%2B60')),
    check: 'expires',
    message: BAD_EXPIRES('+60'),
  },
  {
    name: 'expires: +60 (literal "+")',
    make: U((u) => setParam(u, 'X-Amz-Expires', '+60')),
    check: 'query',
    message: NOT_CANONICAL('X-Amz-Expires'),
  },
  {
    name: 'expires: 60.0',
    make: U((u) => setParam(u, 'X-Amz-Expires', '60.0')),
    check: 'expires',
    message: BAD_EXPIRES('60.0'),
  },
  {
    name: 'expires: 4 digits (0060)',
    make: U((u) => setParam(u, 'X-Amz-Expires', '0060')),
    check: 'expires',
    message: BAD_EXPIRES('0060'),
  },
  {
    name: 'expires: empty',
    make: U((u) => setParam(u, 'X-Amz-Expires', '')),
    check: 'expires',
    message: BAD_EXPIRES(''),
  },

  // ---- session token -------------------------------------------------------------------------
  {
    name: 'security token: empty',
    make: T((u) => setParam(u, 'X-Amz-Security-Token', '')),
    check: 'security-token',
    message: `${P}X-Amz-Security-Token must be non-empty base64`,
  },
  {
    name: 'security token: base64url "-" instead of "+"',
    make: T((u) => setParam(u, 'X-Amz-Security-Token', rawParam(u, 'X-Amz-Security-Token').replace('%2B', '-'))),
    check: 'security-token',
    message: `${P}X-Amz-Security-Token must be non-empty base64`,
  },
  {
    name: 'security token: padding in the middle',
    make: T((u) => setParam(u, 'X-Amz-Security-Token', `AB%3DCD${rawParam(u, 'X-Amz-Security-Token')}`)),
    check: 'security-token',
    message: `${P}X-Amz-Security-Token must be non-empty base64`,
  },
  {
    name: 'security token: "!" (%21)',
    make: T((u) => setParam(u, 'X-Amz-Security-Token', `${rawParam(u, 'X-Amz-Security-Token')}%21`)),
    check: 'security-token',
    message: `${P}X-Amz-Security-Token must be non-empty base64`,
  },

  // ---- size, prefix and base64 ---------------------------------------------------------------
  {
    name: 'size: 4097 characters',
    make: TOK((t) => t + 'A'.repeat(4097 - t.length)),
    check: 'size',
    message: `${P}token is too large`,
  },
  {
    name: 'prefix: k8s-aws-v2.',
    make: TOK((t) => replaceOnce(t, 'k8s-aws-v1.', 'k8s-aws-v2.')),
    check: 'prefix',
    message: `${P}token is missing expected "k8s-aws-v1." prefix`,
  },
  {
    name: 'prefix: upper case',
    make: TOK((t) => replaceOnce(t, 'k8s-aws-v1.', 'K8S-AWS-V1.')),
    check: 'prefix',
    message: `${P}token is missing expected "k8s-aws-v1." prefix`,
  },
  {
    name: 'prefix: leading space',
    make: TOK((t) => ` ${t}`),
    check: 'prefix',
    message: `${P}token is missing expected "k8s-aws-v1." prefix`,
  },
  {
    name: 'prefix: the bare URL as a token',
    make: (b) => b.url,
    check: 'prefix',
    message: `${P}token is missing expected "k8s-aws-v1." prefix`,
  },
  {
    name: 'base64: prefix only',
    make: () => 'k8s-aws-v1.',
    check: 'encoding',
    message: `${P}token has no content after the prefix`,
  },
  {
    name: 'base64: "==" padding',
    make: TOK((t) => `${t}==`),
    check: 'encoding',
    message: `${P}illegal base64 data at input byte 482: ${B64_ALPHABET}`,
  },
  {
    name: 'base64: newline (MIME line break)',
    make: TOK((t) => insertInBody(t, 76, '\n')),
    check: 'encoding',
    message: `${P}illegal base64 data at input byte 76: ${B64_ALPHABET}`,
  },
  {
    name: 'base64: CRLF',
    make: TOK((t) => insertInBody(t, 76, '\r\n')),
    check: 'encoding',
    message: `${P}illegal base64 data at input byte 76: ${B64_ALPHABET}`,
  },
  {
    name: 'base64: trailing newline',
    make: TOK((t) => `${t}\n`),
    check: 'encoding',
    message: `${P}illegal base64 data at input byte 482: ${B64_ALPHABET}`,
  },
  {
    name: 'base64: space',
    make: TOK((t) => insertInBody(t, 100, ' ')),
    check: 'encoding',
    message: `${P}illegal base64 data at input byte 100: ${B64_ALPHABET}`,
  },
  {
    name: 'base64: "+" of the standard alphabet',
    make: TOK((t) => replaceBodyChar(t, 10, '+')),
    check: 'encoding',
    message: `${P}illegal base64 data at input byte 10: ${B64_ALPHABET}`,
  },
  {
    name: 'base64: "/" of the standard alphabet',
    make: TOK((t) => replaceBodyChar(t, 20, '/')),
    check: 'encoding',
    message: `${P}illegal base64 data at input byte 20: ${B64_ALPHABET}`,
  },
  {
    name: 'base64: non-ASCII character',
    make: TOK((t) => replaceBodyChar(t, 30, '\u00e9')),
    check: 'encoding',
    message: `${P}illegal base64 data at input byte 30: ${B64_ALPHABET}`,
  },
  {
    name: 'base64: non-zero trailing bits',
    make: TOK((t) => replaceBodyChar(t, 481, 'B')),
    check: 'encoding',
    message: `${P}illegal base64 data: non-zero trailing bits`,
  },
  {
    name: 'base64: truncated (length % 4 == 1)',
    make: TOK((t) => t.slice(0, -1)),
    check: 'encoding',
    message: `${P}illegal base64 data at input byte 480: truncated`,
  },

  // ---- bytes of the decoded URL --------------------------------------------------------------
  {
    name: 'decoded: UTF-8 in a value',
    make: U((u) => setParam(u, 'Action', 'GetCallerIdentit\u00e9')),
    check: 'url',
    message: NON_ASCII,
  },
  {
    name: 'decoded: a raw Latin-1 byte',
    make: BYTES((u) => withByte(u, '&X-Amz-Signature=', 0xe9)),
    check: 'url',
    message: NON_ASCII,
  },
  {
    name: 'decoded: NUL byte',
    make: BYTES((u) => withByte(u, '&X-Amz-Signature=', 0x00)),
    check: 'url',
    message: NON_ASCII,
  },
  {
    name: 'decoded: tab',
    make: BYTES((u) => withByte(u, '&X-Amz-Signature=', 0x09)),
    check: 'url',
    message: NON_ASCII,
  },
  { name: 'decoded: space', make: U((u) => replaceOnce(u, '?Action=', '?Action= ')), check: 'url', message: NON_ASCII },
  {
    name: 'decoded: DEL',
    make: BYTES((u) => withByte(u, '&X-Amz-Signature=', 0x7f)),
    check: 'url',
    message: NON_ASCII,
  },
  {
    name: 'decoded: full-width solidus as the path',
    make: U((u) => replaceOnce(u, '.com/?', '.com\uff0f?')),
    check: 'url',
    message: NON_ASCII,
  },
]

describe('attack suite: verifyToken refuses every malformed or malicious token locally', () => {
  let fake: FakeSts
  let transport: ReturnType<typeof createStsTransport>
  let base: Base
  const opts = (partition = 'aws'): VerifyOptions => ({
    clusterId: CLUSTER_ID,
    partition,
    stsEndpoint: fake.url,
    timeoutMs: 5_000,
  })
  const deps = () => ({ now: () => NOW, sts: transport.send })

  beforeAll(async () => {
    fake = await startFakeSts({ now: () => NOW, principals: [ALICE, TEMP] })
    transport = createStsTransport({ maxConnections: 2 })
    base = {
      url: await presignedUrl(),
      token: await presignedToken(),
      tempUrl: await presignedUrl({ principal: TEMP }),
      tempToken: await presignedToken({ principal: TEMP }),
    }
  })
  afterAll(async () => {
    await transport?.close()
    await fake?.close()
  })

  it('starts from the pinned, genuinely valid vector', () => {
    expect(base.url).toBe(
      `https://${HOST}/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256` +
        `&X-Amz-Credential=${cred(ALICE.accessKeyId, '20240501', 'us-west-2')}&X-Amz-Date=${NOW_AMZ}&X-Amz-Expires=60` +
        '&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id' +
        '&X-Amz-Signature=51e940157128db390387c3507e49e5fc36700b35aa703fca578beb58b6a00f20',
    )
    // The base64 rows rely on these: body of 482 characters, whose last one carries trailing bits.
    expect(base.token.length - 'k8s-aws-v1.'.length).toBe(482)
    expect(base.token.at(-1)).toBe('A')
    expect(rawParam(base.tempUrl, 'X-Amz-Security-Token')).toBe(
      'IQoJb3JpZ2luX2Vj%2Bsession%2Ftoken%2Bwith%2Fspecial%3D%3D',
    )
  })

  it('has at least 50 distinct rows, each a real mutation', () => {
    expect(ROWS.length).toBeGreaterThanOrEqual(50)
    expect(new Set(ROWS.map((r) => r.name)).size).toBe(ROWS.length)
    for (const row of ROWS) {
      const token = row.make(base)
      if (row.partition === undefined) expect(token, row.name).not.toBe(base.token)
      expect(token, row.name).not.toBe(base.tempToken)
    }
  })

  describe('rejected before STS', () => {
    beforeAll(() => fake.resetCalls())
    afterAll(() => {
      expect(fake.calls).toEqual({ getCallerIdentity: 0, assumeRole: 0, rejected: 0, total: 0 })
    })

    it.each(ROWS)('$name', async (row) => {
      const token = row.make(base)
      const err = await rejectionOf(() => verifyToken(token, opts(row.partition), deps()))
      expectTokenInvalid(err, row.check, row.message)
      // Messages never echo the token or the signature.
      expect((err as Error).message).not.toContain(token)
      expect((err as Error).message).not.toContain(rawParam(base.url, 'X-Amz-Signature'))
      expect(fake.calls.total).toBe(0)
    })
  })

  describe('positive controls (the same transport and fake STS do answer)', () => {
    beforeEach(() => fake.resetCalls())

    it('the unmutated long-term-key token verifies, with one GetCallerIdentity', async () => {
      const identity = await verifyToken(base.token, opts(), deps())
      expect(identity).toEqual({
        arn: ALICE.arn,
        canonicalArn: ALICE.arn,
        accountId: ALICE.account,
        userId: ALICE.userId,
        sessionName: '',
        accessKeyId: ALICE.accessKeyId,
        stsEndpoint: HOST,
      })
      expect(fake.calls.getCallerIdentity).toBe(1)
      expect(fake.calls.total).toBe(1)
    })

    it('the unmutated session-token token verifies as the assumed role', async () => {
      const identity = await verifyToken(base.tempToken, opts(), deps())
      expect(identity).toMatchObject({
        arn: TEMP.arn,
        canonicalArn: 'arn:aws:iam::444455556666:role/Admin',
        accountId: TEMP.account,
        userId: 'AROAKIATESTADMIN0001',
        sessionName: 'kia-session',
        accessKeyId: TEMP.accessKeyId,
      })
      expect(fake.calls.getCallerIdentity).toBe(1)
    })

    it('a well-formed token whose only flaw needs the secret (other cluster) does reach STS and is refused', async () => {
      const other = await presignedToken({ clusterId: 'some-other-cluster' })
      const err = await rejectionOf(() => verifyToken(other, opts(), deps()))
      expect(err).toBeInstanceOf(StsRejected)
      expect((err as StsRejected).stsCode).toBe('SignatureDoesNotMatch')
      expect(fake.calls.getCallerIdentity).toBe(1)
    })
  })
})
