import { createServer, type Server } from 'node:https'
import type { AddressInfo, LookupFunction } from 'node:net'
import { DEFAULTS, type ServerConfig } from '../config/server-config.js'
import { buildChain } from './build-chain.js'
import { createPrivateDnsResolver } from '../mapping/ec2-private-dns/index.js'
import type { PrivateDnsResolver } from '../mapping/template.js'
import type { Mapper } from '../mapping/types.js'
import { ConfigInvalid } from '../shared/errors.js'
import { createStsTransport } from '../sts/transport.js'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createApp } from './app.js'
import { createAuditThrottle } from './audit-throttle.js'
import { createAuthenticator } from './authenticator.js'
import type { CallerVerifier } from './caller-auth.js'
import { IdentityCache } from './identity-cache.js'
import { StsAdmission } from './sts-admission.js'
import { StsVerdicts } from './sts-verdicts.js'
import type { Logger } from '../shared/logger.js'
import { createMetrics, type Metrics } from '../shared/metrics.js'
import { CallerRateLimiter } from './rate-limit.js'
import { instrumentSts } from './sts-instrumented.js'
import { preflightProblems } from './preflight.js'
import { loadOrCreateServingCert } from './tls.js'
import { renderWebhookKubeconfig, webhookServerUrl, writeWebhookKubeconfig } from './webhook-kubeconfig.js'

export interface RunDeps {
  readonly log: Logger
  readonly env: Readonly<Record<string, string | undefined>>
  readonly now?: () => number
  readonly metrics?: Metrics
  /** Name resolution for STS hosts (tests inject failures and stalls). Default dns.lookup. */
  readonly stsLookup?: LookupFunction
}

export interface RunningServer {
  readonly url: string
  readonly port: number
  readonly caPem: string
  readonly metrics: Metrics
  readonly chain: () => readonly Mapper[]
  /** Stops accepting, lets in-flight reviews finish (up to the shutdown timeout), then releases everything. */
  close(): Promise<void>
}

/** Starts the webhook: mapping sources, serving certificate, webhook kubeconfig, TLS listener. */
export async function startServer(config: ServerConfig, deps: RunDeps): Promise<RunningServer> {
  const lifetime = new AbortController()
  try {
    return await start(config, deps, lifetime)
  } catch (err) {
    // Stop the sources already watching, so a failed start-up does not leave the process hanging.
    lifetime.abort()
    throw err
  }
}

