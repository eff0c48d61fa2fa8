import { randomBytes } from 'node:crypto'
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from 'node:fs'
import { basename, dirname, join } from 'node:path'

/**
 * A lock file next to a cache entry that serialises the slow path (AssumeRole, SSO, MFA prompts)
 * between concurrent invocations for one key: the second waits for the first and then finds its
 * result in the cache. Correctness never depends on it (entries are written atomically); it saves
 * duplicate work and duplicate prompts.
 *
 * The holder writes its pid, host and a random generation into the lock and touches it every
 * `heartbeatMs`. A lock is stale when its holder is a dead process on this host, or has not been
 * touched for `staleMs`. A stale lock is taken over by exactly one process: a taker must first create
 * (O_EXCL) a claim file named after the lock's generation, and removes the lock only if it still
 * holds that generation. A claim left by a taker that died is abandoned after `claimStaleMs`, and the
 * next claim number is used. If the lock cannot be had within `waitMs` (or cannot be created at all),
 * the work runs without it after a one-line warning.
 */
export interface LockOptions {
  readonly waitMs?: number
  readonly staleMs?: number
  readonly heartbeatMs?: number
  readonly claimStaleMs?: number
  readonly pollMs?: number
  readonly warn?: (message: string) => void
}

interface LockInfo {
  /** False for a directory, FIFO, device or symbolic link where the lock file should be. */
  readonly regular: boolean
  readonly generation: string
  readonly pid: number | undefined
  readonly host: string | undefined
  readonly mtimeMs: number
}

const MAX_CLAIMS = 4

export async function withCacheLock<T>(file: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const lock = `${file}.lock`
  const waitMs = opts.waitMs ?? 30_000
  const staleMs = opts.staleMs ?? 10_000
  // A live holder must never look stale: it touches its lock several times per staleMs.
  const heartbeatMs = Math.min(opts.heartbeatMs ?? 1_000, staleMs / 4)
  const claimStaleMs = opts.claimStaleMs ?? 5_000
  const pollMs = opts.pollMs ?? 40
  const warn = opts.warn ?? (() => {})
  const me = {
    pid: process.pid,
    host: process.getBuiltinModule('node:os').hostname(),
    generation: randomBytes(9).toString('base64url'),
  }
  const deadline = Date.now() + waitMs
  let held = false
  let last: LockInfo | undefined
  for (let round = 0; !held && round < Math.ceil(waitMs / pollMs) + 100; round++) {
    try {
      create(lock, me)
      held = true
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        warn(`unable to use cache lock ${lock}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
        break
      }
    }
    last = readLock(lock)
    if (last === undefined) continue // released meanwhile: try again at once
    if (!last.regular) {
      warn(`unable to use cache lock ${lock}: it is not a regular file`)
      break
    }
    if (isStale(last, me.host, staleMs) && takeOver(lock, last, claimStaleMs)) continue
    if (Date.now() >= deadline) {
      const who = last.pid === undefined ? 'another process' : `process ${last.pid} on ${last.host}`
      const waited = waitMs >= 1000 ? `${Math.round(waitMs / 1000)} s` : `${waitMs} ms`
      warn(`unable to use cache lock ${lock}: held by ${who} for more than ${waited}`)
      break
    }
    await new Promise((r) => setTimeout(r, pollMs))
  }
  if (!held) return fn()
  removeAbandonedClaims(lock, claimStaleMs)
  const heartbeat = setInterval(() => {
    if (readLock(lock)?.generation !== me.generation) return
    try {
      const now = new Date()
      utimesSync(lock, now, now)
    } catch {
      // gone: the release below finds out
    }
  }, heartbeatMs)
  heartbeat.unref()
  try {
    return await fn()
  } finally {
    clearInterval(heartbeat)
    if (readLock(lock)?.generation === me.generation) unlink(lock)
  }
}

function create(lock: string, me: { pid: number; host: string; generation: string }): void {
  const fd = openSync(lock, 'wx', 0o600)
  try {
    writeSync(fd, JSON.stringify(me))
  } finally {
    closeSync(fd)
  }
}

/**
 * The lock's holder and age, read through one descriptor so both describe the same file; undefined
 * when there is none. Opened without following links and without blocking (a FIFO would wait).
 */
function readLock(lock: string): LockInfo | undefined {
  let fd: number
  try {
    fd = openSync(lock, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    return { regular: false, generation: 'unreadable', pid: undefined, host: undefined, mtimeMs: Date.now() }
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile())
      return { regular: false, generation: 'not-a-file', pid: undefined, host: undefined, mtimeMs: st.mtimeMs }
    let parsed: { pid?: unknown; host?: unknown; generation?: unknown } = {}
    try {
      parsed = JSON.parse(readFileSync(fd, 'utf8')) as typeof parsed
    } catch {
      // being written, or not ours: judged by its age alone
    }
    const ok = typeof parsed.generation === 'string' && /^[\w-]{1,32}$/.test(parsed.generation)
    return {
      regular: true,
      generation: ok ? (parsed.generation as string) : `ino${st.ino}-${Math.floor(st.ctimeMs)}`,
      pid: typeof parsed.pid === 'number' ? parsed.pid : undefined,
      host: typeof parsed.host === 'string' ? parsed.host : undefined,
      mtimeMs: st.mtimeMs,
    }
  } finally {
    closeSync(fd)
  }
}

function isStale(info: LockInfo, myHost: string, staleMs: number): boolean {
  if (info.pid !== undefined && info.host === myHost && !processAlive(info.pid)) return true
  return Date.now() - info.mtimeMs > staleMs
}

/** kill(pid, 0): EPERM means the pid now belongs to another user, so not to a holder of this private cache. */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH' && (err as NodeJS.ErrnoException).code !== 'EPERM'
  }
}

const claimName = (lock: string, generation: string, n: number) => `${lock}.takeover-${generation}-${n}`

/** Removes the stale lock if this process wins the claim on its generation; true when it was removed. */
function takeOver(lock: string, stale: LockInfo, claimStaleMs: number): boolean {
  for (let n = 0; n < MAX_CLAIMS; n++) {
    const claim = claimName(lock, stale.generation, n)
    try {
      closeSync(openSync(claim, 'wx', 0o600))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false
      const st = statSync(claim, { throwIfNoEntry: false })
      if (st === undefined) return false // the claim's owner has just finished
      if (Date.now() - st.mtimeMs < claimStaleMs) return false // another taker is at work: wait for it
      continue // abandoned by a taker that died: the next number has a single winner again
    }
    try {
      if (readLock(lock)?.generation === stale.generation) unlink(lock)
      return true
    } finally {
      for (let k = 0; k <= n; k++) unlink(claimName(lock, stale.generation, k))
    }
  }
  return false
}

/** Claims of generations long gone (their taker died after removing the lock). */
function removeAbandonedClaims(lock: string, claimStaleMs: number): void {
  const prefix = `${basename(lock)}.takeover-`
  try {
    for (const name of readdirSync(dirname(lock))) {
      if (!name.startsWith(prefix)) continue
      const path = join(dirname(lock), name)
      const st = statSync(path, { throwIfNoEntry: false })
      if (st !== undefined && Date.now() - st.mtimeMs > claimStaleMs * 4) unlink(path)
    }
  } catch {
    // tidying only
  }
}

function unlink(path: string): void {
  try {
    unlinkSync(path)
  } catch {
    // already gone
  }
}
