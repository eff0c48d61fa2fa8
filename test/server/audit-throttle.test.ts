// Repeated denial lines are summarised, not dropped: every denial is accounted for by reason and
// principal. Injected clock; a logger that records what it is asked to write.
import { describe, expect, it } from 'vitest'
import { createAuditThrottle } from '../../src/server/audit-throttle.js'
import type { Logger } from '../../src/shared/logger.js'

function recorder() {
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = []
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => lines.push({ level, obj, msg })
  const log = { info: at('info'), warn: at('warn'), error: at('error') } as unknown as Logger
  return { log, lines }
}

describe('createAuditThrottle', () => {
  it('writes the first lines of each window in full and one summary for the rest, per decision and reason', () => {
    let t = 0
    const { log, lines } = recorder()
    const suppressed: string[] = []
    const throttle = createAuditThrottle({
      log,
      now: () => t,
      windowMs: 10_000,
      perWindow: 3,
      onSuppressed: (d) => suppressed.push(d),
    })
    const admitted = Array.from({ length: 10 }, (_, i) =>
      throttle.admit({
        decision: 'deny',
        reason: 'expired',
        level: 'info',
        who: i < 8 ? undefined : 'arn:aws:iam::1:user/a',
      }),
    )
    expect(admitted).toEqual([true, true, true, false, false, false, false, false, false, false])
    // another reason has its own budget
    expect(throttle.admit({ decision: 'deny', reason: 'host', level: 'info' })).toBe(true)
    expect(lines).toEqual([])
    t = 10_000
    expect(throttle.admit({ decision: 'deny', reason: 'expired', level: 'info' })).toBe(true) // a new window
    expect(lines).toEqual([
      {
        level: 'info',
        obj: {
          audit: true,
          decision: 'deny',
          reason: 'expired',
          suppressed: 7,
          windowSeconds: 10,
          principals: { unknown: 5, 'arn:aws:iam::1:user/a': 2 },
        },
        msg: 'access denied (repeated denials summarised)',
      },
    ])
    expect(suppressed).toEqual(Array(7).fill('deny'))
    throttle.close()
  })

  it('close() writes what is pending; the summary takes the most severe level; principals are bounded', () => {
    let t = 0
    const { log, lines } = recorder()
    const throttle = createAuditThrottle({ log, now: () => t, perWindow: 1 })
    throttle.admit({ decision: 'error', reason: 'ERR_STS_UNAVAILABLE', level: 'warn' })
    for (let i = 0; i < 30; i++) {
      throttle.admit({
        decision: 'error',
        reason: 'ERR_STS_UNAVAILABLE',
        level: i === 5 ? 'error' : 'warn',
        who: `acct-${i}`,
      })
    }
    t = 2_500
    throttle.close()
    expect(lines).toHaveLength(1)
    const { level, obj, msg } = lines[0]!
    expect(level).toBe('error')
    expect(msg).toBe('could not decide (repeated failures summarised)')
    expect(obj).toMatchObject({ suppressed: 30, windowSeconds: 2.5 })
    const principals = obj.principals as Record<string, number>
    expect(Object.keys(principals)).toHaveLength(11)
    expect(principals.others).toBe(20)
  })
})
