// Role patterns where backends differ (the Mapper contract, mapper-contract.ts, holds every backend to
// the same lookups and tie rejection): the Warning Event that says why an aws-auth edit with a tie
// was not applied; the DynamicFile strict mode's refusal; and the CRD's spec.arnPattern: its
// refusals, the newer of two tied objects rejected while the older stays, the schema and the example.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { KubeConfig } from '@kubernetes/client-node'
import { dump, load, loadAll } from 'js-yaml'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigMapMapper } from '../../src/mapping/configmap/index.js'
import { CrdMapper } from '../../src/mapping/crd/index.js'
import { compileObjects, type IamIdentityMapping } from '../../src/mapping/crd/parse.js'
import { parseDynamicFile } from '../../src/mapping/dynamicfile/parse.js'
import { parseRolePattern } from '../../src/mapping/role-pattern.js'
import type { MappingDocument } from '../../src/mapping/rules.js'
import type { Mapper, RoleMapping } from '../../src/mapping/types.js'
import { createLogger } from '../../src/shared/logger.js'
import { createMetrics } from '../../src/shared/metrics.js'
import { PARTITION_IDS } from '../../src/shared/partitions.js'
import { ROOT } from '../support/cli.js'
import { startFakeKube, type FakeKube } from '../support/fake-kube.js'
import { sessionOf } from '../support/identities.js'
import { eventually } from './mapper-contract.js'

const A = '111122223333'
const B = '444455556666'
const pattern = (name: string, username: string, groups: string[] = []): RoleMapping => ({
  rolearn: `arn:aws:iam::${A}:role/${name}`,
  username,
  groups,
})
const BASE: MappingDocument = {
  mapRoles: [
    pattern('dev-lead', 'lead'),
    pattern('dev-*', 'dev:{{SessionName}}', ['devs']),
    pattern('*', 'anyone', ['view']),
  ],
  mapUsers: [],
  mapAccounts: [],
}
/** BASE plus a pattern that ties with dev-* (4 literal characters each, both match dev-ops). */
const TIED: MappingDocument = { ...BASE, mapRoles: [...BASE.mapRoles, pattern('*-ops', 'ops')] }
const TIE_MESSAGE = (earlier: string) =>
  `ties with ${earlier} (arn:aws:iam::${A}:role/dev-*): both patterns have 4 literal characters and both match a role named 'dev-ops', so neither wins; make one more specific, or split them so no role name matches both`

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function deps() {
  const logs: { level: number; msg: string }[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line))
      done()
    },
  })
  return {
    log: createLogger({ level: 'debug', destination: sink }),
    metrics: createMetrics(undefined, { defaultMetrics: false }),
    logs,
  }
}

async function started(mapper: Mapper): Promise<Mapper> {
  const controller = new AbortController()
  cleanups.push(async () => controller.abort())
  await mapper.start(controller.signal)
  return mapper
}

async function kube(): Promise<{ kube: FakeKube; kubeConfig: KubeConfig }> {
  const k = await startFakeKube()
  cleanups.push(() => k.close())
  const kubeConfig = new KubeConfig()
  kubeConfig.loadFromString(k.kubeconfigFor())
  return { kube: k, kubeConfig }
}

/** What every backend answers for BASE: the exact role, the most specific pattern, the catch-all, no other account. */
function expectBaseLookups(mapper: Mapper, rule: (i: number) => string): void {
  expect(mapper.lookup(sessionOf(A, 'dev-lead', 'lee'))).toMatchObject({ rule: rule(0), kind: 'role' })
  expect(mapper.lookup(sessionOf(A, 'dev-alice', 'alice'))).toEqual({
    mapping: { username: 'dev:{{SessionName}}', groups: ['devs'] },
    rule: rule(1),
    kind: 'role-pattern',
    pattern: `arn:aws:iam::${A}:role/dev-*`,
  })
  expect(mapper.lookup(sessionOf(A, 'ops', 'o'))).toMatchObject({ rule: rule(2), kind: 'role-pattern' })
  expect(mapper.lookup(sessionOf(B, 'dev-alice', 'alice'))).toBeUndefined()
  expect(mapper.status().counts.roles).toBe(3)
}

