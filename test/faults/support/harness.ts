// Shared machinery of the fault and bad-input suites: the real server started in-process (like
// test/support/webhook.ts, but keeping only a bounded tail of its log so that thousands of reviews do
// not fill the test's own heap and spoil memory measurements), HTTPS clients running in worker
// threads (so that client work does not share the server's event loop), latency statistics, a real
// garbage collector, a TCP gate that makes a backend unreachable and reachable again on the same
// port, and a watch on unhandled rejections. Everything listens on and connects to 127.0.0.1 only.
import { mkdtempSync, readFileSync } from 'node:fs'
import {
  createServer as createTcpServer,
  connect as tcpConnect,
  type LookupFunction,
  type Server as TcpServer,
  type Socket,
} from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Worker } from 'node:worker_threads'
import { expect } from 'vitest'
import { decodeServerConfig, type ServerConfig } from '../../../src/config/server-config.js'
import { createLogger } from '../../../src/shared/logger.js'
import { createMetrics } from '../../../src/shared/metrics.js'
import { startServer, type RunningServer } from '../../../src/server/run.js'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../../support/fake-sts.js'
import { ALICE, TEMP, presignedToken } from '../../support/tokens.js'
import { jsonLogSink, serverClient } from '../../support/webhook.js'

const WORKER = new URL('./client-worker.mjs', import.meta.url)

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export interface Reply {
  readonly status: number
  readonly body: string
  json(): any
}

export interface ServerUnderTest {
  readonly server: RunningServer
  readonly config: ServerConfig
  readonly port: number
  readonly origin: string
  readonly ca: string
  /** The last 300 log lines, parsed. */
  readonly logTail: Record<string, unknown>[]
  /** Log lines at level error or fatal ever written (pino levels >= 50), by message. */
  readonly errorLines: Map<string, number>
  review(token: string): Promise<Reply>
  post(raw: string, headers?: Record<string, string>): Promise<Reply>
  get(path: string): Promise<Reply>
  /** A gauge (or counter) value from /metrics, 0 when absent. */
  metric(name: string): Promise<number>
  close(): Promise<void>
}

/** Starts the real server (TLS, real STS transport, real mapping chain) with KUBE_IAM_AUTH_STS_ENDPOINT=stsUrl. */
export async function startServerUnderTest(opts: {
  stsUrl: string
  server?: Record<string, unknown>
  clusterId?: string
  /** Name resolution of STS hosts (the DNS fault suites switch it). */
  stsLookup?: LookupFunction
}): Promise<ServerUnderTest> {
  const stateDir = mkdtempSync(join(tmpdir(), 'kia-faults-'))
  const { config, problems } = decodeServerConfig({
    clusterID: opts.clusterId ?? 'kia-test-cluster',
    server: {
      address: '127.0.0.1',
      port: 0,
      stateDir,
      generateKubeconfig: join(stateDir, 'webhook.kubeconfig'),
      ...opts.server,
    },
  })
  if (config === undefined) throw new Error(`bad test config: ${JSON.stringify(problems)}`)
  const unknown = problems.filter((p) => p.severity === 'warning')
  if (unknown.length > 0) throw new Error(`test config warnings: ${JSON.stringify(unknown)}`)
  const logTail: Record<string, unknown>[] = []
  const errorLines = new Map<string, number>()
  const sink = jsonLogSink((doc) => {
    logTail.push(doc)
    if (logTail.length > 300) logTail.shift()
    if (typeof doc.level === 'number' && doc.level >= 50)
      errorLines.set(String(doc.msg), (errorLines.get(String(doc.msg)) ?? 0) + 1)
  })
  const server = await startServer(config, {
    log: createLogger({ level: 'info', destination: sink }),
    env: { KUBE_IAM_AUTH_STS_ENDPOINT: opts.stsUrl },
    metrics: createMetrics(undefined, { defaultMetrics: false }),
    ...(opts.stsLookup === undefined ? {} : { stsLookup: opts.stsLookup }),
  })
  const origin = `https://127.0.0.1:${server.port}`
  const client = serverClient(origin, server.caPem, { connections: 8, timeoutMs: 10_000 })
  const send = client.send
  return {
    server,
    config,
    port: server.port,
    origin,
    ca: server.caPem,
    logTail,
    errorLines,
    review: (token) => send('/authenticate', 'POST', reviewBody(token)),
    post: (raw, headers) => send('/authenticate', 'POST', raw, headers),
    get: (path) => send(path, 'GET'),
    metric: async (name) => metricValue((await send('/metrics', 'GET')).body, name),
    close: async () => {
      await client.close()
      await server.close()
    },
  }
}

