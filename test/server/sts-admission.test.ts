// The gate in front of STS: lanes (returning users vs unknown credentials), per-credential bounds,
// round-robin turns, queue bounds and timeouts. Calls are deferred promises the test settles.
import { describe, expect, it } from 'vitest'
import { StsUnavailable } from '../../src/shared/errors.js'
import { StsAdmission, type Lane } from '../../src/server/sts-admission.js'

interface Call {
  readonly credential: string
  started: boolean
  readonly finish: () => void
  readonly result: Promise<string>
}

function gate(opts: { max: number; queueTimeoutMs?: number; maxQueue?: number; confirmed?: Set<string> }) {
  const confirmed = opts.confirmed ?? new Set<string>()
  const rejected: Lane[] = []
  const admission = new StsAdmission({
    max: opts.max,
    queueTimeoutMs: opts.queueTimeoutMs ?? 5_000,
    ...(opts.maxQueue === undefined ? {} : { maxQueue: opts.maxQueue }),
    laneOf: (c) => (confirmed.has(c) ? 'confirmed' : 'unknown'),
    onReject: (lane) => rejected.push(lane),
  })
  const calls: Call[] = []
  const order: string[] = []
  const call = (credential: string): Call => {
    let finish!: () => void
    const done = new Promise<void>((r) => (finish = r))
    const c: Call = {
      credential,
      started: false,
      finish: () => finish(),
      result: admission.run(credential, async () => {
        c.started = true
        order.push(credential)
        await done
        return credential
      }),
    }
    c.result.catch(() => {})
    calls.push(c)
    return c
  }
  /** Credentials in the order their calls started. */
  const started = () => [...order]
  return { admission, call, started, confirmed, rejected }
}

const tick = () => new Promise((r) => setImmediate(r))

