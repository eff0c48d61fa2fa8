// Token wire format: `k8s-aws-v1.` + unpadded base64url of the presigned URL, decoded strictly.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { TokenInvalid } from '../../src/shared/errors.js'
import { MAX_TOKEN_LENGTH, TOKEN_PREFIX, decodeToken, encodeToken } from '../../src/token/format.js'
import { INVALID as P, expectTokenInvalid, presignedUrl, toToken } from '../support/tokens.js'

const B64_ALPHABET = 'only unpadded base64url (A-Z a-z 0-9 - _) is accepted'
const NOT_A_URL = `${P}decoded token is not a URL: it contains non-printable or non-ASCII bytes`

function failure(token: string): unknown {
  try {
    decodeToken(token)
  } catch (err) {
    return err
  }
  return expect.fail(`decodeToken accepted ${JSON.stringify(token.slice(0, 40))}`)
}

/** Printable ASCII without space: the only bytes decodeToken lets through. */
const printable = fc.string({
  unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
  minLength: 1,
})

describe('encodeToken / decodeToken round trip', () => {
  it('round-trips a real presigned URL, and matches upstream T(url)', async () => {
    const url = await presignedUrl()
    const token = encodeToken(url)
    expect(token).toBe(toToken(url))
    expect(token.startsWith(TOKEN_PREFIX)).toBe(true)
    expect(token).not.toMatch(/[=+/]/)
    expect(decodeToken(token)).toBe(url)
  })

  it('round-trips the upstream known-answer URL to the upstream token', () => {
    const url =
      'https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256' +
      '&X-Amz-Credential=ASIAR2TG44V6AS3ZZE7C%2F20230428%2Fus-west-2%2Fsts%2Faws4_request&X-Amz-Date=20230428T000000Z' +
      '&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id' +
      '&X-Amz-Signature=e211dba77aba9dc44b0b6be38b8eaad092599c5157f6314444c5b9d85747f5ce'
    expect(encodeToken(url)).toBe(
      `k8s-aws-v1.${Buffer.from(url).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')}`,
    )
    expect(decodeToken(encodeToken(url))).toBe(url)
  })

  it('round-trips every printable ASCII string (all three base64 tail lengths)', () => {
    fc.assert(
      fc.property(printable, (s) => {
        const token = encodeToken(s)
        expect(decodeToken(token)).toBe(s)
        // Exactly one encoding per URL: re-encoding the decoded value gives the same token.
        expect(encodeToken(decodeToken(token))).toBe(token)
      }),
      { numRuns: 300 },
    )
  })
})

