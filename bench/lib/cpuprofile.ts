// Summarises a V8 .cpuprofile (node --cpu-prof): self and inclusive time by function, and self time
// by package / file, optionally only for samples inside a time window (CLOCK_MONOTONIC microseconds,
// the clock of both V8's profiler and process.hrtime on Linux).
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

export interface Ranked {
  readonly name: string
  readonly ms: number
  readonly pct: number
}

export interface ProfileSummary {
  /** Non-idle sampled time in the window. */
  readonly busyMs: number
  readonly windowMs: number
  readonly selfByGroup: Ranked[]
  readonly selfByFunction: Ranked[]
  readonly inclusiveByFunction: Ranked[]
}

/** node_modules/<pkg>, dist/<file>, node:<builtin>, or the V8 pseudo-frame name. */
function groupOf(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)'
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (nm) return nm[1]!
  const own = /\/(dist|src|bench|test)\/(.*)$/.exec(url)
  if (own) return `${own[1]}/${own[2]}`
  return url
}

function frameName(n: ProfileNode): string {
  const { functionName, url, lineNumber } = n.callFrame
  return `${functionName || '(anonymous)'}${url ? ` ${groupOf(url, functionName)}:${lineNumber + 1}` : ''}`
}

export function summarise(file: string, opts: { top?: number; fromUs?: number; toUs?: number } = {}): ProfileSummary {
  const top = opts.top ?? 25
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

  const selfUs = new Map<number, number>()
  let t = p.startTime
  let windowUs = 0
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0
    t += dt
    if (opts.fromUs !== undefined && t < opts.fromUs) continue
    if (opts.toUs !== undefined && t > opts.toUs) continue
    windowUs += dt
    selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + dt)
  }
  const fnSelf = new Map<string, number>()
  const fnIncl = new Map<string, number>()
  const group = new Map<string, number>()
  let busy = 0
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!
    if (n.callFrame.functionName === '(idle)') continue
    busy += us
    const name = frameName(n)
    fnSelf.set(name, (fnSelf.get(name) ?? 0) + us)
    const g = groupOf(n.callFrame.url, n.callFrame.functionName)
    group.set(g, (group.get(g) ?? 0) + us)
    // inclusive: every distinct frame on the stack, once
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = frameName(byId.get(cur)!)
      if (seen.has(f)) continue
      seen.add(f)
      fnIncl.set(f, (fnIncl.get(f) ?? 0) + us)
    }
  }
  const rank = (m: Map<string, number>, skip: (k: string) => boolean = () => false): Ranked[] =>
    [...m]
      .filter(([k]) => !skip(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10, pct: Math.round((us / busy) * 1000) / 10 }))
  return {
    busyMs: Math.round(busy / 1000),
    windowMs: Math.round(windowUs / 1000),
    selfByGroup: rank(group),
    selfByFunction: rank(fnSelf),
    inclusiveByFunction: rank(fnIncl, (k) => k === '(root)'),
  }
}
