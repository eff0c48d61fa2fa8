// Several cluster IDs end to end, the two ways users ask for them:
// - renaming a cluster: the `green` server (the real `kube-iam-auth server` process, started with
//   --cluster-ids) accepts tokens for green, blue and old-green, made by `kube-iam-auth token -i`
//   and by `aws eks get-token --cluster-name`, and denies (200) a token for any other ID;
// - blue/green: one kubeconfig user (`-i blue`) reaches both the blue cluster (clusterID blue) and
//   the green one, through kubectl and the kube-apiserver stand-in of each; a user for `green` is
//   refused by the blue cluster.
// STS is the SigV4-verifying stand-in, which checks the x-k8s-aws-id each server sends.
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { dump } from 'js-yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN, ROOT, cliEnv, ensureBuilt, runCli, runProcess, tempDir, tool } from '../support/cli.js'
import { readWebhookKubeconfig, startFakeApiserver, tokenExec, type FakeApiserver } from '../support/fake-apiserver.js'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'
import { serverClient, startTestServer, tokenReview, type ServerClient, type TestServer } from '../support/webhook.js'

const AWS_CLI = tool('aws')
const KUBECTL = tool('kubectl')
const ACCOUNT = '111122223333'
const ACCEPTED = ['green', 'blue', 'old-green']

/** Temporary keys of a session of role/dev, as `aws sts assume-role` hands them out. */
const DEV: FakeStsPrincipal = {
  accessKeyId: 'ASIACLUSTERIDSDEV001',
  secretAccessKey: 'cluster-ids/dev+SECRET/0123456789abcdefghij',
  sessionToken: 'IQoJb3JpZ2luX2Vj+clusterids/dev+session/token+0123456789==',
  arn: `arn:aws:sts::${ACCOUNT}:assumed-role/dev/alice`,
  account: ACCOUNT,
  userId: 'AROACLUSTERIDSDEV001:alice',
}
const MAPPINGS = { mapRoles: [{ rolearn: `arn:aws:iam::${ACCOUNT}:role/dev`, username: 'dev:{{SessionName}}' }] }

/** The `green` server as operators run it: the CLI process, a config file, --cluster-ids. */
async function startGreenProcess(dir: string, stsUrl: string) {
  const config = join(dir, 'green.yaml')
  const kubeconfig = join(dir, 'green-webhook.kubeconfig')
  writeFileSync(
    config,
    dump({
      clusterID: 'green',
      clusterIDs: ['this-list-is-replaced-by-the-flag'],
      server: { port: 0, stateDir: join(dir, 'green-state'), generateKubeconfig: kubeconfig, ...MAPPINGS },
    }),
  )
  const child: ChildProcess = spawn(
    process.execPath,
    [BIN, 'server', '--config', config, '--cluster-ids', 'blue,old-green'],
    { cwd: ROOT, env: cliEnv(dir, { KUBE_IAM_AUTH_STS_ENDPOINT: stsUrl }), stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  let err = ''
  const audits = () => out.split('\n').filter((l) => l.includes('"audit":true')).length
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()))
  const deadline = Date.now() + 30_000
  while (!out.includes('"msg":"listening"') && child.exitCode === null && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50))
  }
  if (!out.includes('"msg":"listening"')) throw new Error(`green server did not start:\n${out}\n${err}`)
  const target = readWebhookKubeconfig(kubeconfig)
  const client: ServerClient = serverClient(target.url.origin, target.ca, { connections: 4 })
  return {
    kubeconfig,
    logs: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    /** One review; resolves once its audit line is out (the process writes its log asynchronously). */
    review: async (token: string) => {
      const before = audits()
      const res = await client.send('/authenticate', 'POST', JSON.stringify(tokenReview(token)))
      expect(res.status).toBe(200)
      const until = Date.now() + 5_000
      while (audits() === before && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
      return res.json().status as { authenticated: boolean; user?: { username: string } }
    },
    stop: async () => {
      await client.close()
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))])
      if (child.exitCode === null) child.kill('SIGKILL')
    },
  }
}

