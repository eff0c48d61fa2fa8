// End to end with the real kubectl: kubectl runs `kube-iam-auth token` as its exec credential
// plugin and sends the token to a kube-apiserver stand-in (no real kube-apiserver can be installed
// on these machines; test/support/fake-apiserver.ts speaks its webhook and whoami protocols), which
// asks our webhook over TLS using the webhook kubeconfig the server generated; the webhook verifies
// the token against the SigV4-verifying STS stand-in and maps the identity.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt, tool, runProcess, tempDir } from '../support/cli.js'
import { execKubeconfig, startFakeApiserver, tokenExec, type FakeApiserver } from '../support/fake-apiserver.js'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'
import { startTestServer, type TestServer } from '../support/webhook.js'

const KUBECTL = tool('kubectl')

const CLUSTER = 'e2e-cluster'
const DEV: FakeStsPrincipal = {
  accessKeyId: 'AKIAKIAE2EDEVELOPER1',
  secretAccessKey: 'e2e/developer+secret/0123456789abcdefghij',
  arn: 'arn:aws:iam::210987654321:user/dev/dana',
  account: '210987654321',
  userId: 'AIDAKIAE2EDEVELOPER1',
}
const STRANGER: FakeStsPrincipal = {
  accessKeyId: 'AKIAKIAE2ESTRANGER01',
  secretAccessKey: 'e2e/stranger+secret/0123456789abcdefghij',
  arn: 'arn:aws:iam::210987654321:user/stranger',
  account: '210987654321',
  userId: 'AIDAKIAE2ESTRANGER01',
}

describe.skipIf(KUBECTL.missing)(
  `kubectl auth whoami through the exec plugin and the webhook${KUBECTL.skipNote}`,
  () => {
    let sts: FakeSts
    let webhook: TestServer
    let apiserver: FakeApiserver
    const dir = tempDir('kia-e2e-')

    beforeAll(async () => {
      await ensureBuilt()
      sts = await startFakeSts({ principals: [DEV, STRANGER] })
      webhook = await startTestServer({
        stsUrl: sts.url,
        clusterId: CLUSTER,
        // caller authentication on, as the Helm chart deploys it: the stand-in presents the bearer
        // token from the webhook kubeconfig the server wrote, as kube-apiserver would
        server: {
          callerAuth: true,
          mapUsers: [{ userarn: DEV.arn, username: 'dana', groups: ['developers', 'acct:{{AccountID}}'] }],
        },
      })
      apiserver = await startFakeApiserver({ webhookKubeconfig: webhook.config.generateKubeconfig })
    }, 120_000)
    afterAll(async () => {
      await apiserver?.close()
      await webhook?.close()
      await sts?.close()
    })

    const kubeconfig = (name: string, who: FakeStsPrincipal, execApiVersion: string) => {
      const file = join(dir, `${name}.kubeconfig`)
      writeFileSync(
        file,
        execKubeconfig(
          apiserver,
          tokenExec(['-i', CLUSTER, '--cache'], who, {
            region: 'eu-west-1',
            apiVersion: execApiVersion,
            env: [
              { name: 'AWS_EC2_METADATA_DISABLED', value: 'true' },
              { name: 'KUBE_IAM_AUTH_CACHE_DIR', value: join(dir, 'cache') },
            ],
          }),
        ),
      )
      return file
    }
    const whoami = (file: string) =>
      runProcess('kubectl', ['auth', 'whoami', '-o', 'json', '--kubeconfig', file], {
        env: { PATH: process.env.PATH ?? '', HOME: dir },
        timeoutMs: 30_000,
      })

    it.each(['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'])(
      'prints the mapped username and groups (exec apiVersion %s)',
      async (execApiVersion) => {
        const res = await whoami(kubeconfig(`dev-${execApiVersion.split('/')[1]}`, DEV, execApiVersion))
        expect(res.stderr).toBe('')
        expect(res.code).toBe(0)
        const userInfo = JSON.parse(res.stdout).status.userInfo
        expect(userInfo.username).toBe('dana')
        expect(userInfo.groups).toEqual(['developers', 'acct:210987654321'])
        expect(userInfo.uid).toBe(`aws-iam-authenticator:210987654321:${DEV.userId}`)
        expect(userInfo.extra.arn).toEqual([DEV.arn])
      },
      60_000,
    )

    it('refuses an identity with no mapping: kubectl reports Unauthorized', async () => {
      const res = await whoami(kubeconfig('stranger', STRANGER, 'client.authentication.k8s.io/v1'))
      expect(res.code).not.toBe(0)
      expect(res.stderr).toMatch(/Unauthorized|must be logged in/)
      // a clean denial is answered 200 (cacheable), not retried as an error
      expect(apiserver.webhookStatuses.at(-1)).toBe(200)
    }, 60_000)
  },
)
