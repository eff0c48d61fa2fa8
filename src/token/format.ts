import { TokenInvalid } from '../shared/errors.js'

/** Every token starts with this; the rest is the unpadded base64url of a presigned STS URL. */
export const TOKEN_PREFIX = 'k8s-aws-v1.'

/** Upstream's limit on the whole token string, prefix included. */
export const MAX_TOKEN_LENGTH = 4096

const BASE64URL_UNPADDED = /^[A-Za-z0-9_-]*$/

export function encodeToken(presignedUrl: string): string {
  return TOKEN_PREFIX + Buffer.from(presignedUrl, 'utf8').toString('base64url')
}

/**
 * Decodes a token to the presigned URL it carries. Strict where Go's decoder is lenient: no padding,
 * no whitespace or newlines, no characters of the standard alphabet, no impossible length, and the
 * unused trailing bits must be zero (so exactly one string encodes each URL).
 */
export function decodeToken(token: string): string {
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenInvalid('size', 'token is too large')
  if (!token.startsWith(TOKEN_PREFIX)) {
    throw new TokenInvalid('prefix', `token is missing expected "${TOKEN_PREFIX}" prefix`)
  }
  const body = token.slice(TOKEN_PREFIX.length)
  if (body.length === 0) throw new TokenInvalid('encoding', 'token has no content after the prefix')
  if (!BASE64URL_UNPADDED.test(body)) {
    const at = body.search(/[^A-Za-z0-9_-]/)
    throw new TokenInvalid(
      'encoding',
      `illegal base64 data at input byte ${at}: only unpadded base64url (A-Z a-z 0-9 - _) is accepted`,
    )
  }
  if (body.length % 4 === 1) {
    throw new TokenInvalid('encoding', `illegal base64 data at input byte ${body.length - 1}: truncated`)
  }
  // The bits the last character carries beyond the last whole byte must be zero, or several texts
  // would decode to the same URL (checked on that one character: no re-encoding of the whole token).
  const spare = body.length % 4 === 2 ? 0x0f : body.length % 4 === 3 ? 0x03 : 0
  if ((base64urlValue(body.charCodeAt(body.length - 1)) & spare) !== 0) {
    throw new TokenInvalid('encoding', 'illegal base64 data: non-zero trailing bits')
  }
  const url = Buffer.from(body, 'base64url').toString('latin1')
  // A presigned URL is printable ASCII; anything else (UTF-8, controls, spaces) is smuggling.
  if (NOT_PRINTABLE.test(url)) {
    throw new TokenInvalid('url', 'decoded token is not a URL: it contains non-printable or non-ASCII bytes')
  }
  return url
}

const NOT_PRINTABLE = /[^\x21-\x7e]/

/** The 6-bit value of a base64url character (the text was checked to hold only those). */
function base64urlValue(c: number): number {
  if (c >= 0x61) return c - 0x61 + 26 // a-z
  if (c >= 0x41) return c === 0x5f ? 63 : c - 0x41 // A-Z, _
  return c === 0x2d ? 62 : c - 0x30 + 52 // -, 0-9
}
