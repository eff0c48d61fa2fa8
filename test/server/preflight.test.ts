// The start-up checks of the files the server relies on (also run by `validate`), case by case.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { decodeServerConfig, type ServerConfig } from '../../src/config/server-config.js'
import { preflightProblems } from '../../src/server/preflight.js'
import { generateServingCert, loadOrCreateServingCert } from '../../src/server/tls.js'
import { renderWebhookKubeconfig } from '../../src/server/webhook-kubeconfig.js'
import { tempDir } from '../support/cli.js'

const NOW = new Date()

function config(server: Record<string, unknown>): ServerConfig {
  const { config, problems } = decodeServerConfig({
    clusterID: 'c',
    server: { mapUsers: [{ userarn: 'arn:aws:iam::111122223333:user/a', username: 'a' }], ...server },
  })
  if (config === undefined) throw new Error(JSON.stringify(problems))
  return config
}

describe('preflightProblems', () => {
  it('offline, with the state dir on another machine: skipped, and says so', async () => {
    const c = config({ stateDir: '/nonexistent/kia-state', kubeconfigPregenerated: true, callerAuth: true })
    expect(await preflightProblems(c, { offline: true, now: NOW })).toEqual({
      problems: [],
      skipped:
        'server.stateDir /nonexistent/kia-state is not on this machine: the serving certificate, caller keys and ' +
        'pre-generated kubeconfig are checked by the server at start (run validate on a control-plane node to check them now)',
    })
  })

  it('a fresh state dir and a kubeconfig the server writes itself: nothing to say', async () => {
    const c = config({ stateDir: join(tempDir(), 'state'), callerAuth: true })
    expect(await preflightProblems(c, { offline: false, now: NOW })).toEqual({ problems: [] })
  })

  it('a pre-generated kubeconfig that is missing: a warning without caller auth, an error with it', async () => {
    const dir = tempDir()
    const base = {
      stateDir: join(dir, 'state'),
      generateKubeconfig: join(dir, 'kc.yaml'),
      kubeconfigPregenerated: true,
    }
    const off = await preflightProblems(config(base), { offline: false, now: NOW })
    expect(off.problems.map((p) => [p.severity, p.path])).toEqual([['warning', 'server.generateKubeconfig']])
    const on = await preflightProblems(config({ ...base, callerAuth: true }), { offline: false, now: NOW })
    expect(on.problems.map((p) => [p.severity, p.path])).toEqual([['error', 'server.generateKubeconfig']])
    expect(on.problems[0]!.message).toMatch(
      /does not exist: nothing can give kube-apiserver a caller token; run kube-iam-auth init /,
    )
  })

  it('a pre-generated kubeconfig that trusts another certificate: kube-apiserver could not connect', async () => {
    const dir = tempDir()
    const stateDir = join(dir, 'state')
    await loadOrCreateServingCert({ stateDir, address: '127.0.0.1', hostname: 'localhost' })
    const other = await generateServingCert({ address: '127.0.0.1', hostname: 'localhost', now: NOW })
    const kc = join(dir, 'kc.yaml')
    writeFileSync(kc, renderWebhookKubeconfig({ certPem: other.certPem, hostname: 'localhost', port: 21362 }))
    const c = config({ stateDir, generateKubeconfig: kc, kubeconfigPregenerated: true })
    const { problems } = await preflightProblems(c, { offline: false, now: NOW })
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatchObject({ severity: 'error', path: 'server.generateKubeconfig' })
    expect(problems[0]!.message).toContain(`does not trust ${stateDir}/cert.pem: kube-apiserver could not connect`)
  })

  it('a pre-generated kubeconfig while the state dir has no certificate: the server would serve one nobody trusts', async () => {
    const dir = tempDir()
    const cert = await generateServingCert({ address: '127.0.0.1', hostname: 'localhost', now: NOW })
    const kc = join(dir, 'kc.yaml')
    writeFileSync(kc, renderWebhookKubeconfig({ certPem: cert.certPem, hostname: 'localhost', port: 21362 }))
    mkdirSync(join(dir, 'state'))
    const c = config({ stateDir: join(dir, 'state'), generateKubeconfig: kc, kubeconfigPregenerated: true })
    const { problems } = await preflightProblems(c, { offline: false, now: NOW })
    expect(problems.map((p) => p.message)).toEqual([
      expect.stringContaining(
        'is missing or unusable: the server would serve another one and kube-apiserver could not connect',
      ),
    ])
  })

  it('a key that does not match its certificate', async () => {
    const dir = tempDir()
    const stateDir = join(dir, 'state')
    await loadOrCreateServingCert({ stateDir, address: '127.0.0.1', hostname: 'localhost' })
    writeFileSync(
      join(stateDir, 'key.pem'),
      (await generateServingCert({ address: '127.0.0.1', hostname: 'localhost', now: NOW })).keyPem,
    )
    const { problems } = await preflightProblems(config({ stateDir }), { offline: false, now: NOW })
    expect(problems).toEqual([
      {
        path: 'server.stateDir',
        severity: 'error',
        message: expect.stringMatching(/^the serving key .* does not match the certificate /),
      },
    ])
  })
})