describe('decodeToken strict rules', () => {
  it('size: accepts up to 4096 characters and refuses 4097 before anything else', () => {
    expect(MAX_TOKEN_LENGTH).toBe(4096)
    const body4095 = 'k8s-aws-v1.' + Buffer.from('h'.repeat(3063)).toString('base64url') // 4084 chars, %4 == 0
    expect(body4095.length).toBe(4095)
    expect(decodeToken(body4095)).toBe('h'.repeat(3063))
    // 4096 characters is not refused for its size (a 4085-character body is just truncated base64).
    const at4096 = `${body4095}A`
    expect((failure(at4096) as TokenInvalid).check).toBe('encoding')
    expectTokenInvalid(failure(`${at4096}A`), 'size', `${P}token is too large`)
    // upstream 8.1 #1: 4097 NUL characters
    expectTokenInvalid(failure('\0'.repeat(4097)), 'size', `${P}token is too large`)
  })

  it('prefix: exactly "k8s-aws-v1." at the start', () => {
    const msg = `${P}token is missing expected "k8s-aws-v1." prefix`
    for (const t of [
      '',
      'k8s-aws-v1',
      'k8s-aws-v2.aGVsbG8',
      'K8S-AWS-V1.aGVsbG8',
      ' k8s-aws-v1.aGVsbG8',
      'aGVsbG8',
      'k8s-aws-v1:aGVsbG8',
    ]) {
      expectTokenInvalid(failure(t), 'prefix', msg)
    }
  })

  it('body: must not be empty', () => {
    expectTokenInvalid(failure('k8s-aws-v1.'), 'encoding', `${P}token has no content after the prefix`)
  })

  it.each([
    ['padding "="', 'aGVsbG8=', 7],
    ['padding "=="', 'aGk==', 3],
    ['standard alphabet "+"', 'a+Vs', 1],
    ['standard alphabet "/"', 'aGV/', 3],
    ['space', 'aGVs bG8', 4],
    ['newline', 'aGVs\nbG8', 4],
    ['carriage return', 'aGVs\rbG8', 4],
    ['tab', '\taGVsbG8', 0],
    ['trailing newline', 'aGVsbG8\n', 7],
    ['non-ASCII letter', 'aGVsbG\u00e9', 6],
    ['NUL', 'aGVs\0bG8', 4],
    ['percent-encoding', 'aGVs%3D', 4],
  ])('alphabet: refuses %s at its exact byte offset', (_name, body, at) => {
    expectTokenInvalid(
      failure(`k8s-aws-v1.${body}`),
      'encoding',
      `${P}illegal base64 data at input byte ${at}: ${B64_ALPHABET}`,
    )
  })

  it('length: a body of length % 4 == 1 is truncated', () => {
    // upstream 8.1 #3: "decodingerror" (13 characters)
    expectTokenInvalid(
      failure('k8s-aws-v1.decodingerror'),
      'encoding',
      `${P}illegal base64 data at input byte 12: truncated`,
    )
    expectTokenInvalid(failure('k8s-aws-v1.a'), 'encoding', `${P}illegal base64 data at input byte 0: truncated`)
    expectTokenInvalid(
      failure('k8s-aws-v1.aGVsbG8hh'),
      'encoding',
      `${P}illegal base64 data at input byte 8: truncated`,
    )
  })

  it('trailing bits: the unused low bits of the last character must be zero (one string per URL)', () => {
    // "hi" = aGk (2 bytes, 2 spare bits); "h" = aA (1 byte, 4 spare bits)
    expect(decodeToken('k8s-aws-v1.aGk')).toBe('hi')
    expect(decodeToken('k8s-aws-v1.aA')).toBe('h')
    for (const body of ['aGl', 'aGm', 'aGn', 'aB', 'aP', 'a_']) {
      expectTokenInvalid(failure(`k8s-aws-v1.${body}`), 'encoding', `${P}illegal base64 data: non-zero trailing bits`)
    }
  })

  it('trailing bits, for every base64url text: refused exactly when re-encoding its bytes gives another text', () => {
    const char = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_')
    fc.assert(
      fc.property(
        fc.array(char, { minLength: 1, maxLength: 40 }).filter((a) => a.length % 4 !== 1),
        (chars) => {
          const body = chars.join('')
          let message = ''
          try {
            decodeToken(`k8s-aws-v1.${body}`)
          } catch (err) {
            message = (err as Error).message
          }
          const canonical = Buffer.from(body, 'base64url').toString('base64url') === body
          expect(message.endsWith('non-zero trailing bits'), body).toBe(!canonical)
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('bytes: only printable ASCII (0x21-0x7e) may be decoded', () => {
    for (const byte of [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x7f, 0x80, 0xc3, 0xff]) {
      expectTokenInvalid(failure(toToken(Uint8Array.from([0x68, byte, 0x69]))), 'url', NOT_A_URL)
    }
    expectTokenInvalid(failure(toToken('https://sts.\u0430mazonaws.com/')), 'url', NOT_A_URL) // Cyrillic a
    expect(decodeToken(toToken('!~'))).toBe('!~')
  })

  it('rejects only with TokenInvalid, whatever the input', () => {
    // Any code point, lone surrogates included. (fast-check's own `unit: 'binary'` lazily builds a
    // reverse map of all 1.1M code points, which costs over a second.)
    const anyCodePoint = fc.integer({ min: 0, max: 0x10ffff }).map((c) => String.fromCodePoint(c))
    const inputs = [
      fc.string(),
      fc.string({ unit: anyCodePoint }),
      fc.string({ unit: anyCodePoint }).map((s) => `k8s-aws-v1.${s}`),
      fc.string({ unit: 'binary-ascii' }).map((s) => `k8s-aws-v1.${s}`),
      fc.base64String().map((s) => `k8s-aws-v1.${s}`),
    ]
    for (const input of inputs) {
      fc.assert(
        fc.property(input, (s) => {
          try {
            decodeToken(s)
          } catch (err) {
            if (!(err instanceof TokenInvalid) || !['size', 'prefix', 'encoding', 'url'].includes(err.check)) throw err
          }
        }),
        { numRuns: 300 },
      )
    }
  })
})