export function reviewBody(token: string, apiVersion = 'authentication.k8s.io/v1'): string {
  return JSON.stringify({ apiVersion, kind: 'TokenReview', spec: { token } })
}

/** The value of an unlabelled metric in Prometheus text format (0 when absent). */
export function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
  return m === null ? 0 : Number(m[1])
}

/** The STS limiter's gauges: reviews waiting for STS now, and reviews queued for a slot. */
export async function stsGauges(srv: Pick<ServerUnderTest, 'metric'>): Promise<{ inflight: number; queued: number }> {
  const inflight = await srv.metric('kube_iam_auth_sts_inflight_requests')
  const queued = await srv.metric('kube_iam_auth_sts_queued_requests')
  return { inflight, queued }
}

/** Polls (bounded by `withinMs`) until the STS gauges are back to 0; fails with their values if not. */
export async function gaugesDrain(srv: Pick<ServerUnderTest, 'metric'>, withinMs = 2000): Promise<void> {
  const started = Date.now()
  for (;;) {
    const gauges = await stsGauges(srv)
    if (gauges.inflight === 0 && gauges.queued === 0) return
    if (Date.now() - started > withinMs) expect(gauges).toEqual({ inflight: 0, queued: 0 })
    await sleep(50)
  }
}

/** Reviews a token of CAROL never used before (so verified through STS) and expects a 200 answer. */
export async function reviewFresh(srv: Pick<ServerUnderTest, 'review'>): Promise<Reply> {
  const [token] = await distinctTokens([CAROL], 1)
  const res = await srv.review(token!)
  expect(res.status).toBe(200)
  return res
}

export interface ReviewResult {
  readonly i: number
  /** 0 when the request failed at the transport level (see error). */
  readonly status: number
  readonly ms: number
  /** Time the OS kept the server's or the client's thread off the CPU during this request (see client-worker.mjs). */
  readonly waitMs: number
  readonly authenticated?: boolean
  readonly username?: string
  /** The answer's status.error (transient failures carry one). */
  readonly reason?: string
  readonly error?: string
}

function runWorker<T>(data: Record<string, unknown>, onStart?: (w: Worker) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const worker = new Worker(WORKER, { workerData: data })
    onStart?.(worker)
    let settled = false
    worker.once('message', (m: T) => {
      settled = true
      resolve(m)
      void worker.terminate()
    })
    worker.once('error', (err) => {
      settled = true
      reject(err)
    })
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`client worker exited with ${code} and no result`))
    })
  })
}

/**
 * POSTs every body to /authenticate from a worker thread, `concurrency` at a time over keep-alive
 * connections, stopping early once `maxMs` has passed (bounded in count and time).
 */
export function runLoad(
  srv: { origin: string; ca: string },
  bodies: readonly string[],
  opts: { concurrency: number; maxMs: number; timeoutMs?: number },
): Promise<{ results: ReviewResult[]; elapsedMs: number }> {
  return runWorker({
    mode: 'load',
    origin: srv.origin,
    ca: srv.ca,
    bodies,
    concurrency: opts.concurrency,
    maxMs: opts.maxMs,
    timeoutMs: opts.timeoutMs ?? 10_000,
  })
}

export interface HealthSample {
  readonly at: number
  readonly ms: number
  readonly waitMs: number
  readonly status: number
  readonly error?: string
}

/** How many /healthz samples a measured run takes at least, however quickly its load finishes. */
export const MIN_HEALTH_SAMPLES = 5

/**
 * GETs /healthz every `intervalMs` from its own worker thread until stopped, and until it has
 * MIN_HEALTH_SAMPLES samples: a load that ends early (a faster runtime, a fault answered at once)
 * keeps the sampler going with the fault still in place, instead of leaving too few samples to judge.
 */