describe('several cluster IDs end to end', () => {
  let sts: FakeSts
  let green: Awaited<ReturnType<typeof startGreenProcess>>
  let blue: TestServer
  const dir = tempDir('kia-e2e-cluster-ids-')
  const keys = (extra: Record<string, string> = {}) =>
    cliEnv(dir, {
      AWS_ACCESS_KEY_ID: DEV.accessKeyId,
      AWS_SECRET_ACCESS_KEY: DEV.secretAccessKey,
      AWS_SESSION_TOKEN: DEV.sessionToken,
      AWS_REGION: 'us-east-1',
      ...extra,
    })
  const ourToken = async (clusterId: string) => {
    const r = await runCli(['token', '-i', clusterId, '--token-only'], { env: keys(), timeoutMs: 30_000 })
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' })
    return r.stdout.trim()
  }
  const awsToken = async (clusterName: string) => {
    const r = await runProcess('aws', ['eks', 'get-token', '--cluster-name', clusterName, '--output', 'json'], {
      env: { ...keys(), AWS_PAGER: '' },
      timeoutMs: 30_000,
    })
    expect(r.code, r.stderr).toBe(0)
    return (JSON.parse(r.stdout) as { status: { token: string } }).status.token
  }
  const lastAudit = () =>
    green
      .logs()
      .filter((l) => l.audit === true)
      .at(-1)

  beforeAll(async () => {
    await ensureBuilt()
    sts = await startFakeSts({ principals: [DEV] })
    green = await startGreenProcess(dir, sts.url)
    blue = await startTestServer({ stsUrl: sts.url, clusterId: 'blue', server: MAPPINGS })
  }, 120_000)
  afterAll(async () => {
    await green?.stop()
    await blue?.close()
    await sts?.close()
  })

  it('the green server says which cluster IDs it accepts (--cluster-ids replaced the file list)', () => {
    expect(green.logs().find((l) => l.msg === 'listening')).toMatchObject({
      clusterId: 'green',
      clusterIds: ['blue', 'old-green'],
    })
  })

  it.each(ACCEPTED)('a token from `kube-iam-auth token -i %s` is accepted by green', async (id) => {
    expect(await green.review(await ourToken(id))).toMatchObject({
      authenticated: true,
      user: { username: 'dev:alice' },
    })
    expect(lastAudit()).toMatchObject({ decision: 'allow', clusterId: id })
  })

  it.skipIf(AWS_CLI.missing)(
    `a token from \`aws eks get-token --cluster-name\` for each accepted ID is accepted by green${AWS_CLI.skipNote}`,
    async () => {
      for (const id of ACCEPTED) {
        expect(await green.review(await awsToken(id)), id).toMatchObject({ authenticated: true })
        expect(lastAudit()).toMatchObject({ decision: 'allow', clusterId: id })
      }
    },
    90_000,
  )

  it('a token for an ID green does not accept is a definitive denial (200), from either tool', async () => {
    const tokens = [await ourToken('purple'), ...(AWS_CLI.missing ? [] : [await awsToken('purple')])]
    for (const t of tokens) {
      expect(await green.review(t)).toEqual({ authenticated: false, user: {} })
      expect(lastAudit()).toMatchObject({ decision: 'deny', status: 200, reason: 'SignatureDoesNotMatch' })
      expect(lastAudit()?.error).toMatch(/\(for every accepted cluster ID: .*green.*\)$/)
    }
  })

  it('the blue cluster, which accepts only blue, denies a token for green', async () => {
    expect((await blue.review(await ourToken('blue'))).json().status.authenticated).toBe(true)
    expect((await blue.review(await ourToken('green'))).json().status).toEqual({ authenticated: false, user: {} })
  })

  describe.skipIf(KUBECTL.missing)(
    `kubectl: one kubeconfig user for the blue and the green cluster${KUBECTL.skipNote}`,
    () => {
      let greenApi: FakeApiserver
      let blueApi: FakeApiserver
      let kubeconfig: string
      beforeAll(async () => {
        greenApi = await startFakeApiserver({ webhookKubeconfig: green.kubeconfig })
        blueApi = await startFakeApiserver({ webhookKubeconfig: blue.config.generateKubeconfig })
        const exec = (id: string) => tokenExec(['-i', id], DEV, { region: 'us-east-1' })
        const cluster = (name: string, api: FakeApiserver) => ({
          name,
          cluster: { server: api.url, 'certificate-authority-data': Buffer.from(api.caPem).toString('base64') },
        })
        kubeconfig = join(dir, 'kubeconfig')
        writeFileSync(
          kubeconfig,
          dump({
            apiVersion: 'v1',
            kind: 'Config',
            clusters: [cluster('blue', blueApi), cluster('green', greenApi)],
            users: [
              { name: 'dev-blue', user: { exec: exec('blue') } },
              { name: 'dev-green', user: { exec: exec('green') } },
            ],
            contexts: [
              { name: 'blue', context: { cluster: 'blue', user: 'dev-blue' } },
              { name: 'green', context: { cluster: 'green', user: 'dev-blue' } },
              { name: 'green-only', context: { cluster: 'blue', user: 'dev-green' } },
            ],
            'current-context': 'blue',
          }),
        )
      })
      afterAll(async () => {
        await greenApi?.close()
        await blueApi?.close()
      })
      const whoami = (context: string) =>
        runProcess('kubectl', ['auth', 'whoami', '-o', 'json', '--kubeconfig', kubeconfig, '--context', context], {
          env: { PATH: process.env.PATH ?? '', HOME: dir },
          timeoutMs: 30_000,
        })

      it('the user with `-i blue` is dev:alice on both clusters', async () => {
        const audits = () => green.logs().filter((l) => l.audit === true).length
        const before = audits()
        for (const context of ['blue', 'green']) {
          const r = await whoami(context)
          expect({ context, code: r.code, stderr: r.stderr }).toEqual({ context, code: 0, stderr: '' })
          expect(JSON.parse(r.stdout).status.userInfo).toMatchObject({ username: 'dev:alice' })
        }
        // the green server's line for the green context (its log reaches the pipe a little later)
        const until = Date.now() + 5_000
        while (audits() === before && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
        expect(audits()).toBe(before + 1)
        expect(lastAudit()).toMatchObject({ decision: 'allow', clusterId: 'blue', username: 'dev:alice' })
      }, 60_000)

      it('the user with `-i green` is refused by the blue cluster (Unauthorized)', async () => {
        const r = await whoami('green-only')
        expect(r.code).not.toBe(0)
        expect(r.stderr).toMatch(/Unauthorized/)
      }, 60_000)
    },
  )
})
