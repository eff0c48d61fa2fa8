import { existsSync, readFileSync } from 'node:fs'
import { isIPv6 } from 'node:net'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { KubeConfig, type Cluster, type User } from '@kubernetes/client-node'
import { loadAll } from 'js-yaml'
import { ConfigInvalid } from '../../shared/errors.js'

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

export interface KubeConfigOptions {
  /** An explicit kubeconfig file (--kubeconfig, server.kubeconfig). */
  readonly kubeconfig?: string | undefined
  /** Overrides the API server URL of the current cluster (--master, --master-url). */
  readonly master?: string | undefined
  readonly context?: string | undefined
  /**
   * Without --kubeconfig: `in-cluster` (the server, as upstream) uses the pod's service account;
   * `default` (the CLI, as kubectl) reads KUBECONFIG or ~/.kube/config, then the service account.
   */
  readonly fallback: 'in-cluster' | 'default'
  /** KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are read from here. */
  readonly env: Readonly<Record<string, string | undefined>>
  /** Where the pod's service account token and CA are (tests point it elsewhere). */
  readonly serviceAccountDir?: string | undefined
}

type Doc = Record<string, unknown>
type Named = { name?: unknown; [k: string]: unknown }

/**
 * The Kubernetes client configuration for the EKSConfigMap and CRD backends and for `add`, loaded
 * the way client-go and kubectl load it: KUBECONFIG may list several files (the first to define a
 * name wins), relative paths are relative to the file that names them, `http://` servers work
 * (kubectl proxy, local clusters), `token-file` is re-read as it rotates, exec plugins run, and in
 * a pod the service account is used. Every failure is one line that says what was read and why it
 * cannot be used.
 */
export function loadKubeConfig(opts: KubeConfigOptions): KubeConfig {
  const loaded = loadDocument(opts)
  const doc = loaded.doc
  const kc = new KubeConfig()
  try {
    kc.loadFromString(JSON.stringify(doc))
  } catch (err) {
    throw new ConfigInvalid(`kubeconfig ${loaded.from} cannot be used: ${(err as Error).message}`)
  }
  if (opts.context !== undefined) {
    if (kc.getContextObject(opts.context) === null) {
      throw new ConfigInvalid(`kubeconfig ${loaded.from} has no context "${opts.context}"`)
    }
    kc.setCurrentContext(opts.context)
  }
  const currentName = kc.getCurrentContext()
  if (!currentName && opts.master === undefined) {
    throw new ConfigInvalid(`empty kubeconfig: ${loaded.from} sets no current-context (pass --kubeconfig-context)`)
  }
  const context = currentName ? kc.getContextObject(currentName) : null
  if (currentName && context === null) {
    throw new ConfigInvalid(`kubeconfig ${loaded.from}: current-context "${currentName}" is not defined`)
  }
  let cluster = context ? kc.getCluster(context.cluster) : null
  if (context && cluster === null && opts.master === undefined) {
    throw new ConfigInvalid(`kubeconfig ${loaded.from}: context "${context.name}" names no defined cluster`)
  }
  const user = context ? (kc.users.find((u) => u.name === context.user) ?? null) : null
  if (opts.master !== undefined) {
    checkServerUrl(opts.master, '--master')
    cluster = { ...(cluster ?? { name: 'master', skipTLSVerify: false }), server: opts.master }
  }
  if (cluster === null) throw new ConfigInvalid(`empty kubeconfig: ${loaded.from} names no cluster`)
  checkServerUrl(cluster.server, `kubeconfig ${loaded.from}: cluster "${cluster.name}" server`)
  const tokenFile = user ? loaded.tokenFiles.get(user.name) : undefined
  const out = new KubeConfig()
  out.loadFromOptions({
    clusters: [usable(cluster)],
    users: [user === null ? { name: 'anonymous' } : tokenFile === undefined ? user : fileToken(user, tokenFile)],
    contexts: [{ name: 'current', cluster: cluster.name, user: user?.name ?? 'anonymous' }],
    currentContext: 'current',
  })
  return out
}

/** The API server URL of a loaded configuration, for messages. */
export function kubeServer(kc: KubeConfig): string {
  return kc.getCurrentCluster()?.server ?? '(no server)'
}

/**
 * client-node refuses `http://` servers unless skipTLSVerify is set; client-go and kubectl accept
 * them (kubectl proxy, local clusters). There is no TLS to verify over plain HTTP, so setting the
 * flag there changes nothing else.
 */
function usable(cluster: Cluster): Cluster {
  return cluster.server.startsWith('http://') ? { ...cluster, skipTLSVerify: true } : cluster
}

/** client-node reads `token-file` once; client-go re-reads it, so rotated tokens keep working. */
function fileToken(user: User, tokenFile: string): User {
  const { token: _once, ...rest } = user
  return { ...rest, authProvider: { name: 'tokenFile', config: { tokenFile } } }
}

function checkServerUrl(server: unknown, what: string): void {
  let url: URL | undefined
  try {
    url = typeof server === 'string' ? new URL(server) : undefined
  } catch {
    url = undefined
  }
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.hostname === '') {
    throw new ConfigInvalid(`${what} must be an http(s):// URL, got ${JSON.stringify(server ?? '')}`)
  }
}

interface LoadedDocument {
  readonly doc: Doc
  /** Where it came from, for messages. */
  readonly from: string
  /** user name -> absolute token-file path */
  readonly tokenFiles: Map<string, string>
}

