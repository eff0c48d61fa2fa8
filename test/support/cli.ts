// Helpers for tests that run the built CLI (`node bin/kube-iam-auth.cjs ...`) as a child process.
//
// Child processes never inherit the test runner's environment: they get a clean one that cannot
// reach AWS (metadata disabled, config files pointing nowhere, HOME in a temp dir, explicit
// region, no proxy variables) plus whatever the test adds.

import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const BIN = join(ROOT, 'bin', 'kube-iam-auth.cjs')

/** What `npm run build` produces and the CLI loads. */
const BUILD_OUTPUTS = [
  'dist/cli/bin.cjs',
  'dist/client/get-token.cjs',
  'dist/cli/program.js',
  'dist/cli/verify.js',
  'dist/sts/verify.js',
].map((f) => join(ROOT, f))

function newestMtime(dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    try {
      newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs)
    } catch {
      // removed while we looked (editors' temp files)
    }
  }
  return newest
}

function outputsExist(): boolean {
  return BUILD_OUTPUTS.every((f) => existsSync(f))
}

/** True when every build output exists and none is older than the newest file under src/. */
export function distIsFresh(): boolean {
  if (!outputsExist()) return false
  const src = newestMtime(join(ROOT, 'src'))
  return BUILD_OUTPUTS.every((f) => statSync(f).mtimeMs >= src)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Builds dist/ when it is missing or older than src/ (normally `npm ci` already built it). Test
 * files run in parallel, so the build is serialised with a lock directory; a waiter re-checks
 * freshness once it has the lock and usually finds nothing left to do.
 *
 * A failed build fails every test that needs it: testing a stale dist/ would report results for
 * code that is not the code under review. The failure is recorded next to the lock, so the other
 * test files report it too instead of each rebuilding the same broken src/.
 */
export async function ensureBuilt(timeoutMs = 90_000): Promise<void> {
  if (distIsFresh()) return
  const id = createHash('sha256').update(ROOT).digest('hex').slice(0, 12)
  const lock = join(tmpdir(), `kube-iam-auth-build-${id}.lock`)
  const failedMarker = `${lock}.failed`
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      mkdirSync(lock)
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      try {
        // A lock left by a killed run: a build never takes this long.
        if (Date.now() - statSync(lock).mtimeMs > 180_000) rmSync(lock, { recursive: true, force: true })
      } catch {
        // released meanwhile
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for the build lock ${lock}`)
      await sleep(100)
    }
  }
  try {
    if (distIsFresh()) return
    const srcState = String(newestMtime(join(ROOT, 'src')))
    const failed = existsSync(failedMarker)
      ? (JSON.parse(readFileSync(failedMarker, 'utf8')) as { src: string; error: string })
      : undefined
    if (failed?.src === srcState) throw new Error(failed.error)
    try {
      await new Promise<void>((resolve, reject) => {
        execFile(
          process.execPath,
          ['scripts/build.mjs'],
          { cwd: ROOT, timeout: Math.max(1_000, deadline - Date.now()), maxBuffer: 16 << 20 },
          (err, stdout, stderr) =>
            err === null ? resolve() : reject(new Error(`npm run build failed: ${err.message}\n${stdout}\n${stderr}`)),
        )
      })
      rmSync(failedMarker, { force: true })
    } catch (err) {
      writeFileSync(failedMarker, JSON.stringify({ src: srcState, error: (err as Error).message.slice(0, 4_000) }))
      throw err
    }
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}

/** A fresh private temp directory; remove it with `rmSync(dir, { recursive: true, force: true })`. */
export function tempDir(prefix = 'kia-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export type ChildEnv = Record<string, string | undefined>

/**
 * A clean child environment: nothing from the runner's environment but PATH. `extra` entries set
 * to undefined are left out.
 */
export function cliEnv(home: string, extra: ChildEnv = {}): Record<string, string> {
  const env: ChildEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: join(home, 'no-such-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-such-aws-credentials'),
    AWS_REGION: 'us-west-2',
    ...extra,
  }
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v
  return out
}

export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
}

export interface RunOptions {
  /** The complete child environment, usually from cliEnv(). */
  readonly env: Record<string, string>
  /** Written to stdin, which is then closed; stdin is closed immediately when absent. */
  readonly input?: string
  /** The child is killed (SIGKILL) after this long. */
  readonly timeoutMs?: number
  readonly cwd?: string
}

/** Runs `node bin/kube-iam-auth.cjs ...args` and collects its output; never rejects for a non-zero exit. */
export function runCli(args: readonly string[], opts: RunOptions): Promise<CliResult> {
  return runProcess(process.execPath, [BIN, ...args], opts)
}

/** Runs any program with the same guarantees as runCli (bounded, clean environment given by the caller). */
export function runProcess(command: string, args: readonly string[], opts: RunOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], {
      cwd: opts.cwd ?? ROOT,
      env: opts.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s))
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s))
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, opts.timeoutMs ?? 15_000)
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, timedOut })
    })
  })
}

/** True when `name` is an executable on PATH. */
export function onPath(name: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir === '') continue
    try {
      const st = statSync(join(dir, name))
      if (st.isFile() && (st.mode & 0o111) !== 0) return true
    } catch {
      // not here
    }
  }
  return false
}

export interface Tool {
  readonly name: string
  readonly missing: boolean
  /** Appended to a test title: empty when the tool is there, else why the test is skipped. */
  readonly skipNote: string
}

/**
 * A program some tests need from the machine (kubectl, the AWS CLI, openssl, docker). Tests that
 * need a missing one are skipped, and their title says which tool was missing, so the CI summary
 * (scripts/test-summary.mjs lists skipped tests) shows why.
 */
export function tool(name: string, available: () => boolean = () => onPath(name)): Tool {
  const missing = !available()
  return { name, missing, skipNote: missing ? ` [skipped: ${name} is not available on this machine]` : '' }
}

/** The presigned URL inside a `k8s-aws-v1.` token. */
export function decodeTokenUrl(token: string): string {
  if (!token.startsWith('k8s-aws-v1.')) throw new Error(`not a token: ${token.slice(0, 20)}`)
  return Buffer.from(token.slice('k8s-aws-v1.'.length), 'base64url').toString('utf8')
}

/** Host and path+query of a presigned URL, split the way STS receives them. */
export function splitPresignedUrl(url: string): { host: string; pathAndQuery: string } {
  const m = /^https:\/\/([^/?#]+)(\/[^#]*)$/.exec(url)
  if (m === null) throw new Error(`not an https URL with a path: ${url}`)
  return { host: m[1]!, pathAndQuery: m[2]! }
}