async function start(config: ServerConfig, deps: RunDeps, lifetime: AbortController): Promise<RunningServer> {
  const now = deps.now ?? Date.now
  const { log } = deps
  const metrics = deps.metrics ?? createMetrics()

  // Refuse to start rather than lock kube-apiserver out (an unusable certificate, a pre-generated
  // kubeconfig that does not trust it or holds no caller token this server accepts): one line each.
  const { problems: preflight } = await preflightProblems(config, { offline: false, now: new Date(now()) })
  for (const p of preflight) log[p.severity === 'error' ? 'error' : 'warn']({ path: p.path }, p.message)
  const refusal = preflight.find((p) => p.severity === 'error')
  if (refusal !== undefined) throw new ConfigInvalid(refusal.message)

  const chain = await buildChain(config, config.backendMode, { log, metrics, now, env: deps.env })
  await Promise.all(chain.map((m) => m.start(lifetime.signal)))
  metrics.dynamicFileEnabled.set(config.backendMode.includes('DynamicFile') ? 1 : 0)
  metrics.dynamicFileOnly.set(config.backendMode.length === 1 && config.backendMode[0] === 'DynamicFile' ? 1 : 0)
  for (const m of chain) log.info({ source: m.name, ...m.status().counts }, 'mapping source loaded')

  const cert = await loadOrCreateServingCert({
    stateDir: config.stateDir,
    address: config.address,
    hostname: config.hostname,
  })
  const transport = createStsTransport({
    maxConnections: config.stsMaxConcurrency,
    connectTimeoutMs: config.stsTimeoutMs,
    ...(deps.stsLookup === undefined ? {} : { lookup: deps.stsLookup }),
  })
  const sts = instrumentSts(transport.send, metrics)
  const dns = lazyDnsResolver(config, deps.env, metrics)
  const rateLimiter = new CallerRateLimiter({ ...config.callerRateLimit, now })
  const verdicts = new StsVerdicts({ now })
  // jose is loaded only when caller authentication is on (off by default).
  const callerAuth = config.callerAuth ? await import('./caller-auth.js') : undefined
  const callerKey = callerAuth && (await callerAuth.ensureCallerKey(config.stateDir))
  const callers = callerAuth?.createCallerVerifier({ stateDir: config.stateDir, clusterId: config.clusterId, now })
  const authenticate = createAuthenticator(
    {
      clusterId: config.clusterId,
      clusterIds: config.clusterIds,
      partition: config.partition,
      extraRegions: config.extraRegions,
      stsEndpoint: deps.env.KUBE_IAM_AUTH_STS_ENDPOINT || undefined,
      stsTimeoutMs: config.stsTimeoutMs,
      scrubbedAccounts: config.scrubbedAccounts,
    },
    {
      now,
      sts,
      cache: new IdentityCache({ maxEntries: config.identityCacheSize, ttlMs: config.identityCacheTtlMs, now }),
      admission: new StsAdmission({
        max: config.stsMaxConcurrency,
        queueTimeoutMs: config.stsQueueTimeoutMs,
        laneOf: (credential) => (verdicts.isConfirmed(credential) ? 'confirmed' : 'unknown'),
        onChange: (_active, queued) => metrics.stsQueued.set(queued),
        onReject: (lane) => metrics.stsQueueRejections.inc({ lane }),
      }),
      verdicts,
      chain: () => chain,
      resolveDns: dns.resolve,
      metrics,
      callerLimit: config.callerRateLimit.perSecond > 0 ? (caller) => rateLimiter.take(caller) : undefined,
    },
  )

  let draining = false
  const auditThrottle = createAuditThrottle({
    log,
    now,
    onSuppressed: (decision) => metrics.auditLinesSuppressed.inc({ decision }),
  })
  const app = createApp({
    guard: callers && ((req, res) => callerGuard(callers, req, res, metrics)),
    authenticate,
    metrics,
    log,
    now,
    maxRequestBytes: config.maxRequestBytes,
    sources: () => chain.map((m) => m.status()),
    audit: config.auditLog,
    auditThrottle,
    draining: () => draining,
  })
  const headersTimeoutMs = config.headersTimeoutMs ?? DEFAULTS.headersTimeoutMs
  const server: Server = createServer(
    {
      cert: cert.certPem,
      key: cert.keyPem,
      minVersion: 'TLSv1.2',
      // a client that never completes the TLS handshake is dropped as soon as a silent one would be
      handshakeTimeout: headersTimeoutMs,
      // Node sweeps for expired headers/requests every 30 s by default, which would let a slowloris
      // client hold a 20 s headersTimeout connection for up to 50 s.
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(headersTimeoutMs / 4))),
    },
    app,
  )
  server.keepAliveTimeout = 75_000
  server.headersTimeout = headersTimeoutMs
  server.requestTimeout = 60_000
  // headersTimeout only runs once a request has started: a client that connects and never sends a
  // byte would otherwise keep its connection forever. Give it as long as it gets for the headers;
  // from its first request on, Node's own request and keep-alive timeouts take over.
  server.on('secureConnection', (socket) => socket.setTimeout(headersTimeoutMs))
  server.on('request', (req) => req.socket.setTimeout(server.timeout))
  // If start-up fails past this point, the listener must not keep the process alive.
  lifetime.signal.addEventListener('abort', () => server.listening && server.close(), { once: true })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.port, config.address, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const url = webhookServerUrl(config.hostname, port)
  if (!config.kubeconfigPregenerated) {
    // Written once listening, so port 0 (any free port) gives a kubeconfig with the real port.
    const bearerToken = callerAuth && callerKey && (await callerAuth.issueCallerToken(callerKey, config.clusterId))
    writeWebhookKubeconfig(
      config.generateKubeconfig,
      renderWebhookKubeconfig({
        certPem: cert.certPem,
        hostname: config.hostname,
        port,
        ...(bearerToken ? { bearerToken } : {}),
      }),
    )
    log.info(
      { kubeconfig: config.generateKubeconfig },
      `reconfigure your apiserver with --authentication-token-webhook-config-file=${config.generateKubeconfig}`,
    )
  }
  log.info(
    {
      url,
      clusterId: config.clusterId,
      ...(config.clusterIds.length > 0 ? { clusterIds: config.clusterIds } : {}),
      backendMode: config.backendMode,
      partition: config.partition,
    },
    'listening',
  )

  let closing: Promise<void> | undefined
  return {
    url,
    port,
    caPem: cert.certPem,
    metrics,
    chain: () => chain,
    close: () =>
      (closing ??= (async () => {
        draining = true
        const closed = new Promise<void>((resolve) => server.close(() => resolve()))
        // Keep-alive connections go idle as their last review completes; close them as they do.
        const sweep = setInterval(() => server.closeIdleConnections(), 50)
        server.closeIdleConnections()
        const force = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs)
        await closed
        clearInterval(sweep)
        clearTimeout(force)
        lifetime.abort()
        auditThrottle.close()
        callers?.close()
        dns.close()
        await transport.close()
        log.info('stopped')
      })()),
  }
}

/** The EC2 lookup for {{EC2PrivateDNSName}}, created on first use (most clusters map nodes elsewhere). */
function lazyDnsResolver(
  config: ServerConfig,
  env: RunDeps['env'],
  metrics: Metrics,
): { resolve: PrivateDnsResolver; close: () => void } {
  let resolver: ReturnType<typeof createPrivateDnsResolver> | undefined
  return {
    resolve: (instanceId) => {
      resolver ??= createPrivateDnsResolver(
        {
          region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
          qps: config.ec2.qps,
          burst: config.ec2.burst,
          ...(config.ec2.describeInstancesRoleArn === undefined
            ? {}
            : { roleArn: config.ec2.describeInstancesRoleArn }),
          ...(config.ec2.sourceArn === undefined ? {} : { sourceArn: config.ec2.sourceArn }),
        },
        {
          now: Date.now,
          onCall: () => metrics.ec2DescribeInstancesCalls.inc(),
          onResult: (outcome) => metrics.ec2Responses.inc({ outcome }),
        },
      )
      return resolver.resolve(instanceId)
    },
    close: () => resolver?.close(),
  }
}

/** Only callers with a valid caller token get to /authenticate; everyone else gets 401. */
async function callerGuard(
  callers: CallerVerifier,
  req: IncomingMessage,
  res: ServerResponse,
  metrics: Metrics,
): Promise<string | undefined> {
  const header = req.headers.authorization
  const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined
  const result = token ? await callers.verify(token) : { error: 'missing' }
  if ('caller' in result) return `${result.caller}@${req.socket.remoteAddress ?? 'unknown'}`
  metrics.callerAuthFailures.inc({ reason: result.error })
  const text = token
    ? 'invalid caller token\n'
    : 'caller authentication required: use the webhook kubeconfig kube-iam-auth wrote\n'
  res.writeHead(401, {
    'www-authenticate': 'Bearer realm="kube-iam-auth"',
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  })
  res.end(text)
  return undefined
}
