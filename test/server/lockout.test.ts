// No lockout by installation, as an operator installs: `kube-iam-auth init` pre-generates the
// certificate and webhook kubeconfig, kube-apiserver (its stand-in) reads that kubeconfig, and
// `kube-iam-auth server --kubeconfig-pregenerated` must then accept kube-apiserver, or refuse to
// start with one line saying what to run. `validate` on the node says the same before anything
// runs.
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { load } from 'js-yaml'
import { Agent, request } from 'undici'
import { beforeAll, describe, expect, it } from 'vitest'
import { BIN, cliEnv, ensureBuilt, ROOT, runCli, tempDir } from '../support/cli.js'
import { startFakeApiserver } from '../support/fake-apiserver.js'

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

describe('no lockout by installation', () => {
  let dir: string
  let env: Record<string, string>
  beforeAll(async () => {
    await ensureBuilt()
    dir = tempDir('kia-lockout-')
    env = cliEnv(dir)
  }, 120_000)

  /** A node: a server config with caller auth and a pre-generated kubeconfig, as the Helm chart's pre-generate path. */
  async function node(name: string, extra = '') {
    const port = await freePort()
    const stateDir = join(dir, name, 'state')
    const kubeconfig = join(dir, name, 'kubeconfig.yaml')
    const config = join(dir, name, 'config.yaml')
    mkdirSync(join(dir, name), { recursive: true })
    writeFileSync(
      config,
      `clusterID: lockout-cluster\nserver:\n  port: ${port}\n  stateDir: ${stateDir}\n  generateKubeconfig: ${kubeconfig}\n` +
        `  kubeconfigPregenerated: true\n  callerAuth: true\n  mapUsers:\n    - userarn: arn:aws:iam::111122223333:user/alice\n      username: alice\n${extra}`,
    )
    return { port, stateDir, kubeconfig, config }
  }

  /** Starts the server; resolves once it listens (or with its exit and output if it stops first). */
  function startServer(config: string) {
    const child = spawn(process.execPath, [BIN, '-l', 'text', 'server', '--config', config], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (err += c.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    const ready = (async () => {
      const deadline = Date.now() + 20_000
      while (Date.now() < deadline) {
        if (out.includes('msg=listening')) return { listening: true as const }
        if (child.exitCode !== null) return { listening: false as const, code: child.exitCode, stderr: err }
        await new Promise((r) => setTimeout(r, 50))
      }
      throw new Error(`server neither listened nor exited:\n${out}\n${err}`)
    })()
    return {
      ready,
      stop: async () => {
        child.kill('SIGTERM')
        return exited
      },
    }
  }

  it('init with caller auth on writes the caller token; the pre-generated kubeconfig and the server agree', async () => {
    const n = await node('agree')
    const init = await runCli(
      ['-c', n.config, 'init', '--state-dir', n.stateDir, '--generate-kubeconfig', n.kubeconfig],
      {
        env,
      },
    )
    expect(init.code, init.stderr).toBe(0)
    const token = (load(readFileSync(n.kubeconfig, 'utf8')) as { users: { user?: { token?: string } }[] }).users[0]!
      .user?.token
    expect(token).toMatch(/^ey[\w-]+\.[\w-]+\.[\w-]+$/)
    expect((await runCli(['-c', n.config, 'validate'], { env })).code).toBe(0)

    const server = startServer(n.config)
    try {
      expect(await server.ready).toEqual({ listening: true })
      const apiserver = await startFakeApiserver({ webhookKubeconfig: n.kubeconfig, retryBaseMs: 10 })
      try {
        // an unknown token: a clean denial from the webhook (200), not a 401 for kube-apiserver
        const agent = new Agent({ connect: { ca: apiserver.caPem } })
        const res = await request(`${apiserver.url}/apis/authentication.k8s.io/v1/selfsubjectreviews`, {
          method: 'POST',
          headers: { authorization: 'Bearer k8s-aws-v1.bm90LWEtdG9rZW4', 'content-type': 'application/json' },
          body: '{}',
          dispatcher: agent,
        })
        await res.body.text()
        await agent.close()
        expect(res.statusCode).toBe(401) // kube-apiserver's answer to an unauthenticated user
        expect(apiserver.webhookStatuses).toEqual([200]) // the webhook answered kube-apiserver itself
      } finally {
        await apiserver.close()
      }
    } finally {
      expect(await server.stop()).toBe(0)
    }
  }, 60_000)

  it('a pre-generated kubeconfig without the caller token: the server refuses to start, in one line saying what to run', async () => {
    const n = await node('no-token')
    // as before this fix (or as aws-iam-authenticator init writes it): no caller token
    const init = await runCli(
      ['-c', n.config, 'init', '--no-caller-auth', '--state-dir', n.stateDir, '--generate-kubeconfig', n.kubeconfig],
      { env },
    )
    expect(init.code, init.stderr).toBe(0)
    const fix =
      `kube-iam-auth init --cluster-id lockout-cluster --hostname localhost --address 127.0.0.1 --port ${n.port} ` +
      `--state-dir ${n.stateDir} --generate-kubeconfig ${n.kubeconfig} --caller-auth`
    const refusal =
      `error: server.callerAuth is on, but the pre-generated kubeconfig ${n.kubeconfig} holds no caller token: ` +
      `kube-apiserver would get 401 on every review; run ${fix} on this node, then restart kube-apiserver\n`

    const server = startServer(n.config)
    const started = await server.ready.finally(() => server.stop())
    expect(started).toEqual({ listening: false, code: 1, stderr: refusal })

    // validate on the node says the same before anything runs
    const validate = await runCli(['-c', n.config, 'validate'], { env })
    expect(validate.code).toBe(1)
    expect(validate.stdout).toContain(`${n.config}: server.callerAuth: error: ${refusal.slice('error: '.length, -1)}`)

    // running what it says makes the server start
    const run = await runCli(fix.split(' ').slice(1), { env })
    expect(run.code, run.stderr).toBe(0)
    const again = startServer(n.config)
    try {
      expect(await again.ready).toEqual({ listening: true })
    } finally {
      expect(await again.stop()).toBe(0)
    }
  }, 60_000)

  it('a caller token for another cluster, or signed by a key the server does not have: refused', async () => {
    const n = await node('other-key')
    expect(
      (
        await runCli(['-c', n.config, 'init', '--state-dir', n.stateDir, '--generate-kubeconfig', n.kubeconfig], {
          env,
        })
      ).code,
    ).toBe(0)
    // another node's state: its own key and token
    const other = await node('other-node')
    expect(
      (
        await runCli(
          ['-c', other.config, 'init', '--state-dir', other.stateDir, '--generate-kubeconfig', other.kubeconfig],
          { env },
        )
      ).code,
    ).toBe(0)
    const doc = load(readFileSync(n.kubeconfig, 'utf8')) as { users: { user: { token: string } }[] }
    doc.users[0]!.user.token = (load(readFileSync(other.kubeconfig, 'utf8')) as typeof doc).users[0]!.user.token
    writeFileSync(n.kubeconfig, JSON.stringify(doc))
    const server = startServer(n.config)
    const started = await server.ready.finally(() => server.stop())
    expect(started.listening).toBe(false)
    expect(started).toMatchObject({ code: 1 })
    expect((started as { stderr: string }).stderr).toMatch(
      new RegExp(
        `^error: server\\.callerAuth is on, but the pre-generated kubeconfig ${n.kubeconfig} holds a caller token signed by a key that is not in ${n.stateDir}/caller-keys: kube-apiserver would get 401 on every review; run kube-iam-auth init .* on this node, then restart kube-apiserver\\n$`,
      ),
    )
  }, 60_000)

  it('a reused serving certificate that does not name the hostname: refused (kube-apiserver could not connect)', async () => {
    const n = await node('hostname', '')
    const plain = n.config.replace('config.yaml', 'plain.yaml')
    // the server writes its own kubeconfig here: only the certificate matters
    writeFileSync(plain, readFileSync(n.config, 'utf8').replace('  kubeconfigPregenerated: true\n', ''))
    expect(
      (
        await runCli(
          [
            '-c',
            plain,
            'init',
            '--hostname',
            'old.example',
            '--state-dir',
            n.stateDir,
            '--generate-kubeconfig',
            n.kubeconfig,
          ],
          { env },
        )
      ).code,
    ).toBe(0)
    const server = startServer(plain)
    const started = await server.ready.finally(() => server.stop())
    expect(started).toMatchObject({ listening: false, code: 1 })
    expect((started as { stderr: string }).stderr).toBe(
      `error: ${n.stateDir}/cert.pem: the certificate is not valid for localhost (it names IP Address:127.0.0.1, DNS:old.example); ` +
        `delete ${n.stateDir}/cert.pem and ${n.stateDir}/key.pem so a new pair is generated (kube-apiserver then needs the new webhook kubeconfig)\n`,
    )
  }, 60_000)
})
