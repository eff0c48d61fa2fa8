// The benchmark's IAM principals, derived deterministically from an index, so the STS stand-in
// process (bench/fake-sts-main.ts) and the load generator agree on keys without exchanging them.
import { createHash } from 'node:crypto'
import type { FakeStsPrincipal } from '../../test/support/fake-sts.js'

export const BENCH_ACCOUNT = '123456789012'
export const BENCH_CLUSTER = 'bench-cluster'
export const BENCH_REGION = 'us-west-2'
/** How many principals the server maps one by one (mapUsers); the ones the token factories use. */
export const PRINCIPAL_COUNT = 500
/**
 * Principals PRINCIPAL_COUNT .. PRINCIPAL_COUNT + FIRST_TIME_COUNT - 1: first-time users of the
 * flood scenario, each used once, mapped through mapAccounts. The stand-in knows them all.
 */
export const FIRST_TIME_COUNT = 1500

const pad = (n: number, width: number) => String(n).padStart(width, '0')

export function benchPrincipal(i: number): FakeStsPrincipal {
  return {
    accessKeyId: `AKIABENCHKEY${pad(i, 8)}`,
    secretAccessKey: createHash('sha256').update(`kube-iam-auth bench secret ${i}`).digest('base64').slice(0, 40),
    arn: `arn:aws:iam::${BENCH_ACCOUNT}:user/bench/user-${i}`,
    account: BENCH_ACCOUNT,
    userId: `AIDABENCHUSER${pad(i, 8)}`,
  }
}

export function benchPrincipals(count = PRINCIPAL_COUNT): FakeStsPrincipal[] {
  return Array.from({ length: count }, (_, i) => benchPrincipal(i))
}
