// One contract for the Mapper interface (src/mapping/types.ts), run against every backend: what the
// webhook relies on whichever source the mapping comes from. Each backend's test file hands
// describeMapper() a way to set up its source holding a mapping document, and names where the
// backend legitimately differs (no account allow-list, no SSO, keyed by principal ID, updates by
// object); every difference is an explicit option that swaps in a test of what the backend does
// instead, never a skipped test.
import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigInvalid } from '../../src/shared/errors.js'
import { createLogger, type Logger } from '../../src/shared/logger.js'
import { createMetrics, type Metrics } from '../../src/shared/metrics.js'
import type { MappingDocument } from '../../src/mapping/rules.js'
import type { BackendMode, Identity, Mapper, RoleMapping, UserMapping } from '../../src/mapping/types.js'
import { identityOf, sessionOf, userOf } from '../support/identities.js'

export type ListName = 'mapRoles' | 'mapUsers'

/** Where a backend legitimately differs from the others. */
export interface Differences {
  /**
   * How the source changes while the server runs: `never` (MountedFile: read once; an invalid
   * document stops start-up), `whole-document` (an edit with any invalid entry is rejected whole)
   * or `per-object` (CRD: each object stands alone; an invalid one is skipped, the others apply).
   */
  readonly updates: 'never' | 'whole-document' | 'per-object'
  /** False where the source has no mapAccounts (CRD): accountRule() is undefined for every account. */
  readonly accountAllowList: boolean
  /**
   * SSO permission-set entries: `mapped`, `refused` (DynamicFile strict mode rejects a document
   * holding one) or `inexpressible` (an IAMIdentityMapping has only spec.arn).
   */
  readonly sso: 'mapped' | 'refused' | 'inexpressible'
  /** What an entry is found by: its ARN, or (DynamicFile strict mode) the identity's principal ID. */
  readonly keyedBy: 'arn' | 'principal-id'
  /**
   * Role patterns (a role name with * or ?): `mapped`, or `refused` (DynamicFile strict mode: an
   * entry found by principal ID names one role, so a document holding a pattern is rejected).
   */
  readonly rolePatterns: 'mapped' | 'refused'
  /** How the entry at `index` of `list` is named in Match.rule and in problems (default `mapRoles[0]`). */
  readonly ruleName?: (list: ListName, index: number) => string
}

export interface SourceOptions {
  readonly log: Logger
  readonly metrics: Metrics
  readonly reservedPrefixes?: readonly string[]
  /** Live sources: the source cannot be read when the mapper starts (API server down, unreadable file). */
  readonly unreadable?: boolean
}

/** A backend's source holding a document, and a mapper reading it (not started: the suite starts it). */
export interface Source {
  readonly mapper: Mapper
  /** Live sources: replaces the document the source holds (valid or not), as an operator's edit would. */
  readonly publish?: (doc: MappingDocument) => Promise<void>
  /** Sources set up `unreadable`: makes the source readable, holding the document it was set up with. */
  readonly heal?: () => Promise<void>
  /** Frees what the source holds (servers, files); the suite has aborted the mapper by then. */
  readonly dispose: () => Promise<void>
}

export interface MapperBackend {
  readonly name: BackendMode
  readonly differences: Differences
  /** Sets up a source holding `doc`. MountedFile throws ConfigInvalid for an invalid document. */
  readonly source: (doc: MappingDocument, opts: SourceOptions) => Promise<Source>
}

// The fixture: accounts, principal IDs and the document every backend starts from.
export const ACCOUNT = '111122223333'
export const OTHER_ACCOUNT = '444455556666'
const IDS = {
  alice: 'AIDACONTRACTALICE001',
  carol: 'AIDACONTRACTCAROL001',
  deployerUser: 'AIDACONTRACTDEPLOY01',
  admin: 'AROACONTRACTADMIN001',
  deployer: 'AROACONTRACTDEPLOY01',
  sso: 'AROACONTRACTSSORO001',
  other: 'AROACONTRACTOTHER001',
} as const

