// Kubernetes connections as client-go and kubectl make them: every way a kubeconfig (or a pod)
// says how to reach and authenticate to the API server, against the Kubernetes API stand-in, which
// checks the credentials it receives. And every failure is one line naming the server and why.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigInvalid } from '../../src/shared/errors.js'
import { describeKubeFailure } from '../../src/mapping/kube/errors.js'
import { loadKubeConfig, type KubeConfigOptions } from '../../src/mapping/kube/kubeconfig.js'
import { followCollection } from '../../src/mapping/kube/list-watch.js'
import { createClientCertificate } from '../support/client-cert.js'
import { tempDir } from '../support/cli.js'
import { startFakeKube, type FakeKube } from '../support/fake-kube.js'

const TOKEN = 'kube-connections-token'
const b64 = (s: string) => Buffer.from(s).toString('base64')

/** A kubeconfig as people write it: one cluster, one user, one context. */
function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'ctx',
  })
}

async function readAwsAuth(kc: KubeConfig): Promise<string | undefined> {
  const cm = await kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace: 'kube-system', name: 'aws-auth' })
  return cm.data?.mapRoles
}

/** The one-line description of why reading aws-auth with this configuration failed. */
async function failure(kc: KubeConfig): Promise<string> {
  try {
    await readAwsAuth(kc)
  } catch (err) {
    return describeKubeFailure(err, kc)
  }
  throw new Error('expected the request to fail')
}

function loadError(opts: KubeConfigOptions): string {
  try {
    loadKubeConfig(opts)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigInvalid)
    return (err as Error).message
  }
  throw new Error('expected loading to fail')
}

