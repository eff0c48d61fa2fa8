// Watchdog started (detached) by bench/run.ts. The benchmark tells it, one line at a time on stdin,
// which child processes and temp dirs it created ("pid N", "dir PATH") and which are already gone
// ("unpid N", "undir PATH"). When stdin closes, i.e. when the benchmark exits for any reason,
// even SIGKILL, it kills whatever child is still listed and removes the listed temp dirs.
import { rmSync } from 'node:fs'
import { createInterface } from 'node:readline'

const pids = new Set()
const dirs = new Set()
const rl = createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const sp = line.indexOf(' ')
  const cmd = line.slice(0, sp)
  const arg = line.slice(sp + 1)
  if (cmd === 'pid') pids.add(Number(arg))
  else if (cmd === 'unpid') pids.delete(Number(arg))
  else if (cmd === 'dir') dirs.add(arg)
  else if (cmd === 'undir') dirs.delete(arg)
})
rl.on('close', () => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  process.exit(0)
})
