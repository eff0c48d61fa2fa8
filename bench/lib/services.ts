// The two processes under test: the STS stand-in (bench/fake-sts-main.ts) and the webhook server
// (node bin/kube-iam-auth.cjs server --config <tmp.yaml>), both on 127.0.0.1 only.
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { load } from 'js-yaml'
import { Pool, WebSocket } from 'undici'
import { benchPrincipals, BENCH_ACCOUNT, BENCH_CLUSTER, FIRST_TIME_COUNT, PRINCIPAL_COUNT } from './principals.js'
import { BIN, cleanEnv, ROOT, stopChild, tempDir, track } from './procs.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface StsCalls {
  getCallerIdentity: number
  assumeRole: number
  rejected: number
  total: number
}

export interface StsProcess {
  readonly url: string
  readonly pid: number
  setLatency(ms: number): Promise<void>
  setFault(mode: 'none' | 'error500' | 'throttle' | 'hang' | 'reset'): Promise<void>
  calls(): Promise<StsCalls>
  reset(): Promise<void>
  errors(): Promise<string[]>
  stop(): Promise<void>
}

export async function startSts(opts: { home: string; latencyMs?: number }): Promise<StsProcess> {
  const child = track(
    spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'bench/fake-sts-main.ts'),
        '--latency',
        String(opts.latencyMs ?? 0),
        '--principals',
        String(PRINCIPAL_COUNT + FIRST_TIME_COUNT),
      ],
      { cwd: ROOT, env: cleanEnv(opts.home), stdio: ['pipe', 'pipe', 'pipe'] },
    ),
  )
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-4000)))
  child.stdin!.on('error', () => {})
  const lines = createInterface({ input: child.stdout! })
  const waiting: Array<(line: string) => void> = []
  const early: string[] = []
  lines.on('line', (line) => {
    const w = waiting.shift()
    if (w) w(line)
    else early.push(line)
  })
  const nextLine = (timeoutMs = 15_000) =>
    new Promise<string>((resolve, reject) => {
      const e = early.shift()
      if (e !== undefined) return resolve(e)
      const timer = setTimeout(
        () => reject(new Error(`STS stand-in did not answer within ${timeoutMs} ms; stderr: ${stderr}`)),
        timeoutMs,
      )
      const onExit = () => reject(new Error(`STS stand-in exited (code ${child.exitCode}); stderr: ${stderr}`))
      child.once('exit', onExit)
      waiting.push((line) => {
        clearTimeout(timer)
        child.off('exit', onExit)
        resolve(line)
      })
    })
  // Commands are answered in order; serialise them so answers match requests.
  let queue: Promise<unknown> = Promise.resolve()
  const command = <T>(cmd: string): Promise<T> => {
    const p = queue.then(async () => {
      child.stdin!.write(`${cmd}\n`)
      const reply = JSON.parse(await nextLine()) as T & { ok: boolean; error?: string }
      if (!reply.ok) throw new Error(`STS stand-in: ${reply.error}`)
      return reply
    })
    queue = p.catch(() => {})
    return p
  }
  const hello = JSON.parse(await nextLine(30_000)) as { url: string; pid: number }
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(hello.url)) throw new Error(`unexpected STS stand-in URL ${hello.url}`)
  return {
    url: hello.url,
    pid: child.pid!,
    setLatency: async (ms) => void (await command(`latency ${ms}`)),
    setFault: async (mode) => void (await command(`fault ${mode}`)),
    calls: async () => (await command<{ calls: StsCalls }>('calls')).calls,
    reset: async () => void (await command('reset')),
    errors: async () => (await command<{ errors: string[] }>('errors')).errors,
    stop: async () => {
      child.stdin!.end()
      await stopChild(child, 3_000)
    },
  }
}

export interface ServerOptions {
  readonly home: string
  readonly stsUrl: string
  /**
   * The configuration users start with: only what a server needs to run here (cluster ID, listener,
   * state dir, mappings); every limit, cache and timeout at its default. The keys below are ignored.
   */
  readonly defaults?: boolean
  readonly identityCacheSize?: number
  readonly identityCacheTTL?: string
  readonly stsMaxConcurrency?: number
  /** Further `server:` keys, e.g. `stsTimeout: 1s`. */
  readonly extraConfig?: readonly string[]
  /** The top-level clusterIDs (cluster IDs accepted alongside BENCH_CLUSTER); kept with `defaults` too. */
  readonly clusterIds?: readonly string[]
  /** Extra node flags, e.g. --cpu-prof. */
  readonly nodeFlags?: readonly string[]
  /**
   * Starts the server with the inspector on 127.0.0.1 (random port) so that forceGc() can ask V8
   * for a full garbage collection; nothing attaches to it otherwise.
   */
  readonly inspect?: boolean
  readonly connections: number
  /** Extra environment variables for the server process. */
  readonly env?: Readonly<Record<string, string>>
}

export interface ServerProcess {
  readonly pid: number
  readonly url: string
  readonly pool: Pool
  readonly dir: string
  readonly logFile: string
  /** The server section of the config file, minus the mapUsers list. */
  readonly settings: string
  /** A full V8 garbage collection (HeapProfiler.collectGarbage over the inspector); needs `inspect`. */
  forceGc(): Promise<void>
  /** Every unlabelled sample from GET /metrics, by metric name. */
  metrics(): Promise<Map<string, number>>
  /** GET /metrics as text. */
  metricsText(): Promise<string>
  stop(): Promise<void>
}