export function startHealthSampler(
  srv: { origin: string; ca: string },
  intervalMs = 100,
): { stop(): Promise<HealthSample[]> } {
  let worker: Worker | undefined
  const done = runWorker<{ samples: HealthSample[] }>(
    { mode: 'health', origin: srv.origin, ca: srv.ca, intervalMs, timeoutMs: 5_000, minSamples: MIN_HEALTH_SAMPLES },
    (w) => (worker = w),
  )
  return {
    stop: async () => {
      worker!.postMessage('stop')
      return (await done).samples
    },
  }
}

export interface MeasuredLoad {
  readonly run: { results: ReviewResult[]; elapsedMs: number }
  readonly samples: HealthSample[]
  /** The run's line for printTable. */
  readonly row: StatsRow
}

/**
 * runLoad with /healthz sampled throughout and the main thread watched: the sampler starts
 * `settleMs` (default 150) before `start()`, the watch right after it; `during()` runs alongside the
 * load; `stop()` runs once the load and the sampler are done, even when the load failed.
 */
export async function measureLoad(
  srv: { origin: string; ca: string },
  scenario: string,
  bodies: readonly string[],
  opts: {
    concurrency: number
    maxMs: number
    settleMs?: number
    start?: () => Promise<void> | void
    during?: () => Promise<void>
    stop?: () => Promise<void> | void
  },
): Promise<MeasuredLoad> {
  const health = startHealthSampler(srv)
  if ((opts.settleMs ?? 150) > 0) await sleep(opts.settleMs ?? 150)
  await opts.start?.()
  const phase = monitorPhase()
  let run: Awaited<ReturnType<typeof runLoad>>
  let samples: HealthSample[]
  try {
    const load = runLoad(srv, bodies, { concurrency: opts.concurrency, maxMs: opts.maxMs })
    await opts.during?.()
    run = await load
  } finally {
    samples = await health.stop()
    await opts.stop?.()
  }
  return { run, samples, row: statsRow(scenario, run, samples, phase.stop()) }
}

/** What the load suites ask of /healthz: sampled, always 200 and always fast (own latency). */
export const HEALTH_BOUND_MS = 100

export function expectHealthy(samples: readonly HealthSample[]): void {
  expect(samples.length).toBeGreaterThanOrEqual(MIN_HEALTH_SAMPLES)
  expect(samples.filter((s) => s.status !== 200)).toEqual([])
  // own latency: wall time minus the time the OS kept the server's or the sampler's thread off the
  // CPU (the neighbours on a shared machine); everything the server does, GC included, counts
  expect(Math.max(...samples.map(ownMs))).toBeLessThan(HEALTH_BOUND_MS)
}

/** Latency the server and client code are answerable for: wall time minus time the OS kept them off the CPU. */
export const ownMs = (r: { ms: number; waitMs: number }) => Math.max(0, r.ms - r.waitMs)

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

export interface StatsRow {
  readonly scenario: string
  readonly requests: number
  readonly seconds: number
  readonly rps: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly codes: string
  readonly healthMax: number
  /** healthMax without the time the OS kept the threads off the CPU (what the assertions use). */
  readonly healthOwnMax: number
  /** The slowest review likewise. */
  readonly ownMax: number
  /** Share of the run the server's thread waited for a CPU (machine contention). */
  readonly cpuWaitPct: number
  /** Worst event-loop delay of the main thread (server + stand-ins) during the run. */
  readonly loopMax: number
}

const mainRunDelayMs = (): number => {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[1]) / 1e6
  } catch {
    return NaN
  }
}

export interface PhaseMonitor {
  /** Worst event-loop delay of the main thread (server + stand-ins) during the phase. */
  readonly loopMaxMs: number
  /** Share of the phase the main thread spent runnable but waiting for a CPU (machine contention). */
  readonly cpuWaitPct: number
}

/** Watches the main thread (the server's event loop) from now until stop(). */
export function monitorPhase(): { stop(): PhaseMonitor } {
  const h = monitorEventLoopDelay({ resolution: 5 })
  h.enable()
  const t0 = performance.now()
  const w0 = mainRunDelayMs()
  return {
    stop: () => {
      h.disable()
      const wait = mainRunDelayMs() - w0
      return {
        loopMaxMs: h.max / 1e6,
        cpuWaitPct: Number.isFinite(wait) ? Math.round((100 * wait) / (performance.now() - t0)) : NaN,
      }
    },
  }
}

