import { readFileSync } from 'node:fs'
import { loadAll } from 'js-yaml'
import { ConfigInvalid } from '../shared/errors.js'
import { decodeClusterIds } from './cluster-ids.js'
import { listenProblems } from './listen.js'
import { ALIASES, boundedDuration, decodeBackendMode, decodeExtraRegions, LIMITS, SERVER_KEYS } from './server-keys.js'
import { compileRules, type MappingDocument } from '../mapping/rules.js'
import type { Problem } from '../shared/problem.js'
import { roleMapping, userMapping } from '../mapping/decode.js'
import { BACKEND_MODES, type BackendMode } from '../mapping/types.js'
import { PARTITION_IDS } from '../shared/partitions.js'
import { caseInsensitive } from '../shared/reader.js'

/** The server's whole configuration, after file, flags and defaults are merged and validated. */
export interface ServerConfig {
  readonly clusterId: string
  /**
   * Cluster IDs accepted alongside clusterId (the top-level `clusterIDs`), tried in this order when
   * STS says a token's signature is not for clusterId: to rename a cluster, or to let one kubeconfig
   * user reach a blue and a green cluster. At most MAX_CLUSTER_IDS; the caller token stays bound to
   * clusterId.
   */
  readonly clusterIds: readonly string[]
  readonly partition: string
  /** Regions of `partition` accepted in token hosts beyond those this release knows. */
  readonly extraRegions: readonly string[]
  readonly address: string
  readonly port: number
  readonly hostname: string
  readonly stateDir: string
  readonly generateKubeconfig: string
  readonly kubeconfigPregenerated: boolean
  readonly kubeconfig?: string | undefined
  readonly master?: string | undefined
  readonly backendMode: readonly BackendMode[]
  readonly mappings: MappingDocument
  readonly scrubbedAccounts: readonly string[]
  readonly reservedPrefixes: Readonly<Partial<Record<BackendMode, readonly string[]>>>
  readonly ec2: {
    readonly describeInstancesRoleArn?: string | undefined
    readonly sourceArn?: string | undefined
    readonly qps: number
    readonly burst: number
  }
  readonly dynamicFile?: { readonly path: string; readonly userIdStrict: boolean } | undefined
  readonly dynamicBackendModePath?: string | undefined
  /** kube-iam-auth additions */
  readonly identityCacheTtlMs: number
  readonly identityCacheSize: number
  readonly stsTimeoutMs: number
  readonly stsMaxConcurrency: number
  readonly stsQueueTimeoutMs: number
  readonly maxRequestBytes: number
  readonly shutdownTimeoutMs: number
  /**
   * How long a client may take to send its request headers, and to send anything at all once
   * connected. Unset means DEFAULTS.headersTimeoutMs (applied where the listener is created).
   */
  readonly headersTimeoutMs?: number | undefined
  readonly callerAuth: boolean
  readonly callerRateLimit: { readonly perSecond: number; readonly burst: number }
  readonly auditLog: boolean
}

/** Command-line values; each overrides the config file when given. */
export interface ServerFlags {
  readonly clusterId?: string | undefined
  /** --cluster-ids: replaces the file's clusterIDs. */
  readonly clusterIds?: readonly string[] | undefined
  readonly partition?: string | undefined
  readonly address?: string | undefined
  readonly port?: number | undefined
  readonly hostname?: string | undefined
  readonly stateDir?: string | undefined
  readonly generateKubeconfig?: string | undefined
  readonly kubeconfigPregenerated?: boolean | undefined
  readonly kubeconfig?: string | undefined
  readonly master?: string | undefined
  readonly backendMode?: readonly string[] | undefined
  readonly ec2Qps?: number | undefined
  readonly ec2Burst?: number | undefined
}

export const DEFAULTS = {
  partition: 'aws',
  address: '127.0.0.1',
  port: 21362,
  hostname: 'localhost',
  stateDir: '/var/aws-iam-authenticator',
  generateKubeconfig: '/etc/kubernetes/aws-iam-authenticator/kubeconfig.yaml',
  backendMode: ['MountedFile'] as BackendMode[],
  identityCacheTtlMs: 2 * 60_000,
  identityCacheSize: 100_000,
  stsTimeoutMs: 10_000,
  stsMaxConcurrency: 64,
  stsQueueTimeoutMs: 5_000,
  maxRequestBytes: 64 * 1024,
  shutdownTimeoutMs: 25_000,
  headersTimeoutMs: 20_000,
  ec2Qps: 15,
  ec2Burst: 5,
  /**
   * Off: every review arrives through kube-apiserver, so a per-caller budget is one global budget
   * that refuses genuine users under load. Floods are handled by the STS admission lanes instead.
   */
  callerRateLimit: { perSecond: 0, burst: 1000 },
}

export interface LoadedConfig {
  readonly config: ServerConfig
  /** Non-fatal findings (unknown keys, deprecated aliases, duplicate rules) to log at start-up. */
  readonly warnings: readonly Problem[]
}