function loadDocument(opts: KubeConfigOptions): LoadedDocument {
  if (opts.kubeconfig !== undefined && opts.kubeconfig !== '') return mergeFiles([opts.kubeconfig], true)
  if (opts.fallback === 'in-cluster') {
    const inCluster = inClusterDocument(opts)
    if (inCluster !== undefined) return inCluster
    if (opts.master !== undefined) return { doc: {}, from: '--master', tokenFiles: new Map() }
    throw new ConfigInvalid(
      'not running in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set, or ' +
        `${opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR}/token is missing): set server.kubeconfig or --kubeconfig`,
    )
  }
  const listed = (opts.env.KUBECONFIG ?? '').split(':').filter((f) => f !== '')
  const home = opts.env.HOME ? join(opts.env.HOME, '.kube', 'config') : undefined
  const candidates = listed.length > 0 ? listed : home === undefined ? [] : [home]
  const existing = candidates.filter((f) => existsSync(f))
  if (existing.length > 0) return mergeFiles(existing, false)
  const inCluster = inClusterDocument(opts)
  if (inCluster !== undefined) return inCluster
  if (opts.master !== undefined) return { doc: {}, from: '--master-url', tokenFiles: new Map() }
  const looked = listed.length > 0 ? `KUBECONFIG=${listed.join(':')}` : (home ?? '~/.kube/config (HOME is not set)')
  throw new ConfigInvalid(
    `empty kubeconfig: ${looked} does not exist and this is not a pod; pass --kubeconfig or --master-url`,
  )
}

/** client-go's rules: for each name, the first file that defines it wins; so does the first current-context. */
function mergeFiles(files: readonly string[], explicit: boolean): LoadedDocument {
  const merged: { clusters: Named[]; users: Named[]; contexts: Named[]; 'current-context'?: unknown } = {
    clusters: [],
    users: [],
    contexts: [],
  }
  const tokenFiles = new Map<string, string>()
  for (const file of files) {
    const doc = readKubeconfigFile(file, explicit)
    const dir = dirname(resolve(file))
    for (const key of ['clusters', 'users', 'contexts'] as const) {
      const list = doc[key] ?? []
      if (!Array.isArray(list)) throw new ConfigInvalid(`kubeconfig ${file}: ${key} must be a list`)
      for (const entry of list as Named[]) {
        if (typeof entry?.name !== 'string' || merged[key].some((e) => e.name === entry.name)) continue
        merged[key].push(key === 'contexts' ? entry : absolutePaths(entry, key, dir, tokenFiles))
      }
    }
    if (merged['current-context'] === undefined && doc['current-context']) {
      merged['current-context'] = doc['current-context']
    }
  }
  return { doc: merged, from: files.join(':'), tokenFiles }
}

function readKubeconfigFile(file: string, explicit: boolean): Doc {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : (err as Error).message
    throw new ConfigInvalid(`${explicit ? 'kubeconfig' : 'empty kubeconfig:'} ${file}: ${why}`)
  }
  let doc: unknown
  try {
    // js-yaml's load() refuses an empty stream; an empty kubeconfig deserves its own message
    doc = loadAll(text)[0]
  } catch (err) {
    throw new ConfigInvalid(`kubeconfig ${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  if (doc === null || doc === undefined) throw new ConfigInvalid(`empty kubeconfig: ${file} is empty`)
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigInvalid(`kubeconfig ${file} is not a mapping`)
  return doc as Doc
}

/** Resolves a file's relative paths against its directory, as client-go does; records token files. */
function absolutePaths(entry: Named, key: 'clusters' | 'users', dir: string, tokenFiles: Map<string, string>): Named {
  const inner = key === 'clusters' ? 'cluster' : 'user'
  const body = entry[inner]
  if (body === null || typeof body !== 'object') return entry
  const fields = { ...(body as Record<string, unknown>) }
  const abs = (p: unknown) => (typeof p === 'string' && p !== '' && !isAbsolute(p) ? join(dir, p) : p)
  for (const f of ['certificate-authority', 'client-certificate', 'client-key', 'token-file']) {
    if (f in fields) fields[f] = abs(fields[f])
  }
  if (key === 'users') {
    if (typeof fields['token-file'] === 'string' && !fields.token) {
      tokenFiles.set(entry.name as string, fields['token-file'])
    }
    delete fields['token-file']
    const exec = fields.exec as { command?: unknown } | undefined
    // client-go: a relative command with a path separator is relative to the kubeconfig's directory.
    if (exec && typeof exec.command === 'string' && exec.command.includes('/')) {
      fields.exec = { ...exec, command: abs(exec.command) }
    }
  }
  return { ...entry, [inner]: fields }
}

/** The pod's service account, as client-go's InClusterConfig reads it; undefined outside a pod. */
function inClusterDocument(opts: KubeConfigOptions): LoadedDocument | undefined {
  const host = opts.env.KUBERNETES_SERVICE_HOST
  const port = opts.env.KUBERNETES_SERVICE_PORT
  const dir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR
  const token = join(dir, 'token')
  if (!host || !port || !existsSync(token)) return undefined
  const server = `https://${isIPv6(host) ? `[${host}]` : host}:${port}`
  const ca = join(dir, 'ca.crt')
  const doc = {
    clusters: [{ name: 'in-cluster', cluster: { server, ...(existsSync(ca) ? { 'certificate-authority': ca } : {}) } }],
    users: [{ name: 'service-account', user: {} }],
    contexts: [{ name: 'in-cluster', context: { cluster: 'in-cluster', user: 'service-account' } }],
    'current-context': 'in-cluster',
  }
  return { doc, from: `the pod's service account (${dir})`, tokenFiles: new Map([['service-account', token]]) }
}
