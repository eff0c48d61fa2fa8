import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { MappingFailed } from '../../src/shared/errors.js'
import {
  createPrivateDnsResolver,
  type PrivateDnsDeps,
  type PrivateDnsLookup,
  type PrivateDnsOptions,
} from '../../src/mapping/ec2-private-dns/index.js'
import { renderMapping } from '../../src/mapping/template.js'
import type { Identity } from '../../src/mapping/types.js'
import { type FakeEc2, startFakeEc2 } from '../support/fake-ec2.js'
import { type FakeSts, type FakeStsPrincipal, startFakeSts } from '../support/fake-sts.js'

const NODE_ROLE: FakeStsPrincipal = {
  accessKeyId: 'AKIAFAKEEC2READER001',
  secretAccessKey: 'ec2/reader+secret/0123456789abcdefghijklm',
  arn: 'arn:aws:iam::111122223333:user/ec2-reader',
  account: '111122223333',
  userId: 'AIDAFAKEEC2READER001',
}
const CREDENTIALS = { accessKeyId: NODE_ROLE.accessKeyId, secretAccessKey: NODE_ROLE.secretAccessKey }
const REGION = 'us-east-1'

/** A well-formed 17-hex-digit instance ID. */
const iid = (n: number): string => `i-${n.toString(16).padStart(17, '0')}`
const dns = (n: number): string => `ip-10-0-${(n >> 8) & 255}-${n & 255}.ec2.internal`
const KNOWN = 200

let ec2: FakeEc2
let t: number
const now = (): number => t
const open: PrivateDnsLookup[] = []

beforeAll(async () => {
  vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true')
  const instances: Record<string, string> = {}
  for (let n = 1; n <= KNOWN; n++) instances[iid(n)] = dns(n)
  ec2 = await startFakeEc2({ principals: [NODE_ROLE], instances })
})
afterAll(async () => {
  await ec2.close()
  vi.unstubAllEnvs()
})
beforeEach(() => {
  t = 1_700_000_000_000
  ec2.resetCalls()
  ec2.setFault('none')
  ec2.setLatency(0)
})
afterEach(() => {
  for (const r of open.splice(0)) r.close()
})

function make(opts: Partial<PrivateDnsOptions> = {}, deps: Partial<PrivateDnsDeps> = {}): PrivateDnsLookup {
  const r = createPrivateDnsResolver(
    { region: REGION, qps: 0, burst: 5, batchWindowMs: 5, ...opts },
    { now, aws: { credentials: CREDENTIALS, ec2Endpoint: ec2.url }, ...deps },
  )
  open.push(r)
  return r
}

async function failure(p: Promise<unknown>): Promise<MappingFailed> {
  try {
    await p
  } catch (err) {
    expect(err).toBeInstanceOf(MappingFailed)
    return err as MappingFailed
  }
  throw new Error('expected a MappingFailed rejection')
}

describe('fake EC2, through the real @aws-sdk/client-ec2', () => {
  const client = (credentials = CREDENTIALS): EC2Client =>
    new EC2Client({ region: REGION, endpoint: ec2.url, credentials, maxAttempts: 1 })

  it('answers DescribeInstances with reservations the SDK parses, and pages with nextToken', async () => {
    const paged = await startFakeEc2({
      principals: [NODE_ROLE],
      instances: { [iid(1)]: dns(1), [iid(2)]: dns(2), [iid(3)]: '' },
      pageSize: 2,
    })
    const c = new EC2Client({ region: REGION, endpoint: paged.url, credentials: CREDENTIALS, maxAttempts: 1 })
    try {
      const ids = [iid(1), iid(2), iid(3)]
      const first = await c.send(new DescribeInstancesCommand({ InstanceIds: ids }))
      expect(
        first.Reservations?.flatMap((r) => r.Instances ?? []).map((i) => [i.InstanceId, i.PrivateDnsName]),
      ).toEqual([
        [iid(1), dns(1)],
        [iid(2), dns(2)],
      ])
      expect(first.NextToken).toBe('2')
      const second = await c.send(new DescribeInstancesCommand({ InstanceIds: ids, NextToken: first.NextToken }))
      expect(second.Reservations?.[0]?.Instances?.[0]).toMatchObject({ InstanceId: iid(3) })
      expect(second.Reservations?.[0]?.Instances?.[0]?.PrivateDnsName ?? '').toBe('')
      expect(second.NextToken).toBeUndefined()
      expect(paged.idsPerCall).toEqual([ids, ids])
      expect(paged.rejected).toBe(0)
    } finally {
      c.destroy()
      await paged.close()
    }
  })

  it('fails the whole call with InvalidInstanceID.NotFound naming the unknown IDs', async () => {
    const c = client()
    try {
      const err = await c
        .send(new DescribeInstancesCommand({ InstanceIds: [iid(1), iid(0xdead1), iid(0xdead2)] }))
        .catch((e: unknown) => e)
      expect(err).toMatchObject({
        name: 'InvalidInstanceID.NotFound',
        $metadata: { httpStatusCode: 400 },
        message: `The instance IDs '${iid(0xdead1)}, ${iid(0xdead2)}' do not exist`,
      })
    } finally {
      c.destroy()
    }
  })

  it('really verifies the ec2-scoped signature, and fakes throttling', async () => {
    const c = client({ ...CREDENTIALS, secretAccessKey: 'wrong' })
    const good = client()
    try {
      const bad = await c.send(new DescribeInstancesCommand({ InstanceIds: [iid(1)] })).catch((e: unknown) => e)
      expect(bad).toMatchObject({ name: 'AuthFailure', $metadata: { httpStatusCode: 403 } })
      expect(ec2.rejected).toBe(1)
      ec2.setFault('throttle')
      const throttled = await good
        .send(new DescribeInstancesCommand({ InstanceIds: [iid(1)] }))
        .catch((e: unknown) => e)
      expect(throttled).toMatchObject({ name: 'RequestLimitExceeded', $metadata: { httpStatusCode: 503 } })
      expect(ec2.calls).toBe(2)
    } finally {
      c.destroy()
      good.destroy()
    }
  })
})