const alice: UserMapping = {
  userarn: `arn:aws:iam::${ACCOUNT}:user/Alice`,
  userid: IDS.alice,
  username: 'alice',
  groups: ['devs'],
}
const carol: UserMapping = {
  userarn: `arn:aws:iam::${ACCOUNT}:user/carol`,
  userid: IDS.carol,
  username: 'carol',
  groups: [],
}
const admin: RoleMapping = {
  rolearn: `arn:aws:iam::${ACCOUNT}:role/team/Admin`,
  userid: IDS.admin,
  username: 'admin:{{SessionName}}',
  groups: ['system:masters'],
}
const deployer: RoleMapping = {
  rolearn: `arn:aws:iam::${ACCOUNT}:role/Deployer`,
  userid: IDS.deployer,
  username: 'deployer',
  groups: ['deployers'],
}
const SSO_ROLE = 'AWSReservedSSO_ReadOnly_0123456789abcdef'
const readOnly: RoleMapping = {
  sso: { permissionSetName: 'ReadOnly', accountID: ACCOUNT },
  username: 'ro:{{SessionName}}',
  groups: ['view'],
}

const doc = (parts: Partial<MappingDocument>): MappingDocument => ({
  mapRoles: [],
  mapUsers: [],
  mapAccounts: [],
  ...parts,
})

// The identities STS reports for the fixture's principals.
const aliceId = () => userOf(ACCOUNT, 'Alice', { userId: IDS.alice })
const carolId = () => userOf(ACCOUNT, 'carol', { userId: IDS.carol })
const adminSession = (role = 'Admin') => sessionOf(ACCOUNT, role, 'jdoe', { userId: IDS.admin })
const deployerSession = () => sessionOf(ACCOUNT, 'Deployer', 'ci', { userId: IDS.deployer })

