// mapIdentity: the order in which backends and rule kinds are consulted, and what a failure does.
//
// FileMapper's name is fixed ("MountedFile"), so a chain of two FileMappers cannot show which
// backend answered. The second backend here is RulesMapper: a few lines implementing the Mapper
// interface over the production compileRules/lookupRules, named as any other backend. Chains of two
// FileMappers are used where the answering backend is told apart by its rule or username instead.

import { describe, expect, it, vi } from 'vitest'
import { MappingFailed, NotMapped } from '../../src/shared/errors.js'
import { mapIdentity, type ChainResult } from '../../src/mapping/chain.js'
import { FileMapper } from '../../src/mapping/file/index.js'
import { compileRules, lookupRules, type MappingDocument, type RuleSet } from '../../src/mapping/rules.js'
import type { PrivateDnsResolver } from '../../src/mapping/template.js'
import type { BackendMode, Identity, Mapper, Match, SourceStatus } from '../../src/mapping/types.js'
import { identityOf, sessionOf, userOf } from '../support/identities.js'

const RESERVED = ['aws:', 'eks:', 'amazon:', 'iam:', 'system:']

function doc(parts: Partial<MappingDocument>): MappingDocument {
  return { mapRoles: [], mapUsers: [], mapAccounts: [], ...parts }
}

function file(parts: Partial<MappingDocument>, reservedPrefixes: readonly string[] = []): FileMapper {
  return new FileMapper(doc(parts), { reservedPrefixes })
}

/** Another backend (any name) over the production rules; see the note at the top. */
class RulesMapper implements Mapper {
  readonly name: BackendMode
  readonly reservedPrefixes: readonly string[]
  readonly #rules: RuleSet
  readonly lookups: string[] = []

  constructor(name: BackendMode, parts: Partial<MappingDocument>, reservedPrefixes: readonly string[] = []) {
    const { rules, problems } = compileRules(doc(parts))
    expect(problems).toEqual([])
    this.name = name
    this.#rules = rules
    this.reservedPrefixes = reservedPrefixes
  }

  async start(): Promise<void> {}

