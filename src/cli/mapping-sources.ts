import { readFileSync } from 'node:fs'
import { decodeServerConfig, readConfigDocument, type ServerConfig } from '../config/server-config.js'
import { ConfigInvalid, UsageError } from '../shared/errors.js'
import { awsAuthDataFromManifest, parseAwsAuthData } from '../mapping/configmap/parse.js'
import { parseDynamicFile } from '../mapping/dynamicfile/parse.js'
import type { ExplainSource } from '../mapping/explain.js'
import { compileRules } from '../mapping/rules.js'
import type { Problem } from '../shared/problem.js'
import { snapshotOf, StaticMapper } from '../mapping/static.js'

/** A file given to `validate` or `explain`, with every problem found in it. */
export interface CheckedFile {
  readonly file: string
  readonly problems: readonly Problem[]
}

export interface OfflineFlags {
  readonly config?: string | undefined
  readonly awsAuth?: string | undefined
  readonly dynamicFile?: string | undefined
  readonly userIdStrict?: boolean | undefined
}

export interface OfflineSources {
  readonly files: readonly CheckedFile[]
  readonly config?: ServerConfig | undefined
  /** The chain as the server would build it from these files, in backend order. */
  readonly sources: readonly ExplainSource[]
  /** Backends of the configured chain that cannot be read offline. */
  readonly skipped: readonly string[]
}

/**
 * Reads the mapping files an operator points at (server config, aws-auth ConfigMap manifest,
 * DynamicFile) without contacting anything, and builds the backend chain the server would use.
 * `-` reads the aws-auth manifest from stdin.
 */
export function readOfflineSources(flags: OfflineFlags, readStdin: () => string): OfflineSources {
  if (!flags.config && !flags.awsAuth && !flags.dynamicFile) {
    throw new UsageError('give at least one of --config, --aws-auth or --dynamic-file')
  }
  const files: CheckedFile[] = []
  const sources: ExplainSource[] = []
  const skipped: string[] = []
  let config: ServerConfig | undefined

  if (flags.config) {
    let problems: Problem[]
    try {
      const decoded = decodeServerConfig(readConfigDocument(flags.config), {}, {})
      problems = decoded.problems
      config = decoded.config
    } catch (err) {
      if (!(err instanceof ConfigInvalid)) throw err
      problems = [{ path: '(file)', message: err.message, severity: 'error' }]
    }
    files.push({ file: flags.config, problems })
  }

  const awsAuth = flags.awsAuth ? checkAwsAuth(flags.awsAuth, readStdin) : undefined
  if (awsAuth) files.push(awsAuth.checked)
  const dynamicPath = flags.dynamicFile ?? config?.dynamicFile?.path
  const dynamic = dynamicPath
    ? checkDynamicFile(
        dynamicPath,
        flags.userIdStrict ?? config?.dynamicFile?.userIdStrict ?? false,
        !flags.dynamicFile,
      )
    : undefined
  if (dynamic) files.push(dynamic.checked)

  const modes = config?.backendMode ?? [
    ...(awsAuth ? (['EKSConfigMap'] as const) : []),
    ...(dynamic ? (['DynamicFile'] as const) : []),
  ]
  for (const mode of modes) {
    const reservedPrefixes = config?.reservedPrefixes[mode] ?? []
    if (mode === 'MountedFile' && config) {
      const { rules } = compileRules(config.mappings, 'server.')
      sources.push({
        mapper: new StaticMapper(mode, snapshotOf(rules), { reservedPrefixes }),
        origin: flags.config!,
        rules,
      })
    } else if (mode === 'EKSConfigMap' && awsAuth) {
      sources.push({
        mapper: new StaticMapper(mode, snapshotOf(awsAuth.rules), { reservedPrefixes }),
        origin: awsAuth.checked.file,
        rules: awsAuth.rules,
      })
    } else if (mode === 'DynamicFile' && dynamic?.snapshot) {
      sources.push({
        mapper: new StaticMapper(mode, dynamic.snapshot, { reservedPrefixes }),
        origin: dynamic.checked.file,
      })
    } else {
      skipped.push(
        mode === 'CRD'
          ? 'CRD (IAMIdentityMapping objects live only in the cluster)'
          : `${mode} (not given: pass ${mode === 'EKSConfigMap' ? '--aws-auth' : '--dynamic-file'})`,
      )
    }
  }
  return { files, config, sources, skipped }
}

function checkAwsAuth(file: string, readStdin: () => string) {
  const label = file === '-' ? '(stdin)' : file
  let text: string
  try {
    text = file === '-' ? readStdin() : readFileSync(file, 'utf8')
  } catch (err) {
    throw new UsageError(`could not read ${label}: ${(err as Error).message}`)
  }
  const manifest = awsAuthDataFromManifest(text)
  const parsed = parseAwsAuthData(manifest.data)
  return { checked: { file: label, problems: [...manifest.problems, ...parsed.problems] }, rules: parsed.rules }
}

/** `fromConfig`: named by the server config's dynamicfilepath, which may exist only on the server. */
function checkDynamicFile(file: string, userIdStrict: boolean, fromConfig: boolean) {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const message = `could not read${fromConfig ? ' (named by server.dynamicfilepath; pass --dynamic-file to check a local copy)' : ''}: ${(err as Error).message}`
    return {
      checked: {
        file,
        problems: [{ path: '(file)', message, severity: fromConfig ? ('warning' as const) : ('error' as const) }],
      },
    }
  }
  const { rules, problems } = parseDynamicFile(text, { userIdStrict })
  return { checked: { file, problems }, snapshot: rules }
}
