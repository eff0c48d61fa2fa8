// Section 1: the `token` command's start-up cost, each run a fresh process, runs interleaved
// round-robin so that drift (thermal, page cache, noisy neighbours) hits every command alike.
import { spawnSync } from 'node:child_process'
import { realpathSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { BENCH_CLUSTER } from './principals.js'
import { BIN, cleanEnv, ROOT } from './procs.js'
import { median, percentile, sorted } from './stats.js'

export interface CommandTiming {
  readonly name: string
  readonly runs: number
  readonly medianMs: number
  readonly p90Ms: number
  readonly minMs: number
  readonly samplesMs: number[]
}

export interface TokenCommandResult {
  readonly commands: CommandTiming[]
  readonly awsCli?: { readonly path: string; readonly version: string } | undefined
  readonly notes: string[]
}

interface Cmd {
  readonly name: string
  readonly file: string
  readonly args: string[]
  readonly env: Record<string, string>
  readonly runs: number
  /** Throws when the output is not what the command should print. */
  readonly check: (stdout: string) => void
}

/** The real `aws` program: a pyenv shim needs PYENV_ROOT/HOME, so resolve it to the script behind it. */
function findAwsCli(notes: string[]): { path: string; version: string } | undefined {
  let path: string | undefined
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir === '') continue
    try {
      const p = join(dir, 'aws')
      if (statSync(p).isFile()) {
        path = p
        break
      }
    } catch {
      // not here
    }
  }
  if (path === undefined) {
    notes.push('aws CLI not on PATH: `aws eks get-token` skipped')
    return undefined
  }
  if (realpathSync(path).includes('/.pyenv/shims/')) {
    const r = spawnSync('pyenv', ['which', 'aws'], { encoding: 'utf8', timeout: 10_000 })
    if (r.status === 0 && r.stdout.trim() !== '') {
      notes.push(`aws is a pyenv shim; timing the program behind it (${r.stdout.trim()}) without the shim's overhead`)
      path = r.stdout.trim()
    }
  }
  const v = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 20_000 })
  if (v.status !== 0) {
    notes.push(`\`${path} --version\` failed: \`aws eks get-token\` skipped`)
    return undefined
  }
  return { path, version: `${v.stdout}${v.stderr}`.trim() }
}

function execCredentialToken(stdout: string): string {
  const doc = JSON.parse(stdout) as { kind?: string; status?: { token?: string } }
  if (doc.kind !== 'ExecCredential' || !doc.status?.token?.startsWith('k8s-aws-v1.')) {
    throw new Error(`not an ExecCredential with a token: ${stdout.slice(0, 200)}`)
  }
  return doc.status.token
}

function timeOnce(c: Cmd): number {
  const t0 = process.hrtime.bigint()
  const r = spawnSync(c.file, c.args, {
    cwd: ROOT,
    env: c.env,
    encoding: 'utf8',
    timeout: 30_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  if (r.error) throw new Error(`${c.name}: ${r.error.message}`)
  if (r.status !== 0) throw new Error(`${c.name} exited ${r.status ?? r.signal}: ${r.stderr.slice(0, 500)}`)
  c.check(r.stdout)
  return ms
}

export function benchTokenCommand(home: string, cacheDir: string, runs: number, awsRuns: number): TokenCommandResult {
  const notes: string[] = []
  const creds = {
    AWS_ACCESS_KEY_ID: 'AKIABENCHTOKENCMD001',
    AWS_SECRET_ACCESS_KEY: 'benchTokenCommandSecretKey0123456789abcd',
  }
  const env = cleanEnv(home, creds)
  const cachedEnv = cleanEnv(home, { ...creds, KUBE_IAM_AUTH_CACHE_DIR: cacheDir })
  const tokenArgs = [BIN, 'token', '-i', BENCH_CLUSTER]

  // Warm-up run that fills the cache; the cached runs must print exactly this token.
  const warm = spawnSync(process.execPath, [...tokenArgs, '--cache'], {
    cwd: ROOT,
    env: cachedEnv,
    encoding: 'utf8',
    timeout: 30_000,
  })
  if (warm.status !== 0) throw new Error(`token --cache warm-up failed: ${warm.stderr}`)
  const cachedTokenValue = execCredentialToken(warm.stdout)

  const cmds: Cmd[] = [
    { name: 'node -e 0', file: process.execPath, args: ['-e', '0'], env, runs, check: () => {} },
    {
      name: 'token (cold)',
      file: process.execPath,
      args: tokenArgs,
      env,
      runs,
      check: (s) => void execCredentialToken(s),
    },
    {
      name: 'token --cache (cached)',
      file: process.execPath,
      args: [...tokenArgs, '--cache'],
      env: cachedEnv,
      runs,
      check: (s) => {
        if (execCredentialToken(s) !== cachedTokenValue) throw new Error('token --cache did not print the cached token')
      },
    },
  ]
  const aws = findAwsCli(notes)
  if (aws !== undefined && awsRuns > 0) {
    cmds.push({
      name: 'aws eks get-token',
      file: aws.path,
      args: ['eks', 'get-token', '--cluster-name', BENCH_CLUSTER],
      env,
      runs: awsRuns,
      check: (s) => void execCredentialToken(s),
    })
  }

  // One discarded round warms the page cache for every command.
  for (const c of cmds) timeOnce(c)
  const samples = new Map<string, number[]>(cmds.map((c) => [c.name, []]))
  const rounds = Math.max(...cmds.map((c) => c.runs))
  for (let r = 0; r < rounds; r++) {
    for (const c of cmds) if (r < c.runs) samples.get(c.name)!.push(timeOnce(c))
  }
  return {
    commands: cmds.map((c) => {
      const s = samples.get(c.name)!
      const asc = sorted(s)
      return {
        name: c.name,
        runs: s.length,
        medianMs: median(s),
        p90Ms: percentile(asc, 90),
        minMs: asc[0]!,
        samplesMs: s,
      }
    }),
    awsCli: aws,
    notes,
  }
}
