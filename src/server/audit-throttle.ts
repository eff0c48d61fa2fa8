import type { Logger } from '../shared/logger.js'

export interface AuditThrottle {
  /**
   * Whether to write this denial or failure line in full. When not, it is counted, and one summary
   * line per decision and reason says how many were left out (and whose they were) at the end of
   * the window. Grants are never throttled.
   */
  admit(line: { decision: string; reason: string; level: 'info' | 'warn' | 'error'; who?: string | undefined }): boolean
  /** Writes the pending summaries and stops the timer. */
  close(): void
}

interface Window {
  readonly decision: string
  readonly reason: string
  level: 'info' | 'warn' | 'error'
  started: number
  written: number
  suppressed: number
  /** Who the suppressed lines were about (ARN or account), bounded; `others` counts the rest. */
  readonly who: Map<string, number>
  others: number
}

const MAX_WHO = 10

/**
 * Keeps a flood of junk from flooding the logs while keeping the audit trail's meaning: per
 * decision and reason (both from bounded sets), the first `perWindow` lines of each window are
 * written in full and the rest are counted into one summary line, so every denial is still
 * accounted for, by reason and by principal.
 */
export function createAuditThrottle(opts: {
  log: Logger
  now: () => number
  windowMs?: number
  perWindow?: number
  onSuppressed?: (decision: string) => void
}): AuditThrottle {
  const windowMs = opts.windowMs ?? 10_000
  const perWindow = opts.perWindow ?? 20
  const windows = new Map<string, Window>()

  const summarise = (w: Window) => {
    if (w.suppressed === 0) return
    const who = Object.fromEntries(w.who)
    opts.log[w.level](
      {
        audit: true,
        decision: w.decision,
        reason: w.reason,
        suppressed: w.suppressed,
        windowSeconds: Math.round((opts.now() - w.started) / 100) / 10,
        principals: w.others > 0 ? { ...who, others: w.others } : who,
      },
      w.decision === 'deny'
        ? 'access denied (repeated denials summarised)'
        : 'could not decide (repeated failures summarised)',
    )
  }

  /** Ends every window that is over: its summary is written, and idle windows are forgotten. */
  const sweep = (force = false) => {
    const t = opts.now()
    for (const [key, w] of windows) {
      if (!force && t - w.started < windowMs) continue
      summarise(w)
      windows.delete(key)
    }
  }
  const timer = setInterval(sweep, windowMs)
  timer.unref()

  return {
    admit({ decision, reason, level, who }) {
      const key = `${decision}\u0000${reason}`
      let w = windows.get(key)
      const t = opts.now()
      if (w !== undefined && t - w.started >= windowMs) {
        summarise(w)
        windows.delete(key)
        w = undefined
      }
      if (w === undefined) {
        w = { decision, reason, level, started: t, written: 0, suppressed: 0, who: new Map(), others: 0 }
        windows.set(key, w)
      }
      if (w.written < perWindow) {
        w.written++
        return true
      }
      w.suppressed++
      if (level === 'error' || (level === 'warn' && w.level === 'info')) w.level = level
      const name = who ?? 'unknown'
      if (w.who.has(name) || w.who.size < MAX_WHO) w.who.set(name, (w.who.get(name) ?? 0) + 1)
      else w.others++
      opts.onSuppressed?.(decision)
      return false
    },
    close() {
      clearInterval(timer)
      sweep(true)
    },
  }
}