describe('createPrivateDnsResolver', () => {
  it('looks an instance up once, then answers from the cache', async () => {
    const outcomes: string[] = []
    let calls = 0
    const r = make({}, { onCall: () => calls++, onResult: (o) => outcomes.push(o) })
    expect(await r.resolve(iid(1))).toBe(dns(1))
    expect(await r.resolve(iid(1))).toBe(dns(1))
    expect(ec2.calls).toBe(1)
    expect(ec2.idsPerCall).toEqual([[iid(1)]])
    expect(calls).toBe(1)
    expect(outcomes).toEqual(['ok'])
    expect(r.size).toBe(1)
  })

  it('finds the EC2 endpoint and credentials through the SDK environment (AWS_ENDPOINT_URL_EC2)', async () => {
    vi.stubEnv('AWS_ENDPOINT_URL_EC2', ec2.url)
    vi.stubEnv('AWS_ACCESS_KEY_ID', NODE_ROLE.accessKeyId)
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', NODE_ROLE.secretAccessKey)
    vi.stubEnv('AWS_SESSION_TOKEN', undefined)
    vi.stubEnv('AWS_PROFILE', undefined)
    try {
      const r = createPrivateDnsResolver({ region: REGION, qps: 15, burst: 5 }, { now })
      open.push(r)
      expect(await r.resolve(iid(7))).toBe(dns(7))
      expect(ec2.calls).toBe(1)
    } finally {
      vi.stubEnv('AWS_ENDPOINT_URL_EC2', undefined)
      vi.stubEnv('AWS_ACCESS_KEY_ID', undefined)
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', undefined)
    }
  })

  it('batches 50 concurrent lookups of distinct IDs into few calls', async () => {
    const maxBatch = 20
    const r = make({ maxBatch, batchWindowMs: 20 })
    const ns = Array.from({ length: 50 }, (_, k) => k + 1)
    const got = await Promise.all(ns.map((n) => r.resolve(iid(n))))
    expect(got).toEqual(ns.map(dns))
    expect(ec2.calls).toBeLessThanOrEqual(Math.ceil(50 / maxBatch) + 1)
    expect(ec2.idsPerCall.every((ids) => ids.length <= maxBatch)).toBe(true)
    expect(ec2.idsPerCall.flat().sort()).toEqual(ns.map(iid).sort())
  })

  it('shares one lookup among 20 concurrent requests for the same ID', async () => {
    ec2.setLatency(20)
    const r = make()
    const got = await Promise.all(Array.from({ length: 20 }, () => r.resolve(iid(9))))
    expect(new Set(got)).toEqual(new Set([dns(9)]))
    expect(ec2.calls).toBe(1)
    expect(ec2.idsPerCall).toEqual([[iid(9)]])
  })

  it('rejects an unknown ID (not transient, cached briefly) while known IDs of the same batch resolve', async () => {
    const outcomes: string[] = []
    const r = make({ negativeTtlMs: 30_000 }, { onResult: (o) => outcomes.push(o) })
    const unknown = iid(0xbad)
    const [a, b, c] = await Promise.allSettled([r.resolve(iid(1)), r.resolve(unknown), r.resolve(iid(2))])
    expect(a).toEqual({ status: 'fulfilled', value: dns(1) })
    expect(c).toEqual({ status: 'fulfilled', value: dns(2) })
    expect(b.status).toBe('rejected')
    const err = (b as PromiseRejectedResult).reason as MappingFailed
    expect(err).toBeInstanceOf(MappingFailed)
    expect(err.message).toBe(`failed to find node ${unknown}`)
    expect(err.transient).toBe(false)
    // One call for the batch, one retry without the ID the error message named.
    expect(ec2.idsPerCall).toEqual([
      [iid(1), unknown, iid(2)],
      [iid(1), iid(2)],
    ])
    expect(outcomes).toEqual(['not_found', 'ok'])

    expect((await failure(r.resolve(unknown))).transient).toBe(false)
    expect(ec2.calls).toBe(2)
    t += 30_000
    ec2.addInstance(unknown, 'ip-10-9-9-9.ec2.internal')
    try {
      expect(await r.resolve(unknown)).toBe('ip-10-9-9-9.ec2.internal')
      expect(ec2.calls).toBe(3)
    } finally {
      ec2.removeInstance(unknown)
    }
  })

  it('treats an empty PrivateDnsName as not found', async () => {
    ec2.addInstance(iid(0xe0), '')
    try {
      const err = await failure(make().resolve(iid(0xe0)))
      expect(err.message).toBe(`failed to find node ${iid(0xe0)}`)
      expect(err.transient).toBe(false)
    } finally {
      ec2.removeInstance(iid(0xe0))
    }
  })

  it('bisects a NotFound batch when the error names no ID', async () => {
    const known = new Map([1, 2, 3, 4, 5].map((n) => [iid(n), dns(n)]))
    const seen: string[][] = []
    const describe = async (ids: string[]): Promise<Map<string, string>> => {
      seen.push(ids)
      if (ids.some((id) => !known.has(id))) {
        throw Object.assign(new Error('some instance does not exist'), { name: 'InvalidInstanceID.NotFound' })
      }
      return new Map(ids.map((id) => [id, known.get(id)!]))
    }
    const r = make({}, { describe })
    const ids = [iid(1), iid(2), iid(0xbad), iid(3), iid(4), iid(5)]
    const results = await Promise.allSettled(ids.map((id) => r.resolve(id)))
    expect(results.map((x) => (x.status === 'fulfilled' ? x.value : (x.reason as Error).message))).toEqual([
      dns(1),
      dns(2),
      `failed to find node ${iid(0xbad)}`,
      dns(3),
      dns(4),
      dns(5),
    ])
    expect(seen.length).toBeLessThanOrEqual(1 + 2 * Math.ceil(Math.log2(ids.length)))
  })

  it('follows nextToken pages', async () => {
    const paged = await startFakeEc2({
      principals: [NODE_ROLE],
      instances: { [iid(1)]: dns(1), [iid(2)]: dns(2), [iid(3)]: dns(3) },
      pageSize: 2,
    })
    try {
      const r = make({}, { aws: { credentials: CREDENTIALS, ec2Endpoint: paged.url } })
      expect(await Promise.all([1, 2, 3].map((n) => r.resolve(iid(n))))).toEqual([1, 2, 3].map(dns))
      expect(paged.calls).toBe(2)
    } finally {
      await paged.close()
    }
  })

  it('turns EC2 throttling, 5xx and timeouts into transient failures that are not cached', async () => {
    const outcomes: string[] = []
    const r = make({ timeoutMs: 200 }, { onResult: (o) => outcomes.push(o) })
    expect(await r.resolve(iid(50))).toBe(dns(50)) // client set up outside the short timeouts below
    outcomes.length = 0
    ec2.setFault('throttle')
    const throttled = await failure(r.resolve(iid(1)))
    expect(throttled.transient).toBe(true)
    expect(throttled.message).toMatch(/throttled.*RequestLimitExceeded/)
    ec2.setFault('error500')
    expect((await failure(r.resolve(iid(1)))).transient).toBe(true)
    ec2.setFault('hang')
    const started = Date.now()
    const hung = await failure(r.resolve(iid(1)))
    expect(hung.transient).toBe(true)
    expect(hung.message).toMatch(/timed out after 200 ms/)
    expect(Date.now() - started).toBeLessThan(2000)
    expect(outcomes).toEqual(['throttled', 'error', 'error'])
    ec2.setFault('none')
    expect(await r.resolve(iid(1))).toBe(dns(1))
    expect(r.size).toBe(2)
  })

  it('rejects a malformed instance ID without calling EC2', async () => {
    const err = await failure(make().resolve('i-notanid'))
    expect(err.transient).toBe(false)
    expect(ec2.calls).toBe(0)
  })

  it('limits the call rate with its token bucket (injected clock)', async () => {
    // burst 2, 1 call/s; the clock stands still, so a third call would wait 1 s > timeout.
    const r = make({ qps: 1, burst: 2, timeoutMs: 500, batchWindowMs: 0 })
    expect(await r.resolve(iid(1))).toBe(dns(1))
    expect(await r.resolve(iid(2))).toBe(dns(2))
    const limited = await failure(r.resolve(iid(3)))
    expect(limited.transient).toBe(true)
    expect(limited.message).toMatch(/rate limit/)
    expect(ec2.calls).toBe(2)
    t += 1000
    expect(await r.resolve(iid(3))).toBe(dns(3))
    expect(ec2.calls).toBe(3)
  })

  it('spaces a surge of calls to the configured rate (real clock)', async () => {
    const r = createPrivateDnsResolver(
      { region: REGION, qps: 20, burst: 1, maxBatch: 1, batchWindowMs: 0 },
      { now: Date.now, aws: { credentials: CREDENTIALS, ec2Endpoint: ec2.url } },
    )
    open.push(r)
    await r.resolve(iid(10)) // creates the SDK client, so its set-up time does not blur the timing below
    const start = Date.now()
    const got = await Promise.all([1, 2, 3, 4].map((n) => r.resolve(iid(n))))
    expect(got).toEqual([1, 2, 3, 4].map(dns))
    const times = ec2.callTimes
    expect(times).toHaveLength(5)
    // At most 1 token at `start`, then one per 50 ms: the 4th call of the surge waits >= 150 ms.
    expect(times[4]! - start).toBeGreaterThanOrEqual(145)
  })

  it('expires positive entries after cacheTtlMs', async () => {
    const r = make({ cacheTtlMs: 60_000 })
    await r.resolve(iid(1))
    t += 59_999
    await r.resolve(iid(1))
    expect(ec2.calls).toBe(1)
    t += 1
    await r.resolve(iid(1))
    expect(ec2.calls).toBe(2)
  })

  it('keeps at most cacheSize entries, evicting the least recently used', async () => {
    const r = make({ cacheSize: 3, batchWindowMs: 0 })
    for (const n of [1, 2, 3]) await r.resolve(iid(n))
    await r.resolve(iid(1)) // 1 is now the most recently used
    await r.resolve(iid(4)) // evicts 2
    expect(r.size).toBe(3)
    expect(ec2.calls).toBe(4)
    await r.resolve(iid(1))
    await r.resolve(iid(3))
    expect(ec2.calls).toBe(4)
    await r.resolve(iid(2))
    expect(ec2.calls).toBe(5)
    expect(r.size).toBe(3)
  })

  it('close() rejects pending lookups and leaves no timers or connections behind', async () => {
    const count = (kind: string): number => process.getActiveResourcesInfo().filter((k) => k === kind).length
    const own = await startFakeEc2({ principals: [NODE_ROLE], instances: { [iid(1)]: dns(1) } })
    const timers = count('Timeout')
    const r = make({ batchWindowMs: 60_000 }, { aws: { credentials: CREDENTIALS, ec2Endpoint: own.url } })
    const first = r.resolve(iid(1))
    expect(count('Timeout')).toBeGreaterThan(timers)
    r.close()
    expect((await failure(first)).transient).toBe(true)
    expect((await failure(r.resolve(iid(1)))).message).toMatch(/closed/)

    // After a real SDK call: the client's keep-alive socket goes with close().
    const r2 = make({ batchWindowMs: 0 }, { aws: { credentials: CREDENTIALS, ec2Endpoint: own.url } })
    expect(await r2.resolve(iid(1))).toBe(dns(1))
    expect(own.connections).toBe(1)
    r2.close()
    await vi.waitFor(() => expect(own.connections).toBe(0), { timeout: 1000, interval: 5 })
    expect(count('Timeout')).toBeLessThanOrEqual(timers)
    await own.close()
  })

  describe('with an EC2 role (roleArn, sourceArn)', () => {
    const ROLE_ARN = 'arn:aws:iam::444455556666:role/ec2-describe'
    const SOURCE_ARN = 'arn:aws:eks:us-east-1:111122223333:cluster/prod'
    let sts: FakeSts
    let proxy: Server
    let proxyUrl: string
    const stsRequests: IncomingHttpHeaders[] = []

    // Between the resolver and the fake STS: records request headers, and registers the credentials
    // each AssumeRole answer mints with the fake EC2 (which cannot otherwise know their secret).
    beforeAll(async () => {
      sts = await startFakeSts({
        principals: [NODE_ROLE],
        roles: [{ roleArn: ROLE_ARN, roleId: 'AROAFAKEEC2DESCRIBE1' }],
      })
      proxy = createServer((req, res) => {
        stsRequests.push(req.headers)
        const chunks: Buffer[] = []
        req.on('data', (c: Buffer) => chunks.push(c))
        req.on('end', () => {
          const port = Number(new URL(sts.url).port)
          const up = request(
            { host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers },
            (upRes) => {
              const body: Buffer[] = []
              upRes.on('data', (c: Buffer) => body.push(c))
              upRes.on('end', () => {
                const xml = Buffer.concat(body).toString('utf8')
                const tag = (name: string): string | undefined =>
                  new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1]
                const akid = tag('AccessKeyId')
                if (akid !== undefined) {
                  ec2.addPrincipal({
                    accessKeyId: akid,
                    secretAccessKey: tag('SecretAccessKey')!,
                    sessionToken: tag('SessionToken')!,
                    arn: tag('Arn')!,
                    account: '444455556666',
                    userId: tag('AssumedRoleId')!,
                  })
                }
                res.writeHead(upRes.statusCode ?? 500, upRes.headers)
                res.end(Buffer.concat(body))
              })
            },
          )
          up.end(Buffer.concat(chunks))
        })
      })
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
      proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
    })
    afterAll(async () => {
      proxy.closeAllConnections()
      await new Promise((resolve) => proxy.close(resolve))
      await sts.close()
    })

    it('assumes the role once, with the source headers, and signs EC2 calls with the session', async () => {
      const r = make(
        { roleArn: ROLE_ARN, sourceArn: SOURCE_ARN, batchWindowMs: 0 },
        { aws: { credentials: CREDENTIALS, ec2Endpoint: ec2.url, stsEndpoint: proxyUrl } },
      )
      expect(await r.resolve(iid(1))).toBe(dns(1))
      expect(await r.resolve(iid(2))).toBe(dns(2))
      expect(sts.calls.assumeRole).toBe(1)
      expect(sts.lastAssumeRole).toMatchObject({ roleArn: ROLE_ARN })
      expect(stsRequests.at(-1)).toMatchObject({
        'x-amz-source-account': '111122223333',
        'x-amz-source-arn': SOURCE_ARN,
      })
      expect(stsRequests.at(-1)?.authorization).toMatch(/x-amz-source-account;x-amz-source-arn/)
      expect(ec2.calls).toBe(2)
      expect(ec2.rejected).toBe(0)
    })

    it('reports a role that cannot be assumed as a transient failure', async () => {
      const r = make(
        { roleArn: 'arn:aws:iam::444455556666:role/missing', batchWindowMs: 0 },
        { aws: { credentials: CREDENTIALS, ec2Endpoint: ec2.url, stsEndpoint: proxyUrl } },
      )
      const err = await failure(r.resolve(iid(1)))
      expect(err.transient).toBe(true)
      expect(err.message).toMatch(/could not assume role arn:aws:iam::444455556666:role\/missing/)
      expect(ec2.calls).toBe(0)
    })

    it('refuses an invalid sourceArn at creation', () => {
      expect(() => make({ roleArn: ROLE_ARN, sourceArn: 'not-an-arn' })).toThrow(TypeError)
    })
  })

  it("renders the upstream node mapping (pkg/server/server_test.go's EC2 node case)", async () => {
    const describe = vi.fn(async (ids: string[]) => new Map(ids.map((id) => [id, 'ip-172-31-27-14'])))
    const r = make({}, { describe })
    const identity: Identity = {
      arn: 'arn:aws:sts::0123456789012:assumed-role/NodeRole/i-0c6f21bf1f24f9708',
      canonicalArn: 'arn:aws:iam::0123456789012:role/NodeRole',
      accountId: '0123456789012',
      userId: 'AROANODEROLE',
      sessionName: 'i-0c6f21bf1f24f9708',
      accessKeyId: 'ASIANODE',
      stsEndpoint: 'sts.us-east-1.amazonaws.com',
    }
    const mapping = {
      username: 'system:node:{{EC2PrivateDNSName}}',
      groups: ['system:nodes', 'system:bootstrappers'],
    }
    expect(await renderMapping(mapping, identity, r.resolve)).toEqual({
      username: 'system:node:ip-172-31-27-14',
      groups: ['system:nodes', 'system:bootstrappers'],
    })
    expect(describe).toHaveBeenCalledExactlyOnceWith(['i-0c6f21bf1f24f9708'])
  })
})