  lookup(identity: Identity): Match | undefined {
    this.lookups.push(identity.canonicalArn)
    return lookupRules(this.#rules, identity)
  }

  accountRule(accountId: string): string | undefined {
    return this.#rules.accounts.get(accountId)
  }

  status(): SourceStatus {
    return { name: this.name, synced: true, counts: this.#rules.counts }
  }
}

/** Awaits mapIdentity, expecting this error class and exact message. */
async function expectRejects<E extends Error>(
  p: Promise<unknown>,
  cls: new (...args: never[]) => E,
  message: string,
): Promise<E> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(cls)
  expect((err as E).message).toBe(message)
  return err as E
}

// upstream's pkg/server/server_test.go TestAuthenticateVerifier*Mapping* at the mapping level.
// Upstream's fixture account 0123456789012 has 13 digits, which STS never reports: kube-iam-auth
// refuses such ARNs in mappings (see 'an account ID that is not 12 digits' below), so these cases
// use 012345678901.
describe("upstream's server_test.go mapping cases", () => {
  const roleIdentity = identityOf('arn:aws:iam::012345678901:role/Test', {
    accountId: '012345678901',
    userId: 'Test',
    sessionName: 'TestSession',
    accessKeyId: 'ABCDEF',
  })

  it('role mapping', async () => {
    const chain = [
      file({
        mapRoles: [
          { rolearn: 'arn:aws:iam::012345678901:role/Test', username: 'TestUser', groups: ['sys:admin', 'listers'] },
        ],
      }),
    ]
    expect(await mapIdentity(chain, roleIdentity, undefined)).toEqual<ChainResult>({
      username: 'TestUser',
      groups: ['sys:admin', 'listers'],
      source: 'MountedFile',
      rule: 'mapRoles[0]',
      kind: 'role',
    })
  })

  it('user mapping', async () => {
    const id = identityOf('arn:aws:iam::012345678901:user/Test', {
      accountId: '012345678901',
      userId: 'Test',
      accessKeyId: 'ABCDEF',
    })
    const chain = [
      file({
        mapUsers: [
          { userarn: 'arn:aws:iam::012345678901:user/Test', username: 'TestUser', groups: ['sys:admin', 'listers'] },
        ],
      }),
    ]
    expect(await mapIdentity(chain, id, undefined)).toEqual<ChainResult>({
      username: 'TestUser',
      groups: ['sys:admin', 'listers'],
      source: 'MountedFile',
      rule: 'mapUsers[0]',
      kind: 'user',
    })
  })

  it.each([
    ['a user', 'arn:aws:iam::012345678901:user/Test', 'arn:aws:iam::012345678901:user/Test'],
    ['an assumed role', 'arn:aws:sts::012345678901:assumed-role/Test/extra', 'arn:aws:iam::012345678901:role/Test'],
  ])('account mapping of %s: the canonical ARN, no groups', async (_name, arn, username) => {
    const expected: ChainResult = {
      username,
      groups: [],
      source: 'MountedFile',
      rule: 'mapAccounts[0]',
      kind: 'account',
    }
    const allow = () => file({ mapAccounts: ['012345678901'] }, RESERVED)
    expect(await mapIdentity([allow()], identityOf(arn), undefined)).toEqual(expected)
    // also when an empty backend precedes
    expect(await mapIdentity([new RulesMapper('CRD', {}), allow()], identityOf(arn), undefined)).toEqual(expected)
    expect(await mapIdentity([file({}), allow()], identityOf(arn), undefined)).toEqual(expected)
  })

  it("account mapping keeps the canonical ARN's case", async () => {
    const id = identityOf('arn:aws:sts::012345678901:assumed-role/MixedCase/Session')
    expect((await mapIdentity([file({ mapAccounts: ['012345678901'] })], id, undefined)).username).toBe(
      'arn:aws:iam::012345678901:role/MixedCase',
    )
  })

  it('node mapping through EC2', async () => {
    const resolve = vi.fn<PrivateDnsResolver>(async () => 'ip-172-31-27-14')
    const chain = [
      file({
        mapRoles: [
          {
            rolearn: 'arn:aws:iam::012345678901:role/TestNodeRole',
            username: 'system:node:{{EC2PrivateDNSName}}',
            groups: ['system:nodes', 'system:bootstrappers'],
          },
        ],
      }),
    ]
    const id = identityOf('arn:aws:sts::012345678901:assumed-role/TestNodeRole/i-0c6f21bf1f24f9708', {
      accountId: '012345678901',
    })
    expect(await mapIdentity(chain, id, resolve)).toEqual<ChainResult>({
      username: 'system:node:ip-172-31-27-14',
      groups: ['system:nodes', 'system:bootstrappers'],
      source: 'MountedFile',
      rule: 'mapRoles[0]',
      kind: 'role',
    })
    expect(resolve.mock.calls).toEqual([['i-0c6f21bf1f24f9708']])
  })

  it("an account ID that is not 12 digits, like upstream's fixture, is refused: it could never match", () => {
    const { problems } = compileRules({
      mapRoles: [{ rolearn: 'arn:aws:iam::0123456789012:role/Test', username: 'TestUser', groups: [] }],
      mapUsers: [],
      mapAccounts: [],
    })
    expect(problems).toEqual([
      {
        path: 'mapRoles[0].rolearn',
        message: "'0123456789012' in 'arn:aws:iam::0123456789012:role/Test' is not a valid AWS account ID (12 digits)",
        severity: 'error',
      },
    ])
  })

  // ReservedPrefixExists with [aws:, eks:, amazon:, iam:, system:]
  it.each([
    ['system:masters', true],
    ['test', false],
    ['eksb:test', false],
    ['eks:test', true],
    ['aws:x', true],
    ['amazon:x', true],
    ['iam:x', true],
    ['System:masters', false], // the comparison is case-sensitive, as upstream's
    ['xsystem:masters', false],
    ['system', false],
  ])('reserved prefixes: username %s is refused: %s', async (username, refused) => {
    const chain = [
      file({ mapRoles: [{ rolearn: 'arn:aws:iam::111122223333:role/r', username, groups: [] }] }, RESERVED),
    ]
    const p = mapIdentity(chain, sessionOf('111122223333', 'r', 's'), undefined)
    if (refused) {
      await expectRejects(
        p,
        MappingFailed,
        `invalid username '${username}' for mapper MountedFile (mapRoles[0]): ` +
          'username must not begin with the following prefixes: [aws: eks: amazon: iam: system:]',
      )
    } else {
      expect((await p).username).toBe(username)
    }
  })
})

describe('reserved prefixes', () => {
  it('are checked on the rendered username', async () => {
    const chain = [
      file({ mapRoles: [{ rolearn: 'arn:aws:iam::111122223333:role/r', username: '{{SessionName}}', groups: [] }] }, [
        'system:',
      ]),
    ]
    const err = await expectRejects(
      mapIdentity(chain, sessionOf('111122223333', 'r', 'system:admin'), undefined),
      MappingFailed,
      "invalid username 'system:admin' for mapper MountedFile (mapRoles[0]): username must not begin with the following prefixes: [system:]",
    )
    expect(err.transient).toBe(false)
  })

  it('are not checked on groups', async () => {
    const chain = [
      file(
        { mapUsers: [{ userarn: 'arn:aws:iam::111122223333:user/bob', username: 'bob', groups: ['system:masters'] }] },
        RESERVED,
      ),
    ]
    expect((await mapIdentity(chain, userOf('111122223333', 'bob'), undefined)).groups).toEqual(['system:masters'])
  })

  it('an empty prefix reserves nothing', async () => {
    const chain = [
      file({ mapUsers: [{ userarn: 'arn:aws:iam::111122223333:user/bob', username: 'bob', groups: [] }] }, ['']),
    ]
    expect((await mapIdentity(chain, userOf('111122223333', 'bob'), undefined)).username).toBe('bob')
  })

  it('are those of the backend that matched', async () => {
    const chain = [
      new RulesMapper('EKSConfigMap', {
        mapUsers: [{ userarn: 'arn:aws:iam::111122223333:user/bob', username: 'system:bob', groups: [] }],
      }),
      file({}, ['system:']),
    ]
    expect(await mapIdentity(chain, userOf('111122223333', 'bob'), undefined)).toMatchObject({
      username: 'system:bob',
      source: 'EKSConfigMap',
    })
  })

  it('a refused username denies at once: no later backend, no account allow-list', async () => {
    const later = new RulesMapper('EKSConfigMap', {
      mapRoles: [{ rolearn: 'arn:aws:iam::111122223333:role/r', username: 'fine', groups: [] }],
      mapAccounts: ['111122223333'],
    })
    const chain = [
      file(
        {
          mapRoles: [{ rolearn: 'arn:aws:iam::111122223333:role/r', username: 'eks:r', groups: [] }],
          mapAccounts: ['111122223333'],
        },
        RESERVED,
      ),
      later,
    ]
    await expectRejects(
      mapIdentity(chain, sessionOf('111122223333', 'r', 's'), undefined),
      MappingFailed,
      "invalid username 'eks:r' for mapper MountedFile (mapRoles[0]): username must not begin with the following prefixes: [aws: eks: amazon: iam: system:]",
    )
    expect(later.lookups).toEqual([])
  })

  it('do not apply to account-mapped identities (their username is an ARN)', async () => {
    const chain = [file({ mapAccounts: ['111122223333'] }, ['arn:'])]
    expect(await mapIdentity(chain, userOf('111122223333', 'bob'), undefined)).toMatchObject({
      username: 'arn:aws:iam::111122223333:user/bob',
      kind: 'account',
    })
  })
})

describe('template failures deny without falling through', () => {
  const nodeRole = {
    rolearn: 'arn:aws:iam::111122223333:role/node',
    username: 'system:node:{{EC2PrivateDNSName}}',
    groups: ['system:nodes'],
  }

  it('to a later backend or an account allow-list', async () => {
    const later = new RulesMapper('EKSConfigMap', {
      mapRoles: [{ rolearn: 'arn:aws:iam::111122223333:role/node', username: 'fallback', groups: [] }],
      mapAccounts: ['111122223333'],
    })
    const chain = [file({ mapRoles: [nodeRole], mapAccounts: ['111122223333'] }), later]
    const err = await expectRejects(
      mapIdentity(chain, sessionOf('111122223333', 'node', 'not-an-instance'), async () => 'never'),
      MappingFailed,
      'mapper MountedFile mapRoles[0]: error rendering username template "system:node:{{EC2PrivateDNSName}}": SessionName did not contain an instance id',
    )
    expect(err.transient).toBe(false)
    expect(err.cause).toBeInstanceOf(MappingFailed)
    expect(later.lookups).toEqual([])
  })

  it('names the group template and the backend', async () => {
    const chain = [
      new RulesMapper('DynamicFile', {
        mapUsers: [
          { userarn: 'arn:aws:iam::111122223333:user/bob', username: 'bob', groups: ['n-{{EC2PrivateDNSName}}'] },
        ],
      }),
    ]
    await expectRejects(
      mapIdentity(chain, userOf('111122223333', 'bob'), async () => 'never'),
      MappingFailed,
      'mapper DynamicFile mapUsers[0]: error rendering group template "n-{{EC2PrivateDNSName}}": SessionName did not contain an instance id',
    )
  })

  it('keeps an EC2 failure transient', async () => {
    const resolve: PrivateDnsResolver = async () => {
      throw new MappingFailed('EC2 DescribeInstances rate limit (15/s, burst 5) reached', { transient: true })
    }
    const err = await expectRejects(
      mapIdentity(
        [file({ mapRoles: [nodeRole], mapAccounts: ['111122223333'] })],
        sessionOf('111122223333', 'node', 'i-0123abcd'),
        resolve,
      ),
      MappingFailed,
      'mapper MountedFile mapRoles[0]: error rendering username template "system:node:{{EC2PrivateDNSName}}": ' +
        'EC2 DescribeInstances rate limit (15/s, burst 5) reached',
    )
    expect(err.transient).toBe(true)
  })

  it('passes errors that are not MappingFailed through unchanged', async () => {
    const bug = new TypeError('boom')
    const resolve: PrivateDnsResolver = async () => {
      throw bug
    }
    await expect(
      mapIdentity([file({ mapRoles: [nodeRole] })], sessionOf('111122223333', 'node', 'i-0123abcd'), resolve),
    ).rejects.toBe(bug)
  })
})

describe('precedence', () => {
  const account = '111122223333'
  const admin = sessionOf(account, 'Admin', 'jdoe')

  it("an explicit mapping in a later backend beats an allowed account in an earlier one (upstream's pkg/server/server.go doMapping lets an early allow-list win)", async () => {
    const chain = [
      file({ mapAccounts: [account] }),
      new RulesMapper('EKSConfigMap', {
        mapRoles: [{ rolearn: `arn:aws:iam::${account}:role/Admin`, username: 'admin', groups: ['system:masters'] }],
      }),
    ]
    expect(await mapIdentity(chain, admin, undefined)).toEqual<ChainResult>({
      username: 'admin',
      groups: ['system:masters'],
      source: 'EKSConfigMap',
      rule: 'mapRoles[0]',
      kind: 'role',
    })
  })

  it('the same with two FileMappers', async () => {
    const chain = [
      file({ mapAccounts: [account] }),
      file({ mapRoles: [{ rolearn: `arn:aws:iam::${account}:role/Admin`, username: 'admin', groups: [] }] }),
    ]
    expect(await mapIdentity(chain, admin, undefined)).toMatchObject({
      username: 'admin',
      rule: 'mapRoles[0]',
      kind: 'role',
    })
  })

  it('the first backend with an explicit match wins, even an SSO match over a later explicit role', async () => {
    const id = sessionOf(account, 'AWSReservedSSO_Dev_0123456789abcdef', 'jdoe')
    const chain = [
      new RulesMapper('EKSConfigMap', {
        mapRoles: [
          { sso: { permissionSetName: 'Dev', accountID: account }, username: 'dev:{{SessionName}}', groups: [] },
        ],
      }),
      file({
        mapRoles: [
          {
            rolearn: `arn:aws:iam::${account}:role/AWSReservedSSO_Dev_0123456789abcdef`,
            username: 'exact',
            groups: [],
          },
        ],
      }),
    ]
    expect(await mapIdentity(chain, id, undefined)).toEqual<ChainResult>({
      username: 'dev:jdoe',
      groups: [],
      source: 'EKSConfigMap',
      rule: 'mapRoles[0]',
      kind: 'sso',
    })
    expect(await mapIdentity([...chain].reverse(), id, undefined)).toMatchObject({
      username: 'exact',
      source: 'MountedFile',
      kind: 'role',
    })
  })

  it('within a backend an explicit role beats an SSO permission set', async () => {
    const id = sessionOf(account, 'AWSReservedSSO_Dev_0123456789abcdef', 'jdoe')
    const chain = [
      file({
        mapRoles: [
          { sso: { permissionSetName: 'Dev', accountID: account }, username: 'by-sso', groups: [] },
          {
            rolearn: `arn:aws:iam::${account}:role/AWSReservedSSO_Dev_0123456789abcdef`,
            username: 'by-role',
            groups: [],
          },
        ],
        mapAccounts: [account],
      }),
    ]
    expect(await mapIdentity(chain, id, undefined)).toMatchObject({
      username: 'by-role',
      rule: 'mapRoles[1]',
      kind: 'role',
    })
  })

  it('an explicit mapping in the same backend beats its account allow-list', async () => {
    const chain = [
      file({
        mapUsers: [{ userarn: `arn:aws:iam::${account}:user/bob`, username: 'bob', groups: [] }],
        mapAccounts: [account],
      }),
    ]
    expect(await mapIdentity(chain, userOf(account, 'bob'), undefined)).toMatchObject({ username: 'bob', kind: 'user' })
    expect(await mapIdentity(chain, userOf(account, 'carol'), undefined)).toMatchObject({
      username: `arn:aws:iam::${account}:user/carol`,
      rule: 'mapAccounts[0]',
      kind: 'account',
    })
  })

  it('account allow-lists apply in backend order', async () => {
    const chain = [
      new RulesMapper('CRD', {}),
      new RulesMapper('EKSConfigMap', { mapAccounts: ['444455556666', account] }),
      new RulesMapper('DynamicFile', { mapAccounts: [account] }),
    ]
    expect(await mapIdentity(chain, userOf(account, 'bob'), undefined)).toEqual<ChainResult>({
      username: `arn:aws:iam::${account}:user/bob`,
      groups: [],
      source: 'EKSConfigMap',
      rule: 'mapAccounts[1]',
      kind: 'account',
    })
  })

  it('every backend is asked for an explicit match before any allow-list', async () => {
    const first = new RulesMapper('EKSConfigMap', { mapAccounts: [account] })
    const second = new RulesMapper('DynamicFile', {})
    await mapIdentity([first, second], userOf(account, 'bob'), undefined)
    expect(first.lookups).toEqual([`arn:aws:iam::${account}:user/bob`])
    expect(second.lookups).toEqual([`arn:aws:iam::${account}:user/bob`])
  })
})

describe('NotMapped', () => {
  it.each<[string, () => Mapper[]]>([
    ['an empty chain', () => []],
    ['empty backends', () => [file({}), new RulesMapper('EKSConfigMap', {})]],
    [
      'rules for other identities and accounts',
      () => [
        file({
          mapRoles: [
            { rolearn: 'arn:aws:iam::111122223333:role/other', username: 'o', groups: [] },
            { sso: { permissionSetName: 'Dev', accountID: '111122223333' }, username: 'd', groups: [] },
          ],
          mapUsers: [{ userarn: 'arn:aws:iam::111122223333:user/bob', username: 'bob', groups: [] }],
          mapAccounts: ['444455556666'],
        }),
      ],
    ],
  ])('%s', async (_name, chain) => {
    const err = await expectRejects(
      mapIdentity(chain(), sessionOf('111122223333', 'Admin', 's'), undefined),
      NotMapped,
      'identity is not mapped',
    )
    expect(err.code).toBe('ERR_NOT_MAPPED')
  })
})

describe('empty usernames', () => {
  it('denies when the username template renders to nothing (e.g. {{SessionName}} for an IAM user)', async () => {
    const mapper = new FileMapper({
      mapRoles: [],
      mapUsers: [{ userarn: 'arn:aws:iam::111122223333:user/alice', username: '{{SessionName}}', groups: [] }],
      mapAccounts: [],
    })
    await expect(mapIdentity([mapper], userOf('111122223333', 'alice'), undefined)).rejects.toThrow(
      new MappingFailed('mapper MountedFile mapUsers[0]: the username template rendered an empty username'),
    )
  })
})