export function statsRow(
  scenario: string,
  run: { results: readonly ReviewResult[]; elapsedMs: number },
  health: readonly HealthSample[],
  phase: PhaseMonitor,
): StatsRow {
  const ms = run.results.map((r) => r.ms)
  const codes = new Map<number, number>()
  for (const r of run.results) codes.set(r.status, (codes.get(r.status) ?? 0) + 1)
  const round = (n: number) => Math.round(n * 10) / 10
  return {
    scenario,
    requests: run.results.length,
    seconds: round(run.elapsedMs / 1000),
    rps: Math.round(run.results.length / (run.elapsedMs / 1000)),
    p50: round(percentile(ms, 50)),
    p99: round(percentile(ms, 99)),
    max: round(Math.max(...ms)),
    codes: [...codes]
      .sort((a, b) => a[0] - b[0])
      .map(([c, n]) => `${c}:${n}`)
      .join(' '),
    healthMax: round(Math.max(...health.map((h) => h.ms))),
    healthOwnMax: round(Math.max(...health.map(ownMs))),
    ownMax: round(Math.max(...run.results.map(ownMs))),
    cpuWaitPct: phase.cpuWaitPct,
    loopMax: round(phase.loopMaxMs),
  }
}

export function printTable(title: string, rows: readonly StatsRow[]): void {
  const head = [
    'scenario',
    'requests',
    's',
    'req/s',
    'p50 ms',
    'p99 ms',
    'max ms',
    'max own ms',
    'healthz max',
    'healthz own max',
    'loop lag max',
    'cpu wait %',
    'status codes',
  ]
  const lines = rows.map((r) =>
    [
      r.scenario,
      r.requests,
      r.seconds,
      r.rps,
      r.p50,
      r.p99,
      r.max,
      r.ownMax,
      r.healthMax,
      r.healthOwnMax,
      r.loopMax,
      r.cpuWaitPct,
      r.codes,
    ].map(String),
  )
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')
  console.log([`\n${title}`, fmt(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...lines.map(fmt)].join('\n'))
}

let gcFn: (() => void) | undefined
/** A real, full garbage collection: global.gc when exposed, else the V8 flag set at run time. */
export function forceGc(): void {
  if (gcFn === undefined) {
    const exposed = (globalThis as { gc?: () => void }).gc
    if (typeof exposed === 'function') gcFn = exposed
    else {
      setFlagsFromString('--expose-gc')
      gcFn = runInNewContext('gc') as () => void
    }
  }
  gcFn()
}

export async function memory(): Promise<{ heapUsed: number; rss: number }> {
  for (let i = 0; i < 3; i++) {
    forceGc()
    await sleep(20)
  }
  const m = process.memoryUsage()
  return { heapUsed: m.heapUsed, rss: m.rss }
}

/** Collects unhandled rejections and uncaught exceptions from now on. */
export function watchCrashes(): { readonly seen: unknown[]; dispose(): void } {
  const seen: unknown[] = []
  const onRejection = (reason: unknown) => seen.push(reason)
  const onException = (err: unknown) => seen.push(err)
  process.on('unhandledRejection', onRejection)
  process.on('uncaughtException', onException)
  return {
    seen,
    dispose: () => {
      process.off('unhandledRejection', onRejection)
      process.off('uncaughtException', onException)
    },
  }
}

export type CrashWatch = ReturnType<typeof watchCrashes>

/**
 * The end of a load suite: prints its table, closes the server under test and then `others` in
 * order (any of them missing when beforeAll failed early), and checks that nothing crashed and that
 * no review met an internal error.
 */
export async function endLoadSuite(
  title: string,
  rows: readonly StatsRow[],
  crashes: CrashWatch | undefined,
  srv: ServerUnderTest | undefined,
  others: readonly ({ close(): Promise<void> } | undefined)[],
): Promise<void> {
  printTable(title, rows)
  await srv?.close()
  for (const o of others) await o?.close()
  crashes?.dispose()
  expect(crashes!.seen).toEqual([])
  expect(srv?.errorLines.get('internal error')).toBeUndefined()
}

export interface TcpGate {
  /** The port clients are pointed at. */
  readonly port: number
  readonly url: string
  /** Stops listening and destroys every proxied connection: clients get ECONNREFUSED. */
  shut(): Promise<void>
  /** Listens again on the same port. */
  open(): Promise<void>
  close(): Promise<void>
}

/** A TCP forwarder 127.0.0.1:<port> -> 127.0.0.1:<targetPort> that can be shut and reopened on the same port. */
export async function startTcpGate(targetPort: number): Promise<TcpGate> {
  const sockets = new Set<Socket>()
  let server: TcpServer | undefined
  let port = 0
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createTcpServer((client) => {
        const upstream = tcpConnect(targetPort, '127.0.0.1')
        for (const sock of [client, upstream]) {
          sockets.add(sock)
          sock.on('error', () => {})
          sock.once('close', () => {
            sockets.delete(sock)
            client.destroy()
            upstream.destroy()
          })
        }
        client.pipe(upstream)
        upstream.pipe(client)
      })
      s.once('error', reject)
      s.listen(port, '127.0.0.1', () => {
        s.off('error', reject)
        port = (s.address() as { port: number }).port
        server = s
        resolve()
      })
    })
  const shut = () =>
    new Promise<void>((resolve) => {
      const s = server
      server = undefined
      for (const sock of sockets) sock.destroy()
      sockets.clear()
      if (s === undefined) return resolve()
      s.close(() => resolve())
    })
  await listen()
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    shut,
    open: listen,
    close: shut,
  }
}

