// Helpers for the `token` client tests: AWS config files as users write them, the identity a token
// verifies as against the STS stand-in, and the ExecCredential kubectl reads.

import { mkdirSync, utimesSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { createStsTransport } from '../../src/sts/transport.js'
import { verifyToken } from '../../src/sts/verify.js'
import type { Identity } from '../../src/sts/get-caller-identity.js'
import type { FakeSts } from './fake-sts.js'

/**
 * Writes a file and dates its modification an hour back, like a config file written long before
 * the command runs. (A file modified within the last two seconds is "racy" for the token cache,
 * which then does not trust its timestamps; tests that expect a cache hit need aged files.)
 */
export function writeAged(path: string, content: string, mode = 0o600): string {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, content, { mode })
  const past = new Date(Date.now() - 3_600_000)
  utimesSync(path, past, past)
  return path
}

export interface ExecCredentialOut {
  readonly token: string
  readonly expirationTimestamp: string
  readonly expiresAt: number
}

/** The token and expiry of `kube-iam-auth token` output (throws on anything else). */
export function execCredential(stdout: string): ExecCredentialOut {
  const doc = JSON.parse(stdout) as { kind?: string; status?: { token?: string; expirationTimestamp?: string } }
  if (doc.kind !== 'ExecCredential' || !doc.status?.token || !doc.status.expirationTimestamp) {
    throw new Error(`not an ExecCredential: ${stdout.slice(0, 200)}`)
  }
  return {
    token: doc.status.token,
    expirationTimestamp: doc.status.expirationTimestamp,
    expiresAt: Date.parse(doc.status.expirationTimestamp),
  }
}

/** Who STS (the stand-in) says signed the token, through the production verifier. */
export async function tokenIdentity(sts: FakeSts, token: string, clusterId: string): Promise<Identity> {
  const transport = createStsTransport()
  try {
    return await verifyToken(token, { clusterId, stsEndpoint: sts.url }, { now: () => new Date(), sts: transport.send })
  } finally {
    await transport.close()
  }
}

/** The access key ID a token is signed with. */
export function signingKeyOf(token: string): string {
  const url = Buffer.from(token.slice('k8s-aws-v1.'.length), 'base64url').toString('utf8')
  return /X-Amz-Credential=([A-Z0-9]+)%2F/.exec(url)?.[1] ?? ''
}
