import { randomBytes } from 'node:crypto'
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

/**
 * Writes `content` to `path` with exactly `mode` (umask does not apply) through a temporary file in
 * the same directory, fsync and rename: readers and a crash see the old file or the new one, never
 * a partial one. The parent directory must exist.
 */
export function writeFileAtomic(path: string, content: string, mode: number): void {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  const fd = openSync(tmp, 'wx', mode & 0o600)
  try {
    try {
      fchmodSync(fd, mode)
      writeSync(fd, content)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
  fsyncDirectory(dirname(path))
}

function fsyncDirectory(dir: string): void {
  let fd: number | undefined
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch {
    // not supported everywhere (some file systems, Windows); the rename itself is still atomic
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}
