// A small HTTPS stand-in for kube-apiserver's authentication path, for end-to-end tests with the
// real kubectl. No kube-apiserver can be installed on these machines, so this speaks the two
// protocols that matter, as kube-apiserver does:
// - it authenticates `Authorization: Bearer <token>` by POSTing a TokenReview to the webhook named
//   in an --authentication-token-webhook-config-file kubeconfig (CA pinned, bearer token if any),
//   caching successes and clean denials for a TTL and never caching errors, and retrying 429/5xx
//   with kube-apiserver's default backoff (500 ms x1.5, 5 steps);
// - it answers `kubectl auth whoami` (POST /apis/authentication.k8s.io/v1/selfsubjectreviews) with
//   the user the webhook returned, and 401 Unauthorized otherwise.
import { createServer, request as httpsRequest, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { dump, load } from 'js-yaml'
import { generateServingCert } from '../../src/server/tls.js'
import { BIN } from './cli.js'

export interface WebhookUser {
  username: string
  uid?: string
  groups?: string[]
  extra?: Record<string, string[]>
}

export interface FakeApiserver {
  readonly url: string
  readonly caPem: string
  /** TokenReview requests sent to the webhook (cache misses and retries included). */
  readonly webhookCalls: number
  /** The status codes the webhook answered, in order. */
  readonly webhookStatuses: number[]
  close(): Promise<void>
}

interface WebhookTarget {
  url: URL
  ca: string
  token?: string
}

export function readWebhookKubeconfig(path: string): WebhookTarget {
  const doc = load(readFileSync(path, 'utf8')) as {
    clusters: { cluster: { server: string; 'certificate-authority-data': string } }[]
    users?: { user?: { token?: string } }[]
  }
  const cluster = doc.clusters[0]!.cluster
  const token = doc.users?.[0]?.user?.token
  return {
    url: new URL(cluster.server),
    ca: Buffer.from(cluster['certificate-authority-data'], 'base64').toString('utf8'),
    ...(token ? { token } : {}),
  }
}

/**
 * The exec section of a kubeconfig user that runs `kube-iam-auth token ARGS` on this Node.js, with
 * the given static keys (and session token) and region in its environment, plus `env`.
 */
export function tokenExec(
  args: readonly string[],
  keys: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string | undefined },
  opts: { region: string; env?: readonly { name: string; value: string }[]; apiVersion?: string },
): Record<string, unknown> {
  return {
    apiVersion: opts.apiVersion ?? 'client.authentication.k8s.io/v1beta1',
    command: process.execPath,
    args: [BIN, 'token', ...args],
    env: [
      { name: 'AWS_ACCESS_KEY_ID', value: keys.accessKeyId },
      { name: 'AWS_SECRET_ACCESS_KEY', value: keys.secretAccessKey },
      ...(keys.sessionToken === undefined ? [] : [{ name: 'AWS_SESSION_TOKEN', value: keys.sessionToken }]),
      { name: 'AWS_REGION', value: opts.region },
      ...(opts.env ?? []),
    ],
    interactiveMode: 'Never',
  }
}

/**
 * A kubeconfig for the stand-in, as a user writes one: one cluster (its URL and CA), one user whose
 * credentials come from the exec plugin `exec` (apiVersion, command, args, env, interactiveMode).
 */
export function execKubeconfig(apiserver: Pick<FakeApiserver, 'url' | 'caPem'>, exec: Record<string, unknown>): string {
  return dump({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'c',
        cluster: {
          server: apiserver.url,
          'certificate-authority-data': Buffer.from(apiserver.caPem).toString('base64'),
        },
      },
    ],
    users: [{ name: 'u', user: { exec } }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'ctx',
  })
}

export async function startFakeApiserver(opts: {
  webhookKubeconfig: string
  tokenReviewVersion?: 'v1' | 'v1beta1'
  cacheTtlMs?: number
  retryBaseMs?: number
}): Promise<FakeApiserver> {
  const target = readWebhookKubeconfig(opts.webhookKubeconfig)
  const version = opts.tokenReviewVersion ?? 'v1beta1'
  const ttl = opts.cacheTtlMs ?? 120_000
  const cache = new Map<string, { user?: WebhookUser; until: number }>()
  const statuses: number[] = []
  const { certPem, keyPem } = await generateServingCert({
    address: '127.0.0.1',
    hostname: 'localhost',
    now: new Date(),
  })

  const review = (token: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const body = JSON.stringify({
        apiVersion: `authentication.k8s.io/${version}`,
        kind: 'TokenReview',
        metadata: { creationTimestamp: null },
        spec: { token },
        status: { user: {} },
      })
      const req = httpsRequest(
        target.url,
        {
          method: 'POST',
          ca: target.ca,
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, */*',
            ...(target.token ? { authorization: `Bearer ${target.token}` } : {}),
          },
          timeout: 30_000,
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => (text += c))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
        },
      )
      req.on('error', reject)
      req.end(body)
    })

  let webhookCalls = 0
  const authenticate = async (token: string): Promise<WebhookUser | undefined> => {
    const hit = cache.get(token)
    if (hit && hit.until > Date.now()) return hit.user
    let delay = opts.retryBaseMs ?? 500
    for (let attempt = 0; attempt < 5; attempt++) {
      webhookCalls++
      const res = await review(token).catch(() => ({ status: 0, body: '' }))
      statuses.push(res.status)
      if (res.status === 200) {
        const status = (JSON.parse(res.body) as { status?: { authenticated?: boolean; user?: WebhookUser } }).status
        const user = status?.authenticated ? status.user : undefined
        cache.set(token, { user, until: Date.now() + ttl })
        return user
      }
      if (res.status !== 429 && res.status < 500 && res.status !== 0) return undefined
      await new Promise((r) => setTimeout(r, delay))
      delay *= 1.5
    }
    return undefined
  }

  const server: Server = createServer({ cert: certPem, key: keyPem }, (req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', async () => {
      const header = req.headers.authorization ?? ''
      const user = header.startsWith('Bearer ') ? await authenticate(header.slice(7)) : undefined
      res.setHeader('content-type', 'application/json')
      if (user === undefined) {
        res.statusCode = 401
        res.end(
          JSON.stringify({
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Failure',
            message: 'Unauthorized',
            reason: 'Unauthorized',
            code: 401,
          }),
        )
        return
      }
      const m = /^\/apis\/authentication\.k8s\.io\/(v1|v1beta1|v1alpha1)\/selfsubjectreviews$/.exec(req.url ?? '')
      if (req.method === 'POST' && m) {
        res.statusCode = 201
        res.end(
          JSON.stringify({
            kind: 'SelfSubjectReview',
            apiVersion: `authentication.k8s.io/${m[1]}`,
            metadata: { creationTimestamp: new Date().toISOString() },
            status: { userInfo: user },
          }),
        )
        return
      }
      res.statusCode = 404
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `https://127.0.0.1:${port}`,
    caPem: certPem,
    get webhookCalls() {
      return webhookCalls
    },
    get webhookStatuses() {
      return [...statuses]
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