describe('StsAdmission', () => {
  it('runs at most max calls, queues the rest and times waiters out with StsUnavailable', async () => {
    const g = gate({ max: 1, queueTimeoutMs: 50, confirmed: new Set(['a', 'b']) })
    const first = g.call('a')
    const second = g.call('b')
    await tick()
    expect(g.started()).toEqual(['a'])
    first.finish()
    await tick()
    expect(g.started()).toEqual(['a', 'b'])
    const late = g.call('c')
    await expect(late.result).rejects.toThrow(
      new StsUnavailable('waited 50 ms for a free STS request slot; try again later'),
    )
    expect(g.rejected).toEqual(['unknown'])
    second.finish()
    await Promise.all([first.result, second.result])
    expect([g.admission.active, g.admission.queued, g.admission.tracked]).toEqual([0, 0, 0])
  })

  it('keeps a quarter of the slots for returning users: unknown credentials hold at most the rest', async () => {
    const g = gate({ max: 8, confirmed: new Set(['returning']) })
    const forged = Array.from({ length: 20 }, (_, i) => g.call(`forged-${i}`))
    await tick()
    expect(g.started()).toHaveLength(6)
    const returning = g.call('returning')
    await tick()
    expect(returning.started).toBe(true)
    expect(g.admission.active).toBe(7)
    for (const f of forged) f.finish()
    returning.finish()
    await Promise.all([...forged, returning].map((c) => c.result))
    expect([g.admission.active, g.admission.queued, g.admission.tracked]).toEqual([0, 0, 0])
  })

  it('starts waiting returning users before waiting unknown credentials', async () => {
    const g = gate({ max: 8, confirmed: new Set(['r1', 'r2']) })
    const running = ['x1', 'x2', 'x3', 'x4', 'x5', 'x6'].map((c) => g.call(c)) // the unknown lane's 6 slots
    const r1 = [g.call('r1'), g.call('r1')] // the 2 kept for returning users
    const queued = [g.call('x7'), g.call('x8'), g.call('r2')]
    await tick()
    expect(g.started()).toEqual(['x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'r1', 'r1'])
    running[0]!.finish()
    await tick()
    expect(g.started().slice(8)).toEqual(['r2'])
    r1[0]!.finish()
    await tick()
    expect(g.started().slice(8)).toEqual(['r2', 'x7'])
    for (const c of [...running, ...r1, ...queued]) c.finish()
    await Promise.all([...running, ...r1, ...queued].map((c) => c.result))
    expect([g.admission.active, g.admission.queued, g.admission.tracked]).toEqual([0, 0, 0])
  })

  it('below 8 slots none are kept back: a small gate serves whoever comes first', async () => {
    const g = gate({ max: 4 })
    const calls = ['a', 'b', 'c', 'd', 'e'].map((c) => g.call(c))
    await tick()
    expect(g.started()).toEqual(['a', 'b', 'c', 'd'])
    for (const c of calls) c.finish()
    await Promise.all(calls.map((c) => c.result))
  })

  it('a credential over its share (2 while unknown) waits while another below its share does, and goes first otherwise', async () => {
    const g = gate({ max: 8 }) // 6 slots for unknown credentials
    const same = Array.from({ length: 8 }, () => g.call('reused-key'))
    await tick()
    expect(g.started()).toEqual(Array(6).fill('reused-key')) // nobody else waits: every free slot is used
    const other = g.call('other-key')
    await tick()
    expect(g.started()).toHaveLength(6)
    same[0]!.finish()
    await tick()
    expect(g.started().at(-1)).toBe('other-key') // below its share: ahead of reused-key's waiters
    same[1]!.finish()
    await tick()
    expect(g.started().at(-1)).toBe('reused-key')
    for (const c of [...same, other]) c.finish()
    await Promise.all([...same, other].map((c) => c.result))
    expect(g.admission.tracked).toBe(0)
  })

  it('a burst of one credential uses every free slot (a CI system starting jobs with one role); others still get turns', async () => {
    const g = gate({ max: 16, confirmed: new Set(['ci-role', 'alice']) })
    const burst = Array.from({ length: 20 }, () => g.call('ci-role'))
    await tick()
    expect(g.started()).toHaveLength(16)
    const alice = g.call('alice')
    burst[0]!.finish()
    await tick()
    expect(g.started().at(-1)).toBe('alice')
    for (const c of [...burst, alice]) c.finish()
    await Promise.all([...burst, alice].map((c) => c.result))
    expect([g.admission.active, g.admission.queued, g.admission.tracked]).toEqual([0, 0, 0])
  })

  it('waiters of a credential move to the confirmed lane when it is confirmed', async () => {
    const g = gate({ max: 8, confirmed: new Set() })
    const forged = Array.from({ length: 6 }, (_, i) => g.call(`forged-${i}`)) // the unknown lane is full
    const burst = Array.from({ length: 3 }, () => g.call('ci-role'))
    await tick()
    expect(g.started()).toHaveLength(6)
    g.confirmed.add('ci-role')
    g.admission.reclassify('ci-role')
    await tick()
    expect(g.started().slice(6)).toEqual(['ci-role', 'ci-role']) // the 2 slots kept for returning users
    for (const c of [...forged, ...burst]) c.finish()
    await Promise.all([...forged, ...burst].map((c) => c.result))
  })

  it('a waiter passed over for its share is started once it has waited half the queue timeout', async () => {
    const g = gate({ max: 8, queueTimeoutMs: 300 }) // 6 slots for unknown credentials
    const running = [g.call('a'), g.call('a'), g.call('c1'), g.call('c2'), g.call('c3')] // 'a' at its share of 2
    let slot = g.call('b0') // the sixth slot, passed from one newcomer to the next
    await tick()
    const third = g.call('a') // over its share: each newcomer below theirs goes first ...
    const others = [slot]
    for (let i = 1; i <= 12 && !third.started; i++) {
      const next = g.call(`b${i}`)
      others.push(next)
      await new Promise((r) => setTimeout(r, 25))
      slot.finish()
      await tick()
      if (next.started) slot = next
    }
    // ... until it has waited 150 ms, not until it times out
    expect(third.started).toBe(true)
    expect(g.started().filter((c) => c.startsWith('b')).length).toBeGreaterThan(3)
    for (const c of [...running, third, ...others]) c.finish()
    await Promise.all([...running, third, ...others].map((c) => c.result))
    expect(g.rejected).toEqual([])
  })

  it('a full queue refuses unknown newcomers at once, but displaces an unknown waiter for a returning user', async () => {
    const g = gate({ max: 1, maxQueue: 2, confirmed: new Set(['returning']) })
    const running = g.call('x0')
    const waiting = [g.call('x1'), g.call('x2')]
    await expect(g.call('x3').result).rejects.toThrow('too many STS requests waiting (2); try again later')
    const returning = g.call('returning')
    await expect(waiting[0]!.result).rejects.toThrow('too many STS requests waiting; try again later')
    expect(g.rejected).toEqual(['unknown', 'unknown'])
    running.finish()
    await tick()
    expect(returning.started).toBe(true)
    returning.finish()
    await tick()
    waiting[1]!.finish()
    expect(await Promise.all([running.result, returning.result, waiting[1]!.result])).toEqual(['x0', 'returning', 'x2'])
    expect([g.admission.active, g.admission.queued, g.admission.tracked]).toEqual([0, 0, 0])
  })

  it('a call that throws releases its slot', async () => {
    const admission = new StsAdmission({ max: 1, queueTimeoutMs: 1000, laneOf: () => 'unknown' })
    await expect(admission.run('k', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom')
    expect(await admission.run('k', async () => 'ok')).toBe('ok')
    expect([admission.active, admission.queued, admission.tracked]).toEqual([0, 0, 0])
  })

  it('under a flood of 3,000 forged credentials, every returning user is started within its deadline', async () => {
    const confirmed = new Set(Array.from({ length: 50 }, (_, i) => `returning-${i}`))
    const admission = new StsAdmission({
      max: 8,
      queueTimeoutMs: 1_000,
      maxQueue: 1024,
      laneOf: (c) => (confirmed.has(c) ? 'confirmed' : 'unknown'),
    })
    const sts = (ms: number) => () => new Promise<string>((r) => setTimeout(() => r('ok'), ms))
    const flood = Array.from({ length: 3000 }, (_, i) =>
      admission.run(`forged-${i}`, sts(5)).then(
        () => 'ok',
        (e: Error) => e.message,
      ),
    )
    const returning = [...confirmed].map((c) => admission.run(c, sts(5)))
    const results = await Promise.allSettled(returning)
    expect(results.filter((r) => r.status === 'rejected')).toEqual([])
    const floodResults = await Promise.all(flood)
    // the flood is served as far as the unknown lane allows and the rest is refused, never queued without bound
    expect(floodResults.filter((r) => r === 'ok').length).toBeGreaterThan(0)
    expect(floodResults.filter((r) => r !== 'ok').length).toBeGreaterThan(0)
    expect([admission.active, admission.queued, admission.tracked]).toEqual([0, 0, 0])
  })
})
