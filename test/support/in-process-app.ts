// The webhook's HTTP app (src/server/app.ts createApp) served in-process on plain HTTP, 127.0.0.1 and
// an ephemeral port: no TLS, no child process, no STS. The decision for a token is the test's to
// give, so request parsing and the outcome table can be checked on their own, in milliseconds. The
// wiring (TLS listener, verifier, STS, mapping chain) is what test/server/server.test.ts and
// test/faults/ check through the real server.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { createApp, type AppDeps } from '../../src/server/app.js'
import type { Decision } from '../../src/server/authenticator.js'
import { userInfo } from '../../src/server/token-review.js'
import type { ChainResult } from '../../src/mapping/chain.js'
import { createLogger } from '../../src/shared/logger.js'
import { createMetrics, type Metrics } from '../../src/shared/metrics.js'
import type { Identity } from '../../src/sts/get-caller-identity.js'
import { jsonLogSink } from './webhook.js'

export interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly body: string
  json(): any
}

export interface InProcessApp {
  readonly port: number
  readonly metrics: Metrics
  /** Every log line the app wrote, parsed. */
  readonly logs: Record<string, unknown>[]
  /** Every call of `authenticate` the app made. */
  readonly calls: { readonly token: string; readonly caller: string }[]
  /** How the next tokens are decided (default: allowed as alice). */
  decide(fn: (token: string) => Decision | Promise<Decision>): void
  send(
    path: string,
    opts?: { method?: string; body?: string | Buffer; headers?: Record<string, string> },
  ): Promise<Reply>
  /** POSTs a body to /authenticate as JSON (unless `headers` says otherwise). */
  post(body: string | Buffer, headers?: Record<string, string>): Promise<Reply>
  /** A sample of a metric (`sample` e.g. `<histogram>_count`): its value for exactly these labels, 0 when absent. */
  metric(name: string, labels?: Record<string, string>, sample?: string): Promise<number>
  close(): Promise<void>
}

export const ALICE_IDENTITY: Identity = {
  arn: 'arn:aws:iam::111122223333:user/alice',
  canonicalArn: 'arn:aws:iam::111122223333:user/alice',
  accountId: '111122223333',
  userId: 'AIDAINPROCESSALICE01',
  sessionName: '',
  accessKeyId: 'AKIAINPROCESSALICE01',
  stsEndpoint: 'sts.amazonaws.com',
}

/** The decision the authenticator makes for a mapped identity. */
export function allowed(identity: Identity = ALICE_IDENTITY, scrubbed = false): Decision {
  const mapped: ChainResult = {
    username: 'alice',
    groups: ['devs'],
    source: 'MountedFile',
    rule: 'mapUsers[0]',
    kind: 'user',
  }
  return { allowed: true, identity, mapped, user: userInfo(identity, mapped, scrubbed), scrubbed, cache: 'miss' }
}

export function refused(error: Error, identity?: Identity, scrubbed = false): Decision {
  return { allowed: false, error, identity, scrubbed, cache: 'miss' }
}

export async function startApp(overrides: Partial<AppDeps> = {}): Promise<InProcessApp> {
  const logs: Record<string, unknown>[] = []
  const metrics = createMetrics(undefined, { defaultMetrics: false })
  const calls: { token: string; caller: string }[] = []
  let decide: (token: string) => Decision | Promise<Decision> = () => allowed()
  const app = createApp({
    authenticate: async (token, caller) => {
      calls.push({ token, caller })
      return decide(token)
    },
    metrics,
    log: createLogger({ level: 'debug', destination: jsonLogSink((doc) => logs.push(doc)) }),
    now: Date.now,
    maxRequestBytes: 1024,
    sources: () => [],
    ...overrides,
  })
  const server: Server = createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const origin = `http://127.0.0.1:${port}`
  const send: InProcessApp['send'] = async (path, opts = {}) => {
    const res = await request(`${origin}${path}`, {
      method: (opts.method ?? 'GET') as 'GET',
      headers: opts.headers ?? {},
      ...(opts.body === undefined ? {} : { body: opts.body }),
      signal: AbortSignal.timeout(10_000),
    })
    const body = await res.body.text()
    return { status: res.statusCode, headers: res.headers, body, json: () => JSON.parse(body) }
  }
  return {
    port,
    metrics,
    logs,
    calls,
    decide: (fn) => void (decide = fn),
    send,
    post: (body, headers = { 'content-type': 'application/json' }) =>
      send('/authenticate', { method: 'POST', body, headers }),
    metric: async (name, labels = {}, sample = name) => {
      const metric = metrics.registry.getSingleMetric(name)
      if (metric === undefined) throw new Error(`no metric ${name}`)
      const { values } = await metric.get()
      const found = values.find(
        (v) =>
          ((v as { metricName?: string }).metricName ?? name) === sample &&
          Object.keys(labels).length === Object.keys(v.labels).length &&
          Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x),
      )
      return found?.value ?? 0
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

export function tokenReviewBody(token: string, apiVersion = 'authentication.k8s.io/v1'): string {
  return JSON.stringify({ apiVersion, kind: 'TokenReview', spec: { token } })
}
