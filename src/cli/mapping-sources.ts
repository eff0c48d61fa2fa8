import { readFileSync } from 'node:fs'
import { decodeServerConfig, readConfigDocument, type ServerConfig } from '../config/server-config.js'
import { ConfigInvalid, UsageError } from '../shared/errors.js'
import { awsAuthDataFromManifest, parseAwsAuthData } from '../mapping/configmap/parse.js'
import { parseDynamicFile } from '../mapping/dynamicfile/parse.js'
import type { ExplainSource } from '../mapping/explain.js'
import { compileRules, type InvalidRule, type MappingDocument, type RuleSet } from '../mapping/rules.js'
import type { Problem } from '../shared/problem.js'
import { snapshotOf, StaticMapper, type Snapshot } from '../mapping/static.js'
import type { BackendMode } from '../mapping/types.js'

/** A file given to `validate` or `explain`, with every problem the server's own decoders find in it. */
export interface CheckedFile {
  readonly file: string
  readonly kind: 'config' | 'aws-auth' | 'dynamic-file'
  readonly problems: readonly Problem[]
  /** Why the file cannot be used at all (unreadable, not YAML or JSON): `validate` exits 2. */
  readonly unusable?: string | undefined
  /** What the file maps (also when it has errors), for the linter's checks. */
  readonly mappings?: { readonly doc: MappingDocument; readonly rules: RuleSet; readonly prefix: string } | undefined
  /** aws-auth only: the manifest's `data`. */
  readonly data?: Readonly<Record<string, unknown>> | undefined
  /** Server config only: the backend chain it configures. */
  readonly backendMode?: readonly BackendMode[] | undefined
  /** A DynamicFile in strict mode has no compiled rule set: what it maps, when valid. */
  readonly counts?: { readonly roles: number; readonly users: number; readonly accounts: number } | undefined
}

export interface OfflineFlags {
  readonly config?: string | undefined
  readonly awsAuth?: string | undefined
  readonly dynamicFile?: string | undefined
  readonly userIdStrict?: boolean | undefined
}

export interface OfflineSources {
  readonly files: readonly CheckedFile[]
  /** The server config, when it decodes without errors. */
  readonly config?: ServerConfig | undefined
  /** The chain as the server would build it from these files, in backend order. */
  readonly sources: readonly ExplainSource[]
  /** Backends of the configured chain that cannot be read offline. */
  readonly skipped: readonly string[]
  /** The cluster IDs the server config accepts tokens for: clusterID, then clusterIDs. */
  readonly clusterIds?: readonly string[] | undefined
}

interface Loaded {
  readonly checked: CheckedFile
  readonly snapshot?: Snapshot | undefined
  readonly rules?: RuleSet | undefined
  readonly invalid?: readonly InvalidRule[] | undefined
}

/**
 * Reads the mapping files an operator points at (server config, aws-auth ConfigMap manifest,
 * DynamicFile) with the server's own decoders, without contacting anything, and builds the backend
 * chain the server would use. `-` reads the aws-auth manifest from stdin.
 */
