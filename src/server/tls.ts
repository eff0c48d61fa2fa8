import { createPrivateKey, type KeyObject, randomBytes, X509Certificate } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { canonicalIp, servingCertSans } from '../config/listen.js'
import { ConfigInvalid } from '../shared/errors.js'

export { servingCertSans }
import { writeFileAtomic } from '../shared/files.js'

/**
 * The webhook's TLS serving certificate, as upstream's pkg/config/certs/certs.go makes it:
 * `<stateDir>/cert.pem` and `<stateDir>/key.pem`, self-signed, and trusted by kube-apiserver through
 * `certificate-authority-data` in the webhook kubeconfig (webhook-kubeconfig.ts).
 */
export interface ServingCert {
  readonly certPem: string
  readonly keyPem: string
  readonly certPath: string
  readonly keyPath: string
  /** True when this call generated the pair, false when existing files were reused. */
  readonly created: boolean
}

export const CERT_FILE = 'cert.pem'
export const KEY_FILE = 'key.pem'
export const CERT_COMMON_NAME = 'aws-iam-authenticator'

const DAY_MS = 24 * 60 * 60 * 1000
/** Upstream's lifetime: the certificate is pinned in the webhook kubeconfig and never rotates by itself. */
const VALIDITY_MS = 100 * 365 * DAY_MS
/** NotBefore is back-dated so an API server whose clock is slightly behind still accepts a fresh cert. */
const CLOCK_SKEW_MS = 5 * 60 * 1000

/**
 * Reuses `<stateDir>/cert.pem` and `key.pem` when both exist and load (an upstream RSA PKCS#1 pair
 * is fine); generates and writes both when either is missing. A pair that exists but does not load,
 * or whose key does not match the certificate, is an error: regenerating it silently would break
 * every kube-apiserver that pins the old certificate.
 */
export async function loadOrCreateServingCert(opts: {
  stateDir: string
  address: string
  hostname: string
  now?: () => Date
}): Promise<ServingCert> {
  // Validate the inputs even when reusing: the server listens on `address` either way.
  servingCertSans(opts.address, opts.hostname)
  const certPath = join(opts.stateDir, CERT_FILE)
  const keyPath = join(opts.stateDir, KEY_FILE)
  const existingCert = readIfExists(certPath)
  const existingKey = readIfExists(keyPath)
  if (existingCert !== undefined && existingKey !== undefined) {
    checkServingCertPair(existingCert, existingKey, certPath, keyPath)
    return { certPem: existingCert, keyPem: existingKey, certPath, keyPath, created: false }
  }

  const { certPem, keyPem } = await generateServingCert({
    address: opts.address,
    hostname: opts.hostname,
    now: (opts.now ?? (() => new Date()))(),
  })
  mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 })
  // Crash safety: cert.pem is written last and removed first, so an interrupted run leaves either a
  // complete matching pair or no cert.pem (and the next run generates again), never a lone old
  // cert.pem next to a new key.pem.
  rmSync(certPath, { force: true })
  writeFileAtomic(keyPath, keyPem, 0o600)
  writeFileAtomic(certPath, certPem, 0o644)
  return { certPem, keyPem, certPath, keyPath, created: true }
}

/**
 * A new self-signed serving certificate and its key, both PEM.
 *
 * ECDSA P-256 rather than upstream's RSA-2048, deliberately: much faster handshakes and key
 * generation, a smaller certificate and kubeconfig, and every kube-apiserver (Go crypto/tls) supports
 * it. The key is PKCS#8 ("PRIVATE KEY"), which Node's TLS reads.
 * Built with @peculiar/x509 over WebCrypto (which needs the reflect-metadata polyfill, imported
 * first), both loaded on first use.
 */
export async function generateServingCert(opts: {
  address: string
  hostname: string
  now: Date
}): Promise<{ certPem: string; keyPem: string }> {
  const sans = servingCertSans(opts.address, opts.hostname)
  // Loaded only to generate (once per state dir): several MiB a long-running server need not hold.
  await import('reflect-metadata')
  const x509 = await import('@peculiar/x509')
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
  const keys = await crypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])
  const now = opts.now.getTime()
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(16)
      .toString('hex')
      .replace(/^[89a-f]/, (d) => (parseInt(d, 16) - 8).toString(16)),
    name: `CN=${CERT_COMMON_NAME}`,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + VALIDITY_MS),
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...(sans.ips.length + sans.dns.length > 0
        ? [
            new x509.SubjectAlternativeNameExtension([
              ...sans.ips.map((value) => ({ type: 'ip' as const, value })),
              ...sans.dns.map((value) => ({ type: 'dns' as const, value })),
            ]),
          ]
        : []),
    ],
  })
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey))
  return {
    // round trip through node's parser: the PEM is known to load
    certPem: new X509Certificate(cert.toString('pem')).toString(),
    keyPem: createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })
      .export({ type: 'pkcs8', format: 'pem' })
      .toString(),
  }
}

/**
 * Why a (reused) serving certificate will not work for kube-apiserver connecting to `hostname`:
 * it does not name that host, or it is outside its validity period. Empty when fine.
 */
export function servingCertProblems(certPem: string, opts: { hostname: string; now: Date }): string[] {
  const cert = new X509Certificate(certPem)
  const problems: string[] = []
  const ip = canonicalIp(opts.hostname)
  if (opts.hostname !== '') {
    const match = ip !== undefined ? cert.checkIP(ip) : cert.checkHost(opts.hostname)
    if (match === undefined) {
      const names = cert.subjectAltName ?? 'no hosts'
      problems.push(`the certificate is not valid for ${opts.hostname} (it names ${names})`)
    }
  }
  const now = opts.now.getTime()
  if (now < Date.parse(cert.validFrom)) problems.push(`the certificate is not valid before ${cert.validFrom}`)
  if (now > Date.parse(cert.validTo)) problems.push(`the certificate expired on ${cert.validTo}`)
  return problems
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new ConfigInvalid(`could not read ${path}: ${(err as Error).message}`)
  }
}

export function checkServingCertPair(certPem: string, keyPem: string, certPath: string, keyPath: string): void {
  const remedy =
    `fix it, or delete both ${certPath} and ${keyPath} to generate a new pair ` +
    '(every kube-apiserver webhook kubeconfig must then be updated)'
  let cert: X509Certificate
  try {
    cert = new X509Certificate(certPem)
  } catch (err) {
    const reason = (err as Error).message
    throw new ConfigInvalid(`could not load the serving certificate ${certPath}: ${reason}; ${remedy}`)
  }
  let key: KeyObject
  try {
    key = createPrivateKey(keyPem)
  } catch (err) {
    throw new ConfigInvalid(`could not load the serving key ${keyPath}: ${(err as Error).message}; ${remedy}`)
  }
  let matches = false
  try {
    matches = cert.checkPrivateKey(key)
  } catch {
    // a key of another type than the certificate's
  }
  if (!matches) {
    throw new ConfigInvalid(`the serving key ${keyPath} does not match the certificate ${certPath}; ${remedy}`)
  }
}
