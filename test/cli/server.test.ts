// `kube-iam-auth server` as a process: start-up failures exit (never hang), SIGTERM shuts down cleanly.
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { missingNodeFlags, SERVER_NODE_FLAGS } from '../../src/cli/server.js'
import { BIN, ROOT, cliEnv, ensureBuilt, runCli, tempDir } from '../support/cli.js'
import { startFakeKube } from '../support/fake-kube.js'

describe('missingNodeFlags', () => {
  it('asks for the server V8 settings unless they, or a young-generation size of the operator, are in force', () => {
    expect(missingNodeFlags([], undefined)).toEqual([...SERVER_NODE_FLAGS])
    expect(missingNodeFlags(['--inspect=127.0.0.1:0'], '')).toEqual([...SERVER_NODE_FLAGS])
    expect(missingNodeFlags([...SERVER_NODE_FLAGS], undefined)).toEqual([])
    expect(missingNodeFlags([], '--max-semi-space-size=8')).toEqual([])
    expect(missingNodeFlags(['--max-semi-space-size', '8'], undefined)).toEqual([])
    expect(missingNodeFlags(['--optimize-for-size'], undefined)).toEqual(['--max-semi-space-size=2'])
  })
})

describe('kube-iam-auth server (process)', () => {
  let dir: string
  beforeAll(async () => {
    await ensureBuilt()
    dir = tempDir('kia-server-cli-')
  }, 120_000)

  const config = (name: string, body: string) => {
    const file = join(dir, name)
    writeFileSync(file, body)
    return file
  }

  it('refuses an invalid config at start, naming the file, the entry and the field', async () => {
    const file = config('bad.yaml', 'clusterID: c\nserver:\n  mapRoles:\n    - rolearn: nope\n      username: x\n')
    const r = await runCli(['server', '--config', file], { env: cliEnv(dir), timeoutMs: 20_000 })
    expect(r.timedOut).toBe(false)
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`invalid configuration in ${file}`)
    expect(r.stderr).toContain('server.mapRoles[0].rolearn: error canonicalizing ARN')
  })

  it('--cluster-ids is read like clusterIDs: an entry equal to clusterID refuses the start, naming the flag', async () => {
    const file = config('ids.yaml', 'clusterID: green\nclusterIDs: [blue]\n')
    const r = await runCli(['server', '--config', file, '--cluster-ids', 'blue,green'], {
      env: cliEnv(dir),
      timeoutMs: 20_000,
    })
    expect(r.timedOut).toBe(false)
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`invalid configuration in ${file}`)
    expect(r.stderr).toContain(
      'clusterIDs[1]: "green" (from --cluster-ids) is clusterID already: list only the IDs accepted alongside it',
    )
  })

  it('exits (does not hang) when start-up fails after the sources started', async () => {
    const file = config(
      'unwritable.yaml',
      `clusterID: c\nserver:\n  port: 0\n  stateDir: ${join(dir, 'state1')}\n  generateKubeconfig: /etc/hostname/sub/kubeconfig.yaml\n`,
    )
    const r = await runCli(['server', '--config', file], { env: cliEnv(dir), timeoutMs: 20_000 })
    expect(r.timedOut).toBe(false)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/ENOTDIR/)
  })

  /** Starts `server` with a fresh config; resolves once it logged "listening". */
  async function serve(
    name: string,
    env: Record<string, string> = {},
    opts: { globalArgs?: readonly string[]; listening?: string } = {},
  ) {
    const file = config(
      `${name}.yaml`,
      `clusterID: c\nserver:\n  port: 0\n  stateDir: ${join(dir, name)}\n  generateKubeconfig: ${join(dir, `${name}.kubeconfig`)}\n`,
    )
    const listening = opts.listening ?? '"msg":"listening"'
    const child = spawn(process.execPath, [BIN, ...(opts.globalArgs ?? []), 'server', '--config', file], {
      cwd: ROOT,
      env: { ...cliEnv(dir), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    const deadline = Date.now() + 20_000
    while (!out.includes(listening) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    expect(out).toContain(listening)
    const stop = async () => {
      child.kill('SIGTERM')
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 10_000))])
      if (code === 'timeout') child.kill('SIGKILL')
      return code
    }
    return { child, output: () => out, stop }
  }

  it.skipIf(process.platform !== 'linux')(
    'runs with its V8 settings by itself: it re-executes itself once, keeping its process ID',
    async () => {
      const srv = await serve('reexec')
      const cmdline = readFileSync(`/proc/${srv.child.pid}/cmdline`, 'utf8').split('\0')
      expect(cmdline.slice(1, 3)).toEqual([...SERVER_NODE_FLAGS])
      const environ = readFileSync(`/proc/${srv.child.pid}/environ`, 'utf8').split('\0')
      expect(environ).toContain('MALLOC_ARENA_MAX=2')
      expect(cmdline).toContain('server')
      expect(srv.output().match(/"msg":"listening"/g)).toHaveLength(1)
      expect(await srv.stop()).toBe(0)
    },
  )

  it.skipIf(process.platform !== 'linux')(
    'an operator choice of young-generation size (NODE_OPTIONS) is kept: no re-execution',
    async () => {
      const srv = await serve('operator-flags', { NODE_OPTIONS: '--max-semi-space-size=4' })
      const cmdline = readFileSync(`/proc/${srv.child.pid}/cmdline`, 'utf8').split('\0')
      expect(cmdline).not.toContain('--max-semi-space-size=2')
      expect(await srv.stop()).toBe(0)
    },
  )

  it('serves until SIGTERM, then stops cleanly with exit code 0', async () => {
    const srv = await serve('sigterm')
    expect(await srv.stop()).toBe(0)
    expect(srv.output()).toContain('"msg":"stopped"')
  })

  it("-l text writes key=value lines like upstream's default format, not JSON", async () => {
    const srv = await serve('text', {}, { globalArgs: ['-l', 'text'], listening: 'msg=listening' })
    expect(await srv.stop()).toBe(0)
    const out = srv.output()
    const lines = out.trim().split('\n')
    expect(lines.length).toBeGreaterThan(2)
    for (const line of lines) expect(line).toMatch(/^time=\S+ level=(info|warn|error) msg=/)
    expect(lines.find((l) => l.includes('msg=listening'))).toMatch(
      /^time=\S+ level=info msg=listening url="?https:\/\/localhost:\d+\/authenticate"? clusterId=c backendMode=\["MountedFile"\] partition=aws$/,
    )
    expect(out).toContain('msg="mapping source loaded" source=MountedFile')
    expect(out).not.toContain('{"level"')
  })

  it('--backend-mode EKSConfigMap with a kubeconfig for an http:// server (kubectl proxy): aws-auth is followed', async () => {
    const kube = await startFakeKube()
    try {
      kube.setConfigMap('kube-system', 'aws-auth', {
        mapUsers: '- userarn: arn:aws:iam::111122223333:user/alice\n  username: alice\n',
      })
      // as kubectl users write it for `kubectl proxy`: no insecure-skip-tls-verify (there is no TLS)
      const kubeconfig = join(dir, 'proxy.kubeconfig')
      writeFileSync(
        kubeconfig,
        `clusters:\n- name: p\n  cluster:\n    server: ${kube.url}\ncontexts:\n- name: p\n  context:\n    cluster: p\n    user: p\n` +
          'users:\n- name: p\n  user: {}\ncurrent-context: p\n',
      )
      const file = config(
        'proxy.yaml',
        `clusterID: c\nserver:\n  port: 0\n  stateDir: ${join(dir, 'state4')}\n  generateKubeconfig: ${join(dir, 'proxy-webhook.kubeconfig')}\n`,
      )
      const child = spawn(
        process.execPath,
        [BIN, 'server', '--config', file, '--backend-mode', 'EKSConfigMap', '--kubeconfig', kubeconfig],
        { cwd: ROOT, env: cliEnv(dir), stdio: ['ignore', 'pipe', 'pipe'] },
      )
      let out = ''
      child.stdout.on('data', (c: Buffer) => (out += c.toString()))
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
      const deadline = Date.now() + 20_000
      while (!out.includes('"msg":"listening"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      child.kill('SIGTERM')
      expect(await exited).toBe(0)
      expect(out).toContain('"msg":"aws-auth mapping applied"')
      expect(out).not.toContain('HTTP protocol is not allowed')
      expect(kube.watches).toBeGreaterThan(0)
    } finally {
      await kube.close()
    }
  })
})
