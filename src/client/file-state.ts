import { statSync } from 'node:fs'

/**
 * A file the credentials were resolved from, with its state before it was read:
 * `dev:ino:size:mtimeMs:ctimeMs`, `absent`, `error:<code>`, or `racy` (never equal to anything).
 */
export type Dependency = readonly [path: string, state: string]

/** At most this many dependencies are recorded or checked (a config with more SSO sessions is not cached). */
export const MAX_DEPENDENCIES = 64

/**
 * A file modified less than this long before it was recorded could be modified again without its
 * timestamps changing (coarse file system clocks: FAT 2 s, HFS+ 1 s, ext4 a few ms), as git's
 * "racy clean" index entries; its state is recorded as `racy`, which never matches.
 */
export const RACY_WINDOW_MS = 2_000

/** The state of `path` now, following symbolic links (projected token files are links). */
export function fileState(path: string): string {
  try {
    const st = statSync(path, { throwIfNoEntry: false })
    if (st === undefined) return 'absent'
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return code === 'ENOTDIR' ? 'absent' : `error:${code ?? 'unknown'}`
  }
}

/** The state to record for `path` before the credential chain reads it. */
export function recordedState(path: string, nowMs: number): string {
  const state = fileState(path)
  const mtimeMs = Number(state.split(':')[3])
  return Number.isFinite(mtimeMs) && nowMs - mtimeMs < RACY_WINDOW_MS ? 'racy' : state
}

/** True when every recorded file is still in the recorded state. */
export function dependenciesUnchanged(deps: readonly Dependency[]): boolean {
  if (deps.length > MAX_DEPENDENCIES) return false
  for (const [path, state] of deps) if (state === 'racy' || fileState(path) !== state) return false
  return true
}
