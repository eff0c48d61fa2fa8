import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { load } from 'js-yaml'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConfigInvalid } from '../../src/shared/errors.js'
import { generateServingCert } from '../../src/server/tls.js'
import {
  renderWebhookKubeconfig,
  webhookServerUrl,
  writeWebhookKubeconfig,
} from '../../src/server/webhook-kubeconfig.js'
import { tool, tempDir } from '../support/cli.js'

const KUBECTL = tool('kubectl')

const CERT_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'

// upstream's pkg/config ServerURL and its test cases (host name, IPv4, bracketed IPv6)
describe('webhookServerUrl', () => {
  it.each([
    ['example.com', 6443, 'https://example.com:6443/authenticate'],
    ['127.0.0.1', 8080, 'https://127.0.0.1:8080/authenticate'],
    ['2001:db8::1:0', 1234, 'https://[2001:db8::1:0]:1234/authenticate'],
    ['localhost', 21362, 'https://localhost:21362/authenticate'],
  ])('(%s, %d) -> %s', (hostname, port, url) => {
    expect(webhookServerUrl(hostname, port)).toBe(url)
  })

  it.each([
    ['', 21362],
    ['localhost', 0],
    ['localhost', 65536],
    ['localhost', 1.5],
  ])('(%j, %d) is an error', (hostname, port) => {
    expect(() => webhookServerUrl(hostname, port)).toThrow(ConfigInvalid)
  })
})

describe('renderWebhookKubeconfig', () => {
  it('has exactly the fields kube-apiserver needs, the CA being the base64 cert PEM', () => {
    const text = renderWebhookKubeconfig({ certPem: CERT_PEM, hostname: 'localhost', port: 21362 })
    expect(load(text)).toEqual({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'aws-iam-authenticator',
          cluster: {
            'certificate-authority-data': Buffer.from(CERT_PEM).toString('base64'),
            server: 'https://localhost:21362/authenticate',
          },
        },
      ],
      users: [{ name: 'apiserver' }],
      contexts: [{ name: 'webhook', context: { cluster: 'aws-iam-authenticator', user: 'apiserver' } }],
      'current-context': 'webhook',
    })
  })

  it('adds the bearer token to the apiserver user when given', () => {
    const text = renderWebhookKubeconfig({
      certPem: CERT_PEM,
      hostname: '2001:db8::1:0',
      port: 1234,
      bearerToken: 's3cr3t',
    })
    const doc = load(text) as { users: unknown; clusters: { cluster: { server: string } }[] }
    expect(doc.users).toEqual([{ name: 'apiserver', user: { token: 's3cr3t' } }])
    expect(doc.clusters[0]!.cluster.server).toBe('https://[2001:db8::1:0]:1234/authenticate')
  })

  it('keeps the base64 on one line and quotes awkward tokens', () => {
    const certPem = `-----BEGIN CERTIFICATE-----\n${'A'.repeat(64)}\n`.repeat(20)
    const token = 'a: b # c\n- d'
    const text = renderWebhookKubeconfig({ certPem, hostname: 'localhost', port: 1, bearerToken: token })
    expect(text).toContain(`certificate-authority-data: ${Buffer.from(certPem).toString('base64')}\n`)
    expect((load(text) as { users: { user: { token: string } }[] }).users[0]!.user.token).toBe(token)
  })

  it('rejects an empty bearer token', () => {
    expect(() => renderWebhookKubeconfig({ certPem: CERT_PEM, hostname: 'h', port: 1, bearerToken: '' })).toThrow(
      TypeError,
    )
  })
})

describe('writeWebhookKubeconfig', () => {
  let dir: string
  beforeEach(() => {
    dir = tempDir()
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('creates the parent directories and writes the file with mode 0600', () => {
    const path = join(dir, 'etc', 'kubernetes', 'kubeconfig.yaml')
    writeWebhookKubeconfig(path, 'x: 1\n')
    expect(readFileSync(path, 'utf8')).toBe('x: 1\n')
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(readdirSync(join(dir, 'etc', 'kubernetes'))).toEqual(['kubeconfig.yaml'])
  })

  it('replaces an existing file, tightening its mode', () => {
    const path = join(dir, 'kubeconfig.yaml')
    writeFileSync(path, 'old\n', { mode: 0o644 })
    writeWebhookKubeconfig(path, 'new\n')
    expect(readFileSync(path, 'utf8')).toBe('new\n')
    expect(statSync(path).mode & 0o777).toBe(0o600)
  })

  it.skipIf(KUBECTL.missing)(`is read by kubectl${KUBECTL.skipNote}`, async () => {
    const { certPem } = await generateServingCert({ address: '127.0.0.1', hostname: 'localhost', now: new Date() })
    const path = join(dir, 'webhook.kubeconfig')
    writeWebhookKubeconfig(
      path,
      renderWebhookKubeconfig({ certPem, hostname: 'localhost', port: 21362, bearerToken: 'tok' }),
    )
    const out = execFileSync('kubectl', ['config', 'view', '--kubeconfig', path, '--raw', '-o', 'json'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: dir },
      timeout: 15_000,
    })
    const view = JSON.parse(out) as {
      clusters: { name: string; cluster: { server: string; 'certificate-authority-data': string } }[]
      users: { name: string; user: { token?: string } }[]
      'current-context': string
    }
    expect(view['current-context']).toBe('webhook')
    expect(view.clusters).toHaveLength(1)
    expect(view.clusters[0]!.name).toBe('aws-iam-authenticator')
    expect(view.clusters[0]!.cluster.server).toBe('https://localhost:21362/authenticate')
    expect(Buffer.from(view.clusters[0]!.cluster['certificate-authority-data'], 'base64').toString()).toBe(certPem)
    expect(view.users).toEqual([{ name: 'apiserver', user: { token: 'tok' } }])
  })
})
