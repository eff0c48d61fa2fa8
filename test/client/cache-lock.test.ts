import { execFileSync, spawn } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { withCacheLock } from '../../src/client/cache-lock.js'
import { ensurePrivateDirectory } from '../../src/client/token-cache-write.js'
import { ensureBuilt, ROOT, tempDir } from '../support/cli.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A pid that is certainly not running: a child that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' })
  await new Promise((r) => child.once('exit', r))
  return child.pid!
}

let root: string
let dir: string
let file: string
beforeEach(() => {
  root = tempDir('kia-lock-')
  dir = join(root, 'c')
  ensurePrivateDirectory(dir)
  file = join(dir, 'token-x.json')
})
afterEach(() => {
  rmSync(root, { recursive: true, force: true })
})

const lockFiles = () => readdirSync(dir).filter((f) => f.includes('.lock'))
const age = (path: string, ms: number) => {
  const t = new Date(Date.now() - ms)
  utimesSync(path, t, t)
}

describe('withCacheLock in one process', () => {
  it('serialises two concurrent holders and removes the lock afterwards', async () => {
    const events: string[] = []
    const holder = (name: string) => async () => {
      events.push(`${name}:start`)
      expect(existsSync(`${file}.lock`)).toBe(true)
      await sleep(150)
      events.push(`${name}:end`)
      return name
    }
    const results = await Promise.all([withCacheLock(file, holder('a')), withCacheLock(file, holder('b'))])
    expect(results).toEqual(['a', 'b'])
    expect(events).toEqual(['a:start', 'a:end', 'b:start', 'b:end'])
    expect(lockFiles()).toEqual([])
  })

  it('takes over at once a lock whose holder on this host has exited, however fresh', async () => {
    const lock = `${file}.lock`
    writeFileSync(
      lock,
      JSON.stringify({ pid: await deadPid(), host: (await import('node:os')).hostname(), generation: 'g1' }),
    )
    const started = Date.now()
    let sawOwnLock = false
    await withCacheLock(file, async () => {
      sawOwnLock = JSON.parse(readFileSync(lock, 'utf8')).pid === process.pid
    })
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(sawOwnLock).toBe(true)
    expect(lockFiles()).toEqual([])
  })

  it('takes over promptly a lock nobody has touched for longer than staleMs (a holder on another host, or unreadable)', async () => {
    const lock = `${file}.lock`
    writeFileSync(lock, '')
    age(lock, 5 * 60_000)
    const started = Date.now()
    await withCacheLock(file, async () => {
      expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(process.pid)
    })
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(lockFiles()).toEqual([])
  })

  it('waits for a live holder, and after waitMs goes on without the lock, with one warning, leaving it alone', async () => {
    const lock = `${file}.lock`
    writeFileSync(
      lock,
      JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), generation: 'live' }),
    )
    const warnings: string[] = []
    const started = Date.now()
    expect(await withCacheLock(file, async () => 'ran', { waitMs: 300, warn: (m) => warnings.push(m) })).toBe('ran')
    expect(Date.now() - started).toBeGreaterThanOrEqual(300)
    expect(Date.now() - started).toBeLessThan(3_000)
    expect(warnings).toEqual([
      `unable to use cache lock ${lock}: held by process ${process.pid} on ${(await import('node:os')).hostname()} for more than 300 ms`,
    ])
    expect(JSON.parse(readFileSync(lock, 'utf8')).generation).toBe('live')
  })

  it('a lock that cannot be created: one warning, and the work runs', async () => {
    const warnings: string[] = []
    const missing = join(root, 'no-such-dir', 'token-x.json')
    expect(await withCacheLock(missing, async () => 'ran', { warn: (m) => warnings.push(m) })).toBe('ran')
    expect(warnings).toEqual([`unable to use cache lock ${missing}.lock: ENOENT`])
  })

  it.each([
    ['a directory', (p: string) => mkdirSync(p)],
    ['a FIFO (opening it must not wait for a writer)', (p: string) => execFileSync('mkfifo', [p])],
    ['a symbolic link', (p: string) => symlinkSync(join(root, 'elsewhere'), p)],
  ])('%s where the lock file should be: one warning at once, and the work runs', async (_what, make) => {
    const lock = `${file}.lock`
    make(lock)
    const warnings: string[] = []
    const started = Date.now()
    expect(await withCacheLock(file, async () => 'ran', { warn: (m) => warnings.push(m) })).toBe('ran')
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(warnings).toEqual([`unable to use cache lock ${lock}: it is not a regular file`])
  })

  it('the holder touches its lock while it works, so it never looks stale', async () => {
    const lock = `${file}.lock`
    let first = 0
    let later = 0
    await withCacheLock(
      file,
      async () => {
        age(lock, 60_000)
        first = statSync(lock).mtimeMs
        await sleep(400)
        later = statSync(lock).mtimeMs
      },
      { heartbeatMs: 100 },
    )
    expect(later - first).toBeGreaterThan(50_000)
  })

  it('releases the lock when the holder throws', async () => {
    await expect(
      withCacheLock(file, async () => {
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(lockFiles()).toEqual([])
  })

  it('a takeover claim left by a taker that died is abandoned after claimStaleMs', async () => {
    const lock = `${file}.lock`
    writeFileSync(lock, JSON.stringify({ pid: await deadPid(), host: 'elsewhere', generation: 'g2' }))
    age(lock, 5 * 60_000)
    writeFileSync(`${lock}.takeover-g2-0`, '')
    age(`${lock}.takeover-g2-0`, 60_000)
    const started = Date.now()
    await withCacheLock(file, async () => {}, { claimStaleMs: 1_000 })
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(lockFiles()).toEqual([])
  })

  it('a fresh takeover claim means another taker is at work: wait for it', async () => {
    const lock = `${file}.lock`
    writeFileSync(lock, JSON.stringify({ pid: 1, host: 'elsewhere', generation: 'g3' }))
    age(lock, 5 * 60_000)
    writeFileSync(`${lock}.takeover-g3-0`, '')
    const warnings: string[] = []
    await withCacheLock(file, async () => {}, { waitMs: 200, warn: (m) => warnings.push(m) })
    expect(warnings).toHaveLength(1)
    expect(existsSync(lock)).toBe(true)
  })
})

describe('withCacheLock across processes', () => {
  beforeAll(async () => {
    await ensureBuilt()
  }, 120_000)

  /**
   * Starts contenders that begin together (each after its delay) and hold the lock `holdMs` each;
   * returns the log lines.
   */
  async function contend(
    n: number,
    holdMs: number,
    staleMs = 60_000,
    delayMs = (_i: number) => 0,
  ): Promise<{ lines: string[]; stderr: string }> {
    const log = join(root, 'log')
    const barrier = join(root, 'go')
    writeFileSync(log, '')
    let stderr = ''
    const exits = Array.from({ length: n }, (_, i) => {
      const child = spawn(
        process.execPath,
        [
          join(ROOT, 'test/support/lock-worker.mjs'),
          join(ROOT, 'dist/client/cache-lock.js'),
          file,
          log,
          barrier,
          String(holdMs),
          String(staleMs),
          String(delayMs(i)),
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      )
      child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s))
      const kill = setTimeout(() => child.kill('SIGKILL'), 60_000)
      return new Promise<void>((resolve) =>
        child.once('exit', () => {
          clearTimeout(kill)
          resolve()
        }),
      )
    })
    await sleep(800) // let every process start and reach the barrier
    writeFileSync(barrier, '')
    await Promise.all(exits)
    return {
      lines: readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l !== ''),
      stderr,
    }
  }

  /** Every contender held the lock once, and never two at a time: enter/exit pairs of one pid, in turn. */
  function expectMutualExclusion(lines: string[], n: number): void {
    const pids = new Set<string>()
    for (let i = 0; i < lines.length; i += 2) {
      const pid = lines[i]!.split(' ')[1]!
      expect([lines[i], lines[i + 1]]).toEqual([`enter ${pid}`, `exit ${pid}`])
      pids.add(pid)
    }
    expect(pids.size).toBe(n)
    expect(lines).toHaveLength(2 * n)
  }

  it('twelve processes at once: one holder at a time, no files left', async () => {
    const { lines, stderr } = await contend(12, 30)
    expect(stderr).toBe('')
    expectMutualExclusion(lines, 12)
    expect(lockFiles()).toEqual([])
  }, 90_000)

  it('a holder that works longer than staleMs (a slow MFA prompt) keeps its lock: nobody takes it over', async () => {
    const { lines, stderr } = await contend(2, 1_500, 400, (i) => i * 700)
    expect(stderr).toBe('')
    expectMutualExclusion(lines, 2)
  }, 90_000)

  it('twelve processes finding the same stale lock: it is taken over by exactly one of them', async () => {
    const lock = `${file}.lock`
    writeFileSync(lock, JSON.stringify({ pid: 1, host: 'another-host', generation: 'stale1' }))
    age(lock, 5 * 60_000)
    const { lines, stderr } = await contend(12, 60)
    expect(stderr).toBe('')
    expectMutualExclusion(lines, 12)
    expect(lockFiles()).toEqual([])
  }, 90_000)
})
