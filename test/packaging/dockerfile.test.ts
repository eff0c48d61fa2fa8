// The Dockerfile, checked statically: a small parser reads its stages and instructions, and the tests
// check what a build would copy and run. test/packaging/docker.test.ts builds and runs the image for
// real whenever a Docker engine answers. Without one, the last block here simulates the runtime
// stage instead: it copies exactly what that stage copies into a temp dir, runs the deps stage's own
// `npm ci --omit=dev ...` there (npm registry), and runs the CLI from that production-only install,
// as the image's non-root user when the tests run as root.

import { execFile, spawn } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { request } from 'node:https'
import { dirname, join, posix, relative } from 'node:path'
import { dump, load } from 'js-yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULTS } from '../../src/config/server-config.js'
import { cliEnv, ensureBuilt, ROOT, tempDir } from '../support/cli.js'
import {
  DOCKER,
  expectDistImportsInstalled,
  expectProductionInstall,
  pkg,
  RUNTIME_UID,
  walk,
} from '../support/runtime-app.js'

// ------------------------------------------------------------------------------------------------
// A tiny Dockerfile parser: parser directives and comments, line continuations, JSON and shell
// forms, instruction flags (--from=, --platform=, ...), stages (FROM ... AS name), global ARGs.

interface Instruction {
  readonly cmd: string
  /** Arguments after the flags, as written. */
  readonly rest: string
  readonly flags: Readonly<Record<string, string>>
  /** The exec (JSON) form, when used. */
  readonly json?: string[]
  readonly line: number
}

interface Stage {
  readonly index: number
  readonly name: string | undefined
  /** Base image after global ARG substitution, or a previous stage's name. */
  readonly base: string
  readonly platform: string | undefined
  readonly instructions: Instruction[]
}

interface Dockerfile {
  readonly globalArgs: Readonly<Record<string, string>>
  readonly stages: Stage[]
}

function parseInstructions(text: string): Instruction[] {
  const out: Instruction[] = []
  const lines = text.split('\n')
  let buf = ''
  let start = 0
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!
    const trimmed = raw.trim()
    // Comment lines (and parser directives, which look like comments) are dropped, also inside a
    // continued instruction, as Docker does.
    if (trimmed.startsWith('#') || (trimmed === '' && buf === '')) continue
    if (buf === '') start = i + 1
    if (trimmed.endsWith('\\')) {
      buf += `${trimmed.slice(0, -1)} `
      continue
    }
    buf += trimmed
    const m = /^(\S+)\s*(.*)$/s.exec(buf)!
    let rest = m[2]!.trim()
    const flags: Record<string, string> = {}
    for (;;) {
      const f = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest)
      if (f === null) break
      flags[f[1]!] = f[2] ?? 'true'
      rest = rest.slice(f[0].length)
    }
    let json: string[] | undefined
    if (rest.startsWith('[')) {
      try {
        json = JSON.parse(rest) as string[]
      } catch {
        json = undefined
      }
    }
    out.push({ cmd: m[1]!.toUpperCase(), rest, flags, ...(json ? { json } : {}), line: start })
    buf = ''
  }
  return out
}

function substitute(s: string, vars: Readonly<Record<string, string>>): string {
  return s.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (_m, a?: string, b?: string) => vars[(a ?? b)!] ?? '',
  )
}

function parseDockerfile(text: string): Dockerfile {
  const globalArgs: Record<string, string> = {}
  const stages: Stage[] = []
  for (const ins of parseInstructions(text)) {
    if (ins.cmd === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.rest)
      if (m === null) throw new Error(`line ${ins.line}: cannot parse FROM ${ins.rest}`)
      stages.push({
        index: stages.length,
        name: m[2],
        base: substitute(m[1]!, globalArgs),
        platform: ins.flags.platform,
        instructions: [],
      })
    } else if (stages.length === 0) {
      if (ins.cmd !== 'ARG') throw new Error(`line ${ins.line}: only ARG may come before the first FROM`)
      const [name, value] = ins.rest.split('=', 2) as [string, string | undefined]
      globalArgs[name] = value ?? ''
    } else {
      stages[stages.length - 1]!.instructions.push(ins)
    }
  }
  return { globalArgs, stages }
}

