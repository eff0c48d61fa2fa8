import { createPrivateKey, X509Certificate } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { dump, load } from 'js-yaml'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { featureGateEnabled, type InitFlags, resolveInitFlags, runInit } from '../../src/cli/init.js'
import type { Io } from '../../src/cli/io.js'
import { createCallerVerifier } from '../../src/server/caller-auth.js'
import { ConfigInvalid, UsageError } from '../../src/shared/errors.js'
import { cliEnv, ensureBuilt, runCli, tempDir } from '../support/cli.js'
import { readWebhookKubeconfig } from '../support/fake-apiserver.js'
import { startFakeSts } from '../support/fake-sts.js'
import { ALICE, presignedToken } from '../support/tokens.js'
import { startTestServer, tokenReview, type TestServer } from '../support/webhook.js'

function fakeIo(): Io & { out: () => string; err: () => string } {
  let out = ''
  let err = ''
  return {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    env: {},
    now: () => new Date(),
    prompt: () => Promise.reject(new Error('init must not prompt')),
    out: () => out,
    err: () => err,
  }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  return undefined
}

interface Kubeconfig {
  clusters: { name: string; cluster: { 'certificate-authority-data': string; server: string } }[]
  'current-context': string
}

describe('runInit', () => {
  let dir: string
  let flags: InitFlags
  beforeEach(() => {
    dir = tempDir()
    flags = {
      clusterId: 'my-cluster',
      hostname: 'localhost',
      address: '127.0.0.1',
      stateDir: join(dir, 'out'),
      kubeconfigPath: join(dir, 'out', 'aws-iam-authenticator.kubeconfig'),
      port: 21362,
    }
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('writes cert.pem, key.pem and the webhook kubeconfig, and says where to copy them', async () => {
    const io = fakeIo()
    expect(await runInit(flags, io)).toBe(0)

    const certPath = join(dir, 'out', 'cert.pem')
    const keyPath = join(dir, 'out', 'key.pem')
    const certPem = readFileSync(certPath, 'utf8')
    expect(statSync(certPath).mode & 0o777).toBe(0o644)
    expect(statSync(keyPath).mode & 0o777).toBe(0o600)
    expect(statSync(flags.kubeconfigPath).mode & 0o777).toBe(0o600)
    const cert = new X509Certificate(certPem)
    expect(cert.subjectAltName).toBe('IP Address:127.0.0.1, DNS:localhost')
    expect(cert.checkPrivateKey(createPrivateKey(readFileSync(keyPath, 'utf8')))).toBe(true)

    const kc = load(readFileSync(flags.kubeconfigPath, 'utf8')) as Kubeconfig
    expect(kc['current-context']).toBe('webhook')
    expect(kc.clusters[0]!.cluster.server).toBe('https://localhost:21362/authenticate')
    expect(Buffer.from(kc.clusters[0]!.cluster['certificate-authority-data'], 'base64').toString()).toBe(certPem)

    expect(io.out()).toBe('')
    expect(io.err()).toBe(
      [
        `copy ${certPath} to /var/aws-iam-authenticator/cert.pem on kubernetes master node(s)`,
        `copy ${keyPath} to /var/aws-iam-authenticator/key.pem on kubernetes master node(s)`,
        `copy ${flags.kubeconfigPath} to /etc/kubernetes/aws-iam-authenticator/kubeconfig.yaml on kubernetes master node(s)`,
        'configure your apiserver with `--authentication-token-webhook-config-file=' +
          '/etc/kubernetes/aws-iam-authenticator/kubeconfig.yaml` to enable authentication with aws-iam-authenticator',
        '',
      ].join('\n'),
    )
  })

  it('reuses the certificate on a second run and rewrites the same kubeconfig', async () => {
    await runInit(flags, fakeIo())
    const certPem = readFileSync(join(dir, 'out', 'cert.pem'), 'utf8')
    const keyPem = readFileSync(join(dir, 'out', 'key.pem'), 'utf8')
    const kubeconfig = readFileSync(flags.kubeconfigPath, 'utf8')
    const io = fakeIo()
    expect(await runInit(flags, io)).toBe(0)
    expect(readFileSync(join(dir, 'out', 'cert.pem'), 'utf8')).toBe(certPem)
    expect(readFileSync(join(dir, 'out', 'key.pem'), 'utf8')).toBe(keyPem)
    expect(readFileSync(flags.kubeconfigPath, 'utf8')).toBe(kubeconfig)
    expect(io.err()).not.toContain('warning')
  })

  it('says "generated at" / "reused at" when writing straight to the server paths', async () => {
    const direct = { ...flags, serverStateDir: flags.stateDir, serverKubeconfigPath: flags.kubeconfigPath }
    const first = fakeIo()
    await runInit(direct, first)
    expect(first.err().split('\n').slice(0, 3)).toEqual([
      `certificate generated at ${join(dir, 'out', 'cert.pem')} on kubernetes master node(s)`,
      `key generated at ${join(dir, 'out', 'key.pem')} on kubernetes master node(s)`,
      `kubeconfig generated at ${flags.kubeconfigPath} on kubernetes master node(s)`,
    ])
    expect(first.err()).toContain(`--authentication-token-webhook-config-file=${flags.kubeconfigPath}\``)
    const second = fakeIo()
    await runInit(direct, second)
    expect(second.err()).toContain(`certificate reused at ${join(dir, 'out', 'cert.pem')}`)
  })

  it('with caller auth: a caller key in the state dir and a token it signs in the kubeconfig, which the server accepts', async () => {
    const io = fakeIo()
    expect(await runInit({ ...flags, callerAuth: true }, io)).toBe(0)
    const kc = load(readFileSync(flags.kubeconfigPath, 'utf8')) as {
      users: { name: string; user?: { token?: string } }[]
    }
    const token = kc.users[0]!.user?.token
    expect(token).toBeDefined()
    const verifier = createCallerVerifier({ stateDir: flags.stateDir, clusterId: 'my-cluster' })
    try {
      expect(await verifier.verify(token!)).toMatchObject({ caller: expect.stringMatching(/^kube-apiserver\//) })
    } finally {
      verifier.close()
    }
    expect(io.err()).toContain(
      `copy ${join(dir, 'out', 'caller-keys')} to /var/aws-iam-authenticator/caller-keys on kubernetes master node(s)`,
    )
    // a second run keeps the key: the token it writes is still accepted
    expect(await runInit({ ...flags, callerAuth: true }, fakeIo())).toBe(0)
    expect(readdirSync(join(dir, 'out', 'caller-keys'))).toHaveLength(1)
  })

  it('without caller auth the kubeconfig has no token and no key is written (drop-in for upstream)', async () => {
    expect(await runInit(flags, fakeIo())).toBe(0)
    const kc = load(readFileSync(flags.kubeconfigPath, 'utf8')) as { users: { name: string; user?: unknown }[] }
    expect(kc.users).toEqual([{ name: 'apiserver' }])
    expect(existsSync(join(dir, 'out', 'caller-keys'))).toBe(false)
  })

  it('honours --address (upstream ignores it) and an IP hostname', async () => {
    await runInit({ ...flags, address: '0.0.0.0', hostname: '10.1.2.3', port: 443 }, fakeIo())
    const cert = new X509Certificate(readFileSync(join(dir, 'out', 'cert.pem'), 'utf8'))
    expect(cert.subjectAltName).toBe('IP Address:10.1.2.3')
    const kc = load(readFileSync(flags.kubeconfigPath, 'utf8')) as Kubeconfig
    expect(kc.clusters[0]!.cluster.server).toBe('https://10.1.2.3:443/authenticate')
  })

  it('warns when a reused certificate does not cover the hostname', async () => {
    await runInit(flags, fakeIo())
    const io = fakeIo()
    expect(await runInit({ ...flags, hostname: 'webhook.example.com' }, io)).toBe(0)
    expect(io.err()).toContain(
      `warning: reusing ${join(dir, 'out', 'cert.pem')}, but the certificate is not valid for webhook.example.com`,
    )
  })

  it('requires a cluster ID and then writes nothing', async () => {
    for (const clusterId of [undefined, '']) {
      const err = await rejection(runInit({ ...flags, clusterId }, fakeIo()))
      expect(err).toBeInstanceOf(UsageError)
      expect((err as Error).message).toBe('cluster ID not specified')
    }
    expect(existsSync(join(dir, 'out'))).toBe(false)
  })

  it.each([
    [{ address: 'localhost' }, 'server.address must be an IP address, got "localhost"'],
    [{ hostname: '' }, 'server.hostname must not be empty'],
    [{ hostname: 'bad host' }, 'server.hostname must be a DNS name or an IP address'],
    [{ port: 0 }, 'server.port must be an integer from 1 to 65535'],
  ])('rejects %j before writing anything', async (change, message) => {
    const err = await rejection(runInit({ ...flags, ...change }, fakeIo()))
    expect(err).toBeInstanceOf(ConfigInvalid)
    expect((err as Error).message).toContain(message)
    expect(existsSync(join(dir, 'out'))).toBe(false)
  })
})

describe('resolveInitFlags', () => {
  it('defaults to upstream: files in . for copying to the server defaults', () => {
    expect(resolveInitFlags({ clusterId: 'c' }, {})).toEqual({
      clusterId: 'c',
      hostname: 'localhost',
      address: '127.0.0.1',
      port: 21362,
      stateDir: '.',
      kubeconfigPath: './aws-iam-authenticator.kubeconfig',
      serverStateDir: '/var/aws-iam-authenticator',
      serverKubeconfigPath: '/etc/kubernetes/aws-iam-authenticator/kubeconfig.yaml',
      callerAuth: false,
    })
  })

  it('takes the cluster ID from flag, then config file, then KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID', () => {
    const env = { KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID: 'from-env' }
    expect(resolveInitFlags({ clusterId: 'flag' }, env, { clusterId: 'file' }).clusterId).toBe('flag')
    expect(resolveInitFlags({}, env, { clusterId: 'file' }).clusterId).toBe('file')
    expect(resolveInitFlags({}, env).clusterId).toBe('from-env')
    expect(resolveInitFlags({}, {}).clusterId).toBeUndefined()
  })

  it('prefers flags over the config file', () => {
    const file = { hostname: 'file.example', address: '10.0.0.1', port: 1, stateDir: '/s', generateKubeconfig: '/k' }
    expect(resolveInitFlags({ hostname: 'flag.example', address: '10.0.0.2', port: 2 }, {}, file)).toMatchObject({
      hostname: 'flag.example',
      address: '10.0.0.2',
      port: 2,
      stateDir: '.',
      serverStateDir: '/s',
      serverKubeconfigPath: '/k',
    })
    expect(resolveInitFlags({}, {}, file)).toMatchObject({ hostname: 'file.example', address: '10.0.0.1', port: 1 })
  })

  it('caller auth: the flag, else server.callerAuth, else off', () => {
    expect(resolveInitFlags({}, {}).callerAuth).toBe(false)
    expect(resolveInitFlags({}, {}, { callerAuth: true }).callerAuth).toBe(true)
    expect(resolveInitFlags({ callerAuth: false }, {}, { callerAuth: true }).callerAuth).toBe(false)
    expect(resolveInitFlags({ callerAuth: true }, {}).callerAuth).toBe(true)
  })

  it('without a config file, --state-dir and --generate-kubeconfig are where the server reads them', () => {
    expect(resolveInitFlags({ stateDir: '/x', generateKubeconfig: '/y.yaml' }, {})).toMatchObject({
      serverStateDir: '/x',
      serverKubeconfigPath: '/y.yaml',
    })
  })

  it('writes to the configured directories with ConfiguredInitDirectories=true, or where --state-dir says', () => {
    const file = { stateDir: '/s', generateKubeconfig: '/k/kc.yaml' }
    expect(resolveInitFlags({ featureGates: 'ConfiguredInitDirectories=true' }, {}, file)).toMatchObject({
      stateDir: '/s',
      kubeconfigPath: '/k/kc.yaml',
    })
    expect(resolveInitFlags({ stateDir: '/x', generateKubeconfig: '/y.yaml' }, {}, file)).toMatchObject({
      stateDir: '/x',
      kubeconfigPath: '/y.yaml',
      serverStateDir: '/s',
      serverKubeconfigPath: '/k/kc.yaml',
    })
  })
})

describe('featureGateEnabled', () => {
  it.each([
    [undefined, false],
    ['', false],
    ['ConfiguredInitDirectories=true', true],
    ['SSORoleMatch=true, ConfiguredInitDirectories=True', true],
    ['ConfiguredInitDirectories=1', true],
    ['ConfiguredInitDirectories=false', false],
    ['ConfiguredInitDirectories', false],
    ['ConfiguredInitDirectories=true,ConfiguredInitDirectories=false', false],
  ])('%j -> %s', (gates, enabled) => {
    expect(featureGateEnabled(gates, 'ConfiguredInitDirectories')).toBe(enabled)
  })
})

describe('kube-iam-auth --config FILE init, with clusterIDs in the file', () => {
  it('is accepted; the caller token stays bound to clusterID, and the server started on that file accepts it and tokens for each ID', async () => {
    await ensureBuilt()
    const dir = tempDir('kia-init-cluster-ids-')
    const sts = await startFakeSts({ principals: [ALICE] })
    let srv: TestServer | undefined
    try {
      const stateDir = join(dir, 'state')
      const kubeconfig = join(dir, 'webhook.kubeconfig')
      const server = { stateDir, generateKubeconfig: kubeconfig, callerAuth: true, kubeconfigPregenerated: true }
      const config = join(dir, 'config.yaml')
      writeFileSync(config, dump({ clusterID: 'green', clusterIDs: ['blue'], server }))
      const r = await runCli(['--config', config, 'init', '--feature-gates', 'ConfiguredInitDirectories=true'], {
        env: cliEnv(dir),
        timeoutMs: 30_000,
      })
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: '' })
      const caller = readWebhookKubeconfig(kubeconfig).token!
      const claims = JSON.parse(Buffer.from(caller.split('.')[1]!, 'base64url').toString('utf8')) as { aud: unknown }
      expect(claims.aud).toBe('kube-iam-auth:green')
      srv = await startTestServer({
        stsUrl: sts.url,
        clusterId: 'green',
        clusterIds: ['blue'],
        server: { ...server, mapUsers: [{ userarn: ALICE.arn, username: 'alice', groups: [] }] },
      })
      const authorization = { authorization: `Bearer ${caller}` }
      for (const clusterId of ['green', 'blue']) {
        const res = await srv.post(
          tokenReview(await presignedToken({ principal: ALICE, clusterId, now: new Date() })),
          {
            headers: authorization,
          },
        )
        expect([clusterId, res.status, res.json().status.authenticated]).toEqual([clusterId, 200, true])
      }
    } finally {
      await srv?.close()
      await sts.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