export function readOfflineSources(flags: OfflineFlags, readStdin: () => string): OfflineSources {
  if (!flags.config && !flags.awsAuth && !flags.dynamicFile) {
    throw new UsageError('give at least one of --config, --aws-auth or --dynamic-file')
  }
  const server = flags.config ? loadServerConfigFile(flags.config) : undefined
  const awsAuth = flags.awsAuth ? loadAwsAuth(flags.awsAuth, readStdin) : undefined
  const dynamicPath = flags.dynamicFile ?? server?.partial?.dynamicFile?.path
  const dynamic = dynamicPath
    ? loadDynamicFile(
        dynamicPath,
        flags.userIdStrict ?? server?.partial?.dynamicFile?.userIdStrict ?? false,
        !flags.dynamicFile,
      )
    : undefined
  const files = [server?.checked, awsAuth?.checked, dynamic?.checked].filter((f) => f !== undefined)

  const sources: ExplainSource[] = []
  const skipped: string[] = []
  const modes: readonly BackendMode[] = server?.partial?.backendMode ?? [
    ...(awsAuth ? (['EKSConfigMap'] as const) : []),
    ...(dynamic ? (['DynamicFile'] as const) : []),
  ]
  const loaded: Partial<Record<BackendMode, Loaded>> = {
    MountedFile: server,
    EKSConfigMap: awsAuth,
    DynamicFile: dynamic,
  }
  for (const mode of modes) {
    const source = loaded[mode]
    const snapshot = source?.snapshot ?? (source?.rules && snapshotOf(source.rules))
    if (source !== undefined && snapshot !== undefined) {
      const reservedPrefixes = server?.partial?.reservedPrefixes[mode] ?? []
      sources.push({
        mapper: new StaticMapper(mode, snapshot, { reservedPrefixes }),
        origin: source.checked.file,
        rules: source.rules,
        invalid: source.invalid,
      })
    } else if (source?.checked.unusable === undefined) {
      skipped.push(
        mode === 'CRD'
          ? 'CRD (IAMIdentityMapping objects live only in the cluster)'
          : `${mode} (not given: pass ${mode === 'EKSConfigMap' ? '--aws-auth' : '--dynamic-file'})`,
      )
    }
  }
  const clusterId = server?.partial?.clusterId
  const clusterIds = clusterId ? [clusterId, ...(server?.partial?.clusterIds ?? [])] : undefined
  return { files, config: server?.config, sources, skipped, clusterIds }
}

function loadServerConfigFile(
  file: string,
): Loaded & { config?: ServerConfig; partial?: ReturnType<typeof decodeServerConfig>['partial'] } {
  let doc: unknown
  try {
    doc = readConfigDocument(file)
  } catch (err) {
    if (!(err instanceof ConfigInvalid)) throw err
    return { checked: unusable(file, 'config', err.message) }
  }
  const { config, problems, partial } = decodeServerConfig(doc, {}, {})
  const { rules, invalid } = compileRules(partial.mappings, 'server.')
  return {
    checked: {
      file,
      kind: 'config',
      problems,
      mappings: { doc: partial.mappings, rules, prefix: 'server.' },
      backendMode: partial.backendMode,
    },
    rules,
    invalid,
    config,
    partial,
  }
}

function loadAwsAuth(file: string, readStdin: () => string): Loaded {
  const label = file === '-' ? '(stdin)' : file
  let text: string
  try {
    text = file === '-' ? readStdin() : readFileSync(file, 'utf8')
  } catch (err) {
    return { checked: unusable(label, 'aws-auth', `could not read ${label}: ${(err as Error).message}`) }
  }
  const manifest = awsAuthDataFromManifest(text)
  if (manifest.unusable !== undefined) return { checked: unusable(label, 'aws-auth', manifest.unusable) }
  const parsed = parseAwsAuthData(manifest.data)
  return {
    checked: {
      file: label,
      kind: 'aws-auth',
      problems: [...manifest.problems, ...parsed.problems],
      mappings: { doc: parsed.doc, rules: parsed.rules, prefix: 'data.' },
      data: manifest.data,
    },
    rules: parsed.rules,
    invalid: parsed.invalid,
  }
}

/** `fromConfig`: named by the server config's dynamicfilepath, which may exist only on the server. */
function loadDynamicFile(file: string, userIdStrict: boolean, fromConfig: boolean): Loaded {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if (!fromConfig) return { checked: unusable(file, 'dynamic-file', `could not read: ${(err as Error).message}`) }
    const message = `could not read (named by server.dynamicfilepath; pass --dynamic-file to check a local copy): ${(err as Error).message}`
    return { checked: { file, kind: 'dynamic-file', problems: [{ path: '(file)', message, severity: 'warning' }] } }
  }
  const { rules, problems, invalid, compiled, partial } = parseDynamicFile(text, { userIdStrict })
  const notJson = problems.find((p) => p.path === '(file)' && p.severity === 'error')
  if (notJson !== undefined) return { checked: unusable(file, 'dynamic-file', notJson.message) }
  const mappings = compiled && { ...compiled, prefix: '' }
  return {
    checked: { file, kind: 'dynamic-file', problems, mappings, counts: rules?.counts },
    snapshot: rules ?? partial,
    rules: compiled?.rules,
    invalid,
  }
}

function unusable(file: string, kind: CheckedFile['kind'], message: string): CheckedFile {
  return { file, kind, problems: [{ path: '(file)', message, severity: 'error' }], unusable: message }
}