/** COPY sources and destination (shell or exec form). */
function copyParts(ins: Instruction): { sources: string[]; dest: string } {
  const parts = ins.json ?? ins.rest.split(/\s+/)
  return { sources: parts.slice(0, -1), dest: parts[parts.length - 1]! }
}

/** WORKDIR in force before instruction `upTo` of a stage (absolute; `/` when none). */
function workdirAt(stage: Stage, upTo = stage.instructions.length): string {
  let wd = '/'
  for (const ins of stage.instructions.slice(0, upTo)) if (ins.cmd === 'WORKDIR') wd = posix.resolve(wd, ins.rest)
  return wd
}

/** `ARG NAME=default` values declared in a stage. */
function stageArgs(stage: Stage): Record<string, string> {
  const out: Record<string, string> = {}
  for (const ins of stage.instructions) {
    if (ins.cmd !== 'ARG') continue
    const [name, value] = ins.rest.split('=', 2) as [string, string | undefined]
    if (value !== undefined) out[name] = value.replace(/^"|"$/g, '')
  }
  return out
}

/** ENV of a stage, in both `ENV A=b C=d` and legacy `ENV A b` forms. */
function stageEnv(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {}
  for (const ins of stage.instructions) {
    if (ins.cmd !== 'ENV') continue
    if (!ins.rest.includes('=')) {
      const [k, ...v] = ins.rest.split(/\s+/)
      env[k!] = v.join(' ')
      continue
    }
    for (const m of ins.rest.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g))
      env[m[1]!] = m[2]!.replace(/^"|"$/g, '')
  }
  return env
}

// ------------------------------------------------------------------------------------------------
// .dockerignore, with Docker's semantics: each pattern (Go filepath.Match syntax plus **) is tested
// against the path and each of its parent directories; the last matching pattern decides, and a
// pattern starting with ! re-includes.

function globToRegExp(pattern: string): RegExp {
  let re = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++
        if (pattern[i + 1] === '/') {
          i++
          re += '(?:.*/)?'
        } else re += '.*'
      } else re += '[^/]*'
    } else if (c === '?') re += '[^/]'
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

function parseDockerignore(text: string): { negate: boolean; re: RegExp; pattern: string }[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!')
      const pattern = posix.normalize((negate ? l.slice(1) : l).trim()).replace(/^\/+|\/+$/g, '')
      return { negate, re: globToRegExp(pattern), pattern }
    })
}

function ignored(rules: ReturnType<typeof parseDockerignore>, path: string): boolean {
  const clean = posix.normalize(path).replace(/^\.\/|\/+$/g, '')
  const segments = clean.split('/')
  const candidates = segments.map((_, i) => segments.slice(0, i + 1).join('/'))
  let excluded = false
  for (const rule of rules) if (candidates.some((c) => rule.re.test(c))) excluded = !rule.negate
  return excluded
}

// ------------------------------------------------------------------------------------------------

const dockerfileText = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
const df = parseDockerfile(dockerfileText)
const dockerignore = parseDockerignore(readFileSync(join(ROOT, '.dockerignore'), 'utf8'))
const final = df.stages[df.stages.length - 1]!
const stageByName = (name: string) => df.stages.find((s) => s.name === name)
const of = (stage: Stage, cmd: string) => stage.instructions.filter((i) => i.cmd === cmd)

/** Files a stage's RUN instructions produce, by the command that produces them. */
const PRODUCED_BY: Record<string, RegExp> = {
  node_modules: /\bnpm ci\b/,
  dist: /\bnpm run build\b/,
}

/**
 * Where a path inside a stage comes from: copied from the build context (a repo path), or produced
 * by a RUN of that stage (node_modules, dist).
 */
function origin(stage: Stage, absPath: string): { context: string } | { produced: string; by: Instruction } {
  const wd = workdirAt(stage)
  const rel = posix.relative(wd, absPath)
  if (rel.startsWith('..')) throw new Error(`${absPath} is outside ${stage.name}'s WORKDIR ${wd}`)
  for (const ins of of(stage, 'COPY')) {
    if (ins.flags.from !== undefined) continue
    for (const s of copyParts(ins).sources) if (landing(stage, ins, s, undefined) === absPath) return { context: s }
  }
  const producer = PRODUCED_BY[rel]
  const by = producer && of(stage, 'RUN').find((r) => producer.test(r.rest))
  if (by) return { produced: rel, by }
  throw new Error(`nothing in stage ${stage.name} copies or produces ${absPath}`)
}