describe('EKSConfigMap: role patterns in aws-auth', () => {
  const data = (d: MappingDocument) => ({ mapRoles: dump(d.mapRoles) })

  it('an edit that adds a tie is rejected, and the Warning Event on aws-auth says which entries tie', async () => {
    const { kube: k, kubeConfig } = await kube()
    k.setConfigMap('kube-system', 'aws-auth', data(BASE))
    const { log, metrics } = deps()
    const mapper = await started(new ConfigMapMapper({ kubeConfig, log, metrics }))
    expectBaseLookups(mapper, (i) => `mapRoles[${i}]`)

    const bad = k.setConfigMap('kube-system', 'aws-auth', data(TIED)).metadata.resourceVersion!
    await eventually('the tie is rejected', () => mapper.status().healthy === false)
    expect(mapper.status().rejected).toEqual({
      version: bad,
      path: 'data.mapRoles[3].rolearn',
      message: TIE_MESSAGE('mapRoles[1]'),
      problems: 1,
    })
    expectBaseLookups(mapper, (i) => `mapRoles[${i}]`)
    await eventually('a Warning Event on aws-auth', () => k.events('kube-system').length === 1)
    expect(k.events('kube-system')[0]).toMatchObject({ type: 'Warning', reason: 'InvalidMapping' })
    expect(String(k.events('kube-system')[0]!.message)).toContain(
      `data.mapRoles[3].rolearn: ${TIE_MESSAGE('mapRoles[1]')}`,
    )
  })
})

describe('DynamicFile: role patterns', () => {
  it('dynamicfileUserIDStrict refuses a pattern: entries are found by principal ID, which names one role', () => {
    const text = JSON.stringify({
      mapRoles: [{ rolearn: `arn:aws:iam::${A}:role/dev-*`, userid: 'AROAPATTERNDEV000001', username: 'dev' }],
    })
    expect(parseDynamicFile(text, { userIdStrict: true }).problems).toEqual([
      {
        path: 'mapRoles[0].rolearn',
        message:
          `'arn:aws:iam::${A}:role/dev-*' is a role pattern, and dynamicfileUserIDStrict matches entries by principal ` +
          'ID (userid), which names exactly one role: list each role with its userid, or turn dynamicfileUserIDStrict off',
        severity: 'error',
      },
    ])
  })
})

