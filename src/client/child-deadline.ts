import type { ChildProcess } from 'node:child_process'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { readdirSync, readFileSync } from 'node:fs'

/** A child process started by the credential chain outlived its deadline and was stopped. */
export class ChildTimedOut extends Error {
  readonly timeoutMs: number
  constructor(timeoutMs: number) {
    super(`a credential process did not finish within ${timeoutMs} ms`)
    this.timeoutMs = timeoutMs
  }
}

/**
 * Runs `fn` with a deadline on every child process it starts. The AWS SDK runs `credential_process`
 * through child_process.exec with no time limit; Node announces every new child on the
 * `child_process` diagnostics channel, so the deadline needs no hook into the SDK. A child still
 * running after `timeoutMs` is killed with everything it started (the command runs under a shell
 * whose children would otherwise keep its output pipes open), its pipes are closed, and the
 * failure `fn` then reports is replaced by ChildTimedOut.
 */
export async function withChildDeadline<T>(timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const timers = new Set<NodeJS.Timeout>()
  let killed = false
  const onChild = (message: unknown) => {
    const child = (message as { process?: ChildProcess }).process
    if (child === undefined) return
    const timer = setTimeout(() => {
      timers.delete(timer)
      if (child.exitCode !== null || child.signalCode !== null) return
      killed = true
      killTree(child)
    }, timeoutMs)
    timers.add(timer)
    child.once('exit', () => {
      clearTimeout(timer)
      timers.delete(timer)
    })
  }
  subscribe('child_process', onChild)
  try {
    return await fn()
  } catch (err) {
    throw killed ? new ChildTimedOut(timeoutMs) : err
  } finally {
    unsubscribe('child_process', onChild)
    for (const t of timers) clearTimeout(t)
  }
}

function killTree(child: ChildProcess): void {
  const pids = child.pid === undefined ? [] : [...descendants(child.pid)]
  try {
    child.kill('SIGKILL')
  } catch {
    // already gone
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  // A descendant that escaped (another session, or no /proc) must not keep exec() waiting on the pipes.
  for (const s of [child.stdin, child.stdout, child.stderr]) s?.destroy()
}

/** The processes below `root`, from /proc (Linux); none where /proc is not available. */
function descendants(root: number): Set<number> {
  const children = new Map<number, number[]>()
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return new Set()
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1')
      // pid (comm) state ppid ...: comm may contain spaces and parentheses, so split after the last ')'
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const list = children.get(ppid) ?? []
      list.push(Number(name))
      children.set(ppid, list)
    } catch {
      // exited meanwhile
    }
  }
  const out = new Set<number>()
  const queue = [root]
  while (queue.length > 0 && out.size < 10_000) {
    for (const c of children.get(queue.shift()!) ?? []) {
      if (!out.has(c)) {
        out.add(c)
        queue.push(c)
      }
    }
  }
  return out
}
