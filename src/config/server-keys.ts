// The decoders of single server config keys that need more than a type check: bounded durations,
// the backend chain, extra regions. server-config.ts puts them together.
import { BACKEND_MODES, type BackendMode } from '../mapping/types.js'
import { extraRegionProblem, findPartition } from '../shared/partitions.js'
import type { Reader } from '../shared/reader.js'

const GAVE_UP = 'kube-apiserver gives up on a review long before that'
/**
 * Values outside these bounds leave a server that cannot work (a 0 s STS deadline fails every new
 * token) or that holds reviews long after kube-apiserver has given up on them: config errors.
 */
export const LIMITS = {
  stsTimeout: { min: 100, max: 60_000, low: 'it would fail every STS call', high: GAVE_UP },
  stsQueueTimeout: { min: 0, max: 60_000, low: '', high: GAVE_UP },
}

/** A duration key that must lie in [min, max]; outside, an error that says why. */
export function boundedDuration(
  server: Reader,
  key: string,
  limit: { min: number; max: number; low: string; high: string },
): number | undefined {
  const ms = server.duration(key)
  if (ms === undefined || (ms >= limit.min && ms <= limit.max)) return ms
  const why = ms < limit.min ? limit.low : limit.high
  server.error(key, `must be between ${limit.min}ms and ${limit.max / 1000}s, got ${ms}ms (${why})`)
  return undefined
}

export const ALIASES: Record<string, BackendMode> = { File: 'MountedFile', ConfigMap: 'EKSConfigMap' }

export const SERVER_KEYS = [
  'port',
  'address',
  'hostname',
  'statedir',
  'generatekubeconfig',
  'kubeconfigpregenerated',
  'kubeconfig',
  'master',
  'partition',
  'extraregions',
  'backendmode',
  'maproles',
  'mapusers',
  'mapaccounts',
  'scrubbedaccounts',
  'reservedprefixconfig',
  'ec2describeinstancesrolearn',
  'sourcearn',
  'ec2describeinstancesqps',
  'ec2describeinstancesburst',
  'dynamicfilepath',
  'dynamicfileuseridstrict',
  'dynamicbackendmodepath',
  'identitycachettl',
  'identitycachesize',
  'ststimeout',
  'stsmaxconcurrency',
  'stsqueuetimeout',
  'maxrequestbytes',
  'shutdowntimeout',
  'headerstimeout',
  'callerauth',
  'callerratelimitpersecond',
  'callerratelimitburst',
  'auditlog',
  'healthport',
  'featuregates',
]

/** server.extraRegions: regions AWS opened after this release, accepted in token hosts of the partition. */
export function decodeExtraRegions(server: Reader, partitionId: string): string[] {
  const regions = server.stringList('extraRegions') ?? []
  const partition = findPartition(partitionId)
  if (partition === undefined) return regions // reported under server.partition
  regions.forEach((region, i) => {
    const problem = extraRegionProblem(region, partition)
    if (problem?.severity === 'error') server.error(`extraRegions[${i}]`, problem.message)
    if (problem?.severity === 'warning') server.warn(`extraRegions[${i}]`, problem.message)
  })
  return regions
}

export function decodeBackendMode(
  value: readonly string[] | undefined,
  server: Reader,
  fallback: readonly BackendMode[],
): BackendMode[] {
  const modes = value ?? fallback
  if (modes.length === 0) {
    server.error('backendMode', 'at least one backend-mode must be specified')
    return []
  }
  const out: BackendMode[] = []
  modes.forEach((raw, i) => {
    const alias = ALIASES[raw]
    if (alias !== undefined)
      server.warn(`backendMode[${i}]`, `backend-mode "${raw}" is deprecated, use "${alias}" instead`)
    const mode = alias ?? raw
    if (!(BACKEND_MODES as readonly string[]).includes(mode)) {
      server.error(
        `backendMode[${i}]`,
        `backend-mode "${raw}" is not a valid mode (valid: ${BACKEND_MODES.join(', ')})`,
      )
    } else if (out.includes(mode as BackendMode)) {
      server.error(`backendMode[${i}]`, `backend-mode [${modes.join(' ')}] has duplicates`)
    } else {
      out.push(mode as BackendMode)
    }
  })
  return out
}