/** Polls `check` every 20 ms; fails after `boundMs` (generous: the machine may be busy). */
export async function eventually(what: string, check: () => boolean, boundMs = 10_000): Promise<void> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > boundMs) throw new Error(`not within ${boundMs} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function withinMs<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

interface Started {
  readonly mapper: Mapper
  readonly source: Source
  readonly metrics: Metrics
  readonly logs: { level: string; msg: string }[]
}

async function counter(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name)
  if (metric === undefined) throw new Error(`no metric ${name}`)
  const { values } = await metric.get()
  return values.find((v) => Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x))?.value ?? 0
}

/** Runs the Mapper contract against one backend. */
export function describeMapper(label: string, backend: MapperBackend): void {
  const d = backend.differences
  const rule = d.ruleName ?? ((list: ListName, i: number) => `${list}[${i}]`)
  const live = d.updates !== 'never'
  const accounts = (list: readonly string[]) => (d.accountAllowList ? list : [])
  /** The document every test starts from, minus what the backend cannot hold. */
  const BASE = doc({ mapUsers: [alice], mapRoles: [admin, deployer], mapAccounts: accounts([OTHER_ACCOUNT]) })
  const cleanups: (() => Promise<void>)[] = []

  /** Sets up the source and starts the mapper; start() must resolve (it never waits for updates). */
  async function start(
    d0: MappingDocument,
    opts: { reservedPrefixes?: readonly string[]; unreadable?: boolean } = {},
  ): Promise<Started> {
    const logs: Started['logs'] = []
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line))
        done()
      },
    })
    const metrics = createMetrics(undefined, { defaultMetrics: false })
    const source = await backend.source(d0, {
      log: createLogger({ level: 'debug', destination: sink }),
      metrics,
      ...opts,
    })
    const controller = new AbortController()
    cleanups.push(async () => {
      controller.abort()
      await source.dispose()
    })
    expect(source.mapper.name).toBe(backend.name)
    await withinMs(10_000, 'start()', source.mapper.start(controller.signal))
    return { mapper: source.mapper, source, metrics, logs }
  }

  const publish = async (s: Started, next: MappingDocument) => {
    if (s.source.publish === undefined) throw new Error(`${label} is a live source but its harness cannot publish`)
    await s.source.publish(next)
  }

  describe(`Mapper contract: ${label}`, () => {
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c()
    })

    it('names its difference options consistently with what its harness can do', async () => {
      const s = await start(BASE)
      expect(s.source.publish !== undefined).toBe(live)
    })

    it('start() resolves once the first snapshot is loaded: lookups answer at once', async () => {
      const { mapper } = await start(BASE)
      expect(mapper.lookup(aliceId())?.mapping.username).toBe('alice')
      expect(mapper.lookup(deployerSession())?.mapping.username).toBe('deployer')
    })

    it('status(): its name, synced, healthy, a version, the counts of what it maps, no error', async () => {
      const status = (await start(BASE)).mapper.status()
      expect(status).toMatchObject({
        name: backend.name,
        synced: true,
        counts: { roles: 2, users: 1, accounts: d.accountAllowList ? 1 : 0 },
      })
      expect(status.healthy).not.toBe(false)
      expect(status.version).toEqual(expect.any(String))
      expect(new Date(status.lastSuccess!).toISOString()).toBe(status.lastSuccess)
      expect(status.lastError).toBeUndefined()
      expect((await start(doc({}))).mapper.status()).toMatchObject({
        synced: true,
        counts: { roles: 0, users: 0, accounts: 0 },
      })
    })

    it('reservedPrefixes: as configured, none by default', async () => {
      expect((await start(BASE, { reservedPrefixes: ['aws:', 'system:'] })).mapper.reservedPrefixes).toEqual([
        'aws:',
        'system:',
      ])
      expect((await start(BASE)).mapper.reservedPrefixes).toEqual([])
    })

    it('lookup(): the entry, unrendered, with its rule and kind; user and role of one name stay apart', async () => {
      const deployerUser: UserMapping = {
        userarn: `arn:aws:iam::${ACCOUNT}:user/Deployer`,
        userid: IDS.deployerUser,
        username: 'deployer-user',
        groups: [],
      }
      const { mapper } = await start({ ...BASE, mapUsers: [alice, deployerUser] })
      expect(mapper.lookup(adminSession())).toEqual({
        mapping: { username: 'admin:{{SessionName}}', groups: ['system:masters'] },
        rule: rule('mapRoles', 0),
        kind: 'role',
      })
      expect(mapper.lookup(aliceId())).toEqual({
        mapping: { username: 'alice', groups: ['devs'] },
        rule: rule('mapUsers', 0),
        kind: 'user',
      })
      expect(mapper.lookup(userOf(ACCOUNT, 'Deployer', { userId: IDS.deployerUser }))).toMatchObject({
        rule: rule('mapUsers', 1),
        kind: 'user',
      })
      expect(mapper.lookup(deployerSession())).toMatchObject({ rule: rule('mapRoles', 1), kind: 'role' })
    })

    it('lookup(): ARNs match whatever their case, and a configured role path is ignored (STS reports none)', async () => {
      const { mapper } = await start(BASE)
      expect(mapper.lookup(userOf(ACCOUNT, 'ALICE', { userId: IDS.alice }))?.rule).toBe(rule('mapUsers', 0))
      expect(mapper.lookup(adminSession('admin'))?.rule).toBe(rule('mapRoles', 0))
      // role/team/Admin is configured; STS reports role/Admin, with or without the path
      expect(mapper.lookup(identityOf(`arn:aws:iam::${ACCOUNT}:role/Admin`, { userId: IDS.admin }))?.rule).toBe(
        rule('mapRoles', 0),
      )
      expect(mapper.lookup(identityOf(`arn:aws:iam::${ACCOUNT}:role/other/Admin`, { userId: IDS.admin }))?.rule).toBe(
        rule('mapRoles', 0),
      )
    })

    it('lookup(): nothing else matches: other accounts, partitions, names, prefixes and kinds', async () => {
      const { mapper } = await start(BASE)
      const strangers: Identity[] = [
        userOf(OTHER_ACCOUNT, 'Alice', { userId: IDS.alice }),
        userOf(ACCOUNT, 'Alice', { userId: IDS.alice, partition: 'aws-cn' }),
        userOf(ACCOUNT, 'Alic', { userId: IDS.alice }),
        userOf(ACCOUNT, 'Alice2', { userId: IDS.alice }),
        sessionOf(ACCOUNT, 'Alice', 's', { userId: IDS.alice }),
        sessionOf(ACCOUNT, 'Admin2', 's', { userId: IDS.admin }),
        sessionOf(ACCOUNT, 'team', 's', { userId: IDS.admin }),
        sessionOf(OTHER_ACCOUNT, 'Deployer', 's', { userId: IDS.deployer }),
      ]
      for (const who of strangers) expect(mapper.lookup(who), who.arn).toBeUndefined()
    })

    if (d.keyedBy === 'arn') {
      it('keyed by ARN: any principal ID with the configured ARN matches', async () => {
        const { mapper } = await start(BASE)
        expect(mapper.lookup(userOf(ACCOUNT, 'Alice', { userId: 'AIDASOMEONEELSE00001' }))?.rule).toBe(
          rule('mapUsers', 0),
        )
        expect(mapper.lookup(sessionOf(ACCOUNT, 'Admin', 's', { userId: 'AROASOMEONEELSE00001' }))?.rule).toBe(
          rule('mapRoles', 0),
        )
      })

      it('ties: two entries for one identity resolve to the first, every time, and are counted once', async () => {
        const { mapper } = await start(
          doc({
            mapUsers: [alice, { ...alice, userarn: alice.userarn!.toLowerCase(), username: 'second' }],
            mapRoles: [
              { ...admin, rolearn: `arn:aws:iam::${ACCOUNT}:role/a/Admin`, username: 'first-admin' },
              { ...admin, rolearn: `arn:aws:iam::${ACCOUNT}:role/b/Admin`, username: 'second-admin' },
            ],
          }),
        )
        for (let i = 0; i < 3; i++) {
          expect(mapper.lookup(aliceId())).toMatchObject({ rule: rule('mapUsers', 0), mapping: { username: 'alice' } })
          expect(mapper.lookup(adminSession())).toMatchObject({
            rule: rule('mapRoles', 0),
            mapping: { username: 'first-admin' },
          })
        }
        expect(mapper.status().counts).toEqual({ roles: 1, users: 1, accounts: 0 })
      })
    } else {
      it('keyed by principal ID: another ID with the right ARN matches nothing, nor the ID with another ARN', async () => {
        const { mapper } = await start(BASE)
        expect(mapper.lookup(userOf(ACCOUNT, 'Alice', { userId: 'AIDASOMEONEELSE00001' }))).toBeUndefined()
        expect(mapper.lookup(sessionOf(ACCOUNT, 'Admin', 's', { userId: 'AROASOMEONEELSE00001' }))).toBeUndefined()
        expect(mapper.lookup(userOf(ACCOUNT, 'mallory', { userId: IDS.alice }))).toBeUndefined()
        expect(mapper.lookup(sessionOf(ACCOUNT, 'Deployer', 's', { userId: IDS.admin }))).toBeUndefined()
      })

      it('precedence: a principal ID in both mapUsers and mapRoles resolves to the mapUsers entry', async () => {
        // user, then role, as every backend looks up; a misplaced copy in mapRoles must not shadow the user
        const misplaced: RoleMapping = {
          rolearn: `arn:aws:iam::${ACCOUNT}:role/Alice`,
          userid: IDS.alice,
          username: 'x',
          groups: [],
        }
        const { mapper } = await start(doc({ mapRoles: [misplaced], mapUsers: [alice] }))
        expect(mapper.lookup(aliceId())).toMatchObject({ rule: rule('mapUsers', 0), kind: 'user' })
      })

      it('ties: two entries for one principal ID resolve to the first, every time, and are counted once', async () => {
        const { mapper } = await start(
          doc({ mapUsers: [alice, { ...alice, username: 'second' }], mapRoles: [admin, { ...admin, username: 'x' }] }),
        )
        for (let i = 0; i < 3; i++) {
          expect(mapper.lookup(aliceId())).toMatchObject({ rule: rule('mapUsers', 0), mapping: { username: 'alice' } })
          expect(mapper.lookup(adminSession())).toMatchObject({ rule: rule('mapRoles', 0) })
        }
        expect(mapper.status().counts).toEqual({ roles: 1, users: 1, accounts: 0 })
      })
    }

    const permissionSetRole: RoleMapping = {
      rolearn: `arn:aws:iam::${ACCOUNT}:role/aws-reserved/sso.amazonaws.com/${SSO_ROLE}`,
      userid: IDS.sso,
      username: 'by-role-arn',
      groups: [],
    }
    const ssoSession = (role = SSO_ROLE) => sessionOf(ACCOUNT, role, 'jdoe', { userId: IDS.sso })

    if (d.sso === 'mapped') {
      it('SSO: a permission set maps the roles IAM Identity Center makes for it, not those of another set', async () => {
        const { mapper } = await start(doc({ mapRoles: [readOnly] }))
        expect(mapper.lookup(ssoSession())).toEqual({
          mapping: { username: 'ro:{{SessionName}}', groups: ['view'] },
          rule: rule('mapRoles', 0),
          kind: 'sso',
        })
        expect(mapper.lookup(ssoSession('awsreservedsso_readonly_0123456789ABCDEF'))?.kind).toBe('sso')
        for (const other of ['AWSReservedSSO_ReadOnly_Extra_0123', 'AWSReservedSSO_ReadOnlyX_0123', 'ReadOnly']) {
          expect(mapper.lookup(ssoSession(other)), other).toBeUndefined()
        }
        expect(mapper.lookup(sessionOf(OTHER_ACCOUNT, SSO_ROLE, 'jdoe'))).toBeUndefined()
        expect(mapper.status().counts).toEqual({ roles: 1, users: 0, accounts: 0 })
      })

      it('precedence: an explicit role ARN beats an SSO permission set listed before it', async () => {
        const { mapper } = await start(doc({ mapRoles: [readOnly, permissionSetRole] }))
        expect(mapper.lookup(ssoSession())).toMatchObject({ rule: rule('mapRoles', 1), kind: 'role' })
        expect(mapper.lookup(ssoSession('AWSReservedSSO_ReadOnly_fedcba9876543210'))).toMatchObject({
          rule: rule('mapRoles', 0),
          kind: 'sso',
        })
      })
    } else {
      it(`SSO entries are ${d.sso}: a permission-set role maps only through its explicit role ARN`, async () => {
        const { mapper } = await start(doc({ mapRoles: [permissionSetRole] }))
        expect(mapper.lookup(ssoSession())).toMatchObject({ rule: rule('mapRoles', 0), kind: 'role' })
        expect(mapper.lookup(ssoSession('AWSReservedSSO_ReadOnly_fedcba9876543210'))).toBeUndefined()
      })
    }

    if (d.sso === 'refused') {
      it('SSO entries are refused: never applied, and status() says why (the valid entries apply when nothing else is in force)', async () => {
        const { mapper } = await start(doc({ mapUsers: [alice], mapRoles: [{ ...readOnly, userid: IDS.sso }] }))
        expect(mapper.lookup(ssoSession())).toBeUndefined()
        expect(mapper.lookup(aliceId())).toMatchObject({ rule: rule('mapUsers', 0) })
        expect(mapper.status()).toMatchObject({ synced: true, healthy: false })
        expect(mapper.status().lastError).toContain(`${rule('mapRoles', 0)}.sso`)
      })
    }

    const pattern = (name: string, username: string, account = ACCOUNT): RoleMapping => ({
      rolearn: `arn:aws:iam::${account}:role/${name}`,
      username,
      groups: [],
    })
    const devSession = (role = 'Dev-alice', account = ACCOUNT) => sessionOf(account, role, 'alice')
    /** BASE plus role patterns: Dev-* (4 literal characters), * (none), and Dev-* of another account. */
    const PATTERNS = {
      ...BASE,
      mapRoles: [
        ...BASE.mapRoles,
        pattern('Dev-*', 'dev:{{SessionName}}'),
        pattern('*', 'anyone'),
        pattern('Dev-*', 'other-dev', OTHER_ACCOUNT),
      ],
    }

    if (d.rolePatterns === 'mapped') {
      it('role patterns: an exact role beats every pattern, the most specific one wins, none crosses accounts or partitions', async () => {
        const { mapper } = await start(PATTERNS)
        expect(mapper.lookup(devSession())).toEqual({
          mapping: { username: 'dev:{{SessionName}}', groups: [] },
          rule: rule('mapRoles', 2),
          kind: 'role-pattern',
          pattern: `arn:aws:iam::${ACCOUNT}:role/Dev-*`,
        })
        expect(mapper.lookup(devSession('dev-BOB'))?.rule).toBe(rule('mapRoles', 2))
        expect(mapper.lookup(devSession('Ops'))).toMatchObject({ rule: rule('mapRoles', 3), kind: 'role-pattern' })
        expect(mapper.lookup(devSession('Dev-alice', OTHER_ACCOUNT))?.rule).toBe(rule('mapRoles', 4))
        expect(mapper.lookup(deployerSession())).toMatchObject({ rule: rule('mapRoles', 1), kind: 'role' })
        expect(mapper.lookup(aliceId())).toMatchObject({ rule: rule('mapUsers', 0), kind: 'user' })
        expect(mapper.lookup(sessionOf(ACCOUNT, 'Dev-alice', 'alice', { partition: 'aws-cn' }))).toBeUndefined()
        expect(mapper.lookup(sessionOf('777788889999', 'Dev-alice', 'alice'))).toBeUndefined()
        expect(mapper.lookup(userOf(ACCOUNT, 'Dev-alice'))).toBeUndefined()
        expect(mapper.status().counts.roles).toBe(5)
      })

      /** PATTERNS plus *ev-a*, which ties with Dev-* (4 literal characters each; both match Dev-alice). */
      const TIED = { ...PATTERNS, mapRoles: [...PATTERNS.mapRoles, pattern('*ev-a*', 'tied')] }
      const tie = `ties with ${rule('mapRoles', 2)} (arn:aws:iam::${ACCOUNT}:role/Dev-*): both patterns have 4 literal characters`
      if (d.updates === 'never') {
        it('role patterns: a tie stops start-up, naming both entries', async () => {
          const failed = await backend
            .source(TIED, {
              log: createLogger({ level: 'fatal', destination: new Writable({ write: (_c, _e, done) => done() }) }),
              metrics: createMetrics(undefined, { defaultMetrics: false }),
            })
            .then(
              () => undefined,
              (err: unknown) => err,
            )
          expect(failed).toBeInstanceOf(ConfigInvalid)
          expect((failed as ConfigInvalid).problems.join('\n')).toContain(`${rule('mapRoles', 5)}.rolearn: ${tie}`)
        })
      } else {
        it(`role patterns: an update that adds a tie is ${d.updates === 'per-object' ? 'rejected in its newer object' : 'rejected whole'}; the mapping in force stays`, async () => {
          const s = await start(PATTERNS)
          await publish(s, TIED)
          await eventually('the tie is rejected', () => s.mapper.status().lastError !== undefined)
          expect(s.mapper.status().lastError).toContain(tie)
          expect(s.mapper.lookup(devSession())?.rule).toBe(rule('mapRoles', 2))
          expect(s.mapper.lookup(devSession('xev-alice'))?.rule).toBe(rule('mapRoles', 3))
          expect(s.mapper.status().counts.roles).toBe(5)
        })
      }
    } else {
      it('role patterns are refused: never applied, and status() says why (the valid entries apply when nothing else is in force)', async () => {
        const { mapper } = await start(
          doc({ mapUsers: [alice], mapRoles: [{ ...pattern('Dev-*', 'dev'), userid: IDS.admin }] }),
        )
        expect(mapper.lookup(devSession())).toBeUndefined()
        expect(mapper.lookup(sessionOf(ACCOUNT, 'Dev-alice', 's', { userId: IDS.admin }))).toBeUndefined()
        expect(mapper.lookup(aliceId())).toMatchObject({ rule: rule('mapUsers', 0) })
        expect(mapper.status()).toMatchObject({ synced: true, healthy: false })
        expect(mapper.status().lastError).toContain(
          `${rule('mapRoles', 0)}.rolearn: 'arn:aws:iam::${ACCOUNT}:role/Dev-*' is a role pattern`,
        )
      })
    }

    if (d.accountAllowList) {
      it('accountRule(): the first mapAccounts entry of an allowed account, undefined for any other', async () => {
        const { mapper } = await start({ ...BASE, mapAccounts: [OTHER_ACCOUNT, '777788889999', OTHER_ACCOUNT] })
        expect(mapper.accountRule(OTHER_ACCOUNT)).toBe('mapAccounts[0]')
        expect(mapper.accountRule('777788889999')).toBe('mapAccounts[1]')
        for (const other of [ACCOUNT, '', '44445555666', `${OTHER_ACCOUNT} `]) {
          expect(mapper.accountRule(other), other).toBeUndefined()
        }
        expect(mapper.status().counts.accounts).toBe(2)
      })
    } else {
      it('has no account allow-list: accountRule() is undefined for every account', async () => {
        const { mapper } = await start(BASE)
        for (const account of [ACCOUNT, OTHER_ACCOUNT, '']) expect(mapper.accountRule(account)).toBeUndefined()
        expect(mapper.status().counts.accounts).toBe(0)
      })
    }

    it('lookups are synchronous and total: odd identities answer undefined and never throw', async () => {
      const { mapper } = await start(BASE)
      const odd: Identity[] = [
        identityOf(`arn:aws:iam::${ACCOUNT}:root`, { userId: ACCOUNT }),
        identityOf(`arn:aws:sts::${ACCOUNT}:federated-user/Alice`, { userId: `${ACCOUNT}:Alice` }),
        { ...aliceId(), canonicalArn: 'not-an-arn', userId: '' },
        { ...aliceId(), canonicalArn: '', arn: '', accountId: '', userId: '', sessionName: '' },
      ]
      for (const who of odd) {
        const answer: unknown = mapper.lookup(who)
        expect(answer, who.canonicalArn).toBeUndefined()
      }
      expect(mapper.lookup(aliceId())).not.toBeInstanceOf(Promise)
      expect(mapper.accountRule('not an account')).toBeUndefined()
    })

    const invalidUser: UserMapping = { userarn: 'garbage', userid: 'AIDACONTRACTBAD00001', username: 'x', groups: [] }

    if (!live) {
      it('an invalid document stops start-up: ConfigInvalid naming the entry', async () => {
        const log = createLogger({ level: 'fatal', destination: new Writable({ write: (_c, _e, done) => done() }) })
        const metrics = createMetrics(undefined, { defaultMetrics: false })
        const failed = await backend.source({ ...BASE, mapUsers: [alice, invalidUser] }, { log, metrics }).then(
          () => undefined,
          (err: unknown) => err,
        )
        expect(failed).toBeInstanceOf(ConfigInvalid)
        expect((failed as ConfigInvalid).problems.join('\n')).toContain(`${rule('mapUsers', 1)}.userarn`)
      })
      return
    }

    it('a valid update applies: lookups, account allow-list, counts and version follow it', async () => {
      const s = await start(BASE)
      const before = s.mapper.status().version
      const renamedAdmin: RoleMapping = { ...admin, username: 'root:{{SessionName}}' }
      await publish(s, doc({ mapUsers: [carol], mapRoles: [renamedAdmin] }))
      await eventually(
        'the update applied',
        () =>
          s.mapper.lookup(carolId())?.mapping.username === 'carol' &&
          s.mapper.lookup(aliceId()) === undefined &&
          s.mapper.lookup(deployerSession()) === undefined &&
          s.mapper.lookup(adminSession())?.mapping.username === 'root:{{SessionName}}',
      )
      expect(s.mapper.accountRule(OTHER_ACCOUNT)).toBeUndefined()
      const status = s.mapper.status()
      expect(status).toMatchObject({ synced: true, counts: { roles: 1, users: 1, accounts: 0 } })
      expect(status.version).not.toBe(before)
      expect(status.lastError).toBeUndefined()
    })

    if (d.updates === 'whole-document') {
      it('an invalid update keeps the whole last good mapping; status, metrics and logs say so; a valid one clears it', async () => {
        const s = await start(BASE)
        const good = s.mapper.status().version
        await publish(s, { ...BASE, mapUsers: [carol, alice, invalidUser] })
        await eventually('the rejection shows on status()', () => s.mapper.status().lastError !== undefined)
        const status = s.mapper.status()
        expect(status.lastError).toContain(`${rule('mapUsers', 2)}.userarn`)
        expect(new Date(status.lastErrorTime!).toISOString()).toBe(status.lastErrorTime)
        expect(status).toMatchObject({ synced: true, version: good, counts: { roles: 2, users: 1 } })
        // nothing of the rejected document applies, not even its valid entries
        expect(s.mapper.lookup(carolId())).toBeUndefined()
        expect(s.mapper.lookup(aliceId())?.rule).toBe(rule('mapUsers', 0))
        expect(s.mapper.lookup(deployerSession())?.mapping.username).toBe('deployer')
        expect(
          await counter(s.metrics, 'kube_iam_auth_mapping_source_reloads_total', {
            source: backend.name,
            result: 'rejected',
          }),
        ).toBe(1)
        expect(s.logs.some((l) => l.level === 'error' && /rejected/.test(l.msg))).toBe(true)

        await publish(s, doc({ mapUsers: [carol] }))
        await eventually('the valid update applied', () => s.mapper.lookup(carolId()) !== undefined)
        expect(s.mapper.status().lastError).toBeUndefined()
        expect(s.mapper.lookup(aliceId())).toBeUndefined()
      })
    } else {
      it('an invalid object is skipped, the others of the update apply; status, metrics and logs name it', async () => {
        const s = await start(BASE)
        await publish(s, { ...BASE, mapUsers: [alice, carol, invalidUser] })
        await eventually(
          'the update applied without its invalid object',
          () => s.mapper.lookup(carolId()) !== undefined && s.mapper.status().lastError !== undefined,
        )
        const status = s.mapper.status()
        expect(status.lastError).toContain(rule('mapUsers', 2))
        expect(status).toMatchObject({ synced: true, counts: { roles: 2, users: 2 } })
        expect(s.mapper.lookup(aliceId())?.rule).toBe(rule('mapUsers', 0))
        expect(
          await counter(s.metrics, 'kube_iam_auth_mapping_source_reloads_total', {
            source: backend.name,
            result: 'rejected',
          }),
        ).toBeGreaterThanOrEqual(1)
        expect(s.logs.some((l) => l.level === 'error' && /rejected/.test(l.msg))).toBe(true)

        await publish(s, BASE)
        await eventually(
          'the invalid object gone',
          () => s.mapper.lookup(carolId()) === undefined && s.mapper.status().lastError === undefined,
        )
      })
    }

    it('start() does not wait for an unreadable source: nothing maps, status says so; once readable, it maps', async () => {
      const s = await start(BASE, { unreadable: true })
      expect(s.mapper.lookup(aliceId())).toBeUndefined()
      expect(s.mapper.accountRule(OTHER_ACCOUNT)).toBeUndefined()
      expect(s.mapper.status()).toMatchObject({ synced: false, healthy: false })
      expect(s.mapper.status().lastError).toEqual(expect.any(String))
      if (s.source.heal === undefined)
        throw new Error(`${label}: a live source's harness must heal an unreadable source`)
      await s.source.heal()
      await eventually('the source read once readable', () => s.mapper.lookup(aliceId()) !== undefined)
      expect(s.mapper.status()).toMatchObject({ synced: true, healthy: true })
    })
  })
}
