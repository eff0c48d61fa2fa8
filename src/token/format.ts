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
  const bytes = Buffer.from(body, 'base64url')
  if (bytes.toString('base64url') !== body) {
    throw new TokenInvalid('encoding', 'illegal base64 data: non-zero trailing bits')
  }
  for (const b of bytes) {
    // A presigned URL is printable ASCII; anything else (UTF-8, controls, spaces) is smuggling.
    if (b < 0x21 || b > 0x7e) {
      throw new TokenInvalid('url', 'decoded token is not a URL: it contains non-printable or non-ASCII bytes')
    }
  }
  return bytes.toString('latin1')
}