/**
 * Where COPY puts a source, as Docker does: a directory's contents go into the destination itself;
 * a file goes into the destination when that ends with / (or is .), else becomes the destination.
 */
function landing(stage: Stage, ins: Instruction, source: string, from: Stage | undefined): string {
  const { sources, dest } = copyParts(ins)
  const target = posix.resolve(workdirAt(stage, stage.instructions.indexOf(ins)), dest)
  const isDir =
    from === undefined
      ? statSync(join(ROOT, source)).isDirectory()
      : !('context' in origin(from, source)) || source.endsWith('/')
  if (isDir) return target
  return dest.endsWith('/') || dest === '.' || sources.length > 1 ? posix.join(target, posix.basename(source)) : target
}

/** What the runtime stage copies: each COPY source, where it comes from, and where it lands. */
interface RuntimeCopy {
  readonly from: Stage | undefined
  readonly source: string
  readonly dest: string
}
const runtimeCopies: RuntimeCopy[] = of(final, 'COPY').flatMap((ins) => {
  const from = ins.flags.from === undefined ? undefined : stageByName(ins.flags.from)
  if (ins.flags.from !== undefined && from === undefined)
    throw new Error(`COPY --from=${ins.flags.from}: no such stage`)
  return copyParts(ins).sources.map((source) => ({ from, source, dest: landing(final, ins, source, from) }))
})

/** What `npm run build` produces and the CLI loads (see scripts/build.mjs and bin/). */
const BUILD_OUTPUTS = [
  'dist/cli/bin.cjs',
  'dist/client/get-token.cjs',
  'dist/cli/program.js',
  'dist/cli/server.js',
  'dist/server/run.js',
]

