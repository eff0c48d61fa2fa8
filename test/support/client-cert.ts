// A throwaway certificate authority and one client certificate it signed (clientAuth), for tests of
// Kubernetes clients that authenticate with client certificates, as kubeadm's admin.conf does.
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { createPrivateKey, randomBytes, type webcrypto } from 'node:crypto'

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
const DAY = 24 * 60 * 60 * 1000

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', key))
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
    .export({ type: 'pkcs8', format: 'pem' })
    .toString()
}

export async function createClientCertificate(commonName: string): Promise<{
  caPem: string
  certPem: string
  keyPem: string
}> {
  const now = Date.now()
  const caKeys = await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: 'CN=kube-iam-auth test client CA',
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + DAY),
    keys: caKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature, true),
    ],
  })
  const clientKeys = await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])
  const client = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex'),
    subject: `CN=${commonName}, O=system:masters`,
    issuer: ca.subject,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + DAY),
    publicKey: clientKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ],
  })
  return { caPem: ca.toString('pem'), certPem: client.toString('pem'), keyPem: await pkcs8Pem(clientKeys.privateKey) }
}
