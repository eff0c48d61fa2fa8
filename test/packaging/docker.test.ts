// The container image, built and run for real whenever a Docker engine answers (`docker info`): the
// build uses a clean copy of the checkout (the files git knows about, so no local node_modules/,
// dist/ or .state/), and the containers run as the image says, read-only and with host networking
// or none (the server's default address is 127.0.0.1). test/packaging/dockerfile.test.ts checks the
// Dockerfile statically, and without an engine simulates the runtime stage instead.
//
// Containers get no credentials and contact nothing: `--network none` for the offline commands, and
// the server (host network, a free loopback port) is only asked for /healthz, which needs no AWS.

import { execFileSync } from 'node:child_process'
import { X509Certificate, randomBytes } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { dirname, join } from 'node:path'
import { dump, load } from 'js-yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULTS } from '../../src/config/server-config.js'
import { ROOT, runProcess, tempDir, type CliResult } from '../support/cli.js'
import {
  DOCKER,
  expectDistImportsInstalled,
  expectProductionInstall,
  pkg,
  RUNTIME_UID,
} from '../support/runtime-app.js'

const TAG = `kube-iam-auth:test-${process.pid}-${randomBytes(4).toString('hex')}`
const STATE_DIR = DEFAULTS.stateDir
const KUBECONFIG = DEFAULTS.generateKubeconfig
/** npm or the base image's registry could not be reached: not a fault of the image. */
const UNREACHABLE =
  /npm (?:ERR!|error) (?:code )?(?:ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH)|npm (?:ERR!|error) network|dial tcp[^\n]*(?:no such host|i\/o timeout|connection refused|network is unreachable)/

/** The docker CLI, with the caller's environment (DOCKER_HOST, DOCKER_CONFIG, ...), bounded in time. */
function docker(args: readonly string[], timeoutMs = 20_000, cwd = ROOT): Promise<CliResult> {
  const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined))
  return runProcess('docker', args, { env, timeoutMs, cwd })
}

/** Fails with the command's output unless it exited 0. */
async function dockerOk(args: readonly string[], timeoutMs?: number): Promise<string> {
  const r = await docker(args, timeoutMs)
  if (r.code !== 0) {
    throw new Error(
      `docker ${args.join(' ')}: exit ${r.code}${r.timedOut ? ' (timed out)' : ''}\n${r.stdout}${r.stderr}`,
    )
  }
  return r.stdout
}

/**
 * The build context: the files git tracks plus untracked ones it does not ignore, as in a fresh
 * clone of this working tree (the .dockerignore then applies as usual). Without git, the checkout
 * itself, where the .dockerignore allow-list keeps node_modules/ and dist/ out.
 */
function buildContext(dest: string): string {
  let files: string[]
  try {
    files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      cwd: ROOT,
      encoding: 'utf8',
      maxBuffer: 16 << 20,
      timeout: 10_000,
    })
      .split('\0')
      .filter((f) => f !== '')
  } catch {
    return ROOT
  }
  for (const f of files) {
    if (!existsSync(join(ROOT, f))) continue // deleted in the working tree
    mkdirSync(dirname(join(dest, f)), { recursive: true })
    cpSync(join(ROOT, f), join(dest, f))
  }
  return dest
}

/** pino's JSON lines. */
function logLines(text: string): { level?: string; msg?: string; signal?: string }[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level?: string; msg?: string; signal?: string })
}

