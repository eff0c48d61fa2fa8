// Child processes, temp dirs and their cleanup; /proc readings for memory and CPU.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cliEnv } from '../../test/support/cli.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const BIN = join(ROOT, 'bin', 'kube-iam-auth.cjs')

const children = new Set<ChildProcess>()
const dirs = new Set<string>()
let reaper: ChildProcess | undefined

function tell(line: string): void {
  reaper?.stdin?.write(`${line}\n`)
}

/** Starts the watchdog that cleans up after us even if this process is killed. */
export function startReaper(): void {
  reaper = spawn(process.execPath, [join(ROOT, 'bench/lib/reaper.mjs')], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  })
  reaper.unref()
  reaper.stdin?.on('error', () => {})
}

/** Lets the watchdog go: closes its stdin (it then exits, finding nothing left to clean). */
export function stopReaper(): void {
  reaper?.stdin?.end()
  reaper = undefined
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `kia-bench-${prefix}-`))
  dirs.add(dir)
  tell(`dir ${dir}`)
  return dir
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
  dirs.delete(dir)
  tell(`undir ${dir}`)
}

/** Registers a child so that cleanup() (and the watchdog) kill it. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child)
  if (child.pid !== undefined) tell(`pid ${child.pid}`)
  child.once('exit', () => {
    children.delete(child)
    if (child.pid !== undefined) tell(`unpid ${child.pid}`)
  })
  return child
}

/** Kills every tracked child (SIGKILL) and removes every temp dir. Synchronous: safe in 'exit'. */
export function cleanup(): void {
  for (const child of children) {
    try {
      child.kill('SIGKILL')
    } catch {
      // gone
    }
  }
  children.clear()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  dirs.clear()
}

/** SIGTERM, then SIGKILL after graceMs; resolves once the child has exited. */
export async function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

/**
 * A clean child environment that cannot reach AWS: the tests' cliEnv (nothing inherited but PATH,
 * metadata disabled, config and credentials files pointing nowhere, HOME in a temp dir, explicit
 * region), plus AWS_DEFAULT_REGION.
 */
export function cleanEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return cliEnv(home, { AWS_DEFAULT_REGION: 'us-west-2', ...extra })
}

export interface MemStatus {
  /** MiB */
  readonly rssMiB: number
  /** MiB, peak RSS */
  readonly hwmMiB: number
  /** MiB of RSS that is the process's own memory (heap, malloc) ... */
  readonly anonMiB: number
  /**
   * ... and MiB of it that is file pages, mostly the node binary: shared and clean, and more or
   * fewer of them mapped depending on what the page cache holds (other node processes), so the part
   * of RSS that varies from run to run for reasons outside the process.
   */
  readonly fileMiB: number
}

export function memStatus(pid: number): MemStatus {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)
    if (m === null) throw new Error(`no ${name} in /proc/${pid}/status`)
    return Number(m[1])
  }
  return {
    rssMiB: round(kib('VmRSS') / 1024, 1),
    hwmMiB: round(kib('VmHWM') / 1024, 1),
    anonMiB: round(kib('RssAnon') / 1024, 1),
    fileMiB: round(kib('RssFile') / 1024, 1),
  }
}

const CLK_TCK = 100

/** User + system CPU seconds the process has used so far (from /proc/<pid>/stat). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state); utime is field 14, stime field 15
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}

/** Busy CPU seconds of the whole machine so far, all cores (from /proc/stat). */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)
  return busy / CLK_TCK
}

export function round(x: number, digits = 0): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
