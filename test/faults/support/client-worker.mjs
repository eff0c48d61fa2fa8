// A worker thread that plays HTTPS clients of the webhook, so that the client side of a load test
// (TLS, HTTP parsing, timing) does not run on the event loop of the server it measures: the server
// under test runs in-process on the main thread, and on a 2-core machine a load generator sharing
// that loop would inflate every latency it reports.
//
// Messages in (workerData):
//   { mode: 'load', origin, ca, bodies: string[], concurrency, maxMs, timeoutMs }
//     Sends POST /authenticate for each body (in order, `concurrency` at a time) until every body was
//     sent or maxMs passed, and posts { results: [{ i, status, ms, waitMs, authenticated, username, reason, error }], elapsedMs }
//     (reason: the TokenReview's status.error; error: a transport failure, with status 0).
//   { mode: 'health', origin, ca, intervalMs, timeoutMs, minSamples }
//     GETs /healthz every intervalMs until it receives 'stop' and has at least minSamples samples (a
//     load that finishes quickly still gets its health checked that many times), then posts
//     { samples: [{ at, ms, waitMs, status, error }] }.
// Only 127.0.0.1 is ever contacted (the origin is checked).
//
// Every result also carries `waitMs`: how long, during that request, the OS kept runnable threads
// off the CPU (run_delay from /proc/.../schedstat) — the largest of the server's main thread (this
// process's main thread: the server runs in-process), this client thread and V8's platform worker
// threads, which the main thread waits for in a garbage collection (with two CPU-bound neighbours on
// 2 cores, a GC helper kept off the CPU for 200 ms stalled the main thread as long while the main
// thread itself showed no run delay). On a shared machine the neighbours' load shows up there and
// nowhere else; the server's own work (requests, GC, anything blocking its loop) is never in it.
// 0 where schedstat is unavailable.
import { readdirSync, readFileSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'
import { Agent, request } from 'undici'

const MAIN_STAT = `/proc/self/task/${process.pid}/schedstat`
const SELF_STAT = '/proc/thread-self/schedstat'
const runDelayMs = (path) => {
  try {
    return Number(readFileSync(path, 'utf8').split(' ')[1]) / 1e6
  } catch {
    return NaN
  }
}
/** V8's platform workers (GC and compiler helpers), shared by every isolate of the process: started with it. */
const V8_WORKER_STATS = (() => {
  try {
    return readdirSync('/proc/self/task')
      .filter((t) => readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim() === 'V8Worker')
      .map((t) => `/proc/self/task/${t}/schedstat`)
  } catch {
    return []
  }
})()
const STATS = [MAIN_STAT, SELF_STAT, ...V8_WORKER_STATS]
const waitMark = () => STATS.map(runDelayMs)
const waitSince = (mark) => {
  const now = waitMark()
  const w = Math.max(...now.map((x, i) => x - mark[i]))
  return Number.isFinite(w) ? w : 0
}

const { mode, origin, ca } = workerData
if (!/^https:\/\/127\.0\.0\.1:\d+$/.test(origin)) throw new Error(`refusing to contact ${origin}`)

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function load() {
  const { bodies, concurrency, maxMs, timeoutMs } = workerData
  const agent = new Agent({
    connect: { ca },
    connections: concurrency,
    pipelining: 1,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  })
  const results = []
  const started = performance.now()
  let next = 0
  const one = async (i) => {
    const mark = waitMark()
    const t0 = performance.now()
    try {
      const res = await request(`${origin}/authenticate`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json' },
        body: bodies[i],
        signal: AbortSignal.timeout(timeoutMs),
      })
      const text = await res.body.text()
      let authenticated
      let username
      let reason
      try {
        const doc = JSON.parse(text)
        authenticated = doc?.status?.authenticated
        username = doc?.status?.user?.username
        reason = typeof doc?.status?.error === 'string' ? doc.status.error.slice(0, 200) : undefined
      } catch {
        // not JSON (a malformed-request answer): status alone tells
      }
      results.push({
        i,
        status: res.statusCode,
        ms: performance.now() - t0,
        waitMs: waitSince(mark),
        authenticated,
        username,
        reason,
      })
    } catch (err) {
      results.push({
        i,
        status: 0,
        ms: performance.now() - t0,
        waitMs: waitSince(mark),
        error: `${err?.name}: ${err?.code ?? ''} ${err?.message}`,
      })
    }
  }
  const loop = async () => {
    while (next < bodies.length && performance.now() - started < maxMs) await one(next++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, bodies.length) }, loop))
  const elapsedMs = performance.now() - started
  await agent.close()
  return { results, elapsedMs }
}

async function health() {
  const { intervalMs, timeoutMs, minSamples = 0 } = workerData
  const agent = new Agent({ connect: { ca }, connections: 2, headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
  let stop = false
  parentPort.on('message', (m) => {
    if (m === 'stop') stop = true
  })
  const samples = []
  const t00 = performance.now()
  while (!stop || samples.length < minSamples) {
    const mark = waitMark()
    const t0 = performance.now()
    try {
      const res = await request(`${origin}/healthz`, { dispatcher: agent, signal: AbortSignal.timeout(timeoutMs) })
      await res.body.text()
      samples.push({ at: t0 - t00, ms: performance.now() - t0, waitMs: waitSince(mark), status: res.statusCode })
    } catch (err) {
      samples.push({
        at: t0 - t00,
        ms: performance.now() - t0,
        waitMs: waitSince(mark),
        status: 0,
        error: `${err?.name}: ${err?.message}`,
      })
    }
    const wait = intervalMs - (performance.now() - t0)
    if (wait > 0) await sleep(wait)
  }
  await agent.close()
  return { samples }
}

const out = mode === 'load' ? await load() : await health()
parentPort.postMessage(out)
