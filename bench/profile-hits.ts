// Profiles the server's cache-hit path (or, with --misses, its STS path with distinct tokens, STS 0 ms;
// or, with --junk, tokens refused by the local checks (expired)):
// `npx tsx bench/profile-hits.ts [--misses | --junk] [--ms 6000] [--connections 10] [--node-flags "..."]`.
// Starts the STS stand-in and a server under `node --cpu-prof`, verifies a small token set once,
// replays it for --ms, stops the server (which writes the profile) and prints where the time went.
// Needs a current build (npm run build). Profiles go to bench/results/prof-hits/.
import { mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { summarise } from './lib/cpuprofile.js'
import { runLoad } from './lib/load.js'
import { cleanup, cpuSeconds, ROOT, startReaper, stopReaper, tempDir } from './lib/procs.js'
import { startServer, startSts } from './lib/services.js'
import { markdownTable } from './lib/stats.js'
import { expiredToken, reviewBody, TokenFactory } from './lib/tokens.js'

const { values } = parseArgs({
  options: {
    ms: { type: 'string', default: '6000' },
    connections: { type: 'string', default: '10' },
    misses: { type: 'boolean', default: false },
    junk: { type: 'boolean', default: false },
    'node-flags': { type: 'string', default: '' },
  },
})
const ms = Math.min(8_000, Number(values.ms))
const connections = Number(values.connections)
process.on('exit', cleanup)

let code = 0
startReaper()
try {
  const home = tempDir('home')
  const kind = values.misses ? 'misses' : values.junk ? 'junk' : 'hits'
  const dir = join(ROOT, 'bench', 'results', `prof-${kind}`)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const sts = await startSts({ home })
  const srv = await startServer({
    home,
    stsUrl: sts.url,
    identityCacheSize: 100_000,
    connections,
    nodeFlags: [...values['node-flags'].split(' ').filter((f) => f !== ''), '--cpu-prof', `--cpu-prof-dir=${dir}`],
  })
  const tokens = new TokenFactory()
  // Misses: 3,000 distinct tokens of warm-up, then up to 12,000 for the profiled window.
  // Hits: 64 tokens verified once, 2 s of warm-up, then replayed in the profiled window.
  const n = values.misses ? 15_000 : 64
  const bodies = values.junk ? [reviewBody(await expiredToken())] : await tokens.freshBodies(n)
  const warmUp = values.misses ? 3_000 : 0
  if (values.junk) {
    await runLoad(srv.pool, { concurrency: connections, maxMs: 2_000, maxRequests: 100_000, body: () => bodies[0]! })
  } else if (values.misses) {
    await runLoad(srv.pool, { concurrency: connections, maxMs: 20_000, maxRequests: warmUp, body: (i) => bodies[i]! })
  } else {
    const prime = await runLoad(srv.pool, {
      concurrency: connections,
      maxMs: 10_000,
      maxRequests: bodies.length,
      body: (i) => bodies[i]!,
    })
    if (prime.authenticated !== bodies.length) throw new Error(`priming failed: ${JSON.stringify(prime.failures)}`)
    await runLoad(srv.pool, {
      concurrency: connections,
      maxMs: 2_000,
      maxRequests: 100_000,
      body: (i) => bodies[i % bodies.length]!,
    })
  }
  const cpu0 = cpuSeconds(srv.pid)
  const fromUs = Number(process.hrtime.bigint() / 1000n)
  const r = await runLoad(srv.pool, {
    concurrency: connections,
    maxMs: ms,
    maxRequests: values.misses ? n - warmUp : 500_000,
    body: (i) => bodies[(warmUp + i) % bodies.length]!,
  })
  const cpu = cpuSeconds(srv.pid) - cpu0
  const toUs = Number(process.hrtime.bigint() / 1000n)
  console.log(
    `${kind}: ${Math.round(r.perSecond)} reviews/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, ${r.requests} reviews, server CPU ${((cpu * 1000) / r.requests).toFixed(3)} ms/review, failures ${JSON.stringify(r.failures)}`,
  )
  await srv.stop()
  await sts.stop()
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (file === undefined) throw new Error(`no profile written in ${dir}`)
  const s = summarise(join(dir, file), { top: 30, fromUs, toUs })
  console.log(
    `\nprofile ${join(dir, file)}: ${s.busyMs} ms busy of ${s.windowMs} ms sampled during the load (start-up and priming excluded)\n`,
  )
  const table = (title: string, rows: ReadonlyArray<{ name: string; ms: number; pct: number }>) =>
    console.log(
      `${markdownTable(
        [title, 'ms', '% of busy'],
        rows.map((x) => [x.name, String(x.ms), String(x.pct)]),
      )}\n`,
    )
  table('self time by package / file', s.selfByGroup)
  table('self time by function', s.selfByFunction)
  table('inclusive time by function', s.inclusiveByFunction)
} catch (err) {
  console.error(err)
  code = 1
} finally {
  cleanup()
  stopReaper()
}
process.exit(code)