const principal = (name: string, n: number): FakeStsPrincipal => ({
  accessKeyId: `AKIAKIAFAULT${name.toUpperCase().padEnd(5, 'X')}00${n}`,
  secretAccessKey: `${name}/fault+secret/0123456789abcdefghijklmnopqrstu`.slice(0, 40),
  arn: `arn:aws:iam::111122223333:user/${name}`,
  account: '111122223333',
  userId: `AIDAKIAFAULT${name.toUpperCase().padEnd(5, 'X')}00${n}`,
})
/** IAM users of account 111122223333 for the fault suites (ALICE and TEMP come from test/support/tokens.ts). */
export const CAROL = principal('carol', 1)
export const DAVE = principal('dave', 2)
export const BOB = principal('bob', 3)

/** The identities the load suites map. */
export const MAPPED: readonly FakeStsPrincipal[] = [ALICE, CAROL, DAVE, TEMP]

/** How the load suites map MAPPED: each user by name, TEMP's role as admin:{{SessionName}}. */
export const LOAD_MAPPINGS = {
  mapUsers: MAPPED.filter((p) => p.arn.includes(':user/')).map((p) => ({
    userarn: p.arn,
    username: p.arn.split('/').at(-1)!,
    groups: ['devs'],
  })),
  mapRoles: [
    { rolearn: 'arn:aws:iam::444455556666:role/Admin', username: 'admin:{{SessionName}}', groups: ['admins'] },
  ],
}

/** The STS stand-in of the load suites: it knows MAPPED and BOB (whom no mapping knows: a cached definitive denial). */
export function startLoadSts(): Promise<FakeSts> {
  return startFakeSts({ principals: [ALICE, TEMP, CAROL, DAVE, BOB] })
}

/**
 * Distinct, genuinely valid tokens (each a cache miss, never returned twice in a process):
 * principals x regions x signing seconds, signed between 10 s and ~10 minutes ago so they stay
 * valid for the whole test file.
 */
export async function distinctTokens(principals: readonly FakeStsPrincipal[], count: number): Promise<string[]> {
  const regions = ['us-west-2', 'us-east-1', 'eu-west-1', 'ap-southeast-2']
  const base = Date.now() - 10_000
  const out: string[] = []
  for (let k = 0; out.length < count; k++) {
    const principal = principals[k % principals.length]!
    const region = regions[Math.floor(k / principals.length) % regions.length]!
    const second = Math.floor(k / (principals.length * regions.length))
    if (second > 600) throw new Error('asked for too many distinct tokens')
    const token = await presignedToken({ principal, region, now: new Date(base - second * 1000) })
    // Calls a second apart produce overlapping signing times: never hand out a token twice.
    if (issued.has(token)) continue
    issued.add(token)
    out.push(token)
  }
  return out
}
const issued = new Set<string>()