describe('CRD: IAMIdentityMapping spec.arnPattern', () => {
  /** One object per BASE entry: the exact role in spec.arn, the patterns in spec.arnPattern. Names sort by age. */
  function put(k: FakeKube, name: string, entry: RoleMapping): void {
    const field = entry.rolearn!.includes('*') ? 'arnPattern' : 'arn'
    k.putMapping(name, { [field]: entry.rolearn, username: entry.username, groups: entry.groups })
  }
  const NAMES = ['a-dev-lead', 'b-dev', 'c-anyone']

  it('maps through the same matcher; a newer object whose pattern ties with an older one is rejected, the older stays', async () => {
    const { kube: k, kubeConfig } = await kube()
    BASE.mapRoles.forEach((entry, i) => put(k, NAMES[i]!, entry))
    const { log, metrics } = deps()
    const mapper = await started(new CrdMapper({ kubeConfig, log, metrics }))
    expectBaseLookups(mapper, (i) => `IAMIdentityMapping/${NAMES[i]}`)

    put(k, 'd-ops', pattern('*-ops', 'ops'))
    await eventually('the newer object is rejected', () => mapper.status().healthy === false)
    expect(mapper.status().rejected).toMatchObject({
      path: 'IAMIdentityMapping/d-ops.spec.arnPattern',
      message: TIE_MESSAGE('IAMIdentityMapping/b-dev'),
    })
    expectBaseLookups(mapper, (i) => `IAMIdentityMapping/${NAMES[i]}`)
    expect(mapper.lookup(sessionOf(A, 'x-ops', 'o'))?.rule).toBe('IAMIdentityMapping/c-anyone')
    await eventually('a Warning Event on the newer object', () => k.events('default').length === 1)
    expect(k.events('default')[0]).toMatchObject({
      type: 'Warning',
      reason: 'InvalidMapping',
      involvedObject: { kind: 'IAMIdentityMapping', name: 'd-ops' },
    })

    // the older object goes: the newer one no longer ties and applies
    k.deleteMapping('b-dev')
    await eventually(
      'd-ops applies',
      () => mapper.lookup(sessionOf(A, 'x-ops', 'o'))?.rule === 'IAMIdentityMapping/d-ops',
    )
    expect(mapper.status().healthy).toBe(true)
    expect(mapper.lookup(sessionOf(A, 'dev-ops', 'o'))?.rule).toBe('IAMIdentityMapping/d-ops')
  })

  const object = (name: string, spec: Record<string, unknown>) => ({ metadata: { name }, spec })
  it.each<[string, Record<string, unknown>, string, string]>([
    [
      'a pattern in spec.arn',
      { arn: `arn:aws:iam::${A}:role/dev-*`, username: 'dev' },
      'IAMIdentityMapping/m.spec.arn',
      `'arn:aws:iam::${A}:role/dev-*' is a pattern: spec.arn names one IAM principal; put a role pattern in spec.arnPattern`,
    ],
    [
      'both fields',
      { arn: `arn:aws:iam::${A}:role/dev`, arnPattern: `arn:aws:iam::${A}:role/dev-*`, username: 'dev' },
      'IAMIdentityMapping/m.spec',
      'give spec.arn (one IAM principal) or spec.arnPattern, not both',
    ],
    [
      'a pattern without a wildcard',
      { arnPattern: `arn:aws:iam::${A}:role/dev`, username: 'dev' },
      'IAMIdentityMapping/m.spec.arnPattern',
      `'arn:aws:iam::${A}:role/dev' has no * or ?: put one role's ARN in spec.arn instead`,
    ],
    [
      'a pattern with a path, named by its field',
      { arnPattern: `arn:aws:iam::${A}:role/teams/*`, username: 'dev' },
      'IAMIdentityMapping/m.spec.arnPattern',
      "a role pattern cannot name a path ('role/teams/*'): STS reports role sessions without their path, so the server cannot tell which path a role has; match on role names instead (e.g. role/team-*)",
    ],
    [
      'a user pattern',
      { arnPattern: `arn:aws:iam::${A}:user/*`, username: 'dev' },
      'IAMIdentityMapping/m.spec.arnPattern',
      'a role pattern must look like arn:aws:iam::<account>:role/<name pattern>',
    ],
  ])('refuses %s', (_name, spec, path, message) => {
    const { rules, problems } = compileObjects([object('m', spec)])
    expect(problems).toEqual([{ path, message, severity: 'error' }])
    expect(rules.counts.roles + rules.counts.users).toBe(0)
  })

  it('names problems by object even when object names hold dots', () => {
    const { problems } = compileObjects([
      object('dev.patterns', { arnPattern: `arn:aws:iam::${A}:role/dev-*`, username: 'dev-{{Nope}}' }),
    ])
    expect(problems.map((p) => p.path)).toEqual(['IAMIdentityMapping/dev.patterns.spec.username'])
  })

  it('the example objects in deploy/ compile without a problem, the pattern among them', () => {
    const objects = loadAll(
      readFileSync(join(ROOT, 'deploy', 'example-iamidentitymapping.yaml'), 'utf8'),
    ) as IamIdentityMapping[]
    const { rules, problems } = compileObjects(objects)
    expect(problems).toEqual([])
    expect(rules.patterns.map((p) => p.rule)).toEqual(['IAMIdentityMapping/developers'])
  })

  it('the CRD schema admits every pattern the server accepts (property), and describes the field', () => {
    const crd = load(readFileSync(join(ROOT, 'deploy', 'iamidentitymapping-crd.yaml'), 'utf8')) as any
    const spec = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec
    expect(spec.oneOf).toEqual([{ required: ['arn'] }, { required: ['arnPattern'] }])
    expect(spec.required).toEqual(['username'])
    expect(spec.properties.arnPattern.description).toContain('arn:aws:iam::111122223333:role/dev-*')
    const schemaPattern = new RegExp(spec.properties.arnPattern.pattern as string)
    const nameChar = fc.constantFrom(...'aZ09_+=,.@-*?'.split(''))
    fc.assert(
      fc.property(
        fc.constantFrom(...PARTITION_IDS),
        fc.stringMatching(/^\d{12}$/),
        fc.array(nameChar, { minLength: 1, maxLength: 64 }).map((a) => a.join('')),
        (partition, account, name) => {
          const arn = `arn:${partition}:iam::${account}:role/${name}`
          if (!('error' in parseRolePattern(arn)) && /[*?]/.test(name)) expect(schemaPattern.test(arn), arn).toBe(true)
        },
      ),
      { numRuns: 1000 },
    )
    for (const refused of [`arn:aws:iam::${A}:role/teams/*`, `arn:aws:iam::*:role/dev-*`, `arn:aws:iam::${A}:user/*`]) {
      expect(schemaPattern.test(refused), refused).toBe(false)
    }
  })
})
