import { closeSync, mkdirSync, openSync, rmSync, statSync, unlinkSync } from 'node:fs'
import { dirname } from 'node:path'
import { writeFileAtomic } from '../shared/files.js'
import { CACHE_FORMAT_VERSION, checkPrivate, type CacheEntry } from './token-cache.js'

/** Writes atomically (temp file + rename), so concurrent readers see the old or the new entry. */
export function writeCacheEntry(file: string, entry: CacheEntry): void {
  ensurePrivateDirectory(dirname(file))
  writeFileAtomic(file, JSON.stringify({ v: CACHE_FORMAT_VERSION, ...entry }), 0o600)
}

export function ensurePrivateDirectory(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  checkPrivate(dir, 'directory')
}

/**
 * Serialises the slow path (AssumeRole, MFA prompts) between concurrent invocations for one key:
 * the second waits for the first and then finds its result in the cache. A lock older than
 * `staleMs` is taken over; if the lock cannot be had within `waitMs`, work proceeds unlocked.
 */
export async function withCacheLock<T>(
  file: string,
  fn: () => Promise<T>,
  opts: { waitMs?: number; staleMs?: number } = {},
): Promise<T> {
  const lock = `${file}.lock`
  const deadline = Date.now() + (opts.waitMs ?? 30_000)
  let held = false
  while (!held) {
    try {
      closeSync(openSync(lock, 'wx', 0o600))
      held = true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') break
      try {
        if (Date.now() - statSync(lock).mtimeMs > (opts.staleMs ?? 60_000)) unlinkSync(lock)
      } catch {
        // it went away in the meantime
      }
      if (Date.now() > deadline) break
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  try {
    return await fn()
  } finally {
    if (held) rmSync(lock, { force: true })
  }
}