describe('Dockerfile: stages and base images', () => {
  it('has a build stage, a production-dependencies stage and a runtime stage, the runtime last', () => {
    expect(df.stages.map((s) => s.name)).toEqual(['build', 'deps', 'runtime'])
  })

  it('builds every stage on the official Debian 12 Node.js 24 LTS image', () => {
    expect(df.globalArgs.NODE_IMAGE).toBe('node:24-bookworm-slim')
    for (const stage of df.stages) {
      expect(stage.base, `stage ${stage.name}`).toMatch(
        /^(docker\.io\/library\/)?node:24(\.\d+){0,2}-bookworm(-slim)?(@sha256:[0-9a-f]{64})?$/,
      )
    }
    // Node.js 24 satisfies package.json engines, which bin/ enforces at start.
    const minimum = /^>=(\d+)\.\d+\.\d+$/.exec(pkg.engines.node)
    expect(minimum, pkg.engines.node).not.toBeNull()
    expect(Number(minimum![1])).toBeLessThanOrEqual(24)
  })

  it('uses nothing the legacy builder lacks (it builds with DOCKER_BUILDKIT=0, BuildKit, buildah, podman)', () => {
    // A parser directive would select a BuildKit frontend (and only BuildKit reads it).
    expect(dockerfileText).not.toMatch(/^#\s*(syntax|check)\s*=/im)
    for (const stage of df.stages) {
      // FROM --platform=$BUILDPLATFORM: BUILDPLATFORM is empty without BuildKit.
      expect(stage.platform, `stage ${stage.name}: FROM --platform`).toBeUndefined()
      for (const ins of stage.instructions) {
        const where = `line ${ins.line}: ${ins.cmd}`
        if (ins.cmd === 'RUN') expect(Object.keys(ins.flags), where).toEqual([]) // --mount, --network, --security
        if (ins.cmd === 'COPY' || ins.cmd === 'ADD') {
          expect(
            Object.keys(ins.flags).filter((f) => f !== 'from' && f !== 'chown'),
            where,
          ).toEqual([]) // --link, --chmod
        }
        expect(ins.rest, `${where}: heredoc`).not.toMatch(/<<-?\s*["']?[A-Za-z_]+["']?\s*$/m)
        // Automatic platform ARGs are set only by BuildKit.
        expect(ins.rest, where).not.toMatch(/\$\{?(BUILD|TARGET)(PLATFORM|OS|ARCH|VARIANT)\b/)
      }
    }
  })

  it('build stage: installs every dependency without scripts, then copies the sources and builds', () => {
    const build = stageByName('build')!
    const kinds = build.instructions.map((i) => `${i.cmd} ${i.rest}`)
    const ci = kinds.findIndex((k) => /^RUN npm ci --ignore-scripts\b/.test(k))
    const src = kinds.findIndex((k) => /^COPY src\//.test(k))
    const run = kinds.findIndex((k) => /^RUN npm run build$/.test(k))
    expect(ci).toBeGreaterThan(-1)
    expect(src).toBeGreaterThan(ci)
    expect(run).toBeGreaterThan(src)
    expect(kinds.slice(0, ci).filter((k) => k.startsWith('COPY'))).toEqual(['COPY package.json package-lock.json ./'])
  })

  it('deps stage: production dependencies only, from the lockfile, without package scripts', () => {
    const runs = of(stageByName('deps')!, 'RUN').map((r) => r.rest)
    expect(runs).toHaveLength(1)
    expect(runs[0]).toMatch(/^npm ci\b/)
    for (const flag of ['--omit=dev', '--ignore-scripts']) expect(runs[0]).toContain(flag)
  })
})

describe('Dockerfile: COPY sources exist', () => {
  beforeAll(async () => {
    await ensureBuilt()
  }, 120_000)

  it('every COPY source from the build context exists and is not excluded by .dockerignore', () => {
    const sources = df.stages.flatMap((s) =>
      of(s, 'COPY')
        .filter((i) => i.flags.from === undefined)
        .flatMap((i) => copyParts(i).sources),
    )
    expect(sources.length).toBeGreaterThan(5)
    for (const source of sources) {
      expect(existsSync(join(ROOT, source)), source).toBe(true)
      expect(ignored(dockerignore, source), `${source} is excluded by .dockerignore`).toBe(false)
      // Inside a copied folder too: every file the build needs reaches the context.
      if (statSync(join(ROOT, source)).isDirectory()) {
        for (const f of walk(join(ROOT, source)))
          expect(ignored(dockerignore, posix.join(source, f)), `${source}${f}`).toBe(false)
      }
    }
  })

  it('every COPY --from source is produced by that stage; the build outputs exist after `npm run build`', () => {
    const fromCopies = df.stages.flatMap((s) => of(s, 'COPY').filter((i) => i.flags.from !== undefined))
    expect(fromCopies.length).toBeGreaterThan(0)
    for (const ins of fromCopies) {
      const stage = stageByName(ins.flags.from!)
      expect(stage, `COPY --from=${ins.flags.from}`).toBeDefined()
      expect(stage!.index).toBeLessThan(df.stages.indexOf(df.stages.find((s) => s.instructions.includes(ins))!))
      for (const source of copyParts(ins).sources) {
        const o = origin(stage!, source)
        if ('context' in o) expect(existsSync(join(ROOT, o.context)), o.context).toBe(true)
        else if (o.produced === 'dist') for (const f of BUILD_OUTPUTS) expect(existsSync(join(ROOT, f)), f).toBe(true)
        else expect(o.produced).toBe('node_modules') // checked by the production install below
      }
    }
    for (const f of ['bin/kube-iam-auth.cjs', 'package.json', 'package-lock.json'])
      expect(existsSync(join(ROOT, f)), f).toBe(true)
  })

  it('the runtime gets exactly package.json, production node_modules, bin/, dist/ and config/ in /app', () => {
    expect(workdirAt(final)).toBe('/app')
    expect(runtimeCopies.map((c) => c.dest).sort()).toEqual([
      '/app/bin',
      '/app/config',
      '/app/dist',
      '/app/node_modules',
      '/app/package.json',
    ])
    const byDest = Object.fromEntries(runtimeCopies.map((c) => [c.dest, c]))
    expect(byDest['/app/node_modules']!.from?.name).toBe('deps')
    expect(byDest['/app/dist']!.from?.name).toBe('build')
    for (const d of ['/app/package.json', '/app/bin', '/app/config']) expect(byDest[d]!.from, d).toBeUndefined()
  })
})

describe('Dockerfile: runtime stage', () => {
  it('runs as a numeric non-root user', () => {
    const users = of(final, 'USER')
    expect(users.length).toBeGreaterThan(0)
    const user = users[users.length - 1]!.rest
    expect(user).toMatch(/^\d+(:\d+)?$/)
    const [uid, gid] = user.split(':').map(Number)
    expect(uid).toBeGreaterThan(0)
    if (gid !== undefined) expect(gid).toBeGreaterThan(0)
    // Nothing after USER needs root.
    const after = final.instructions.slice(final.instructions.indexOf(users[users.length - 1]!) + 1)
    expect(after.filter((i) => i.cmd === 'RUN' || i.cmd === 'COPY')).toEqual([])
  })

  it('ENTRYPOINT is ["kube-iam-auth"], a symlink on PATH to the copied bin script; CMD runs the server', () => {
    expect(of(final, 'ENTRYPOINT').map((e) => e.json)).toEqual([['kube-iam-auth']])
    const cmd = of(final, 'CMD').at(-1)!.json!
    expect(cmd[0]).toBe('server')
    expect(cmd.slice(1)).toEqual(['--config', '/etc/kube-iam-auth/config.yaml'])
    // The symlink target is the script the runtime copies, under the name package.json declares.
    const link = of(final, 'RUN')
      .map((r) => /\bln -s (\S+) (\S+)/.exec(r.rest))
      .find((m) => m !== null)
    expect(link).toBeDefined()
    const [, target, name] = link!
    expect(name).toBe('/usr/local/bin/kube-iam-auth')
    expect(target).toBe(posix.join('/app', pkg.bin['kube-iam-auth']!))
    expect(runtimeCopies.some((c) => target!.startsWith(`${c.dest}/`) && c.source.replace(/\/$/, '') === 'bin')).toBe(
      true,
    )
    // node's image puts /usr/local/bin on PATH; the Dockerfile must not drop it.
    expect(stageEnv(final).PATH).toBeUndefined()
    // The script's shebang needs /usr/bin/env and node on PATH: true on node:*-bookworm*, not distroless.
    expect(readFileSync(join(ROOT, pkg.bin['kube-iam-auth']!), 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node')
  })

  it('declares the two writable volumes at the server defaults, and a port only if the default address takes one', () => {
    // A published port reaches the container's own network interface, never its 127.0.0.1: with a
    // loopback default address an EXPOSE would promise what `docker run -p`/`-P` cannot deliver.
    // The header says what server.address a published port needs.
    const loopback = /^(127\.|::1$|localhost$)/.test(DEFAULTS.address)
    expect(of(final, 'EXPOSE').map((e) => e.rest)).toEqual(loopback ? [] : [String(DEFAULTS.port)])
    if (loopback) {
      expect(dockerfileText).toMatch(/^# .*--network host/m)
      expect(dockerfileText).toMatch(/^# .*`server\.address: 0\.0\.0\.0`/m)
    }
    const volumes = of(final, 'VOLUME').flatMap((v) => v.json ?? v.rest.split(/\s+/))
    expect(volumes.sort()).toEqual([DEFAULTS.stateDir, dirname(DEFAULTS.generateKubeconfig)].sort())
    // Both exist in the image, owned by the runtime user (so an anonymous volume inherits that).
    const setup = of(final, 'RUN')
      .map((r) => r.rest)
      .join('\n')
    for (const v of volumes) {
      expect(setup).toContain(v)
      expect(setup).toMatch(new RegExp(`chown 65532:65532 [^;]*${v.replace(/[/.]/g, '\\$&')}`))
    }
  })

  it('removes npm, npx, corepack and yarn (not used at runtime)', () => {
    const setup = of(final, 'RUN')
      .map((r) => r.rest)
      .join('\n')
    for (const p of [
      '/usr/local/lib/node_modules/npm',
      '/usr/local/bin/npm',
      '/usr/local/bin/npx',
      '/usr/local/bin/corepack',
      '/opt/yarn-*',
    ]) {
      expect(setup).toContain(p)
    }
  })

  it('carries OCI labels; the version label defaults to package.json version', () => {
    const labels = of(final, 'LABEL')
      .map((l) => l.rest)
      .join(' ')
    for (const key of ['title', 'description', 'licenses', 'version', 'revision', 'base.name']) {
      expect(labels).toContain(`org.opencontainers.image.${key}=`)
    }
    expect(labels).toContain(`org.opencontainers.image.licenses="${pkg.license}"`)
    expect(stageArgs(final).VERSION).toBe(pkg.version)
  })

  it('holds no credentials: no AWS key variables, no key material, no credential files copied', () => {
    for (const stage of df.stages) {
      for (const ins of stage.instructions.filter((i) => i.cmd === 'ENV' || i.cmd === 'ARG')) {
        expect(ins.rest, `line ${ins.line}`).not.toMatch(
          /AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)|PASSWORD|SECRET|TOKEN|NPM_TOKEN|_AUTH/i,
        )
      }
    }
    expect(dockerfileText).not.toMatch(/\b(AKIA|ASIA)[0-9A-Z]{16}\b/)
    expect(dockerfileText).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/)
    const copied = df.stages.flatMap((s) => of(s, 'COPY').flatMap((i) => copyParts(i).sources))
    for (const s of copied) expect(s).not.toMatch(/(^|\/)(\.state|\.aws|\.npmrc|\.env|\.git)(\/|$)|\.pem$|kubeconfig/)
    // Nor does the context carry them.
    for (const p of [
      '.state',
      '.state/key.pem',
      '.state/caller-keys/x.jwk',
      '.env',
      'x.kubeconfig',
      '.git/config',
      '.aws/credentials',
    ]) {
      expect(ignored(dockerignore, p), p).toBe(true)
    }
  })
})

describe('.dockerignore', () => {
  it('excludes node_modules, dist, .state, .test-results, bench/results, .git and test', () => {
    for (const p of [
      'node_modules',
      'node_modules/x/index.js',
      'dist',
      'dist/cli/bin.cjs',
      '.state',
      '.test-results/vitest.json',
      'bench/results/x.json',
      '.git',
      '.git/HEAD',
      'test',
      'test/packaging/dockerfile.test.ts',
      'helm/kube-iam-auth/Chart.yaml',
      'src/node_modules/x',
    ]) {
      expect(ignored(dockerignore, p), p).toBe(true)
    }
  })

  it('lets in what the build needs and nothing else at the top level', () => {
    const top = readdirSync(ROOT)
      .filter((e) => !ignored(dockerignore, e))
      .sort()
    expect(top).toEqual([
      'bin',
      'config',
      'package-lock.json',
      'package.json',
      'scripts',
      'src',
      'tsconfig.build.json',
      'tsconfig.json',
    ])
  })

  it('matches like Docker: parents count, the last rule wins, ! re-includes', () => {
    const rules = parseDockerignore('*\n!src/\n**/*.log\n!keep.log\n')
    expect(ignored(rules, 'README.md')).toBe(true)
    expect(ignored(rules, 'src/a/b.ts')).toBe(false)
    expect(ignored(rules, 'src/a/b.log')).toBe(true)
    expect(ignored(rules, 'keep.log')).toBe(false)
  })
})

// ------------------------------------------------------------------------------------------------

const NETWORK_ERROR =
  /ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|ECONNRESET|ENETUNREACH|EHOSTUNREACH|network|socket hang up|request to .* failed|timed out/i

function exec(
  command: string,
  args: readonly string[],
  opts: { cwd: string; env: Record<string, string>; timeoutMs: number },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      command,
      [...args],
      { cwd: opts.cwd, env: opts.env, timeout: opts.timeoutMs, maxBuffer: 32 << 20 },
      (err, stdout, stderr) => {
        const killed = err !== null && err.killed === true
        resolve({
          code: err === null ? 0 : typeof err.code === 'number' ? err.code : null,
          stdout,
          stderr: `${stderr}${err === null ? '' : `\n${killed ? `timed out after ${opts.timeoutMs} ms` : err.message}`}`,
        })
      },
    )
  })
}

/** Every file under dir with its size and mtime, to prove nothing was written there. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>()
  const visit = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) visit(p)
      else {
        const st = statSync(p)
        out.set(relative(dir, p), `${st.size}:${st.mtimeMs}`)
      }
    }
  }
  visit(dir)
  return out
}

// With a Docker engine, docker.test.ts builds the image and checks the same things on it for real.
describe.skipIf(!DOCKER.missing)(
  `runtime image simulation: installs production dependencies from the npm registry (npm ci --omit=dev, up to 240 s)${
    DOCKER.missing
      ? ''
      : ' [skipped: a Docker engine answers, so test/packaging/docker.test.ts builds and runs the real image]'
  }`,
  () => {
    let work: string
    let app: string
    let skipReason: string | undefined
    const asRoot = process.getuid?.() === 0
    /** Runs as the image's user when we are root (the app dir is root's, so it is read-only to it). */
    const runAs = asRoot ? { uid: RUNTIME_UID, gid: RUNTIME_UID } : {}
    let env: Record<string, string>

    beforeAll(async () => {
      await ensureBuilt()
      work = tempDir('kia-docker-runtime-')
      chmodSync(work, 0o755)
      app = join(work, 'app')
      mkdirSync(app)
      // Exactly what the runtime stage copies: context sources and build outputs, from this checkout.
      for (const c of runtimeCopies) {
        if (c.from?.name === 'deps') continue
        const o = c.from === undefined ? { context: c.source } : origin(c.from, c.source)
        const repoPath = 'context' in o ? o.context : o.produced
        cpSync(join(ROOT, repoPath), join(app, posix.relative('/app', c.dest)), { recursive: true })
      }
      // The deps stage, with its own command, in a folder holding what that stage copies.
      const deps = stageByName('deps')!
      const install = of(deps, 'RUN')[0]!.rest.split(/\s+/)
      const depsDir = join(work, 'deps')
      mkdirSync(depsDir)
      for (const ins of of(deps, 'COPY'))
        for (const s of copyParts(ins).sources) cpSync(join(ROOT, s), join(depsDir, s))
      // The caller's registry, proxy and cache settings apply (a mirror or a proxy works), nothing else.
      const passThrough = Object.fromEntries(
        Object.entries(process.env).filter(
          ([k, v]) =>
            v !== undefined &&
            /^(npm_config_(registry|cache|proxy|https_proxy|noproxy|strict_ssl|cafile)|https?_proxy|no_proxy)$/i.test(
              k,
            ),
        ),
      ) as Record<string, string>
      const npmEnv = {
        ...cliEnv(join(work, 'npm-home')),
        npm_config_update_notifier: 'false',
        npm_config_cache: join(process.env.HOME ?? work, '.npm'),
        ...passThrough,
      }
      const result = await exec(install[0]!, install.slice(1), { cwd: depsDir, env: npmEnv, timeoutMs: 240_000 })
      if (result.code !== 0) {
        const output = `${result.stdout}\n${result.stderr}`
        if (NETWORK_ERROR.test(output)) {
          skipReason = `npm registry unreachable, production install not simulated: ${output.trim().split('\n').slice(-3).join(' | ')}`
          console.warn(`SKIPPED: ${skipReason}`)
          return
        }
        throw new Error(`${install.join(' ')} failed:\n${output}`)
      }
      cpSync(join(depsDir, 'node_modules'), join(app, 'node_modules'), { recursive: true })
      // The runtime ENV, with HOME on a folder the service user cannot write (like a read-only root).
      const home = join(work, 'home')
      mkdirSync(home, { mode: 0o755 })
      env = { ...cliEnv(home), ...stageEnv(final), HOME: home }
    }, 300_000)

    afterAll(() => {
      if (work) rmSync(work, { recursive: true, force: true })
    }, 120_000)

    const run = (args: readonly string[], cwd = app) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [join(app, 'bin/kube-iam-auth.cjs'), ...args], {
          cwd,
          env,
          ...runAs,
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        let stdout = ''
        let stderr = ''
        child.stdout.on('data', (d: Buffer) => (stdout += d))
        child.stderr.on('data', (d: Buffer) => (stderr += d))
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
        child.once('error', reject)
        child.once('close', (code) => {
          clearTimeout(timer)
          resolve({ code, stdout, stderr })
        })
      })

    it('installs exactly the production packages of the lockfile: no devDependency', ({ skip }) => {
      if (skipReason) skip(skipReason)
      expectProductionInstall(app)
    })

    it('every package dist/ imports is a declared dependency present in the production install', ({ skip }) => {
      if (skipReason) skip(skipReason)
      expectDistImportsInstalled(app)
    })

    it('`kube-iam-auth version`, `--help` and `validate --config config/server.example.yaml` work from it', async ({
      skip,
    }) => {
      if (skipReason) skip(skipReason)
      const version = await run(['version'])
      expect(version.stderr).toBe('')
      expect(JSON.parse(version.stdout)).toEqual({ Version: pkg.version })
      const help = await run(['--help'])
      expect(help.code).toBe(0)
      for (const c of [
        'token',
        'verify',
        'server',
        'init',
        'validate',
        'explain',
        'add',
        'rotate-caller-key',
        'version',
      ])
        expect(help.stdout).toContain(c)
      const validate = await run(['validate', '--config', 'config/server.example.yaml'])
      expect(validate.stderr + validate.stdout).toContain('config/server.example.yaml: valid')
      expect(validate.code).toBe(0)
    }, 60_000)

    it(`the server runs from it${asRoot ? ` as uid ${RUNTIME_UID}` : ''}, writing only to its two volumes`, async ({
      skip,
    }) => {
      if (skipReason) skip(skipReason)
      const volumes = join(work, 'volumes')
      const state = join(volumes, 'state')
      const kubeconfigDir = join(volumes, 'kubeconfig')
      mkdirSync(state, { recursive: true, mode: 0o700 })
      mkdirSync(kubeconfigDir, { recursive: true })
      chmodSync(volumes, 0o755)
      if (asRoot) for (const d of [state, kubeconfigDir]) chownSync(d, RUNTIME_UID, RUNTIME_UID)
      const example = load(readFileSync(join(app, 'config/server.example.yaml'), 'utf8')) as {
        server: Record<string, unknown>
      }
      const configDir = join(work, 'etc')
      mkdirSync(configDir, { mode: 0o755 })
      writeFileSync(
        join(configDir, 'config.yaml'),
        dump({ ...example, server: { ...example.server, port: 0, callerAuth: true } }),
        { mode: 0o644 },
      )
      const before = snapshot(app)

      const child = spawn(
        process.execPath,
        [
          join(app, 'bin/kube-iam-auth.cjs'),
          'server',
          '--config',
          join(configDir, 'config.yaml'),
          `--state-dir=${state}`,
          `--generate-kubeconfig=${join(kubeconfigDir, 'kubeconfig.yaml')}`,
        ],
        { cwd: '/', env, ...runAs, stdio: ['ignore', 'pipe', 'pipe'] },
      )
      let out = ''
      child.stdout.on('data', (d: Buffer) => (out += d))
      child.stderr.on('data', (d: Buffer) => (out += d))
      const exited = new Promise<number | null>((resolve) => child.once('close', resolve))
      try {
        // Logs are buffered (pino, 4 KiB), so readiness is the webhook kubeconfig, written atomically
        // once the listener is up (port 0: it holds the real port).
        const kubeconfig = join(kubeconfigDir, 'kubeconfig.yaml')
        const port = await new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 15_000)
          const poll = setInterval(() => {
            if (!existsSync(kubeconfig)) return
            clearInterval(poll)
            clearTimeout(timer)
            const doc = load(readFileSync(kubeconfig, 'utf8')) as {
              clusters: { cluster: { server: string } }[]
              users: { user?: { token?: string } }[]
            }
            expect(doc.users[0]!.user?.token).toMatch(/^ey/)
            resolve(Number(new URL(doc.clusters[0]!.cluster.server).port))
          }, 50)
          child.once('close', () => reject(new Error(`server exited:\n${out}`)))
        })
        const body = await new Promise<string>((resolve, reject) => {
          request({ host: '127.0.0.1', port, path: '/healthz', rejectUnauthorized: false }, (res) => {
            let b = ''
            res.on('data', (d: Buffer) => (b += d))
            res.on('end', () => resolve(`${res.statusCode} ${b}`))
          })
            .on('error', reject)
            .end()
        })
        expect(body).toBe('200 ok')
      } finally {
        child.kill('SIGTERM')
      }
      expect(await exited).toBe(0)
      expect(snapshot(app)).toEqual(before)
      expect(readdirSync(join(work, 'home'))).toEqual([])
      expect(readdirSync(state).sort()).toEqual(['caller-keys', 'cert.pem', 'key.pem'])
      expect(readdirSync(kubeconfigDir)).toEqual(['kubeconfig.yaml'])
      if (asRoot) expect(statSync(join(state, 'key.pem')).uid).toBe(RUNTIME_UID)
    }, 60_000)
  },
)
