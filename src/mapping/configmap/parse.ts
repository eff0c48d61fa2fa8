import { loadAll } from 'js-yaml'
import { didYouMean } from '../../shared/did-you-mean.js'
import { caseInsensitive, type Reader } from '../../shared/reader.js'
import { roleMapping, userMapping } from '../decode.js'
import type { Problem } from '../../shared/problem.js'
import { compileRules, type InvalidRule, type MappingDocument, type RuleSet } from '../rules.js'

/** The data keys of aws-auth; case-sensitive, as upstream reads them. */
export const AWS_AUTH_KEYS = ['mapRoles', 'mapUsers', 'mapAccounts'] as const

export interface ParsedAwsAuth {
  readonly doc: MappingDocument
  readonly rules: RuleSet
  /** Errors make the whole document invalid (last-good rule); warnings do not. */
  readonly problems: readonly Problem[]
  /** The entries that were not compiled, for `explain`. */
  readonly invalid: readonly InvalidRule[]
}

/**
 * Parses the `data` of an aws-auth ConfigMap as upstream does (each value a YAML string; field
 * names case-insensitive; "", "``", `""` and `''` mean empty) and validates every entry. Pure:
 * used by the live watcher, `validate` and `explain` alike.
 */
export function parseAwsAuthData(data: Readonly<Record<string, unknown>> | undefined, prefix = 'data.'): ParsedAwsAuth {
  const problems: Problem[] = []
  const values = data ?? {}
  for (const key of Object.keys(values)) {
    if ((AWS_AUTH_KEYS as readonly string[]).includes(key)) continue
    const canonical = AWS_AUTH_KEYS.find((k) => k.toLowerCase() === key.toLowerCase())
    const meant = canonical ?? didYouMean(key, AWS_AUTH_KEYS)
    problems.push({
      path: prefix + key,
      message:
        canonical !== undefined
          ? `ignored: aws-auth keys are case-sensitive, did you mean "${canonical}"?`
          : `unknown key (ignored: only ${AWS_AUTH_KEYS.join(', ')} are read)${meant === undefined ? '' : `; did you mean "${meant}"?`}`,
      severity: 'warning',
    })
  }
  const list = (key: (typeof AWS_AUTH_KEYS)[number]): unknown[] => {
    const raw = values[key]
    if (raw === undefined || raw === null) return []
    if (typeof raw !== 'string') {
      problems.push({ path: prefix + key, message: 'must be a string holding a YAML list', severity: 'error' })
      return []
    }
    if (isEmptyValue(raw)) return []
    let docs: unknown[]
    try {
      docs = loadAll(raw)
    } catch (err) {
      problems.push({
        path: prefix + key,
        message: `invalid YAML: ${(err as Error).message.split('\n')[0]}`,
        severity: 'error',
      })
      return []
    }
    if (docs.length > 1) {
      problems.push({ path: prefix + key, message: 'must be one YAML list, not several documents', severity: 'error' })
      return []
    }
    const doc = docs[0]
    if (doc === null || doc === undefined) return []
    if (!Array.isArray(doc)) {
      problems.push({
        path: prefix + key,
        message: 'must be a YAML list (each entry starting with "- ")',
        severity: 'error',
      })
      return []
    }
    return doc
  }
  const readers = (key: 'mapRoles' | 'mapUsers'): Reader[] =>
    list(key).map((item, i) => caseInsensitive(item, `${prefix}${key}[${i}]`, problems))
  const accountsReader = caseInsensitive({ mapAccounts: list('mapAccounts') }, prefix.replace(/\.$/, ''), problems)
  const doc: MappingDocument = {
    mapRoles: readers('mapRoles').map(roleMapping),
    mapUsers: readers('mapUsers').map(userMapping),
    mapAccounts: accountsReader.accountList('mapAccounts'),
  }
  const compiled = compileRules(doc, prefix)
  // A reader error already explains a field; do not repeat what rules.ts says about the same field.
  const reported = new Set(problems.filter((p) => p.severity === 'error').map((p) => p.path))
  for (const p of compiled.problems) {
    if (p.severity === 'error' && [...reported].some((r) => p.path === r || p.path.startsWith(`${r}.`))) continue
    problems.push(p)
  }
  return { doc, rules: compiled.rules, problems, invalid: compiled.invalid }
}

/** Upstream skips values that trim to nothing or to an empty quoted string. */
function isEmptyValue(raw: string): boolean {
  const t = raw.trim()
  return t === '' || t === '``' || t === '""' || t === "''"
}

/**
 * aws-auth as a ConfigMap manifest, for `validate --aws-auth FILE`: reads `data` of a ConfigMap YAML
 * (as `kubectl get configmap -n kube-system aws-auth -o yaml` prints it). `unusable` is set when the
 * text is not YAML at all.
 */
export function awsAuthDataFromManifest(text: string): {
  data?: Record<string, unknown>
  problems: Problem[]
  unusable?: string
} {
  let docs: unknown[]
  try {
    docs = loadAll(text)
  } catch (err) {
    const message = `invalid YAML: ${(err as Error).message.split('\n')[0]}`
    return { problems: [{ path: '(file)', message, severity: 'error' }], unusable: message }
  }
  const cm = docs.find((d) => typeof d === 'object' && d !== null) as
    { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown }; data?: unknown } | undefined
  if (cm === undefined) return { problems: [{ path: '(file)', message: 'no ConfigMap found', severity: 'error' }] }
  const problems: Problem[] = []
  if (cm.kind === undefined) {
    problems.push({
      path: 'kind',
      message:
        'missing: this is not a ConfigMap manifest (expected kind: ConfigMap, as ' +
        '`kubectl get configmap -n kube-system aws-auth -o yaml` prints it)',
      severity: 'error',
    })
  } else if (cm.kind !== 'ConfigMap') {
    problems.push({ path: 'kind', message: `expected a ConfigMap, got ${String(cm.kind)}`, severity: 'error' })
  }
  if (cm.metadata?.name !== undefined && cm.metadata.name !== 'aws-auth') {
    problems.push({
      path: 'metadata.name',
      message: `the server watches aws-auth, this is ${String(cm.metadata.name)}`,
      severity: 'warning',
    })
  }
  if (cm.metadata?.namespace !== undefined && cm.metadata.namespace !== 'kube-system') {
    problems.push({
      path: 'metadata.namespace',
      message: `the server watches kube-system, this is ${String(cm.metadata.namespace)}`,
      severity: 'warning',
    })
  }
  if (cm.data !== undefined && (typeof cm.data !== 'object' || cm.data === null || Array.isArray(cm.data))) {
    return { problems: [...problems, { path: 'data', message: 'must be a mapping of strings', severity: 'error' }] }
  }
  return { data: (cm.data ?? {}) as Record<string, unknown>, problems }
}
