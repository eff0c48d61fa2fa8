import { readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { DynamicFileMapper } from '../../src/mapping/dynamicfile/index.js'
import { parseDynamicFile, type DynamicRules } from '../../src/mapping/dynamicfile/parse.js'
import type { Problem } from '../../src/shared/problem.js'
import type { Identity } from '../../src/mapping/types.js'
import { createLogger } from '../../src/shared/logger.js'
import { createMetrics, type Metrics } from '../../src/shared/metrics.js'
import { tempDir } from '../support/cli.js'
import { identityOf, sessionOf, userOf } from '../support/identities.js'

const ACCOUNT = '111122223333'
const err = (path: string, message: string): Problem => ({ path, message, severity: 'error' })

const fixture = (name: string) => readFileSync(new URL(`../fixtures/dynamicfile/${name}`, import.meta.url), 'utf8')

/** Parses, expecting the file to be accepted without any problem. */
function accepted(text: string | object, userIdStrict: boolean): DynamicRules {
  const { rules, problems } = parseDynamicFile(typeof text === 'string' ? text : JSON.stringify(text), { userIdStrict })
  expect(problems).toEqual([])
  expect(rules).toBeDefined()
  return rules!
}

function rejected(text: string | object, userIdStrict: boolean): Problem[] {
  const { rules, problems } = parseDynamicFile(typeof text === 'string' ? text : JSON.stringify(text), { userIdStrict })
  expect(rules).toBeUndefined()
  expect(problems.some((p) => p.severity === 'error')).toBe(true)
  return problems
}

// the principals of fixtures/dynamicfile/*.json
const MATT_ROLE_ID = 'AROAMATTROLEID000001'
const ID_ONLY_ROLE_ID = 'AROAIDONLYROLE000001'
const SHANICE_ID = 'AIDASHANICEUSER00001'
const matt = (userId = MATT_ROLE_ID) => sessionOf(ACCOUNT, 'matt', 'session-1', { userId })
const shanice = (userId = SHANICE_ID) => userOf(ACCOUNT, 'Shanice', { userId })

describe('parseDynamicFile: non-strict (keyed by ARN)', () => {
  const rules = accepted(fixture('non-strict.json'), false)

  it('reads the file: keys case-insensitive, ClusterId accepted, LastUpdatedDateTime kept', () => {
    expect(rules.counts).toEqual({ roles: 1, users: 1, accounts: 1 })
    expect(rules.lastUpdated).toBe(1706648530)
    expect([...rules.accounts]).toEqual([['444455556666', 'mapAccounts[0]']])
  })

  it('keys are ARNs: any principal ID matches the ARN, a principal ID alone matches nothing', () => {
    expect(rules.lookup(shanice())).toEqual({
      mapping: { username: 'shanice', groups: ['system:masters'] },
      rule: 'mapUsers[0]',
      kind: 'user',
    })
    expect(rules.lookup(shanice('AIDASOMEONEELSE00001'))?.rule).toBe('mapUsers[0]')
    expect(rules.lookup(userOf(ACCOUNT, 'shanice'))?.rule).toBe('mapUsers[0]')
    expect(rules.lookup(userOf(ACCOUNT, 'notShanice', { userId: SHANICE_ID }))).toBeUndefined()
  })

  it('a configured role path is ignored: role/path/for/this-role/matt maps the session of role/matt', () => {
    expect(rules.lookup(matt('AROAANYTHING'))).toEqual({
      mapping: { username: 'matt', groups: ['devs'] },
      rule: 'mapRoles[0]',
      kind: 'role',
    })
    expect(rules.lookup(sessionOf(ACCOUNT, 'this-role', 's'))).toBeUndefined()
  })

  it('a userid-only entry is invalid without strict mode (it has no ARN to be keyed by)', () => {
    expect(rejected({ mapRoles: [{ userid: 'AROA1', username: 'x' }] }, false)).toEqual([
      err('mapRoles[0]', 'one of rolearn or SSO must be supplied'),
    ])
  })
})

describe('parseDynamicFile: strict (dynamicfileUserIDStrict, keyed by principal ID)', () => {
  const rules = accepted(fixture('strict.json'), true)

  it('counts every entry', () => {
    expect(rules.counts).toEqual({ roles: 2, users: 1, accounts: 0 })
  })

  it('keys are userids: the right ARN with another principal ID matches nothing', () => {
    expect(rules.lookup(shanice('AIDASOMEONEELSE00001'))).toBeUndefined()
    expect(rules.lookup(matt('AROASOMEONEELSE00001'))).toBeUndefined()
  })

  it('user ARN and userid match -> the mapping', () => {
    expect(rules.lookup(shanice())).toEqual({
      mapping: { username: 'shanice', groups: ['system:masters'] },
      rule: 'mapUsers[0]',
      kind: 'user',
    })
    // the ARN check ignores case
    expect(rules.lookup(userOf(ACCOUNT, 'shanice', { userId: SHANICE_ID }))?.rule).toBe('mapUsers[0]')
  })

  it('role/path/for/this-role/matt against the canonical role/matt -> match (path stripped)', () => {
    expect(rules.lookup(matt())).toEqual({
      mapping: { username: 'matt', groups: ['devs'] },
      rule: 'mapRoles[0]',
      kind: 'role',
    })
    expect(rules.lookup(identityOf(`arn:aws:iam::${ACCOUNT}:role/matt`, { userId: MATT_ROLE_ID }))?.rule).toBe(
      'mapRoles[0]',
    )
  })

  it('the same userid with another ARN -> not matched (ARN does not match User ID)', () => {
    expect(rules.lookup(sessionOf(ACCOUNT, 'notmatt', 's', { userId: MATT_ROLE_ID }))).toBeUndefined()
    expect(rules.lookup(sessionOf('999999999999', 'matt', 's', { userId: MATT_ROLE_ID }))).toBeUndefined()
    expect(rules.lookup(userOf(ACCOUNT, 'notShanice', { userId: SHANICE_ID }))).toBeUndefined()
    expect(rules.lookup(userOf(ACCOUNT, 'matt', { userId: MATT_ROLE_ID }))).toBeUndefined()
  })

  it('an entry with a userid and no ARN matches that principal ID whatever its ARN', () => {
    const want = { mapping: { username: 'id-only', groups: [] }, rule: 'mapRoles[1]', kind: 'role' }
    expect(rules.lookup(sessionOf(ACCOUNT, 'any-role', 's', { userId: ID_ONLY_ROLE_ID }))).toEqual(want)
    expect(rules.lookup(sessionOf('999999999999', 'other', 's', { userId: ID_ONLY_ROLE_ID }))).toEqual(want)
  })

  it('malformed ARNs (RoleARN "not-an-arn", UserARN "garbage") reject the whole file', () => {
    expect(
      rejected(
        {
          mapRoles: [
            { rolearn: 'not-an-arn', userid: 'AROA1', username: 'x' },
            { rolearn: `arn:aws:iam::${ACCOUNT}:role/fine`, userid: 'AROA2', username: 'fine' },
          ],
          mapUsers: [{ userarn: 'garbage', userid: 'AIDA1', username: 'y' }],
        },
        true,
      ),
    ).toEqual([
      err('mapRoles[0].rolearn', "error canonicalizing ARN: arn 'not-an-arn' is invalid: 'arn: invalid prefix'"),
      err('mapUsers[0].userarn', "error canonicalizing ARN: arn 'garbage' is invalid: 'arn: invalid prefix'"),
    ])
  })

  it('a missing userid is an error in strict mode', () => {
    expect(rejected({ mapUsers: [{ userarn: `arn:aws:iam::${ACCOUNT}:user/a`, username: 'a' }] }, true)).toEqual([
      err('mapUsers[0].userid', 'value for userid must be supplied (dynamicfileUserIDStrict is on)'),
    ])
  })

  it('SSO entries are not supported', () => {
    expect(
      rejected(
        { mapRoles: [{ sso: { permissionSetName: 'A', accountID: ACCOUNT }, userid: 'AROA1', username: 'x' }] },
        true,
      ),
    ).toEqual([err('mapRoles[0].sso', 'SSO entries are not supported by DynamicFile in dynamicfileUserIDStrict mode')])
  })

  it('the valid entries a file with errors may apply (its partial snapshot) never include an invalid one', () => {
    const { rules, partial } = parseDynamicFile(
      JSON.stringify({
        mapUsers: [
          { userarn: `arn:aws:iam::${ACCOUNT}:user/alice`, userid: 'AIDAALICE', username: 'alice' },
          { userarn: 'arn:aws:iam::11112222333:user/carol', userid: 'AIDACAROL', username: 'carol' },
        ],
        mapRoles: [{ sso: { permissionSetName: 'A', accountID: ACCOUNT }, userid: 'AROASSO', username: 'x' }],
      }),
      { userIdStrict: true },
    )
    expect(rules).toBeUndefined()
    const user = (arn: string, userId: string) => identityOf(arn, { userId })
    expect(partial!.lookup(user(`arn:aws:iam::${ACCOUNT}:user/alice`, 'AIDAALICE'))?.rule).toBe('mapUsers[0]')
    expect(partial!.lookup(user('arn:aws:iam::11112222333:user/carol', 'AIDACAROL'))).toBeUndefined()
    expect(
      partial!.lookup(sessionOf(ACCOUNT, 'AWSReservedSSO_A_0123456789abcdef', 'x', { userId: 'AROASSO' })),
    ).toBeUndefined()
    expect(partial!.counts).toMatchObject({ users: 1, roles: 0 })
  })

  it('a repeated userid is a warning; the first entry wins', () => {
    const { rules: r, problems } = parseDynamicFile(
      JSON.stringify({
        mapRoles: [
          { userid: 'AROA1', username: 'first' },
          { userid: 'AROA1', username: 'second' },
        ],
      }),
      { userIdStrict: true },
    )
    expect(problems).toEqual([
      { path: 'mapRoles[1].userid', message: 'duplicate of mapRoles[0]; the first entry wins', severity: 'warning' },
    ])
    expect(r!.lookup(sessionOf(ACCOUNT, 'x', 's', { userId: 'AROA1' }))?.mapping.username).toBe('first')
  })
})

describe('parseDynamicFile: a principal ID in both mapUsers and mapRoles (strict)', () => {
  it('is a warning, and the mapUsers entry wins wherever it is listed', () => {
    const { rules: r, problems } = parseDynamicFile(
      JSON.stringify({
        mapRoles: [{ rolearn: `arn:aws:iam::${ACCOUNT}:role/Shanice`, userid: SHANICE_ID, username: 'misplaced' }],
        mapUsers: [{ userarn: `arn:aws:iam::${ACCOUNT}:user/Shanice`, userid: SHANICE_ID, username: 'shanice' }],
      }),
      { userIdStrict: true },
    )
    expect(problems).toEqual([
      { path: 'mapRoles[0].userid', message: 'duplicate of mapUsers[0]; the mapUsers entry wins', severity: 'warning' },
    ])
    expect(r!.lookup(shanice())).toMatchObject({ rule: 'mapUsers[0]', kind: 'user' })
    expect(r!.counts).toEqual({ roles: 0, users: 1, accounts: 0 })
  })
})

describe('parseDynamicFile: the whole file is rejected on any error', () => {
  it.each<[string, string, boolean, Problem[]]>([
    [
      'not JSON',
      '{"mapRoles": [',
      false,
      [err('(file)', expect.stringMatching(/^invalid JSON: /) as unknown as string)],
    ],
    ['a JSON list', '[]', false, [err('(top level)', 'must be a mapping')]],
    ['Version as a number', '{"Version": 1}', false, [err('Version', 'must be a string, got number 1')]],
    [
      'LastUpdatedDateTime as a number',
      '{"LastUpdatedDateTime": 1706648530}',
      false,
      [err('LastUpdatedDateTime', 'must be a string, got number 1706648530')],
    ],
    [
      'LastUpdatedDateTime not unix seconds',
      '{"LastUpdatedDateTime": "foo"}',
      false,
      [err('LastUpdatedDateTime', 'must be unix seconds as a string, got "foo"')],
    ],
    ['mapRoles not a list', '{"mapRoles": {}}', false, [err('mapRoles', 'must be a list, got a mapping')]],
    [
      'a bad account ID',
      '{"mapAccounts": ["12345"]}',
      false,
      [err('mapAccounts[0]', "'12345' is not a valid AWS account ID (12 digits; quote account IDs in YAML)")],
    ],
    [
      'a bad account ID in strict mode',
      '{"mapAccounts": ["12345"]}',
      true,
      [err('mapAccounts[0]', "'12345' is not a valid AWS account ID (12 digits; quote account IDs in YAML)")],
    ],
    [
      'a username that is not a string (reported once)',
      JSON.stringify({ mapUsers: [{ userarn: `arn:aws:iam::${ACCOUNT}:user/a`, username: 5 }] }),
      false,
      [err('mapUsers[0].username', 'must be a string, got number 5')],
    ],
    [
      'a username that is not a string, strict mode (reported once)',
      JSON.stringify({ mapUsers: [{ userarn: `arn:aws:iam::${ACCOUNT}:user/a`, userid: 'AIDA1', username: 5 }] }),
      true,
      [err('mapUsers[0].username', 'must be a string, got number 5')],
    ],
    [
      'a bad entry among good ones',
      JSON.stringify({
        mapUsers: [
          { userarn: `arn:aws:iam::${ACCOUNT}:user/a`, username: 'a' },
          { userarn: `arn:aws:iam::${ACCOUNT}:user/b`, username: 'b-{{Nope}}' },
        ],
      }),
      false,
      [
        err(
          'mapUsers[1].username',
          'unknown template variable {{Nope}} (known: {{EC2PrivateDNSName}}, {{AccountID}}, {{SessionName}}, {{SessionNameRaw}}, {{AccessKeyID}})',
        ),
      ],
    ],
  ])('%s', (_name, text, strict, problems) => {
    expect(rejected(text, strict)).toEqual(problems)
  })

  it('the invalid fixture lists every problem', () => {
    expect(rejected(fixture('invalid.json'), true)).toEqual([
      err('Version', 'must be a string, got number 3'),
      err('mapRoles[0].rolearn', "error canonicalizing ARN: arn 'not-an-arn' is invalid: 'arn: invalid prefix'"),
      err('mapUsers[0].username', 'username must be a non-empty string'),
      err('mapUsers[0].userarn', "error canonicalizing ARN: arn 'garbage' is invalid: 'arn: invalid prefix'"),
    ])
  })

  it('an unknown top-level key is only a warning', () => {
    const { rules, problems } = parseDynamicFile('{"Extra": 1, "clusterid": "c"}', { userIdStrict: false })
    expect(problems).toEqual([{ path: 'Extra', message: 'unknown key (ignored)', severity: 'warning' }])
    expect(rules?.counts).toEqual({ roles: 0, users: 0, accounts: 0 })
  })

  it('an empty object is an empty mapping', () => {
    expect(accepted('{}', true).counts).toEqual({ roles: 0, users: 0, accounts: 0 })
    expect(accepted('{}', false).lastUpdated).toBeUndefined()
  })
})

// ---------------------------------------------------------------------------------------------
// The live mapper, on a real directory

const BOUND_MS = 2_000

/** Polls until `check` passes, at most BOUND_MS: every change must be visible within 2 s. */
async function eventually(what: string, check: () => boolean | Promise<boolean>, boundMs = BOUND_MS): Promise<number> {
  const start = Date.now()
  for (;;) {
    if (await check()) return Date.now() - start
    if (Date.now() - start > boundMs) throw new Error(`not within ${boundMs} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

async function sample(
  metrics: Metrics,
  name: string,
  labels: Record<string, string> = {},
  sampleName = name,
): Promise<number | undefined> {
  const metric = metrics.registry.getSingleMetric(name)
  if (metric === undefined) throw new Error(`no metric ${name}`)
  const { values } = await metric.get()
  return values.find(
    (v) =>
      ((v as { metricName?: string }).metricName ?? name) === sampleName &&
      Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x),
  )?.value
}

interface Harness {
  readonly dir: string
  readonly path: string
  readonly mapper: DynamicFileMapper
  readonly metrics: Metrics
  readonly logs: { level: string; msg: string; [k: string]: unknown }[]
  readonly controller: AbortController
}

const harnesses: Harness[] = []

afterEach(() => {
  for (const h of harnesses.splice(0)) {
    h.controller.abort()
    rmSync(h.dir, { recursive: true, force: true })
  }
})

async function startMapper(
  opts: { strict?: boolean; pollIntervalMs?: number; now?: () => number; initial?: string } = {},
): Promise<Harness> {
  const dir = tempDir('kia-dynamicfile-')
  const path = join(dir, 'mapping.json')
  if (opts.initial !== undefined) writeFileSync(path, opts.initial)
  const logs: Harness['logs'] = []
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line !== '') logs.push(JSON.parse(line) as Harness['logs'][number])
      cb()
    },
  })
  const metrics = createMetrics(undefined, { defaultMetrics: false })
  const mapper = new DynamicFileMapper({
    path,
    userIdStrict: opts.strict ?? false,
    log: createLogger({ level: 'debug', destination }),
    metrics,
    now: opts.now ?? Date.now,
    ...(opts.pollIntervalMs === undefined ? {} : { pollIntervalMs: opts.pollIntervalMs }),
  })
  const controller = new AbortController()
  const h = { dir, path, mapper, metrics, logs, controller }
  harnesses.push(h)
  await mapper.start(controller.signal)
  return h
}

let tmpCounter = 0
/** Replaces the file atomically: write a temp file in the same directory, then rename it over. */
function writeAtomic(path: string, text: string): void {
  const tmp = join(path, '..', `.mapping.json.tmp-${process.pid}-${tmpCounter++}`)
  writeFileSync(tmp, text)
  renameSync(tmp, path)
}

const mappingFile = (users: Record<string, string>, extra: object = {}) =>
  JSON.stringify({
    Version: '1',
    mapUsers: Object.entries(users).map(([name, username]) => ({
      userarn: `arn:aws:iam::${ACCOUNT}:user/${name}`,
      username,
      groups: ['g'],
    })),
    ...extra,
  })

const usernameOf = (h: Harness, id: Identity) => h.mapper.lookup(id)?.mapping.username
const alice = userOf(ACCOUNT, 'alice')
const bob = userOf(ACCOUNT, 'bob')

// What every live backend does with valid and invalid updates is the Mapper contract's
// (mapper-contract.test.ts runs it against DynamicFile in both key modes); these are DynamicFile's own.
describe('DynamicFileMapper (live, real directory)', () => {
  it('file absent at start -> empty, synced, with a warning', async () => {
    const h = await startMapper()
    expect(h.mapper.lookup(alice)).toBeUndefined()
    expect(h.mapper.accountRule(ACCOUNT)).toBeUndefined()
    expect(h.mapper.status()).toMatchObject({
      name: 'DynamicFile',
      synced: true,
      version: 'missing',
      counts: { roles: 0, users: 0, accounts: 0 },
    })
    expect(h.mapper.status().lastError).toBeUndefined()
    expect(h.logs).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'DynamicFile is missing: its mappings are cleared (as aws-iam-authenticator does)',
      }),
    )
  })

  it('a file present at start is loaded before start() resolves', async () => {
    const h = await startMapper({ initial: mappingFile({ alice: 'alice' }, { mapAccounts: ['444455556666'] }) })
    expect(usernameOf(h, alice)).toBe('alice')
    expect(h.mapper.accountRule('444455556666')).toBe('mapAccounts[0]')
    expect(h.mapper.status()).toMatchObject({ synced: true, counts: { roles: 0, users: 1, accounts: 1 } })
    expect(h.mapper.status().version).toMatch(/^sha256:[0-9a-f]{12}$/)
    expect(await sample(h.metrics, 'kube_iam_auth_mapping_source_synced', { source: 'DynamicFile' })).toBe(1)
    expect(h.logs).toContainEqual(
      expect.objectContaining({ level: 'info', msg: 'DynamicFile mapping applied', users: 1, accounts: 1 }),
    )
  })

  it('create -> loaded; modify -> equals a fresh parse; delete -> empty; re-create -> loaded again', async () => {
    const h = await startMapper()

    const first = mappingFile({ alice: 'alice' })
    writeFileSync(h.path, first)
    await eventually('created file loaded', () => usernameOf(h, alice) === 'alice')

    const second = JSON.stringify({
      Version: '2',
      mapRoles: [
        { rolearn: `arn:aws:iam::${ACCOUNT}:role/team/deployer`, username: 'deployer', groups: ['deployers'] },
      ],
      mapUsers: [{ userarn: `arn:aws:iam::${ACCOUNT}:user/bob`, username: 'bob' }],
      mapAccounts: ['444455556666'],
    })
    writeFileSync(h.path, second)
    await eventually('modified file loaded', () => usernameOf(h, bob) === 'bob' && usernameOf(h, alice) === undefined)
    const fresh = accepted(second, false)
    const probes = [
      alice,
      bob,
      sessionOf(ACCOUNT, 'deployer', 's'),
      sessionOf('444455556666', 'x', 's'),
      userOf('444455556666', 'alice'),
    ]
    for (const id of probes) expect(h.mapper.lookup(id)).toEqual(fresh.lookup(id))
    expect(h.mapper.status().counts).toEqual(fresh.counts)
    expect(h.mapper.accountRule('444455556666')).toBe(fresh.accounts.get('444455556666'))

    unlinkSync(h.path)
    await eventually('deleted file cleared', () => h.mapper.lookup(bob) === undefined)
    expect(h.mapper.accountRule('444455556666')).toBeUndefined()
    expect(h.mapper.status()).toMatchObject({
      synced: true,
      version: 'missing',
      counts: { roles: 0, users: 0, accounts: 0 },
    })
    expect(h.logs).toContainEqual(
      expect.objectContaining({
        level: 'error',
        msg: 'DynamicFile is missing: its mappings are cleared (as aws-iam-authenticator does)',
      }),
    )

    writeFileSync(h.path, second)
    await eventually('re-created file loaded', () => usernameOf(h, bob) === 'bob')
    expect(h.mapper.status().counts).toEqual(fresh.counts)
  })

  it('rename-over (write a temp file, rename it over the mapping) is picked up, repeatedly', async () => {
    const h = await startMapper({ initial: mappingFile({ alice: 'alice-v1' }) })
    expect(usernameOf(h, alice)).toBe('alice-v1')
    for (const v of [2, 3, 4]) {
      writeAtomic(h.path, mappingFile({ alice: `alice-v${v}` }))
      await eventually(`rename-over v${v}`, () => usernameOf(h, alice) === `alice-v${v}`)
    }
    expect(
      await sample(h.metrics, 'kube_iam_auth_mapping_source_reloads_total', {
        source: 'DynamicFile',
        result: 'applied',
      }),
    ).toBe(4)
    expect(await sample(h.metrics, 'aws_iam_authenticator_dynamicfile_failures_total')).toBe(0)
  })

  it('the directory watch alone sees write, rename-over, delete and re-create (poll far away)', async () => {
    const h = await startMapper({ pollIntervalMs: 60_000, initial: mappingFile({ alice: 'v1' }) })
    writeFileSync(h.path, mappingFile({ alice: 'v2' }))
    await eventually('write via watch', () => usernameOf(h, alice) === 'v2')
    writeAtomic(h.path, mappingFile({ alice: 'v3' }))
    await eventually('rename-over via watch', () => usernameOf(h, alice) === 'v3')
    unlinkSync(h.path)
    await eventually('delete via watch', () => h.mapper.lookup(alice) === undefined)
    writeAtomic(h.path, mappingFile({ alice: 'v4' }))
    await eventually('re-create via watch', () => usernameOf(h, alice) === 'v4')
  })

  it('invalid JSON keeps the last good mapping; status, metrics and logs say so; a good file clears it', async () => {
    const h = await startMapper({ initial: mappingFile({ alice: 'alice' }) })
    const goodVersion = h.mapper.status().version

    writeAtomic(h.path, '{"mapUsers": [')
    await eventually('rejection recorded', () => h.mapper.status().lastError !== undefined)
    expect(usernameOf(h, alice)).toBe('alice')
    const status = h.mapper.status()
    expect(status).toMatchObject({ synced: true, version: goodVersion, counts: { roles: 0, users: 1, accounts: 0 } })
    expect(status.lastError).toMatch(/^version sha256:[0-9a-f]{12} rejected: \(file\): invalid JSON: /)
    expect(status.lastErrorTime).toEqual(expect.any(String))
    expect(await sample(h.metrics, 'aws_iam_authenticator_dynamicfile_failures_total')).toBe(1)
    expect(await sample(h.metrics, 'kube_iam_auth_mapping_source_rejected_update', { source: 'DynamicFile' })).toBe(1)
    expect(
      await sample(h.metrics, 'kube_iam_auth_mapping_source_reloads_total', {
        source: 'DynamicFile',
        result: 'rejected',
      }),
    ).toBe(1)
    expect(h.logs).toContainEqual(
      expect.objectContaining({
        level: 'error',
        msg: 'DynamicFile update rejected; the previous mapping stays in force',
        file: h.path,
      }),
    )

    // the same bad content, seen again by the poll, is not counted again
    await new Promise((r) => setTimeout(r, 1_200))
    expect(await sample(h.metrics, 'aws_iam_authenticator_dynamicfile_failures_total')).toBe(1)

    writeAtomic(h.path, mappingFile({ bob: 'bob' }))
    await eventually('good file applied', () => usernameOf(h, bob) === 'bob')
    expect(h.mapper.lookup(alice)).toBeUndefined()
    expect(h.mapper.status().lastError).toBeUndefined()
    expect(await sample(h.metrics, 'kube_iam_auth_mapping_source_rejected_update', { source: 'DynamicFile' })).toBe(0)
    expect(await sample(h.metrics, 'aws_iam_authenticator_dynamicfile_failures_total')).toBe(1)
  })

  it('strict mode: entries are found by principal ID, with the ARN cross-check', async () => {
    const h = await startMapper({ strict: true, initial: fixture('strict.json') })
    expect(usernameOf(h, matt())).toBe('matt')
    expect(h.mapper.lookup(matt('AROASOMEONEELSE00001'))).toBeUndefined()
    expect(h.mapper.lookup(sessionOf(ACCOUNT, 'notmatt', 's', { userId: MATT_ROLE_ID }))).toBeUndefined()
    expect(usernameOf(h, sessionOf('999999999999', 'anything', 's', { userId: ID_ONLY_ROLE_ID }))).toBe('id-only')

    // a strict file with a missing userid is rejected; the last good mapping stays
    writeAtomic(
      h.path,
      JSON.stringify({ mapRoles: [{ rolearn: `arn:aws:iam::${ACCOUNT}:role/matt`, username: 'new-matt' }] }),
    )
    await eventually('rejection recorded', () => h.mapper.status().lastError !== undefined)
    expect(h.mapper.status().lastError).toContain(
      'mapRoles[0].userid: value for userid must be supplied (dynamicfileUserIDStrict is on)',
    )
    expect(usernameOf(h, matt())).toBe('matt')
  })

  it('rewriting identical content is not a reload', async () => {
    const text = mappingFile({ alice: 'alice' })
    const h = await startMapper({ initial: text })
    writeAtomic(h.path, text)
    writeAtomic(h.path, text)
    await new Promise((r) => setTimeout(r, 1_200))
    expect(
      await sample(h.metrics, 'kube_iam_auth_mapping_source_reloads_total', {
        source: 'DynamicFile',
        result: 'applied',
      }),
    ).toBe(1)
  })

  it('dynamic_e2e_latency_seconds is observed on reloads after the first, from LastUpdatedDateTime', async () => {
    const NOW_MS = 1_706_648_540_000 // LastUpdatedDateTime 1706648530 + 10 s
    const h = await startMapper({
      now: () => NOW_MS,
      initial: mappingFile({ alice: 'v1' }, { LastUpdatedDateTime: '1706648530' }),
    })
    const labels = { type: 'dynamic_file' }
    const name = 'aws_iam_authenticator_dynamic_e2e_latency_seconds'
    // the first load is not an update
    expect(await sample(h.metrics, name, labels, `${name}_count`)).toBeUndefined()

    writeAtomic(h.path, mappingFile({ alice: 'v2' }, { LastUpdatedDateTime: '1706648530' }))
    await eventually('reload', () => usernameOf(h, alice) === 'v2')
    expect(await sample(h.metrics, name, labels, `${name}_count`)).toBe(1)
    expect(await sample(h.metrics, name, labels, `${name}_sum`)).toBe(10)
    expect(await sample(h.metrics, name, { ...labels, le: '5' }, `${name}_bucket`)).toBe(0)
    expect(await sample(h.metrics, name, { ...labels, le: '10' }, `${name}_bucket`)).toBe(1)

    // a LastUpdatedDateTime in the future ("start timestamp is after end timestamp") and a file without one are not observed
    writeAtomic(h.path, mappingFile({ alice: 'v3' }, { LastUpdatedDateTime: '2706648520' }))
    await eventually('reload', () => usernameOf(h, alice) === 'v3')
    writeAtomic(h.path, mappingFile({ alice: 'v4' }))
    await eventually('reload', () => usernameOf(h, alice) === 'v4')
    expect(await sample(h.metrics, name, labels, `${name}_count`)).toBe(1)
  })

  it('after abort, changes are no longer followed', async () => {
    const h = await startMapper({ pollIntervalMs: 100, initial: mappingFile({ alice: 'before' }) })
    h.controller.abort()
    writeAtomic(h.path, mappingFile({ alice: 'after' }))
    await new Promise((r) => setTimeout(r, 500))
    expect(usernameOf(h, alice)).toBe('before')
  })
})
