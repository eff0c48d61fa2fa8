// One contender for a cache lock, run as its own process by test/client/cache-lock.test.ts:
// node lock-worker.mjs <module exporting withCacheLock> <cache file> <log> <barrier file> <hold ms>
//   [<stale ms> [<delay ms>]]
// It waits (at most 10 s) for the barrier file so that all contenders start together, then <delay
// ms> more, then holds the lock for <hold ms>, appending "enter <pid>" and "exit <pid>" lines to the
// log around it.
import { appendFileSync, existsSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

const [modulePath, file, log, barrier, holdMs, staleMs = '60000', delayMs = '0'] = process.argv.slice(2)
const { withCacheLock } = await import(pathToFileURL(modulePath).href)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const until = Date.now() + 10_000
while (!existsSync(barrier) && Date.now() < until) await sleep(2)
await sleep(Number(delayMs))
await withCacheLock(
  file,
  async () => {
    appendFileSync(log, `enter ${process.pid}\n`)
    await sleep(Number(holdMs))
    appendFileSync(log, `exit ${process.pid}\n`)
  },
  { waitMs: 30_000, pollMs: 5, staleMs: Number(staleMs), warn: (m) => process.stderr.write(`${m}\n`) },
)
