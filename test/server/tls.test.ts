import { execFileSync } from 'node:child_process'
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, get } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConfigInvalid } from '../../src/shared/errors.js'
import {
  generateServingCert,
  loadOrCreateServingCert,
  servingCertProblems,
  servingCertSans,
} from '../../src/server/tls.js'
import { tool, tempDir } from '../support/cli.js'

const NOW = new Date('2025-06-01T12:00:00Z')

const OPENSSL = tool('openssl')

/** The SANs as Node reports them, IPv6 in canonical form ("IP Address:2001:DB8:0:0:0:0:1:0" -> 2001:db8::1:0). */
function certSans(certPem: string): { ips: string[]; dns: string[] } {
  const ips: string[] = []
  const dns: string[] = []
  for (const entry of (new X509Certificate(certPem).subjectAltName ?? '').split(', ').filter(Boolean)) {
    if (entry.startsWith('DNS:')) dns.push(entry.slice(4))
    else if (entry.startsWith('IP Address:')) {
      const ip = entry.slice('IP Address:'.length)
      ips.push(ip.includes(':') ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip)
    } else throw new Error(`unexpected SAN ${entry}`)
  }
  return { ips, dns }
}

function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] })
}

function mode(path: string): number {
  return statSync(path).mode & 0o777
}

function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  return undefined
}

/** Serves with (cert, key) on 127.0.0.1 and makes one verified request; resolves to the body or rejects. */
async function handshake(cert: string, key: string, ca: string, servername: string | undefined): Promise<string> {
  const server = createServer({ cert, key }, (_req, res) => res.end('ok'))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  try {
    return await new Promise<string>((resolve, reject) => {
      const req = get(
        { host: '127.0.0.1', port, path: '/', ca, agent: false, ...(servername === undefined ? {} : { servername }) },
        (res) => {
          let body = ''
          res.setEncoding('utf8').on('data', (s: string) => (body += s))
          res.on('end', () => resolve(body))
        },
      )
      req.on('error', reject)
    })
  } finally {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  }
}

// upstream's pkg/config/certs (certs.go and certs_test.go SAN cases), minus upstream's bugs
describe('servingCertSans', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1', ['127.0.0.1'], []],
    ['192.0.2.1', 'example.com', ['192.0.2.1'], ['example.com']],
    ['::', '2001:db8::1:0', ['2001:db8::1:0'], []],
    ['127.0.0.1', 'localhost', ['127.0.0.1'], ['localhost']],
    ['0.0.0.0', 'localhost', [], ['localhost']],
    ['0.0.0.0', '', [], []],
    ['127.0.0.1', '', ['127.0.0.1'], []],
    ['127.0.0.1', '10.0.0.1', ['127.0.0.1', '10.0.0.1'], []],
    ['::1', '0:0::1', ['::1'], []],
    ['::ffff:0.0.0.0', 'localhost', [], ['localhost']],
    ['::ffff:10.1.2.3', '10.1.2.3', ['10.1.2.3'], []],
  ])('(%s, %j) -> IPs %j, DNS %j', (address, hostname, ips, dns) => {
    expect(servingCertSans(address, hostname)).toEqual({ ips, dns })
  })

  it.each(['localhost', '', '1.2.3', 'fe80::1%eth0', '[::1]', '010.0.0.1'])('address %j is an error', (address) => {
    const err = thrown(() => servingCertSans(address, 'localhost'))
    expect(err).toBeInstanceOf(ConfigInvalid)
    expect((err as Error).message).toBe(`server.address must be an IP address, got ${JSON.stringify(address)}`)
  })

  it.each(['a b', 'host/name', '[::1]', 'fe80::1%eth0', 'héllo.example'])('hostname %j is an error', (hostname) => {
    const err = thrown(() => servingCertSans('127.0.0.1', hostname))
    expect(err).toBeInstanceOf(ConfigInvalid)
    expect((err as Error).message).toContain('server.hostname must be a DNS name or an IP address')
  })
})

