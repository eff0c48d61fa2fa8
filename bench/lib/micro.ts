// Section 2: in-process micro-benchmarks of the verifier's local checks and of presigning, on the
// TypeScript sources (tsx), so they measure src/ as it is now.
import { presignToken } from '../../src/token/presign.js'
import { checkToken } from '../../src/sts/verify.js'
import { benchPrincipal, BENCH_CLUSTER, BENCH_REGION } from './principals.js'

export interface MicroResult {
  readonly checkTokenPerSecond: number
  readonly checkTokenIterations: number
  readonly presignPerSecond: number
  readonly presignIterations: number
}

/** Runs the synchronous `fn` in batches until `ms` have passed (or maxIterations); returns ops/s. */
function syncOpsPerSecond(
  fn: () => unknown,
  ms: number,
  maxIterations: number,
  batch = 100,
): { perSecond: number; iterations: number } {
  for (let i = 0; i < batch * 5; i++) fn()
  let n = 0
  const t0 = performance.now()
  let elapsed = 0
  while (elapsed < ms && n < maxIterations) {
    for (let i = 0; i < batch; i++) fn()
    n += batch
    elapsed = performance.now() - t0
  }
  return { perSecond: (n * 1000) / elapsed, iterations: n }
}

/** Runs the asynchronous `fn` in batches, one at a time, until `ms` have passed (or maxIterations); returns ops/s. */
async function opsPerSecond(
  fn: () => unknown,
  ms: number,
  maxIterations: number,
  batch = 100,
): Promise<{ perSecond: number; iterations: number }> {
  // warm-up
  for (let i = 0; i < batch * 5; i++) await fn()
  let n = 0
  const t0 = performance.now()
  let elapsed = 0
  while (elapsed < ms && n < maxIterations) {
    for (let i = 0; i < batch; i++) await fn()
    n += batch
    elapsed = performance.now() - t0
  }
  return { perSecond: (n * 1000) / elapsed, iterations: n }
}

export async function benchMicro(ms = 2_000): Promise<MicroResult> {
  const p = benchPrincipal(0)
  const signedAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000)
  const input = {
    clusterId: BENCH_CLUSTER,
    region: BENCH_REGION,
    credentials: { accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey },
    now: signedAt,
  }
  const { token } = await presignToken(input)
  const opts = { clusterId: BENCH_CLUSTER, partition: 'aws' }
  const fixedNow = new Date(signedAt.getTime() + 120_000)
  const req = checkToken(token, opts, fixedNow)
  if (req.accessKeyId !== p.accessKeyId) throw new Error('checkToken returned the wrong access key id')
  const check = syncOpsPerSecond(() => checkToken(token, opts, fixedNow), ms, 5_000_000, 200)
  const presign = await opsPerSecond(() => presignToken(input), ms, 1_000_000, 50)
  return {
    checkTokenPerSecond: check.perSecond,
    checkTokenIterations: check.iterations,
    presignPerSecond: presign.perSecond,
    presignIterations: presign.iterations,
  }
}