/** Reads, decodes, defaults and validates; every error names the file, the entry and the field. */
export function loadServerConfig(
  file: string | undefined,
  flags: ServerFlags = {},
  env: Readonly<Record<string, string | undefined>> = {},
): LoadedConfig {
  const where = file ?? '(no config file)'
  const doc = file === undefined ? {} : readConfigDocument(file)
  const { config, problems } = decodeServerConfig(doc, flags, env)
  const errors = problems.filter((p) => p.severity === 'error')
  if (errors.length > 0 || config === undefined) {
    throw new ConfigInvalid(
      `invalid configuration in ${where}`,
      errors.map((p) => `${p.path}: ${p.message}`),
    )
  }
  return { config, warnings: problems.filter((p) => p.severity === 'warning') }
}

/** Reads one YAML document; a file that is empty or only comments is an empty mapping, as viper reads it. */
export function readConfigDocument(file: string): unknown {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigInvalid(`could not read config file ${file}: ${(err as Error).message}`)
  }
  try {
    // js-yaml 5's load() throws on a file without a document; loadAll does not.
    const docs = loadAll(text, { filename: file })
    if (docs.length > 1) throw new Error('expected a single document in the stream, but found more')
    return docs[0] ?? {}
  } catch (err) {
    throw new ConfigInvalid(`config file ${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
}

/** What the decoder read even when the file has errors: `explain` still shows the file's rules. */
export type PartialServerConfig = Pick<
  ServerConfig,
  'clusterId' | 'clusterIds' | 'mappings' | 'backendMode' | 'reservedPrefixes' | 'dynamicFile'
>

/**
 * Pure decoding of an already-parsed document, with every check of a value the server would refuse
 * or that would make it useless; used by `validate` to list every problem at once.
 */
export function decodeServerConfig(
  doc: unknown,
  flags: ServerFlags = {},
  env: Readonly<Record<string, string | undefined>> = {},
): { config?: ServerConfig; problems: Problem[]; partial: PartialServerConfig } {
  const problems: Problem[] = []
  const root = caseInsensitive(doc, '', problems)
  const server = root.object('server')

  const clusterId = flags.clusterId ?? root.string('clusterID') ?? env.KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID ?? ''
  if (clusterId === '') root.error('clusterID', 'cluster ID cannot be empty (set clusterID or --cluster-id)')
  const clusterIds = decodeClusterIds(root, clusterId, flags.clusterIds)

  const partition = flags.partition ?? server.string('partition') ?? DEFAULTS.partition
  if (!PARTITION_IDS.includes(partition)) {
    server.error('partition', `invalid partition '${partition}' (valid: ${PARTITION_IDS.join(', ')})`)
  }

  const extraRegions = decodeExtraRegions(server, partition)

  const port = flags.port ?? server.integer('port', 0, 65535) ?? DEFAULTS.port
  const backendMode = decodeBackendMode(
    flags.backendMode ?? server.stringList('backendMode'),
    server,
    DEFAULTS.backendMode,
  )

  const reservedPrefixes: Partial<Record<BackendMode, string[]>> = {}
  server.list('reservedPrefixConfig').forEach((entry, i) => {
    const mode = entry.string('backendMode')
    const list = entry.stringList('usernamePrefixReserveList') ?? []
    const resolved = mode === undefined ? undefined : (ALIASES[mode] ?? mode)
    if (resolved === undefined || !(BACKEND_MODES as readonly string[]).includes(resolved)) {
      server.error(
        `reservedPrefixConfig[${i}].backendMode`,
        `invalid reserved prefix config: backend mode '${mode ?? ''}' is not valid`,
      )
      return
    }
    reservedPrefixes[resolved as BackendMode] = list
  })

  const mappings: MappingDocument = {
    mapRoles: server.list('mapRoles').map((r) => roleMapping(r)),
    mapUsers: server.list('mapUsers').map((u) => userMapping(u)),
    mapAccounts: server.accountList('mapAccounts'),
  }
  if (backendMode.includes('MountedFile')) {
    // The MountedFile rules are checked here too, so their errors name this file and duplicate rules
    // reach the start-up warnings; a rule problem under a path already reported above is not repeated.
    const flagged = problems.filter((p) => p.severity === 'error').map((p) => p.path)
    const under = (path: string) =>
      flagged.some((f) => path === f || path.startsWith(`${f}.`) || path.startsWith(`${f}[`))
    for (const p of compileRules(mappings, 'server.').problems) if (!under(p.path)) problems.push(p)
  }

  const headersTimeoutMs = server.duration('headersTimeout')
  if (headersTimeoutMs !== undefined && (headersTimeoutMs < 100 || headersTimeoutMs > 60_000)) {
    server.error('headersTimeout', `must be between 100ms and 60s (the request timeout), got ${headersTimeoutMs} ms`)
  }

  const dynamicFilePath = server.string('dynamicfilepath')
  if (backendMode.includes('DynamicFile') && !dynamicFilePath) {
    server.error('dynamicfilepath', 'DynamicFile is set in backendMode but dynamicfilepath is not set')
  }
  if (!backendMode.includes('DynamicFile') && dynamicFilePath) {
    server.error('dynamicfilepath', 'dynamicfilepath is set but DynamicFile is not in backendMode')
  }

  const config: ServerConfig = {
    clusterId,
    clusterIds,
    partition,
    extraRegions,
    address: flags.address ?? server.string('address') ?? DEFAULTS.address,
    port,
    hostname: flags.hostname ?? server.string('hostname') ?? DEFAULTS.hostname,
    stateDir: flags.stateDir ?? server.string('stateDir') ?? DEFAULTS.stateDir,
    generateKubeconfig: flags.generateKubeconfig ?? server.string('generateKubeconfig') ?? DEFAULTS.generateKubeconfig,
    kubeconfigPregenerated: flags.kubeconfigPregenerated ?? server.boolean('kubeconfigPregenerated') ?? false,
    kubeconfig: flags.kubeconfig ?? server.string('kubeconfig'),
    master: flags.master ?? server.string('master'),
    backendMode,
    mappings,
    scrubbedAccounts: server.accountList('scrubbedAccounts'),
    reservedPrefixes,
    ec2: {
      describeInstancesRoleArn: server.string('ec2DescribeInstancesRoleARN'),
      sourceArn: server.string('sourceARN'),
      qps: flags.ec2Qps ?? server.number('ec2DescribeInstancesQps', 0) ?? DEFAULTS.ec2Qps,
      burst: flags.ec2Burst ?? server.integer('ec2DescribeInstancesBurst', 1) ?? DEFAULTS.ec2Burst,
    },
    dynamicFile: dynamicFilePath
      ? { path: dynamicFilePath, userIdStrict: server.boolean('dynamicfileUserIDStrict') ?? false }
      : undefined,
    dynamicBackendModePath: server.string('dynamicBackendModePath'),
    identityCacheTtlMs: server.duration('identityCacheTTL') ?? DEFAULTS.identityCacheTtlMs,
    identityCacheSize: server.integer('identityCacheSize', 0) ?? DEFAULTS.identityCacheSize,
    stsTimeoutMs: boundedDuration(server, 'stsTimeout', LIMITS.stsTimeout) ?? DEFAULTS.stsTimeoutMs,
    stsMaxConcurrency: server.integer('stsMaxConcurrency', 1, 10_000) ?? DEFAULTS.stsMaxConcurrency,
    stsQueueTimeoutMs: boundedDuration(server, 'stsQueueTimeout', LIMITS.stsQueueTimeout) ?? DEFAULTS.stsQueueTimeoutMs,
    maxRequestBytes: server.integer('maxRequestBytes', 1024, 1024 * 1024) ?? DEFAULTS.maxRequestBytes,
    shutdownTimeoutMs: server.duration('shutdownTimeout') ?? DEFAULTS.shutdownTimeoutMs,
    ...(headersTimeoutMs === undefined ? {} : { headersTimeoutMs }),
    callerAuth: server.boolean('callerAuth') ?? false,
    callerRateLimit: {
      perSecond: server.number('callerRateLimitPerSecond', 0) ?? DEFAULTS.callerRateLimit.perSecond,
      burst: server.integer('callerRateLimitBurst', 1) ?? DEFAULTS.callerRateLimit.burst,
    },
    auditLog: server.boolean('auditLog') ?? true,
  }
  for (const p of listenProblems(config.address, config.hostname)) server.error(p.key, p.message)
  if (config.master !== undefined && !/^https?:\/\/[^/\s]+/.test(config.master)) {
    server.error(
      'master',
      `must be an http(s):// URL of the Kubernetes API server, got ${JSON.stringify(config.master)}`,
    )
  }
  const usesKube = backendMode.includes('EKSConfigMap') || backendMode.includes('CRD')
  for (const key of ['kubeconfig', 'master'] as const) {
    if (config[key] !== undefined && !usesKube && flags[key] === undefined) {
      server.warn(key, 'unused: only the EKSConfigMap and CRD backends talk to the Kubernetes API')
    }
  }
  if (config.dynamicBackendModePath !== undefined) {
    server.warn(
      'dynamicBackendModePath',
      'not supported by kube-iam-auth (ignored): the backend chain is fixed at start-up',
    )
  }
  for (const key of ['ec2DescribeInstancesRoleARN', 'sourceARN'] as const) {
    const arn = server.string(key)
    if (arn !== undefined && !/^arn:[a-z-]+:[a-z0-9-]+:[a-z0-9-]*:\d{12}:.+$/.test(arn)) {
      server.error(key, `'${arn}' is not a valid ARN`)
    }
  }
  root.warnUnknown([
    'clusterid',
    'clusterids',
    'server',
    'region',
    'role',
    'externalid',
    'sessionname',
    'tokenonly',
    'forwardsessionname',
    'cache',
    'defaultrole',
  ])
  server.warnUnknown(SERVER_KEYS)
  const partial = { clusterId, clusterIds, mappings, backendMode, reservedPrefixes, dynamicFile: config.dynamicFile }
  return problems.some((p) => p.severity === 'error') ? { problems, partial } : { config, problems, partial }
}