describe.skipIf(DOCKER.missing)(`the container image, built with docker build and run${DOCKER.skipNote}`, () => {
  let work: string
  let skipReason: string | undefined
  let built = false
  /** The image's /app, copied out of it. */
  let app: string
  const containers: string[] = []
  const containerName = (what: string) => {
    const name = `kia-test-${what}-${process.pid}-${randomBytes(3).toString('hex')}`
    containers.push(name)
    return name
  }
  /** `docker run --rm --read-only --network none IMAGE ...args` */
  const runOffline = (args: readonly string[], extra: readonly string[] = []) =>
    docker(['run', '--rm', '--read-only', '--network', 'none', ...extra, TAG, ...args], 30_000)

  beforeAll(async () => {
    work = tempDir('kia-docker-')
    const context = buildContext(join(work, 'context'))
    const build = await docker(['build', '--network', 'host', '-t', TAG, '.'], 280_000, context)
    if (build.code !== 0) {
      const output = `${build.stdout}\n${build.stderr}`
      if (UNREACHABLE.test(output)) {
        skipReason = `a registry the build needs is unreachable: ${output.trim().split('\n').slice(-3).join(' | ')}`
        console.warn(`SKIPPED: ${skipReason}`)
        return
      }
      throw new Error(`docker build failed (exit ${build.code}${build.timedOut ? ', timed out' : ''}):\n${output}`)
    }
    built = true
    // The runtime's /app, for the checks that read files (docker create runs nothing).
    const holder = containerName('files')
    await dockerOk(['create', '--name', holder, TAG])
    app = join(work, 'app')
    await dockerOk(['cp', `${holder}:/app`, app], 60_000)
  }, 300_000)

  afterAll(async () => {
    // -v: also the anonymous volumes created for the image's VOLUMEs.
    for (const name of containers) await docker(['rm', '--force', '--volumes', name], 30_000)
    if (built) await docker(['image', 'rm', TAG], 30_000)
    if (work) rmSync(work, { recursive: true, force: true })
  }, 120_000)

  it('has the runtime user, entrypoint, volumes and environment the Dockerfile declares, and no exposed port', async ({
    skip,
  }) => {
    if (skipReason) skip(skipReason)
    const [config] = JSON.parse(await dockerOk(['image', 'inspect', TAG])) as {
      Config: {
        User: string
        Entrypoint: string[]
        Cmd: string[]
        Env: string[]
        Volumes: Record<string, unknown> | null
        ExposedPorts?: Record<string, unknown> | null
      }
    }[]
    expect(config!.Config.User).toBe(`${RUNTIME_UID}:${RUNTIME_UID}`)
    expect(config!.Config.Entrypoint).toEqual(['kube-iam-auth'])
    expect(config!.Config.Cmd).toEqual(['server', '--config', '/etc/kube-iam-auth/config.yaml'])
    expect(Object.keys(config!.Config.Volumes ?? {}).sort()).toEqual([STATE_DIR, dirname(KUBECONFIG)].sort())
    // The default address is 127.0.0.1: a published port could not reach it (see the Dockerfile).
    expect(DEFAULTS.address).toBe('127.0.0.1')
    expect(config!.Config.ExposedPorts ?? {}).toEqual({})
    // The server sets its own V8 settings (a NODE_OPTIONS semi-space size would replace them).
    expect(config!.Config.Env.filter((e) => e.startsWith('NODE_OPTIONS='))).toEqual([])
  })

  it('holds exactly package.json, bin/, config/, dist/ and the production node_modules in /app; no npm', async ({
    skip,
  }) => {
    if (skipReason) skip(skipReason)
    expect(readdirSync(app).sort()).toEqual(['bin', 'config', 'dist', 'node_modules', 'package.json'])
    expectProductionInstall(app)
    expectDistImportsInstalled(app)
    const npm = await runOffline(
      ['-c', 'command -v npm npx corepack yarn; echo "node $(node --version)"'],
      ['--entrypoint', 'sh'],
    )
    expect(npm.stdout.trim()).toMatch(/^node v24\.\d+\.\d+$/)
  }, 60_000)

  it('`version`, `--help` and `validate` run offline on a read-only root filesystem', async ({ skip }) => {
    if (skipReason) skip(skipReason)
    const version = await runOffline(['version'])
    expect(version).toMatchObject({ code: 0, stderr: '', timedOut: false })
    expect(JSON.parse(version.stdout)).toEqual({ Version: pkg.version })
    const help = await runOffline(['--help'])
    expect(help.code).toBe(0)
    for (const c of ['token', 'verify', 'server', 'init', 'validate', 'explain', 'add', 'rotate-caller-key', 'version'])
      expect(help.stdout).toContain(c)
    const validate = await runOffline(['validate', '--config', 'config/server.example.yaml'])
    expect(validate.stderr + validate.stdout).toContain('config/server.example.yaml: valid')
    expect(validate.code).toBe(0)
  }, 60_000)

  it('`token` without a cluster ID prints a one-line error and the usage hint, no stack trace, exit 1', async ({
    skip,
  }) => {
    if (skipReason) skip(skipReason)
    const r = await runOffline(['token'])
    expect(r).toMatchObject({ code: 1, stdout: '', timedOut: false })
    expect(r.stderr).toBe("Error: cluster ID not specified\nRun 'kube-iam-auth token --help' for usage.\n")
  }, 30_000)

  it(`the server runs as uid ${RUNTIME_UID} on a read-only root with host networking, answers /healthz, and stops on SIGTERM with exit 0`, async ({
    skip,
  }) => {
    if (skipReason) skip(skipReason)
    const example = load(readFileSync(join(ROOT, 'config/server.example.yaml'), 'utf8')) as {
      server: Record<string, unknown>
    }
    const configFile = join(work, 'config.yaml')
    // Port 0: the server takes a free loopback port and writes it into the webhook kubeconfig.
    writeFileSync(configFile, dump({ ...example, server: { ...example.server, port: 0, callerAuth: true } }), {
      mode: 0o644,
    })
    const name = containerName('server')
    await dockerOk([
      'run',
      '--detach',
      '--name',
      name,
      '--read-only',
      '--network',
      'host',
      '--env',
      'AWS_EC2_METADATA_DISABLED=true',
      '--env',
      'AWS_REGION=us-west-2',
      '--volume',
      `${configFile}:/etc/kube-iam-auth/config.yaml:ro`,
      // The state and kubeconfig directories: the anonymous volumes the image declares.
      TAG,
    ])
    const exec = (args: readonly string[]) => docker(['exec', name, ...args])

    // Ready once the webhook kubeconfig exists: it is written after the listener is up.
    let kubeconfig = ''
    const deadline = Date.now() + 20_000
    while (kubeconfig === '') {
      const r = await exec(['cat', KUBECONFIG])
      if (r.code === 0 && r.stdout !== '') kubeconfig = r.stdout
      else if (Date.now() > deadline) {
        const logs = await docker(['logs', name])
        throw new Error(`the server did not write ${KUBECONFIG}: ${r.stderr}\n${logs.stdout}${logs.stderr}`)
      } else await new Promise((resolve) => setTimeout(resolve, 200))
    }
    const doc = load(kubeconfig) as {
      clusters: { cluster: { server: string; 'certificate-authority-data': string } }[]
      users: { user?: { token?: string } }[]
    }
    expect(doc.users[0]!.user?.token).toMatch(/^ey/)
    const port = Number(new URL(doc.clusters[0]!.cluster.server).port)
    expect(port).toBeGreaterThan(0)

    // The process (PID 1, not a shell) runs as the service user, on a read-only root filesystem.
    const status = await exec(['cat', '/proc/1/status'])
    expect(status.stdout).toMatch(new RegExp(`^Uid:\\t${RUNTIME_UID}\\t${RUNTIME_UID}\\t`, 'm'))
    expect(status.stdout).toMatch(new RegExp(`^Gid:\\t${RUNTIME_UID}\\t${RUNTIME_UID}\\t`, 'm'))
    const cmdline = (await exec(['cat', '/proc/1/cmdline'])).stdout.split('\0')
    // node itself (not a shell), named by its full path once the server re-executed itself
    expect(cmdline[0]).toBe('/usr/local/bin/node')
    // ... re-executed with the server's small-heap settings, as outside the image
    expect(cmdline.slice(1, 3)).toEqual(['--max-semi-space-size=2', '--optimize-for-size'])
    expect((await exec(['cat', '/proc/1/environ'])).stdout.split('\0')).toContain('MALLOC_ARENA_MAX=2')
    expect((await dockerOk(['inspect', '--format', '{{.HostConfig.ReadonlyRootfs}}', name])).trim()).toBe('true')
    // /tmp (HOME) is world-writable in the image: only the read-only root keeps it from being written.
    const write = await exec([
      'node',
      '-e',
      "try { require('fs').writeFileSync('/tmp/probe', 'x'); console.log('written') } catch (e) { console.log(e.code) }",
    ])
    expect(write.stdout.trim()).toBe('EROFS')
    const state = await exec(['ls', '-A', STATE_DIR])
    expect(state.stdout.split('\n').filter(Boolean).sort()).toEqual(['caller-keys', 'cert.pem', 'key.pem'])

    // /healthz over TLS, verified against the serving certificate from the state directory volume.
    const certPem = (await exec(['cat', join(STATE_DIR, 'cert.pem')])).stdout
    expect(new X509Certificate(certPem).checkIP('127.0.0.1')).toBe('127.0.0.1')
    expect(Buffer.from(doc.clusters[0]!.cluster['certificate-authority-data'], 'base64').toString()).toBe(certPem)
    const body = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/healthz', ca: certPem, timeout: 5_000 }, (res) => {
        let b = ''
        res.on('data', (d: Buffer) => (b += d))
        res.on('end', () => resolve(`${res.statusCode} ${b}`))
      })
      req.on('timeout', () => req.destroy(new Error('GET /healthz timed out')))
      req.on('error', reject)
      req.end()
    })
    expect(body).toBe('200 ok')

    // docker stop sends SIGTERM and waits 10 s before SIGKILL (exit 137): a graceful stop is prompt.
    const started = Date.now()
    await dockerOk(['stop', '--time', '10', name], 30_000)
    expect(Date.now() - started).toBeLessThan(5_000)
    const exit = (await dockerOk(['inspect', '--format', '{{.State.ExitCode}} {{.State.OOMKilled}}', name])).trim()
    expect(exit).toBe('0 false')
    const logs = await docker(['logs', name])
    const lines = logLines(logs.stdout)
    expect(lines.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([])
    const msgs = lines.map((l) => l.msg)
    expect(msgs).toContain('listening')
    expect(lines.find((l) => l.msg === 'shutting down')?.signal).toBe('SIGTERM')
    expect(msgs.at(-1)).toBe('stopped')
    expect(logs.stderr).toBe('')
  }, 90_000)
})
