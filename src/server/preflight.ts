import { existsSync, readFileSync } from 'node:fs'
import { X509Certificate } from 'node:crypto'
import { join } from 'node:path'
import { loadAll } from 'js-yaml'
import type { ServerConfig } from '../config/server-config.js'
import { isKiaError } from '../shared/errors.js'
import type { Problem } from '../shared/problem.js'
import type * as CallerAuth from './caller-auth.js'
import { CERT_FILE, checkServingCertPair, KEY_FILE, servingCertProblems } from './tls.js'

/**
 * The checks of the files the server relies on, made before it starts and by `validate`: anything
 * that would lock kube-apiserver out. A reused serving certificate must load, match its key, be
 * current and name the host kube-apiserver connects to. A pre-generated webhook kubeconfig must
 * trust this certificate and, with caller authentication on, carry a caller token this server
 * accepts: otherwise every review would fail or get 401.
 *
 * `offline` (validate on another machine): when the state directory is not there, the file checks
 * are skipped, and `skipped` says so, instead of reporting files as missing.
 */
export async function preflightProblems(
  config: ServerConfig,
  opts: { offline: boolean; now: Date },
): Promise<{ problems: Problem[]; skipped?: string }> {
  const problems: Problem[] = []
  const error = (path: string, message: string) => problems.push({ path, message, severity: 'error' })
  const warn = (path: string, message: string) => problems.push({ path, message, severity: 'warning' })
  if (opts.offline && !existsSync(config.stateDir)) {
    const skipped =
      `server.stateDir ${config.stateDir} is not on this machine: the serving certificate, caller keys and ` +
      'pre-generated kubeconfig are checked by the server at start (run validate on a control-plane node to check them now)'
    return { problems, skipped }
  }
  const certPath = join(config.stateDir, CERT_FILE)
  const keyPath = join(config.stateDir, KEY_FILE)
  const certPem = readIfPresent(certPath)
  const keyPem = readIfPresent(keyPath)
  let cert = certPem !== undefined && keyPem !== undefined ? certPem : undefined
  if (cert !== undefined) {
    try {
      checkServingCertPair(cert, keyPem!, certPath, keyPath)
    } catch (err) {
      if (!isKiaError(err)) throw err
      error('server.stateDir', err.message)
      cert = undefined
    }
  }
  if (cert !== undefined && !config.kubeconfigPregenerated) {
    // The server writes the webhook kubeconfig with https://<hostname>:<port>: the certificate must name it.
    for (const p of servingCertProblems(cert, { hostname: config.hostname, now: opts.now })) {
      error('server.hostname', `${certPath}: ${p}; ${newCertRemedy(certPath, keyPath)}`)
    }
  }
  if (config.kubeconfigPregenerated) await checkPregenerated(config, cert, opts.now, error, warn)
  return { problems }
}

async function checkPregenerated(
  config: ServerConfig,
  cert: string | undefined,
  now: Date,
  error: (path: string, message: string) => void,
  warn: (path: string, message: string) => void,
): Promise<void> {
  const path = config.generateKubeconfig
  const remedy = `run ${initCommand(config)} on this node, then restart kube-apiserver`
  const text = readIfPresent(path)
  if (text === undefined) {
    const why = `server.kubeconfigPregenerated is on but ${path} does not exist`
    if (config.callerAuth)
      error('server.generateKubeconfig', `${why}: nothing can give kube-apiserver a caller token; ${remedy}`)
    else warn('server.generateKubeconfig', `${why}: kube-apiserver needs it; ${remedy}`)
    return
  }
  const kubeconfig = parseWebhookKubeconfig(text)
  if (kubeconfig === undefined) {
    error('server.generateKubeconfig', `the pre-generated kubeconfig ${path} is not a webhook kubeconfig; ${remedy}`)
    return
  }
  if (cert === undefined) {
    error(
      'server.generateKubeconfig',
      `the pre-generated kubeconfig ${path} trusts a certificate, but ${join(config.stateDir, CERT_FILE)} is missing ` +
        `or unusable: the server would serve another one and kube-apiserver could not connect; ${remedy}`,
    )
  } else {
    if (kubeconfig.caPem === undefined || !sameCertificate(kubeconfig.caPem, cert)) {
      error(
        'server.generateKubeconfig',
        `the pre-generated kubeconfig ${path} does not trust ${join(config.stateDir, CERT_FILE)}: kube-apiserver ` +
          `could not connect; ${remedy}`,
      )
    }
    const host = kubeconfig.host
    for (const p of host === undefined ? [] : servingCertProblems(cert, { hostname: host, now })) {
      error('server.generateKubeconfig', `${path} connects to ${host}, but ${p}; ${remedy}`)
    }
  }
  if (!config.callerAuth) return
  const why = await callerTokenProblem(config, kubeconfig.token)
  if (why !== undefined) {
    error(
      'server.callerAuth',
      `server.callerAuth is on, but the pre-generated kubeconfig ${path} ${why}: kube-apiserver would get 401 on ` +
        `every review; ${remedy}`,
    )
  }
}

