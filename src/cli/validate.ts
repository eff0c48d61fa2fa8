import { UsageError } from '../shared/errors.js'
import { mapsNothing, migrationFindings, patternFindings } from '../mapping/lint.js'
import type { Problem } from '../shared/problem.js'
import { preflightProblems } from '../server/preflight.js'
import type { Io } from './io.js'
import { readOfflineSources, type CheckedFile, type OfflineFlags } from './mapping-sources.js'

export interface ValidateFlags extends OfflineFlags {
  readonly output?: string | undefined
  /** Warnings fail too (exit 1). */
  readonly strict?: boolean | undefined
  /** Warn about entries that matched nothing in aws-iam-authenticator and grant access here (default on). */
  readonly migrationWarnings?: boolean | undefined
}

/**
 * `kube-iam-auth validate`: one judge. Each file goes through the decoders the server uses at start
 * and on every live edit, the server's start-up checks of the serving certificate and the
 * pre-generated kubeconfig run where their files are, and then what only a linter can say: a file
 * that maps nothing, role patterns that grant system:masters or match every role of an account,
 * entries that matched nothing in aws-iam-authenticator but grant access here.
 * Exit 0 clean, 1 errors (or warnings with --strict), 2 unusable input (unreadable, not YAML or JSON,
 * bad flags).
 */
export async function runValidate(flags: ValidateFlags, io: Io, readStdin: () => string): Promise<number> {
  let offline
  try {
    offline = readOfflineSources(flags, readStdin)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    io.stderr.write(`Error: ${err.message}\nRun 'kube-iam-auth validate --help' for usage.\n`)
    return 2
  }
  const notes: string[] = []
  const findings: { file: string; problems: Problem[] }[] = []
  for (const f of offline.files) {
    const problems = [...f.problems]
    if (f.unusable === undefined) problems.push(...lintFile(f, flags.migrationWarnings ?? true, offline.config))
    if (f.kind === 'config' && offline.config !== undefined) {
      const preflight = await preflightProblems(offline.config, { offline: true, now: io.now() })
      problems.push(...preflight.problems)
      if (preflight.skipped !== undefined) notes.push(preflight.skipped)
    }
    findings.push({ file: f.file, problems })
  }
  const all = findings.flatMap((f) => f.problems.map((p) => ({ file: f.file, ...p })))
  const errors = all.filter((p) => p.severity === 'error').length
  const warnings = all.length - errors
  const unusable = offline.files.some((f) => f.unusable !== undefined)
  const code = unusable ? 2 : errors > 0 || (flags.strict && warnings > 0) ? 1 : 0
  if (flags.output === 'json') {
    const valid = errors === 0 && !unusable
    io.stdout.write(`${JSON.stringify({ valid, errors, warnings, problems: all, notes }, null, 2)}\n`)
    return code
  }
  for (const p of all) io.stdout.write(`${p.file}: ${p.path}: ${p.severity}: ${p.message}\n`)
  for (const n of notes) io.stdout.write(`note: ${n}\n`)
  const ok = findings.filter((f) => !f.problems.some((p) => p.severity === 'error')).map((f) => f.file)
  if (ok.length > 0 && errors === 0 && !unusable) io.stdout.write(`${ok.join(', ')}: valid\n`)
  io.stdout.write(`${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}\n`)
  if (code === 1 && errors === 0) io.stdout.write('--strict: warnings fail\n')
  return code
}

/** What only a linter can say about a file the server would accept. */
function lintFile(f: CheckedFile, migration: boolean, config: { port: number } | undefined): Problem[] {
  const out: Problem[] = []
  const m = f.mappings
  const empty = m !== undefined && m.doc.mapRoles.length + m.doc.mapUsers.length + m.doc.mapAccounts.length === 0
  if (f.kind === 'aws-auth' && f.data !== undefined && empty) {
    const keys = Object.keys(f.data ?? {})
    const why =
      keys.length === 0
        ? 'the ConfigMap has no data'
        : !keys.some((k) => ['mapRoles', 'mapUsers', 'mapAccounts'].includes(k))
          ? `data has no mapRoles, mapUsers or mapAccounts (only ${keys.join(', ')})`
          : 'mapRoles, mapUsers and mapAccounts are all empty'
    out.push({
      path: 'data',
      message: `maps nothing: ${why}; applied, it would remove every aws-auth mapping and lock out every node and user it mapped`,
      severity: 'error',
    })
  }
  if (f.kind === 'dynamic-file' && (empty || (m === undefined && f.counts && total(f.counts) === 0))) {
    out.push({
      path: '(file)',
      message:
        'maps nothing: no mapRoles, mapUsers or mapAccounts entries; the DynamicFile backend would deny everyone',
      severity: 'error',
    })
  }
  if (f.kind === 'config') {
    if (config?.port === 0) {
      out.push({
        path: 'server.port',
        message:
          'port 0 picks a random port at every start: kube-apiserver needs the rewritten webhook kubeconfig each time',
        severity: 'warning',
      })
    }
    if (config !== undefined && m !== undefined && mapsNothing(m.rules) && onlyMountedFile(f)) {
      out.push({
        path: 'server',
        message:
          'maps nothing: backendMode is [MountedFile] and it has no valid mapRoles, mapUsers or mapAccounts: every ' +
          'TokenReview would be denied',
        severity: 'error',
      })
    }
  }
  const applied = m !== undefined && (f.kind !== 'config' || usesMountedFile(f))
  if (applied) out.push(...patternFindings(m.rules, m.prefix))
  if (migration && applied) out.push(...migrationFindings(m.doc, m.rules, m.prefix))
  return out
}

const total = (c: { roles: number; users: number; accounts: number }) => c.roles + c.users + c.accounts
const backendsOf = (f: CheckedFile) => f.backendMode ?? []
const onlyMountedFile = (f: CheckedFile) => backendsOf(f).length === 1 && backendsOf(f)[0] === 'MountedFile'
const usesMountedFile = (f: CheckedFile) => backendsOf(f).includes('MountedFile')
