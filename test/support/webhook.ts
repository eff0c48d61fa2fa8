// Starts the real webhook server (TLS, real STS transport, real mapping chain) for tests, pointed at
// a fake STS through KUBE_IAM_AUTH_STS_ENDPOINT, and talks to it over HTTPS with the CA it wrote.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Agent, request } from 'undici'
import { decodeServerConfig, type ServerConfig } from '../../src/config/server-config.js'
import { createLogger } from '../../src/shared/logger.js'
import { createMetrics } from '../../src/shared/metrics.js'
import { startServer, type RunningServer } from '../../src/server/run.js'

export interface TestServer {
  readonly server: RunningServer
  readonly config: ServerConfig
  readonly stateDir: string
  /** Every log line the server wrote, parsed. */
  readonly logs: Record<string, unknown>[]
  /** POSTs a body to /authenticate (or another path) over TLS keep-alive. */
  post(
    body: unknown,
    opts?: { path?: string; headers?: Record<string, string>; method?: string; raw?: string },
  ): Promise<{ status: number; body: string; json: () => any }>
  get(path: string): Promise<{ status: number; body: string }>
  review(token: string, apiVersion?: string): Promise<{ status: number; body: string; json: () => any }>
  close(): Promise<void>
}

export interface HttpsReply {
  readonly status: number
  readonly body: string
  json(): any
}

export interface ServerClient {
  /** One request to the server; the content type is JSON unless `headers` says otherwise. */
  send(path: string, method: string, body?: string, headers?: Record<string, string>): Promise<HttpsReply>
  close(): Promise<void>
}

/** An HTTPS keep-alive client for the server under test, trusting its CA. */
export function serverClient(
  origin: string,
  ca: string,
  opts: { connections: number; timeoutMs?: number },
): ServerClient {
  const agent = new Agent({ connect: { ca }, connections: opts.connections })
  return {
    send: async (path, method, body, headers = {}) => {
      const res = await request(`${origin}${path}`, {
        method: method as 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json', ...headers },
        ...(opts.timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(opts.timeoutMs) }),
        ...(body === undefined ? {} : { body }),
      })
      const text = await res.body.text()
      return { status: res.statusCode, body: text, json: () => JSON.parse(text) }
    },
    close: () => agent.close(),
  }
}

/** A destination for the server's log: every non-blank line written is parsed as JSON and handed to `onLine`. */
export function jsonLogSink(onLine: (doc: Record<string, unknown>) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n'))
        if (line.trim() !== '') onLine(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
}

export function tokenReview(token: string, apiVersion = 'authentication.k8s.io/v1'): object {
  return { apiVersion, kind: 'TokenReview', spec: { token } }
}

export async function startTestServer(opts: {
  stsUrl: string
  server?: Record<string, unknown>
  clusterId?: string
  /** The top-level clusterIDs: cluster IDs accepted alongside clusterId. */
  clusterIds?: string[]
  now?: () => number
  env?: Record<string, string>
}): Promise<TestServer> {
  const stateDir = mkdtempSync(join(tmpdir(), 'kia-server-'))
  const doc = {
    clusterID: opts.clusterId ?? 'kia-test-cluster',
    ...(opts.clusterIds === undefined ? {} : { clusterIDs: opts.clusterIds }),
    server: {
      address: '127.0.0.1',
      port: 0,
      stateDir,
      generateKubeconfig: join(stateDir, 'webhook.kubeconfig'),
      ...opts.server,
    },
  }
  const { config, problems } = decodeServerConfig(doc)
  if (config === undefined) throw new Error(`bad test config: ${JSON.stringify(problems)}`)
  // port 0 is not a valid config value; listen on a free port instead
  const logs: Record<string, unknown>[] = []
  const server = await startServer(config, {
    log: createLogger({ level: 'debug', destination: jsonLogSink((doc) => logs.push(doc)) }),
    env: { KUBE_IAM_AUTH_STS_ENDPOINT: opts.stsUrl, ...opts.env },
    metrics: createMetrics(undefined, { defaultMetrics: false }),
    ...(opts.now === undefined ? {} : { now: opts.now }),
  })
  const client = serverClient(`https://127.0.0.1:${server.port}`, server.caPem, { connections: 64 })
  const send = client.send
  return {
    server,
    config,
    stateDir,
    logs,
    post: (body, o = {}) =>
      send(o.path ?? '/authenticate', o.method ?? 'POST', o.raw ?? JSON.stringify(body), o.headers),
    get: (path) => send(path, 'GET'),
    review: (token, apiVersion) => send('/authenticate', 'POST', JSON.stringify(tokenReview(token, apiVersion))),
    close: async () => {
      await client.close()
      await server.close()
    },
  }
}
