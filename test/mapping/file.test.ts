import { describe, expect, it } from 'vitest'
import { ConfigInvalid } from '../../src/shared/errors.js'
import { FileMapper } from '../../src/mapping/file/index.js'
import type { MappingDocument } from '../../src/mapping/rules.js'

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
})

// What every backend does (lookups, ties, accounts, status, start) is the Mapper contract's, run
// against MountedFile in mapper-contract.test.ts; what is left here is particular to it.
describe('FileMapper', () => {
  it('status(): the version is the config source it was given, "config" by default', () => {
    const mapper = new FileMapper(doc({}), { source: '/etc/kia/server.yaml' })
    expect(mapper.status().version).toBe('/etc/kia/server.yaml')
    expect(new FileMapper(doc({})).status().version).toBe('config')
  })
})
