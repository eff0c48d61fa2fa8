import { join, resolve } from 'node:path'
import { DEFAULTS, type ServerConfig } from '../config/server-config.js'
import { UsageError } from '../shared/errors.js'
import { CALLER_KEYS_DIR, ensureCallerKey, issueCallerToken } from '../server/caller-auth.js'
import { loadOrCreateServingCert, servingCertProblems } from '../server/tls.js'
import { renderWebhookKubeconfig, webhookServerUrl, writeWebhookKubeconfig } from '../server/webhook-kubeconfig.js'
import type { Io } from './io.js'

/** What `init` does, fully resolved (resolveInitFlags builds it from flags, config file and env). */
export interface InitFlags {
  clusterId?: string
  /** The name kube-apiserver uses to reach the webhook: in the certificate and the kubeconfig server URL. */
  hostname: string
  /** The IP the server listens on: in the certificate. */
  address: string
  /** Where cert.pem and key.pem are written (or reused from). */
  stateDir: string
  /** Where the webhook kubeconfig is written. */
  kubeconfigPath: string
  port: number
  /** The server's state directory on the master nodes (default /var/aws-iam-authenticator). */
  serverStateDir?: string
  /** Where kube-apiserver reads the webhook kubeconfig (default /etc/kubernetes/aws-iam-authenticator/kubeconfig.yaml). */
  serverKubeconfigPath?: string
  /** server.callerAuth: write a caller key into stateDir and its token into the kubeconfig. */
  callerAuth?: boolean
}

/** Upstream's output locations without the ConfiguredInitDirectories feature gate. */
export const INIT_DEFAULTS = {
  stateDir: '.',
  kubeconfigPath: './aws-iam-authenticator.kubeconfig',
} as const

/** The `init` command-line options as commander parses them (no defaults: the config file may supply them). */
export interface InitOptions {
  clusterId?: string | undefined
  hostname?: string | undefined
  address?: string | undefined
  port?: number | undefined
  stateDir?: string | undefined
  generateKubeconfig?: string | undefined
  featureGates?: string | undefined
  callerAuth?: boolean | undefined
}

/** The config file values init uses (from loadServerConfig), all optional. */
export type InitFileConfig = Partial<
  Pick<ServerConfig, 'clusterId' | 'hostname' | 'address' | 'port' | 'stateDir' | 'generateKubeconfig' | 'callerAuth'>
>

/**
 * Flags > config file > env > defaults. Without the ConfiguredInitDirectories gate the files go to
 * `.` and `./aws-iam-authenticator.kubeconfig` for copying to the master nodes, as upstream; with it,
 * or with --state-dir / --generate-kubeconfig, they go where given. Unlike upstream, --address is honoured.
 */
export function resolveInitFlags(
  cli: InitOptions,
  env: Readonly<Record<string, string | undefined>>,
  file: InitFileConfig = {},
): InitFlags {
  // Where the server reads them: the config file says; without one, where --state-dir and
  // --generate-kubeconfig write them; else upstream's defaults (the files are then copied there).
  const serverStateDir = file.stateDir ?? cli.stateDir ?? DEFAULTS.stateDir
  const serverKubeconfigPath = file.generateKubeconfig ?? cli.generateKubeconfig ?? DEFAULTS.generateKubeconfig
  const configured = featureGateEnabled(cli.featureGates, 'ConfiguredInitDirectories')
  const clusterId = cli.clusterId ?? file.clusterId ?? env.KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID
  return {
    ...(clusterId ? { clusterId } : {}),
    hostname: cli.hostname ?? file.hostname ?? DEFAULTS.hostname,
    address: cli.address ?? file.address ?? DEFAULTS.address,
    port: cli.port ?? file.port ?? DEFAULTS.port,
    stateDir: cli.stateDir ?? (configured ? serverStateDir : INIT_DEFAULTS.stateDir),
    kubeconfigPath: cli.generateKubeconfig ?? (configured ? serverKubeconfigPath : INIT_DEFAULTS.kubeconfigPath),
    serverStateDir,
    serverKubeconfigPath,
    callerAuth: cli.callerAuth ?? file.callerAuth ?? false,
  }
}

/**
 * Writes cert.pem/key.pem into stateDir (an existing loadable pair is reused) and the webhook
 * kubeconfig, then says (on stderr, like upstream's log lines) where to copy them and which
 * kube-apiserver flag to set.
 */
export async function runInit(flags: InitFlags, io: Io): Promise<number> {
  if (!flags.clusterId) throw new UsageError('cluster ID not specified')
  webhookServerUrl(flags.hostname, flags.port) // validates hostname and port before anything is written

  const cert = await loadOrCreateServingCert({
    stateDir: flags.stateDir,
    address: flags.address,
    hostname: flags.hostname,
    now: io.now,
  })
  if (!cert.created) {
    for (const problem of servingCertProblems(cert.certPem, { hostname: flags.hostname, now: io.now() })) {
      io.stderr.write(
        `warning: reusing ${cert.certPath}, but ${problem}; delete ${cert.certPath} and ${cert.keyPath} ` +
          'and run init again to generate a new pair\n',
      )
    }
  }
  // With caller authentication on, the server answers only callers presenting a token signed by a
  // key in its state dir: the kubeconfig kube-apiserver reads must carry one, or it gets 401.
  const callerKey = flags.callerAuth ? await ensureCallerKey(flags.stateDir) : undefined
  const bearerToken = callerKey && (await issueCallerToken(callerKey, flags.clusterId, io.now().getTime()))
  writeWebhookKubeconfig(
    flags.kubeconfigPath,
    renderWebhookKubeconfig({
      certPem: cert.certPem,
      hostname: flags.hostname,
      port: flags.port,
      ...(bearerToken ? { bearerToken } : {}),
    }),
  )

  const serverStateDir = flags.serverStateDir ?? DEFAULTS.stateDir
  const serverKubeconfig = flags.serverKubeconfigPath ?? DEFAULTS.generateKubeconfig
  const files: [what: string, local: string, server: string][] = [
    ['certificate', cert.certPath, join(serverStateDir, 'cert.pem')],
    ['key', cert.keyPath, join(serverStateDir, 'key.pem')],
    ...(callerKey
      ? [
          ['caller keys', join(flags.stateDir, CALLER_KEYS_DIR), join(serverStateDir, CALLER_KEYS_DIR)] as [
            string,
            string,
            string,
          ],
        ]
      : []),
    ['kubeconfig', flags.kubeconfigPath, serverKubeconfig],
  ]
  for (const [what, local, server] of files) {
    if (resolve(local) === resolve(server)) {
      const verb = what !== 'kubeconfig' && what !== 'caller keys' && !cert.created ? 'reused' : 'generated'
      io.stderr.write(`${what} ${verb} at ${local} on kubernetes master node(s)\n`)
    } else {
      io.stderr.write(`copy ${local} to ${server} on kubernetes master node(s)\n`)
    }
  }
  io.stderr.write(
    `configure your apiserver with \`--authentication-token-webhook-config-file=${serverKubeconfig}\` ` +
      'to enable authentication with aws-iam-authenticator\n',
  )
  return 0
}

/** True when `gates` ("A=true,B=false", Kubernetes feature-gate syntax) turns `name` on. */
export function featureGateEnabled(gates: string | undefined, name: string): boolean {
  let enabled = false
  for (const item of (gates ?? '').split(',')) {
    const [key, value] = item.split('=', 2).map((s) => s.trim())
    if (key === name) enabled = ['true', 't', '1'].includes((value ?? '').toLowerCase())
  }
  return enabled
}
