import { describe, expect, it } from 'vitest'
import { ConfigInvalid } from '../../src/shared/errors.js'
import { FileMapper } from '../../src/mapping/file/index.js'
import type { MappingDocument } from '../../src/mapping/rules.js'
import type { RoleMapping, UserMapping } from '../../src/mapping/types.js'
import { sessionOf, userOf } from '../support/identities.js'

function doc(parts: Partial<MappingDocument>): MappingDocument {
  return { mapRoles: [], mapUsers: [], mapAccounts: [], ...parts }
}

/** Constructs, expecting a ConfigInvalid. */
function construct(d: MappingDocument, opts?: ConstructorParameters<typeof FileMapper>[1]): ConfigInvalid {
  let thrown: unknown
  try {
    new FileMapper(d, opts)
  } catch (err) {
    thrown = err
  }
  expect(thrown).toBeInstanceOf(ConfigInvalid)
  expect((thrown as ConfigInvalid).code).toBe('ERR_CONFIG_INVALID')
  return thrown as ConfigInvalid
}

describe('FileMapper: invalid documents', () => {
  it('throws ConfigInvalid listing every invalid entry with its path', () => {
    const err = construct(
      doc({
        mapRoles: [
          { rolearn: 'arn:aws:iam::111122223333:role/ok', username: 'ok', groups: [] },
          { rolearn: 'not-an-arn', username: 'u', groups: [] },
          { username: 'nobody', groups: [] },
          {
            sso: { permissionSetName: 'Dev*', accountID: '111122223333', partition: 'aws-nk' },
            username: 'u-{{Foo}}',
            groups: [],
          },
        ],
        mapUsers: [
          { userarn: '', username: 'x', groups: [] },
          { userarn: 'arn:aws:iam::111122223333:user/bob', username: '', groups: ['a', ''] },
        ],
        mapAccounts: ['111122223333', '12345'],
      }),
      { source: '/etc/kia/server.yaml' },
    )
    const problems = [
      'server.mapUsers[0].userarn: value for userarn must be supplied',
      'server.mapUsers[1].username: username must be a non-empty string',
      'server.mapUsers[1].groups: groups must be a list of non-empty strings',
      "server.mapRoles[1].rolearn: error canonicalizing ARN: arn 'not-an-arn' is invalid: 'arn: invalid prefix'",
      'server.mapRoles[2]: one of rolearn or SSO must be supplied',
      'server.mapRoles[3].username: unknown template variable {{Foo}} (known: {{EC2PrivateDNSName}}, {{AccountID}}, {{SessionName}}, {{SessionNameRaw}}, {{AccessKeyID}})',
      "server.mapRoles[3].sso.permissionSetName: PermissionSetName 'Dev*' is not a valid AWS SSO PermissionSet Name",
      "server.mapRoles[3].sso.partition: partition 'aws-nk' is not a valid AWS partition",
      "server.mapAccounts[1]: '12345' is not a valid AWS account ID (12 digits; quote it in YAML)",
    ]
    expect(err.problems).toEqual(problems)
    expect(err.message).toBe(`invalid server role mappings in /etc/kia/server.yaml:\n  - ${problems.join('\n  - ')}`)
  })

  it('names "config" when no source is given', () => {
    const err = construct(doc({ mapRoles: [{ username: 'u', groups: [] }] }))
    expect(err.message).toBe(
      'invalid server role mappings in config:\n  - server.mapRoles[0]: one of rolearn or SSO must be supplied',
    )
  })

  it('is not stopped by warnings: duplicates are accepted, the first entry wins', () => {
    const mapper = new FileMapper(
      doc({
        mapUsers: [
          { userarn: 'arn:aws:iam::111122223333:user/bob', username: 'first', groups: [] },
          { userarn: 'arn:aws:iam::111122223333:user/BOB', username: 'second', groups: [] },
        ],
      }),
    )
    expect(mapper.lookup(userOf('111122223333', 'bob'))?.mapping.username).toBe('first')
    expect(mapper.status().counts).toEqual({ roles: 0, users: 1, accounts: 0 })
  })
})

describe('FileMapper', () => {
  const roles: RoleMapping[] = [
    {
      rolearn: 'arn:aws:iam::111122223333:role/team/Admin',
      username: 'admin:{{SessionName}}',
      groups: ['system:masters'],
    },
    {
      rolearn: 'arn:aws:iam::111122223333:role/node',
      username: 'system:node:{{EC2PrivateDNSName}}',
      groups: ['system:nodes'],
    },
    {
      sso: { permissionSetName: 'ReadOnly', accountID: '111122223333' },
      username: 'ro:{{SessionName}}',
      groups: ['view'],
    },
  ]
  const users: UserMapping[] = [{ userarn: 'arn:aws:iam::111122223333:user/alice', username: 'alice', groups: [] }]
  const mapper = new FileMapper(
    doc({ mapRoles: roles, mapUsers: users, mapAccounts: ['444455556666', '777788889999', '444455556666'] }),
    {
      reservedPrefixes: ['aws:', 'system:'],
      source: 'server config',
    },
  )

  it('is the MountedFile backend with the given reserved prefixes', () => {
    expect(mapper.name).toBe('MountedFile')
    expect(mapper.reservedPrefixes).toEqual(['aws:', 'system:'])
    expect(new FileMapper(doc({})).reservedPrefixes).toEqual([])
  })

  it('starts at once', async () => {
    await expect(mapper.start()).resolves.toBeUndefined()
  })

  it('status(): synced, its source as version, counts of compiled rules (SSO counted as roles, accounts deduplicated)', () => {
    const status = mapper.status()
    expect(status).toEqual({
      name: 'MountedFile',
      synced: true,
      version: 'server config',
      lastSuccess: expect.any(String),
      counts: { roles: 3, users: 1, accounts: 2 },
    })
    expect(new Date(status.lastSuccess!).toISOString()).toBe(status.lastSuccess)
    expect(status.lastError).toBeUndefined()
  })

  it('status() of an empty document', () => {
    expect(new FileMapper(doc({})).status()).toMatchObject({
      name: 'MountedFile',
      synced: true,
      version: 'config',
      counts: { roles: 0, users: 0, accounts: 0 },
    })
  })

  it('lookup(): the explicit rule, unrendered', () => {
    expect(mapper.lookup(sessionOf('111122223333', 'Admin', 'jdoe'))).toEqual({
      mapping: { username: 'admin:{{SessionName}}', groups: ['system:masters'] },
      rule: 'mapRoles[0]',
      kind: 'role',
    })
    expect(mapper.lookup(sessionOf('111122223333', 'AWSReservedSSO_ReadOnly_0123456789abcdef', 'jdoe'))).toMatchObject({
      rule: 'mapRoles[2]',
      kind: 'sso',
    })
    expect(mapper.lookup(userOf('111122223333', 'alice'))).toMatchObject({ rule: 'mapUsers[0]', kind: 'user' })
    expect(mapper.lookup(userOf('444455556666', 'alice'))).toBeUndefined()
  })

  it('accountRule(): the first mapAccounts entry of the account', () => {
    expect(mapper.accountRule('444455556666')).toBe('mapAccounts[0]')
    expect(mapper.accountRule('777788889999')).toBe('mapAccounts[1]')
    expect(mapper.accountRule('111122223333')).toBeUndefined()
    expect(mapper.accountRule('')).toBeUndefined()
  })
})