/** One mapUsers entry per bench principal, so every review maps to a user; first-time users by account. */
function configYaml(dir: string, o: ServerOptions): string {
  const users = benchPrincipals()
    .map((p, i) => `    - userarn: ${p.arn}\n      username: bench-user-${i}\n      groups: [bench:users]\n`)
    .join('')
  const tuning = o.defaults
    ? []
    : [
        `  identityCacheSize: ${o.identityCacheSize ?? 100_000}`,
        `  identityCacheTTL: ${o.identityCacheTTL ?? '15m'}`,
        `  stsMaxConcurrency: ${o.stsMaxConcurrency ?? 64}`,
        '  shutdownTimeout: 2s',
        ...(o.extraConfig ?? []).map((line) => `  ${line}`),
      ]
  return [
    `clusterID: ${BENCH_CLUSTER}`,
    ...(o.clusterIds === undefined ? [] : [`clusterIDs: [${o.clusterIds.join(', ')}]`]),
    'server:',
    '  address: 127.0.0.1',
    '  hostname: 127.0.0.1',
    '  port: 0',
    `  stateDir: ${join(dir, 'state')}`,
    `  generateKubeconfig: ${join(dir, 'webhook.kubeconfig')}`,
    ...tuning,
    `  mapAccounts: ["${BENCH_ACCOUNT}"]`,
    '  mapUsers:',
    users,
  ].join('\n')
}

export async function startServer(o: ServerOptions): Promise<ServerProcess> {
  const dir = tempDir('server')
  const cfg = join(dir, 'server.yaml')
  writeFileSync(cfg, configYaml(dir, o))
  const logFile = join(dir, 'server.log')
  const logFd = openSync(logFile, 'w')
  let child: ChildProcess
  try {
    child = track(
      spawn(
        process.execPath,
        [...(o.nodeFlags ?? []), ...(o.inspect ? ['--inspect=127.0.0.1:0'] : []), BIN, 'server', '--config', cfg],
        {
          cwd: ROOT,
          env: cleanEnv(o.home, { KUBE_IAM_AUTH_STS_ENDPOINT: o.stsUrl, ...o.env }),
          stdio: ['ignore', logFd, logFd],
        },
      ),
    )
  } finally {
    closeSync(logFd)
  }
  const kubeconfig = join(dir, 'webhook.kubeconfig')
  const logTail = () => readFileSync(logFile, 'utf8').slice(-3000)
  const deadline = Date.now() + 30_000
  let server: string | undefined
  let ca: string | undefined
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`server exited during start-up (${child.exitCode ?? child.signalCode}):\n${logTail()}`)
    }
    if (existsSync(kubeconfig)) {
      try {
        const doc = load(readFileSync(kubeconfig, 'utf8')) as { clusters: Array<{ cluster: Record<string, string> }> }
        const c = doc.clusters[0]!.cluster
        server = c.server
        ca = Buffer.from(c['certificate-authority-data']!, 'base64').toString('utf8')
        if (server && ca) break
      } catch {
        // still being written
      }
    }
    if (Date.now() > deadline) throw new Error(`server did not write ${kubeconfig} within 30 s:\n${logTail()}`)
    await sleep(25)
  }
  let inspector: string | undefined
  if (o.inspect) {
    // The last one: `server` re-executes itself with its V8 flags, and the first inspector goes with it.
    const all = [...readFileSync(logFile, 'utf8').matchAll(/Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/g)]
    if (all.length === 0) throw new Error(`no inspector URL in the server's output:\n${logTail()}`)
    inspector = all.at(-1)![1]!
  }
  const url = new URL(server)
  if (url.hostname !== '127.0.0.1') throw new Error(`server URL ${server} is not on 127.0.0.1`)
  const pool = new Pool(url.origin, {
    connections: o.connections,
    pipelining: 1,
    connect: { ca, rejectUnauthorized: true },
    keepAliveTimeout: 60_000,
    headersTimeout: 15_000,
    bodyTimeout: 15_000,
  })
  return {
    pid: child.pid!,
    url: server,
    pool,
    dir,
    logFile,
    settings: readFileSync(cfg, 'utf8').split('  mapUsers:')[0]!,
    forceGc: async () => {
      if (inspector === undefined) throw new Error('server not started with inspect')
      const ws = new WebSocket(inspector)
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error('inspector: no answer to HeapProfiler.collectGarbage in 20 s')),
            20_000,
          )
          ws.addEventListener('error', () => reject(new Error('inspector connection failed')))
          ws.addEventListener('open', () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })))
          ws.addEventListener('message', (ev) => {
            const msg = JSON.parse(String(ev.data)) as { id?: number; error?: { message: string } }
            if (msg.id !== 1) return
            clearTimeout(timer)
            if (msg.error) reject(new Error(`inspector: ${msg.error.message}`))
            else resolve()
          })
        })
      } finally {
        ws.close()
      }
    },
    metricsText: async () => {
      const res = await pool.request({ path: '/metrics', method: 'GET' })
      const text = await res.body.text()
      if (res.statusCode !== 200) throw new Error(`GET /metrics: ${res.statusCode}`)
      return text
    },
    metrics: async () => {
      const res = await pool.request({ path: '/metrics', method: 'GET' })
      const text = await res.body.text()
      if (res.statusCode !== 200) throw new Error(`GET /metrics: ${res.statusCode}`)
      const out = new Map<string, number>()
      for (const line of text.split('\n')) {
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)$/.exec(line)
        if (m) out.set(m[1]!, Number(m[2]))
      }
      return out
    },
    stop: async () => {
      await pool.close().catch(() => {})
      await stopChild(child, 8_000)
    },
  }
}