describe('Kubernetes connections like client-go', () => {
  let plain: FakeKube
  let tls: FakeKube
  let mtls: FakeKube
  let client: { caPem: string; certPem: string; keyPem: string }
  let dir: string
  const file = (name: string, content: string, mode = 0o600) => {
    const path = join(dir, name)
    writeFileSync(path, content, { mode })
    return path
  }
  const load = (name: string, content: string, extra: Partial<KubeConfigOptions> = {}) =>
    loadKubeConfig({ kubeconfig: file(name, content), fallback: 'default', env: {}, ...extra })

  beforeAll(async () => {
    dir = tempDir('kia-kube-conn-')
    client = await createClientCertificate('kubernetes-admin')
    plain = await startFakeKube()
    tls = await startFakeKube({ tls: true, requireToken: TOKEN })
    mtls = await startFakeKube({ tls: true, clientCa: client.caPem })
    for (const k of [plain, tls, mtls]) k.setConfigMap('kube-system', 'aws-auth', { mapRoles: `- from: ${k.url}\n` })
  }, 60_000)
  afterAll(async () => {
    await Promise.all([plain, tls, mtls].map((k) => k?.close()))
  })

  it('an http:// server (kubectl proxy) with no credentials, as client-go accepts it: read and watch', async () => {
    const kc = load('proxy.yaml', kubeconfig({ server: plain.url }, {}))
    expect(await readAwsAuth(kc)).toBe(`- from: ${plain.url}\n`)
    const seen: string[] = []
    const stop = new AbortController()
    await followCollection<{ metadata?: { name?: string } }>({
      kubeConfig: kc,
      list: async () => {
        const list = await kc.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: 'kube-system' })
        return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '0' }
      },
      watchPath: '/api/v1/namespaces/kube-system/configmaps',
      onList: (items) => seen.push(...items.map((i) => `list:${i.metadata?.name}`)),
      onEvent: (type, o) => seen.push(`${type}:${o.metadata?.name}`),
      onFailure: (err) => seen.push(`failure:${err.message}`),
      signal: stop.signal,
    })
    plain.setConfigMap('kube-system', 'other', { a: 'b' })
    const deadline = Date.now() + 5_000
    while (!seen.includes('ADDED:other') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    stop.abort()
    expect(seen).toEqual(['list:aws-auth', 'ADDED:other'])
  })

  it('https with certificate-authority-data and a bearer token', async () => {
    const kc = load(
      'token.yaml',
      kubeconfig({ server: tls.url, 'certificate-authority-data': b64(tls.caPem!) }, { token: TOKEN }),
    )
    expect(await readAwsAuth(kc)).toBe(`- from: ${tls.url}\n`)
  })

  it('client certificate and key files, and the CA file, relative to the kubeconfig (kubeadm admin.conf style)', async () => {
    mkdirSync(join(dir, 'pki'), { recursive: true })
    file('pki/ca.crt', mtls.caPem!)
    file('pki/admin.crt', client.certPem)
    file('pki/admin.key', client.keyPem)
    const kc = load(
      'admin.conf',
      kubeconfig(
        { server: mtls.url, 'certificate-authority': 'pki/ca.crt' },
        { 'client-certificate': 'pki/admin.crt', 'client-key': 'pki/admin.key' },
      ),
    )
    expect(await readAwsAuth(kc)).toBe(`- from: ${mtls.url}\n`)
    // the same without the certificate is refused by the stand-in
    const anonymous = load('anon.conf', kubeconfig({ server: mtls.url, 'certificate-authority': 'pki/ca.crt' }, {}))
    expect(await failure(anonymous)).toBe(
      `Kubernetes API ${mtls.url}: HTTP 401 Unauthorized (the API server refused the credentials of the kubeconfig user)`,
    )
  })

  it('client certificate and key inline (-data)', async () => {
    const kc = load(
      'inline.conf',
      kubeconfig(
        { server: mtls.url, 'certificate-authority-data': b64(mtls.caPem!) },
        { 'client-certificate-data': b64(client.certPem), 'client-key-data': b64(client.keyPem) },
      ),
    )
    expect(await readAwsAuth(kc)).toBe(`- from: ${mtls.url}\n`)
  })

  it('insecure-skip-tls-verify', async () => {
    const kc = load(
      'insecure.yaml',
      kubeconfig({ server: tls.url, 'insecure-skip-tls-verify': true }, { token: TOKEN }),
    )
    expect(await readAwsAuth(kc)).toBe(`- from: ${tls.url}\n`)
  })

  it('token-file, relative to the kubeconfig', async () => {
    file('sa-token', `${TOKEN}\n`)
    const kc = load(
      'token-file.yaml',
      kubeconfig({ server: tls.url, 'certificate-authority-data': b64(tls.caPem!) }, { 'token-file': 'sa-token' }),
    )
    expect(await readAwsAuth(kc)).toBe(`- from: ${tls.url}\n`)
  })

  it('an exec credential plugin (relative command path), as kubectl runs kube-iam-auth token', async () => {
    const credential = JSON.stringify({
      apiVersion: 'client.authentication.k8s.io/v1beta1',
      kind: 'ExecCredential',
      status: { token: TOKEN },
    })
    file('plugin.sh', `#!/bin/sh\necho '${credential}'\n`, 0o700)
    const kc = load(
      'exec.yaml',
      kubeconfig(
        { server: tls.url, 'certificate-authority-data': b64(tls.caPem!) },
        { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: './plugin.sh', args: [] } },
      ),
    )
    expect(await readAwsAuth(kc)).toBe(`- from: ${tls.url}\n`)
  })

  it('in a pod: the service account token and CA, from KUBERNETES_SERVICE_HOST/PORT', async () => {
    const sa = join(dir, 'serviceaccount')
    mkdirSync(sa, { recursive: true })
    writeFileSync(join(sa, 'token'), TOKEN)
    writeFileSync(join(sa, 'ca.crt'), tls.caPem!)
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: new URL(tls.url).port }
    for (const fallback of ['in-cluster', 'default'] as const) {
      const kc = loadKubeConfig({ fallback, env: { ...env, HOME: join(dir, 'no-home') }, serviceAccountDir: sa })
      expect(kc.getCurrentCluster()?.server).toBe(tls.url)
      expect(await readAwsAuth(kc)).toBe(`- from: ${tls.url}\n`)
    }
  })

  it('KUBECONFIG lists files: the first to define a name or current-context wins, as client-go merges them', async () => {
    const first = file('first.yaml', kubeconfig({ server: plain.url }, {}))
    const second = file(
      'second.yaml',
      JSON.stringify({
        clusters: [
          { name: 'c', cluster: { server: 'https://127.0.0.1:1' } },
          { name: 'other', cluster: { server: tls.url } },
        ],
        'current-context': 'elsewhere',
      }),
    )
    const kc = loadKubeConfig({
      fallback: 'default',
      env: { KUBECONFIG: `${first}:${join(dir, 'missing')}:${second}` },
    })
    expect(kc.getCurrentCluster()?.server).toBe(plain.url)
    expect(await readAwsAuth(kc)).toBe(`- from: ${plain.url}\n`)
  })

  it('--master overrides the server and --kubeconfig-context picks the context', async () => {
    const two = JSON.stringify({
      clusters: [
        { name: 'a', cluster: { server: 'https://127.0.0.1:1' } },
        { name: 'b', cluster: { server: 'https://127.0.0.1:2' } },
      ],
      users: [{ name: 'u', user: { token: TOKEN } }],
      contexts: [
        { name: 'ctx-a', context: { cluster: 'a', user: 'u' } },
        { name: 'ctx-b', context: { cluster: 'b', user: 'u' } },
      ],
      'current-context': 'ctx-a',
    })
    expect(load('two.yaml', two, { context: 'ctx-b' }).getCurrentCluster()?.server).toBe('https://127.0.0.1:2')
    const kc = load('two.yaml', two, { master: plain.url })
    expect(await readAwsAuth(kc)).toBe(`- from: ${plain.url}\n`)
  })

  describe('every failure is one line that names the server and why', () => {
    it.each<[string, () => Promise<[KubeConfig, string]>]>([
      [
        'nothing listening',
        async () => {
          const closed = await startFakeKube({ tls: true })
          await closed.close()
          return [
            load('closed.yaml', kubeconfig({ server: closed.url }, {})),
            `Kubernetes API ${closed.url}: connection refused (is the API server running, and is this its address?)`,
          ]
        },
      ],
      [
        'a certificate nobody said to trust',
        async () => [
          load('untrusted.yaml', kubeconfig({ server: tls.url }, { token: TOKEN })),
          `Kubernetes API ${tls.url}: the server's certificate is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT): set certificate-authority or certificate-authority-data for the cluster in the kubeconfig`,
        ],
      ],
      [
        'a wrong token',
        async () => [
          load('wrong.yaml', kubeconfig({ server: tls.url, 'insecure-skip-tls-verify': true }, { token: 'nope' })),
          `Kubernetes API ${tls.url}: HTTP 401 Unauthorized (the API server refused the credentials of the kubeconfig user)`,
        ],
      ],
      [
        'a ConfigMap that does not exist (the Status message is kept)',
        async () => {
          plain.deleteConfigMap('kube-system', 'aws-auth')
          return [
            load('missing-cm.yaml', kubeconfig({ server: plain.url }, {})),
            `Kubernetes API ${plain.url}: HTTP 404 Not Found: configmaps "aws-auth" not found`,
          ]
        },
      ],
      [
        'an exec plugin that fails',
        async () => [
          load(
            'exec-fails.yaml',
            kubeconfig(
              { server: tls.url, 'insecure-skip-tls-verify': true },
              { exec: { command: '/bin/sh', args: ['-c', 'echo "no SSO session: run aws sso login" >&2; exit 1'] } },
            ),
          ),
          `Kubernetes API ${tls.url}: the exec credential plugin /bin/sh failed: no SSO session: run aws sso login`,
        ],
      ],
      [
        'an exec plugin that is not installed',
        async () => [
          load(
            'exec-missing.yaml',
            kubeconfig(
              { server: tls.url, 'insecure-skip-tls-verify': true },
              { exec: { command: '/nonexistent/aws' } },
            ),
          ),
          `Kubernetes API ${tls.url}: the exec credential plugin /nonexistent/aws failed: command not found`,
        ],
      ],
    ])('%s', async (_name, setup) => {
      const [kc, expected] = await setup()
      expect(await failure(kc)).toBe(expected)
      plain.setConfigMap('kube-system', 'aws-auth', { mapRoles: `- from: ${plain.url}\n` })
    })

    it('https to a plain http server', async () => {
      const kc = load('wrong-scheme.yaml', kubeconfig({ server: plain.url.replace('http:', 'https:') }, {}))
      expect(await failure(kc)).toMatch(
        new RegExp(
          `^Kubernetes API ${plain.url.replace('http:', 'https:')}: TLS handshake failed \\(is it a plain http:// server\\?\\): [^\\n]+$`,
        ),
      )
    })

    it.each<[string, () => KubeConfigOptions, () => string]>([
      [
        'no kubeconfig anywhere and not in a pod',
        () => ({ fallback: 'default', env: { HOME: join(dir, 'empty-home') } }),
        () =>
          `empty kubeconfig: ${join(dir, 'empty-home', '.kube', 'config')} does not exist and this is not a pod; pass --kubeconfig or --master-url`,
      ],
      [
        'KUBECONFIG names only missing files',
        () => ({ fallback: 'default', env: { KUBECONFIG: join(dir, 'nope.yaml') } }),
        () =>
          `empty kubeconfig: KUBECONFIG=${join(dir, 'nope.yaml')} does not exist and this is not a pod; pass --kubeconfig or --master-url`,
      ],
      [
        '--kubeconfig names a missing file',
        () => ({ kubeconfig: join(dir, 'nope.yaml'), fallback: 'default', env: {} }),
        () => `kubeconfig ${join(dir, 'nope.yaml')}: no such file`,
      ],
      [
        'an empty file',
        () => ({ kubeconfig: file('empty.yaml', ''), fallback: 'default', env: {} }),
        () => `empty kubeconfig: ${join(dir, 'empty.yaml')} is empty`,
      ],
      [
        'no current-context',
        () => ({ kubeconfig: file('no-ctx.yaml', JSON.stringify({ clusters: [] })), fallback: 'default', env: {} }),
        () => `empty kubeconfig: ${join(dir, 'no-ctx.yaml')} sets no current-context (pass --kubeconfig-context)`,
      ],
      [
        'an unknown --kubeconfig-context',
        () => ({
          kubeconfig: file('ctx.yaml', kubeconfig({ server: plain.url }, {})),
          context: 'prod',
          fallback: 'default',
          env: {},
        }),
        () => `kubeconfig ${join(dir, 'ctx.yaml')} has no context "prod"`,
      ],
      [
        'a server that is not a URL',
        () => ({
          kubeconfig: file('bad-server.yaml', kubeconfig({ server: 'kube.example:6443' }, {})),
          fallback: 'default',
          env: {},
        }),
        () =>
          `kubeconfig ${join(dir, 'bad-server.yaml')}: cluster "c" server must be an http(s):// URL, got "kube.example:6443"`,
      ],
      [
        'the server outside a pod, without a kubeconfig',
        () => ({ fallback: 'in-cluster', env: {}, serviceAccountDir: join(dir, 'no-sa') }),
        () =>
          `not running in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set, or ${join(dir, 'no-sa')}/token is missing): set server.kubeconfig or --kubeconfig`,
      ],
    ])('%s', (_name, opts, expected) => {
      expect(loadError(opts())).toBe(expected())
    })
  })
})
