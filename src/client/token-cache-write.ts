import { lstatSync, mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { CacheError } from '../shared/errors.js'
import { writeFileAtomic } from '../shared/files.js'
import { CACHE_FORMAT_VERSION, checkPrivate, type CacheEntry } from './token-cache.js'

/** Writes atomically (temp file + rename), so concurrent readers see the old or the new entry. */
export function writeCacheEntry(file: string, entry: CacheEntry): void {
  ensurePrivateDirectory(dirname(file))
  writeFileAtomic(file, JSON.stringify({ v: CACHE_FORMAT_VERSION, ...entry }), 0o600)
}

/** Deeper than this, a cache directory path is refused rather than created. */
const MAX_MISSING_LEVELS = 32

/**
 * Creates `dir` (mode 0700) and its missing parents one level at a time, then checks it is private.
 * Not `mkdirSync(dir, { recursive: true })`: on some file systems (`/proc/nope`) Node's recursive
 * mkdir never returns, spinning at 100% CPU, and a credential plugin that hangs hangs kubectl. Here
 * every step is one system call and the walk is bounded by the path's depth.
 */
export function ensurePrivateDirectory(dir: string): void {
  const missing: string[] = []
  for (let p = resolve(dir); ; p = dirname(p)) {
    if (exists(p)) break
    if (missing.length === MAX_MISSING_LEVELS) throw new CacheError(`cache directory ${dir} is too deep to create`)
    missing.push(p)
    if (dirname(p) === p) break
  }
  for (const p of missing.reverse()) {
    try {
      mkdirSync(p, { mode: 0o700 })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'EEXIST') throw new CacheError(`cannot create cache directory ${dir} (mkdir ${p}: ${code})`)
    }
  }
  checkPrivate(dir, 'directory')
}

/** lstat: true when something is there; false when nothing is (or a parent is not a directory). */
function exists(path: string): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) !== undefined
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return false
    throw new CacheError(`cannot use cache directory path ${path}: ${(err as NodeJS.ErrnoException).code}`)
  }
}