/** Why the webhook kubeconfig's token would be refused, or undefined when it is accepted. */
async function callerTokenProblem(config: ServerConfig, token: string | undefined): Promise<string | undefined> {
  if (token === undefined) return 'holds no caller token'
  // Loaded here, only with callerAuth on: jose is memory a server without caller auth need not hold.
  const { CALLER_KEYS_DIR, createCallerVerifier, loadCallerKeys }: typeof CallerAuth = await import('./caller-auth.js')
  if (loadCallerKeys(config.stateDir).length === 0) {
    return `holds a caller token, but ${join(config.stateDir, CALLER_KEYS_DIR)} has no key to verify it`
  }
  const verifier = createCallerVerifier({ stateDir: config.stateDir, clusterId: config.clusterId })
  try {
    const result = await verifier.verify(token)
    if ('caller' in result) return undefined
    switch (result.error) {
      case 'ERR_JWKS_NO_MATCHING_KEY':
        return `holds a caller token signed by a key that is not in ${join(config.stateDir, CALLER_KEYS_DIR)}`
      case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
        return `holds a caller token issued for another cluster ID than ${config.clusterId}`
      default:
        return `holds a caller token this server refuses (${result.error})`
    }
  } finally {
    verifier.close()
  }
}

/** The command that writes a matching certificate, caller key and kubeconfig for this config. */
export function initCommand(config: ServerConfig): string {
  return [
    'kube-iam-auth init',
    `--cluster-id ${config.clusterId}`,
    `--hostname ${config.hostname}`,
    `--address ${config.address}`,
    `--port ${config.port}`,
    `--state-dir ${config.stateDir}`,
    `--generate-kubeconfig ${config.generateKubeconfig}`,
    ...(config.callerAuth ? ['--caller-auth'] : []),
  ].join(' ')
}

function newCertRemedy(certPath: string, keyPath: string): string {
  return `delete ${certPath} and ${keyPath} so a new pair is generated (kube-apiserver then needs the new webhook kubeconfig)`
}

function parseWebhookKubeconfig(text: string): { caPem?: string; host?: string; token?: string } | undefined {
  let doc: unknown
  try {
    doc = loadAll(text)[0]
  } catch {
    return undefined
  }
  const d = doc as {
    clusters?: { cluster?: { server?: unknown; 'certificate-authority-data'?: unknown } }[]
    users?: { user?: { token?: unknown } }[]
  } | null
  const cluster = d?.clusters?.[0]?.cluster
  if (cluster === undefined || typeof cluster.server !== 'string') return undefined
  const ca = cluster['certificate-authority-data']
  const token = d?.users?.[0]?.user?.token
  let host: string | undefined
  try {
    host = new URL(cluster.server).hostname.replace(/^\[(.*)\]$/, '$1')
  } catch {
    host = undefined
  }
  return {
    ...(typeof ca === 'string' ? { caPem: Buffer.from(ca, 'base64').toString('utf8') } : {}),
    ...(host ? { host } : {}),
    ...(typeof token === 'string' && token !== '' ? { token } : {}),
  }
}

function sameCertificate(a: string, b: string): boolean {
  try {
    return new X509Certificate(a).raw.equals(new X509Certificate(b).raw)
  } catch {
    return false
  }
}

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}