describe('generateServingCert', () => {
  it('makes a self-signed ECDSA P-256 CA certificate for serverAuth, valid from now-5m for 100*365 days', async () => {
    const { certPem, keyPem } = await generateServingCert({ address: '127.0.0.1', hostname: 'localhost', now: NOW })
    expect(certPem).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/)
    expect(keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/)

    const node = new X509Certificate(certPem)
    expect(node.subject).toBe('CN=aws-iam-authenticator')
    expect(node.issuer).toBe('CN=aws-iam-authenticator')
    expect(node.ca).toBe(true)
    expect(node.verify(node.publicKey)).toBe(true)
    expect(node.publicKey.asymmetricKeyType).toBe('ec')
    expect(node.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
    expect(node.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1'])
    expect(new Date(node.validFrom).getTime()).toBe(NOW.getTime() - 5 * 60_000)
    expect(new Date(node.validTo).getTime()).toBe(NOW.getTime() + 100 * 365 * 86_400_000)

    // 128 random bits: up to 16 significant bytes; random, so two certificates differ
    expect(node.serialNumber).toMatch(/^[0-9A-F]{2,34}$/)
    expect(node.serialNumber.length).toBeGreaterThanOrEqual(24)
    const other = await generateServingCert({ address: '127.0.0.1', hostname: 'localhost', now: NOW })
    expect(new X509Certificate(other.certPem).serialNumber).not.toBe(node.serialNumber)
    expect(new X509Certificate(other.certPem).fingerprint256).not.toBe(node.fingerprint256)
  })

  it.skipIf(OPENSSL.missing)(
    `has the extensions and criticality openssl expects of a server certificate${OPENSSL.skipNote}`,
    async () => {
      const { certPem } = await generateServingCert({ address: '127.0.0.1', hostname: 'localhost', now: new Date() })
      const text = openssl(['x509', '-noout', '-text'], certPem)
      expect(text).toContain('Signature Algorithm: ecdsa-with-SHA256')
      expect(text).toContain('NIST CURVE: P-256')
      expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE\n/)
      expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign\n/)
      expect(text).toMatch(/X509v3 Extended Key Usage: ?\s+TLS Web Server Authentication\n/)
      expect(text).toMatch(/X509v3 Subject Key Identifier: ?\s+[0-9A-F:]{59}\n/)
      expect(text).toMatch(/X509v3 Subject Alternative Name: ?\s+IP Address:127.0.0.1, DNS:localhost\n/)
      const dir = tempDir()
      try {
        writeFileSync(join(dir, 'cert.pem'), certPem)
        const file = join(dir, 'cert.pem')
        expect(openssl(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', file, file]).trim()).toBe(
          `${file}: OK`,
        )
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  )

  it.each([
    ['127.0.0.1', '127.0.0.1', ['127.0.0.1'], []],
    ['192.0.2.1', 'example.com', ['192.0.2.1'], ['example.com']],
    ['::', '2001:db8::1:0', ['2001:db8::1:0'], []],
    ['127.0.0.1', 'localhost', ['127.0.0.1'], ['localhost']],
  ])('(%s, %s) puts IPs %j and DNS names %j in the certificate', async (address, hostname, ips, dns) => {
    const { certPem } = await generateServingCert({ address, hostname, now: NOW })
    expect(certSans(certPem)).toEqual({ ips, dns })
  })

  it('leaves the SAN extension out when there is nothing to name', async () => {
    const { certPem } = await generateServingCert({ address: '0.0.0.0', hostname: '', now: NOW })
    expect(new X509Certificate(certPem).subjectAltName).toBeUndefined()
  })

  it('rejects a non-IP address instead of producing a broken certificate', async () => {
    const err = await rejection(generateServingCert({ address: 'localhost', hostname: 'localhost', now: NOW }))
    expect(err).toBeInstanceOf(ConfigInvalid)
    expect((err as Error).message).toBe('server.address must be an IP address, got "localhost"')
  })
})

describe('loadOrCreateServingCert', () => {
  let dir: string
  beforeEach(() => {
    dir = tempDir()
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('creates the state directory (0700), key.pem (0600) and cert.pem (0644)', async () => {
    const stateDir = join(dir, 'a', 'state')
    const got = await loadOrCreateServingCert({ stateDir, address: '127.0.0.1', hostname: 'localhost', now: () => NOW })
    expect(got.created).toBe(true)
    expect(got.certPath).toBe(join(stateDir, 'cert.pem'))
    expect(got.keyPath).toBe(join(stateDir, 'key.pem'))
    expect(readFileSync(got.certPath, 'utf8')).toBe(got.certPem)
    expect(readFileSync(got.keyPath, 'utf8')).toBe(got.keyPem)
    expect(mode(stateDir)).toBe(0o700)
    expect(mode(got.keyPath)).toBe(0o600)
    expect(mode(got.certPath)).toBe(0o644)
    expect(readdirSync(stateDir).sort()).toEqual(['cert.pem', 'key.pem']) // no temp files left
    expect(certSans(got.certPem)).toEqual({ ips: ['127.0.0.1'], dns: ['localhost'] })
  })

  it('sets the file modes exactly, whatever the umask', async () => {
    const old = process.umask(0o077)
    try {
      const got = await loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' })
      expect(mode(got.certPath)).toBe(0o644)
      expect(mode(got.keyPath)).toBe(0o600)
    } finally {
      process.umask(old)
    }
  })

  it('reuses an existing pair byte for byte', async () => {
    const first = await loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' })
    const second = await loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' })
    expect(second).toEqual({ ...first, created: false })
    expect(readFileSync(join(dir, 'cert.pem'), 'utf8')).toBe(first.certPem)
  })

  it.each(['cert.pem', 'key.pem'])('regenerates both files when %s is missing', async (missing) => {
    const first = await loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' })
    rmSync(join(dir, missing))
    const second = await loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' })
    expect(second.created).toBe(true)
    expect(second.certPem).not.toBe(first.certPem)
    expect(second.keyPem).not.toBe(first.keyPem)
    expect(readFileSync(join(dir, 'key.pem'), 'utf8')).toBe(second.keyPem)
    expect(new X509Certificate(second.certPem).checkPrivateKey(createPrivateKey(second.keyPem))).toBe(true)
  })

  it('validates address even when reusing', async () => {
    await loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' })
    const err = await rejection(loadOrCreateServingCert({ stateDir: dir, address: 'nope', hostname: 'localhost' }))
    expect(err).toBeInstanceOf(ConfigInvalid)
  })

  it('writes nothing for a non-IP address', async () => {
    const stateDir = join(dir, 'state')
    const err = await rejection(loadOrCreateServingCert({ stateDir, address: 'example.com', hostname: 'x' }))
    expect(err).toBeInstanceOf(ConfigInvalid)
    expect(() => statSync(stateDir)).toThrow()
  })

  it('refuses a corrupt certificate, naming the file, and leaves it alone', async () => {
    await loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' })
    writeFileSync(join(dir, 'cert.pem'), '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n')
    const err = await rejection(loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' }))
    expect(err).toBeInstanceOf(ConfigInvalid)
    expect((err as Error).message).toContain(`could not load the serving certificate ${join(dir, 'cert.pem')}`)
    expect(readFileSync(join(dir, 'cert.pem'), 'utf8')).toContain('garbage')
  })

  it('refuses a corrupt key, naming the file', async () => {
    await loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' })
    writeFileSync(join(dir, 'key.pem'), 'not a key\n')
    const err = await rejection(loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' }))
    expect(err).toBeInstanceOf(ConfigInvalid)
    expect((err as Error).message).toContain(`could not load the serving key ${join(dir, 'key.pem')}`)
  })

  it('refuses a key that does not match the certificate', async () => {
    await loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' })
    const other = await generateServingCert({ address: '127.0.0.1', hostname: 'localhost', now: NOW })
    writeFileSync(join(dir, 'key.pem'), other.keyPem)
    const err = await rejection(loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' }))
    expect(err).toBeInstanceOf(ConfigInvalid)
    expect((err as Error).message).toContain(
      `the serving key ${join(dir, 'key.pem')} does not match the certificate ${join(dir, 'cert.pem')}`,
    )
  })

  it('refuses a key of another type than the certificate (RSA key, ECDSA cert)', async () => {
    await loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' })
    writeFileSync(
      join(dir, 'key.pem'),
      generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }),
    )
    const err = await rejection(loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' }))
    expect(err).toBeInstanceOf(ConfigInvalid)
    expect((err as Error).message).toContain('does not match the certificate')
  })

  it('reports an unreadable path instead of regenerating', async () => {
    mkdirSync(join(dir, 'cert.pem'))
    writeFileSync(join(dir, 'key.pem'), 'x')
    const err = await rejection(loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' }))
    expect(err).toBeInstanceOf(ConfigInvalid)
    expect((err as Error).message).toContain(`could not read ${join(dir, 'cert.pem')}`)
  })

  it.skipIf(OPENSSL.missing)(`accepts an upstream-style RSA PKCS#1 pair on reuse${OPENSSL.skipNote}`, async () => {
    const { certPem, keyPem } = upstreamRsaPair(dir)
    expect(keyPem.startsWith('-----BEGIN RSA PRIVATE KEY-----\n')).toBe(true)
    writeFileSync(join(dir, 'cert.pem'), certPem)
    writeFileSync(join(dir, 'key.pem'), keyPem, { mode: 0o600 })
    const got = await loadOrCreateServingCert({ stateDir: dir, address: '127.0.0.1', hostname: 'localhost' })
    expect(got).toMatchObject({ certPem, keyPem, created: false })
    expect(await handshake(got.certPem, got.keyPem, got.certPem, 'localhost')).toBe('ok')
  })
})

describe('TLS handshake with the generated certificate', () => {
  it('verifies against the certificate as CA, by IP and by host name', async () => {
    const { certPem, keyPem } = await generateServingCert({
      address: '127.0.0.1',
      hostname: 'webhook.example.test',
      now: new Date(),
    })
    expect(await handshake(certPem, keyPem, certPem, undefined)).toBe('ok') // checks IP SAN 127.0.0.1
    expect(await handshake(certPem, keyPem, certPem, 'webhook.example.test')).toBe('ok')
  })

  it('fails verification for a name the certificate does not carry', async () => {
    const { certPem, keyPem } = await generateServingCert({
      address: '127.0.0.1',
      hostname: 'localhost',
      now: new Date(),
    })
    const err = await rejection(handshake(certPem, keyPem, certPem, 'other.example.test'))
    expect((err as NodeJS.ErrnoException).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID')
  })

  it('fails verification against another CA', async () => {
    const a = await generateServingCert({ address: '127.0.0.1', hostname: 'localhost', now: new Date() })
    const b = await generateServingCert({ address: '127.0.0.1', hostname: 'localhost', now: new Date() })
    const err = await rejection(handshake(a.certPem, a.keyPem, b.certPem, 'localhost'))
    expect(err).toBeInstanceOf(Error)
    expect((err as NodeJS.ErrnoException).code).not.toBe('ERR_TLS_CERT_ALTNAME_INVALID')
  })
})

describe('servingCertProblems', () => {
  it('is empty for a certificate naming the host, inside its validity', async () => {
    const { certPem } = await generateServingCert({ address: '127.0.0.1', hostname: 'localhost', now: NOW })
    expect(servingCertProblems(certPem, { hostname: 'localhost', now: NOW })).toEqual([])
    expect(servingCertProblems(certPem, { hostname: '127.0.0.1', now: NOW })).toEqual([])
  })

  it('names a host the certificate does not cover, and expiry', async () => {
    const { certPem } = await generateServingCert({ address: '127.0.0.1', hostname: 'localhost', now: NOW })
    expect(servingCertProblems(certPem, { hostname: 'new.example.com', now: NOW })).toEqual([
      'the certificate is not valid for new.example.com (it names IP Address:127.0.0.1, DNS:localhost)',
    ])
    expect(servingCertProblems(certPem, { hostname: '10.0.0.1', now: NOW })).toHaveLength(1)
    const later = new Date(NOW.getTime() + 101 * 365 * 86_400_000)
    expect(servingCertProblems(certPem, { hostname: 'localhost', now: later })[0]).toMatch(
      /^the certificate expired on /,
    )
  })
})

/**
 * An upstream-style pair: an RSA-2048 key from node:crypto as PKCS#1 ("RSA PRIVATE KEY"), and a
 * self-signed certificate for it made by openssl, an implementation independent of ours.
 */
function upstreamRsaPair(dir: string): { certPem: string; keyPem: string } {
  const keyPem = generateKeyPairSync('rsa', { modulusLength: 2048 })
    .privateKey.export({ type: 'pkcs1', format: 'pem' })
    .toString()
  const keyFile = join(dir, 'upstream-key.pem')
  const certFile = join(dir, 'upstream-cert.pem')
  writeFileSync(keyFile, keyPem)
  openssl([
    'req',
    '-new',
    '-x509',
    '-key',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    '/CN=aws-iam-authenticator',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=keyEncipherment,digitalSignature,keyCertSign',
    '-addext',
    'extendedKeyUsage=serverAuth',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ])
  const certPem = readFileSync(certFile, 'utf8')
  rmSync(keyFile)
  rmSync(certFile)
  return { certPem, keyPem }
}
