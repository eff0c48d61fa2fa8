import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { parseDuration } from '../../src/shared/reader.js'
import {
  loadServerConfig,
  type LoadedConfig,
  type ServerConfig,
  type ServerFlags,
} from '../../src/config/server-config.js'
import { ConfigInvalid } from '../../src/shared/errors.js'
import { FileMapper } from '../../src/mapping/file/index.js'
import { lookupRules, compileRules } from '../../src/mapping/rules.js'
import { sessionOf } from '../support/identities.js'

const dir = mkdtempSync(join(tmpdir(), 'kia-server-config-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let n = 0
/** Writes YAML to a fresh temp file and returns its path. */
function write(yaml: string): string {
  const file = join(dir, `config-${++n}.yaml`)
  writeFileSync(file, yaml)
  return file
}

function load(yaml: string, flags: ServerFlags = {}, env: Record<string, string | undefined> = {}): LoadedConfig {
  return loadServerConfig(write(yaml), flags, env)
}

/** Loads, expecting ConfigInvalid; returns the error and the file it was loaded from. */
function loadInvalid(yaml: string, flags: ServerFlags = {}): { err: ConfigInvalid; file: string } {
  const file = write(yaml)
  let thrown: unknown
  try {
    loadServerConfig(file, flags)
  } catch (err) {
    thrown = err
  }
  expect(thrown).toBeInstanceOf(ConfigInvalid)
  expect((thrown as ConfigInvalid).code).toBe('ERR_CONFIG_INVALID')
  return { err: thrown as ConfigInvalid, file }
}

/** Loads, expecting exactly these `path: message` problems, and checks the whole message. */
function expectProblems(yaml: string, problems: string[], flags: ServerFlags = {}): void {
  const { err, file } = loadInvalid(yaml, flags)
  expect(err.problems).toEqual(problems)
  expect(err.message).toBe(`invalid configuration in ${file}:\n  - ${problems.join('\n  - ')}`)
}

const warning = (path: string, message: string) => ({ path, message, severity: 'warning' })

const DEFAULT_CONFIG: ServerConfig = {
  clusterId: 'c1',
  clusterIds: [],
  partition: 'aws',
  extraRegions: [],
  address: '127.0.0.1',
  port: 21362,
  hostname: 'localhost',
  stateDir: '/var/aws-iam-authenticator',
  generateKubeconfig: '/etc/kubernetes/aws-iam-authenticator/kubeconfig.yaml',
  kubeconfigPregenerated: false,
  kubeconfig: undefined,
  master: undefined,
  backendMode: ['MountedFile'],
  mappings: { mapRoles: [], mapUsers: [], mapAccounts: [] },
  scrubbedAccounts: [],
  reservedPrefixes: {},
  ec2: { describeInstancesRoleArn: undefined, sourceArn: undefined, qps: 15, burst: 5 },
  dynamicFile: undefined,
  dynamicBackendModePath: undefined,
  identityCacheTtlMs: 120_000,
  identityCacheSize: 100_000,
  stsTimeoutMs: 10_000,
  stsMaxConcurrency: 64,
  stsQueueTimeoutMs: 5_000,
  maxRequestBytes: 65_536,
  shutdownTimeoutMs: 25_000,
  callerAuth: false,
  callerRateLimit: { perSecond: 0, burst: 1000 },
  auditLog: true,
}

describe('defaults', () => {
  it('a file with only clusterID', () => {
    expect(load('clusterID: c1\n')).toEqual({ config: DEFAULT_CONFIG, warnings: [] })
  })

  it('an empty server section', () => {
    expect(load('clusterID: c1\nserver:\n').config).toEqual(DEFAULT_CONFIG)
    expect(load('clusterID: c1\nserver: {}\n').config).toEqual(DEFAULT_CONFIG)
  })

  it('no file at all, the cluster ID from a flag', () => {
    expect(loadServerConfig(undefined, { clusterId: 'c1' })).toEqual({ config: DEFAULT_CONFIG, warnings: [] })
  })

  it('empty strings count as unset', () => {
    const { config } = load('clusterID: c1\nserver:\n  address: ""\n  hostname: ""\n  stateDir: ""\n')
    expect(config).toMatchObject({
      address: '127.0.0.1',
      hostname: 'localhost',
      stateDir: '/var/aws-iam-authenticator',
    })
  })
})

describe('every key', () => {
  it('is read from the file', () => {
    const { config, warnings } = load(`
clusterID: c1
clusterIDs: [c1-old, c1.blue_2]
server:
  partition: aws-cn
  address: 0.0.0.0
  port: 8443
  hostname: kia.example.com
  stateDir: /state
  generateKubeconfig: /state/kubeconfig.yaml
  kubeconfigPregenerated: true
  kubeconfig: /root/.kube/config
  master: https://10.0.0.1:6443
  backendMode: [MountedFile, DynamicFile]
  dynamicfilepath: /var/kia/mapping.json
  dynamicfileUserIDStrict: true
  dynamicBackendModePath: /var/kia/modes.json
  scrubbedAccounts: ["111122223333"]
  ec2DescribeInstancesRoleARN: arn:aws-cn:iam::111122223333:role/describe
  sourceARN: arn:aws-cn:eks:cn-north-1:111122223333:cluster/c1
  ec2DescribeInstancesQps: 2.5
  ec2DescribeInstancesBurst: 10
  identityCacheTTL: 30s
  identityCacheSize: 0
  stsTimeout: 2s
  stsMaxConcurrency: 8
  stsQueueTimeout: 500ms
  maxRequestBytes: 2048
  shutdownTimeout: 1m
  callerAuth: true
  callerRateLimitPerSecond: 0.5
  callerRateLimitBurst: 3
  auditLog: false
  healthPort: 21363
  featureGates: {}
`)
    expect(warnings).toEqual([
      // the file sets every key, Kubernetes connection keys included, without a Kubernetes backend
      {
        path: 'server.kubeconfig',
        message: 'unused: only the EKSConfigMap and CRD backends talk to the Kubernetes API',
        severity: 'warning',
      },
      {
        path: 'server.master',
        message: 'unused: only the EKSConfigMap and CRD backends talk to the Kubernetes API',
        severity: 'warning',
      },
      {
        path: 'server.dynamicBackendModePath',
        message: 'not supported by kube-iam-auth (ignored): the backend chain is fixed at start-up',
        severity: 'warning',
      },
    ])
    expect(config).toEqual<ServerConfig>({
      ...DEFAULT_CONFIG,
      clusterIds: ['c1-old', 'c1.blue_2'],
      partition: 'aws-cn',
      address: '0.0.0.0',
      port: 8443,
      hostname: 'kia.example.com',
      stateDir: '/state',
      generateKubeconfig: '/state/kubeconfig.yaml',
      kubeconfigPregenerated: true,
      kubeconfig: '/root/.kube/config',
      master: 'https://10.0.0.1:6443',
      backendMode: ['MountedFile', 'DynamicFile'],
      dynamicFile: { path: '/var/kia/mapping.json', userIdStrict: true },
      dynamicBackendModePath: '/var/kia/modes.json',
      scrubbedAccounts: ['111122223333'],
      ec2: {
        describeInstancesRoleArn: 'arn:aws-cn:iam::111122223333:role/describe',
        sourceArn: 'arn:aws-cn:eks:cn-north-1:111122223333:cluster/c1',
        qps: 2.5,
        burst: 10,
      },
      identityCacheTtlMs: 30_000,
      identityCacheSize: 0,
      stsTimeoutMs: 2_000,
      stsMaxConcurrency: 8,
      stsQueueTimeoutMs: 500,
      maxRequestBytes: 2048,
      shutdownTimeoutMs: 60_000,
      callerAuth: true,
      callerRateLimit: { perSecond: 0.5, burst: 3 },
      auditLog: false,
    })
  })

  it('flags override the file', () => {
    const flags: ServerFlags = {
      clusterId: 'from-flag',
      clusterIds: ['flag-blue'],
      partition: 'aws-us-gov',
      address: '10.0.0.5',
      port: 9000,
      hostname: 'flag.example.com',
      stateDir: '/flag-state',
      generateKubeconfig: '/flag-state/kc.yaml',
      kubeconfigPregenerated: false,
      kubeconfig: '/flag/kubeconfig',
      master: 'https://flag:6443',
      backendMode: ['EKSConfigMap', 'File'],
      ec2Qps: 1,
      ec2Burst: 2,
    }
    const { config, warnings } = load(
      `
clusterID: from-file
clusterIDs: [file-blue, file-green]
server:
  partition: aws-cn
  address: 0.0.0.0
  port: 8443
  hostname: file.example.com
  stateDir: /file-state
  generateKubeconfig: /file-state/kc.yaml
  kubeconfigPregenerated: true
  kubeconfig: /file/kubeconfig
  master: https://file:6443
  backendMode: [CRD]
  ec2DescribeInstancesQps: 20
  ec2DescribeInstancesBurst: 30
`,
      flags,
      { KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID: 'from-env' },
    )
    expect(config).toMatchObject({
      clusterId: 'from-flag',
      clusterIds: ['flag-blue'],
      partition: 'aws-us-gov',
      address: '10.0.0.5',
      port: 9000,
      hostname: 'flag.example.com',
      stateDir: '/flag-state',
      generateKubeconfig: '/flag-state/kc.yaml',
      kubeconfigPregenerated: false,
      kubeconfig: '/flag/kubeconfig',
      master: 'https://flag:6443',
      backendMode: ['EKSConfigMap', 'MountedFile'],
      ec2: { qps: 1, burst: 2 },
    })
    expect(warnings).toEqual([
      warning('server.backendMode[1]', 'backend-mode "File" is deprecated, use "MountedFile" instead'),
    ])
  })

  it('a flag value that is invalid is reported like the file value it replaces', () => {
    expectProblems(
      'clusterID: c1\n',
      [
        "server.partition: invalid partition 'mars' (valid: aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc)",
      ],
      {
        partition: 'mars',
      },
    )
  })
})

describe('cluster ID', () => {
  const env = { KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID: 'from-env' }

  it('comes from KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID when the file has none', () => {
    expect(load('server: {}\n', {}, env).config.clusterId).toBe('from-env')
    expect(loadServerConfig(undefined, {}, env).config.clusterId).toBe('from-env')
  })

  it('the flag wins over the environment', () => {
    expect(load('server: {}\n', { clusterId: 'from-flag' }, env).config.clusterId).toBe('from-flag')
  })

  it.each([
    ['missing', 'server: {}\n'],
    ['empty', 'clusterID: ""\n'],
    ['null', 'clusterID:\n'],
  ])('%s: "cluster ID cannot be empty"', (_name, yaml) => {
    expectProblems(yaml, ['clusterID: cluster ID cannot be empty (set clusterID or --cluster-id)'])
  })

  it('missing with no file names the absence of a file', () => {
    expect(() => loadServerConfig(undefined)).toThrow(
      new ConfigInvalid('invalid configuration in (no config file)', [
        'clusterID: cluster ID cannot be empty (set clusterID or --cluster-id)',
      ]),
    )
  })
})

describe('clusterIDs: cluster IDs accepted alongside clusterID', () => {
  it('a list, kept in order; a whitespace-separated string is a list too', () => {
    expect(load('clusterID: green\nclusterIDs: [blue, old-name]\n')).toEqual({
      config: { ...DEFAULT_CONFIG, clusterId: 'green', clusterIds: ['blue', 'old-name'] },
      warnings: [],
    })
    expect(load('clusterID: green\nclusterIDs: blue old-name\n').config.clusterIds).toEqual(['blue', 'old-name'])
    expect(load('clusterID: green\nclusterids: []\n').config.clusterIds).toEqual([])
  })

  it('four are accepted; five or more are an error that says what each one costs', () => {
    expect(load('clusterID: c\nclusterIDs: [a, b, d, e]\n').config.clusterIds).toEqual(['a', 'b', 'd', 'e'])
    expectProblems('clusterID: c\nclusterIDs: [a, b, d, e, f]\n', [
      'clusterIDs: at most 4 cluster IDs besides clusterID, got 5: a token names its ID only inside its signature, ' +
        'so each one listed costs a token for none of them (a forged one) one more STS call',
    ])
  })

  it('every entry that is empty, unusable, clusterID itself or listed twice is an error of its own', () => {
    expectProblems('clusterID: green\nclusterIDs: ["", "blue green", green, blue, "gr\\u00e9en", blue]\n', [
      'clusterIDs: at most 4 cluster IDs besides clusterID, got 6: a token names its ID only inside its signature, ' +
        'so each one listed costs a token for none of them (a forged one) one more STS call',
      'clusterIDs[0]: empty: a cluster ID cannot be empty',
      'clusterIDs[1]: "blue green" is not a usable cluster ID: only visible ASCII characters, no spaces (tokens carry it signed in the x-k8s-aws-id header)',
      'clusterIDs[2]: "green" is clusterID already: list only the IDs accepted alongside it',
      'clusterIDs[4]: "gréen" is not a usable cluster ID: only visible ASCII characters, no spaces (tokens carry it signed in the x-k8s-aws-id header)',
      'clusterIDs[5]: "blue" is listed twice (also clusterIDs[3])',
    ])
  })

  it('cluster IDs are compared exactly (the signature is): IDs differing in case are distinct', () => {
    expect(load('clusterID: green\nclusterIDs: [Green, GREEN]\n').config.clusterIds).toEqual(['Green', 'GREEN'])
  })

  it('not a list of strings', () => {
    expectProblems('clusterID: c\nclusterIDs: {blue: true}\n', ['clusterIDs: must be a list of strings, got a mapping'])
    expectProblems('clusterID: c\nclusterIDs: [blue, 7]\n', ['clusterIDs: must be a list of strings, got a list'])
  })

  it('--cluster-ids replaces the file list, and its problems say they come from the flag', () => {
    expect(load('clusterID: green\nclusterIDs: [blue]\n', { clusterIds: ['old'] }).config.clusterIds).toEqual(['old'])
    expectProblems(
      'clusterID: green\nclusterIDs: [blue]\n',
      ['clusterIDs[1]: "green" (from --cluster-ids) is clusterID already: list only the IDs accepted alongside it'],
      {
        clusterIds: ['blue', 'green'],
      },
    )
  })

  it('the --cluster-id flag that changes clusterID is what an entry is compared with', () => {
    expectProblems(
      'clusterID: green\nclusterIDs: [blue]\n',
      ['clusterIDs[0]: "blue" is clusterID already: list only the IDs accepted alongside it'],
      {
        clusterId: 'blue',
      },
    )
  })
})

describe('keys are case-insensitive at every level', () => {
  it('crazy-case keys', () => {
    const { config, warnings } = load(`
CLUSTERid: crazy
SeRvEr:
  PoRt: 1234
  ADDRESS: 0.0.0.0
  backendmode: [MountedFile]
  ReservedPrefixConfig:
    - BACKENDMODE: MountedFile
      usernameprefixreservelist: ['aws:']
  MAPROLES:
    - RoLeArN: arn:aws:iam::111122223333:role/Admin
      UserName: admin
      GROUPS: [system:masters]
    - sSo:
        PERMISSIONSETNAME: ReadOnly
        AccountId: "111122223333"
        PARTITION: aws
      username: ro
  mapusers:
    - UserARN: arn:aws:iam::111122223333:user/alice
      USERNAME: alice
      UserId: AIDAEXAMPLE
  MapAccounts: ["444455556666"]
  IDENTITYCACHETTL: 1m
`)
    expect(warnings).toEqual([])
    expect(config).toMatchObject({
      clusterId: 'crazy',
      port: 1234,
      address: '0.0.0.0',
      identityCacheTtlMs: 60_000,
      reservedPrefixes: { MountedFile: ['aws:'] },
    })
    expect(config.mappings).toEqual({
      mapRoles: [
        {
          rolearn: 'arn:aws:iam::111122223333:role/Admin',
          sso: undefined,
          username: 'admin',
          groups: ['system:masters'],
          userid: undefined,
        },
        {
          rolearn: undefined,
          sso: { permissionSetName: 'ReadOnly', accountID: '111122223333', partition: 'aws' },
          username: 'ro',
          groups: undefined,
          userid: undefined,
        },
      ],
      mapUsers: [
        {
          userarn: 'arn:aws:iam::111122223333:user/alice',
          username: 'alice',
          groups: undefined,
          userid: 'AIDAEXAMPLE',
        },
      ],
      mapAccounts: ['444455556666'],
    })
    const mapper = new FileMapper(config.mappings)
    expect(mapper.lookup(sessionOf('111122223333', 'AWSReservedSSO_ReadOnly_abc', 's'))).toMatchObject({
      rule: 'mapRoles[1]',
      kind: 'sso',
    })
  })

  it('a key written twice in different case is an error', () => {
    expectProblems(
      'clusterID: a\nCLUSTERID: b\nserver:\n  port: 1\n  Port: 2\n  mapRoles:\n    - rolearn: arn:aws:iam::111122223333:role/a\n      RoleArn: arn:aws:iam::111122223333:role/b\n      username: u\n',
      [
        'CLUSTERID: duplicate key (also written as "clusterID"; keys are case-insensitive)',
        'server.Port: duplicate key (also written as "port"; keys are case-insensitive)',
        'server.mapRoles[0].RoleArn: duplicate key (also written as "rolearn"; keys are case-insensitive)',
      ],
    )
  })

  it('the same key twice in the same case is a YAML error', () => {
    const { err, file } = loadInvalid('clusterID: a\nclusterID: b\n')
    expect(err.message).toContain(`config file ${file} is not valid YAML: duplicated mapping key in "${file}" (2:1)`)
  })
})

describe('the example file config/server.example.yaml', () => {
  const example = fileURLToPath(new URL('../../config/server.example.yaml', import.meta.url))

  it('loads without errors or warnings', () => {
    const { config, warnings } = loadServerConfig(example)
    expect(warnings).toEqual([])
    expect(config).toMatchObject({
      clusterId: 'example-cluster',
      address: '127.0.0.1',
      port: 21362,
      hostname: 'localhost',
      partition: 'aws',
      backendMode: ['MountedFile'],
      reservedPrefixes: { MountedFile: ['aws:', 'eks:', 'amazon:', 'iam:'] },
      identityCacheTtlMs: 120_000,
      identityCacheSize: 100_000,
      stsTimeoutMs: 10_000,
      stsMaxConcurrency: 64,
      stsQueueTimeoutMs: 5_000,
    })
    expect(config.mappings.mapRoles).toHaveLength(3)
    expect(config.mappings.mapUsers).toHaveLength(1)
    expect(config.mappings.mapAccounts).toEqual([])
    expect(config.scrubbedAccounts).toEqual([])
  })

  it('its mappings compile cleanly and map what its comments say', () => {
    const { config } = loadServerConfig(example)
    const { rules, problems } = compileRules(config.mappings, 'server.')
    expect(problems).toEqual([])
    expect(lookupRules(rules, sessionOf('111122223333', 'KubernetesAdmin', 'jdoe'))).toMatchObject({
      rule: 'mapRoles[0]',
    })
    expect(
      lookupRules(rules, sessionOf('111122223333', 'AWSReservedSSO_ReadOnly_0123456789abcdef', 'jdoe')),
    ).toMatchObject({ rule: 'mapRoles[2]', kind: 'sso' })
  })
})

describe('account IDs', () => {
  it('12-digit unquoted YAML integers are accepted', () => {
    const { config } = load(`
clusterID: c1
server:
  mapAccounts: [111122223333, "444455556666"]
  scrubbedAccounts: [777788889999]
  mapRoles:
    - sso: {permissionSetName: Dev, accountID: 111122223333}
      username: dev
`)
    expect(config.mappings.mapAccounts).toEqual(['111122223333', '444455556666'])
    expect(config.scrubbedAccounts).toEqual(['777788889999'])
    expect(config.mappings.mapRoles[0]!.sso?.accountID).toBe('111122223333')
  })

  it('a whitespace-separated string is a list', () => {
    const { config } = load(
      'clusterID: c1\nserver:\n  scrubbedAccounts: "111122223333  444455556666"\n  mapAccounts: "777788889999"\n',
    )
    expect(config.scrubbedAccounts).toEqual(['111122223333', '444455556666'])
    expect(config.mappings.mapAccounts).toEqual(['777788889999'])
  })

  it('012345678901 unquoted loses its leading zero and is rejected, with a hint to quote (reported once)', () => {
    expectProblems(
      `
clusterID: c1
server:
  mapAccounts: [012345678901]
  scrubbedAccounts: [012345678901]
  mapRoles:
    - sso: {permissionSetName: Dev, accountID: 012345678901}
      username: dev
`,
      [
        "server.mapRoles[0].sso.accountID: '12345678901' is not a valid AWS account ID (12 digits; quote account IDs in YAML)",
        "server.mapAccounts[0]: '12345678901' is not a valid AWS account ID (12 digits; quote account IDs in YAML)",
        "server.scrubbedAccounts[0]: '12345678901' is not a valid AWS account ID (12 digits; quote account IDs in YAML)",
      ],
    )
  })

  it('quoted, it is kept', () => {
    expect(load('clusterID: c1\nserver:\n  mapAccounts: ["012345678901"]\n').config.mappings.mapAccounts).toEqual([
      '012345678901',
    ])
  })

  it.each([
    [
      'a list item that is a mapping',
      '[{a: 1}]',
      "server.mapAccounts[0]: '[object Object]' is not a valid AWS account ID (12 digits; quote account IDs in YAML)",
    ],
    [
      'too long',
      '["1111222233334"]',
      "server.mapAccounts[0]: '1111222233334' is not a valid AWS account ID (12 digits; quote account IDs in YAML)",
    ],
    ['a mapping', '{a: 1}', 'server.mapAccounts: must be a list of account IDs, got a mapping'],
  ])('%s', (_name, value, problem) => {
    expectProblems(`clusterID: c1\nserver:\n  mapAccounts: ${value}\n`, [problem])
  })
})

describe('server mapping rules are checked while loading (so errors name the file)', () => {
  it('every invalid entry, located', () => {
    expectProblems(
      `
clusterID: c1
server:
  mapRoles:
    - rolearn: arn:aws:iam::111122223333:role/ok
      username: ok
    - rolearn: not-an-arn
      username: x
    - username: nobody
    - sso: {permissionSetName: "Dev*", accountID: "111122223333", partition: aws-nk}
      username: "u-{{Foo}}"
  mapUsers:
    - userarn: arn:aws:iam::111122223333:role/r
      username: r
`,
      [
        "server.mapUsers[0].userarn: 'arn:aws:iam::111122223333:role/r' is a role ARN; map it under mapRoles",
        "server.mapRoles[1].rolearn: error canonicalizing ARN: arn 'not-an-arn' is invalid: 'arn: invalid prefix'",
        'server.mapRoles[2]: one of rolearn or SSO must be supplied',
        'server.mapRoles[3].username: unknown template variable {{Foo}} (known: {{EC2PrivateDNSName}}, {{AccountID}}, {{SessionName}}, {{SessionNameRaw}}, {{AccessKeyID}})',
        "server.mapRoles[3].sso.permissionSetName: PermissionSetName 'Dev*' is not a valid AWS SSO PermissionSet Name",
        "server.mapRoles[3].sso.partition: partition 'aws-nk' is not a valid AWS partition",
      ],
    )
  })

  it('a type error is reported once, by the reader', () => {
    expectProblems(
      'clusterID: c1\nserver:\n  mapRoles:\n    - rolearn: arn:aws:iam::111122223333:role/a\n      username: 5\n      groups: a\n',
      [
        'server.mapRoles[0].username: must be a string, got number 5',
        'server.mapRoles[0].groups: must be a list of strings, got string "a"',
      ],
    )
    expectProblems('clusterID: c1\nserver:\n  mapRoles: [just-a-string]\n', ['server.mapRoles[0]: must be a mapping'])
  })

  it('duplicate rules are start-up warnings', () => {
    const { warnings } = load(`
clusterID: c1
server:
  mapRoles:
    - rolearn: arn:aws:iam::111122223333:role/Admin
      username: first
    - rolearn: arn:aws:iam::111122223333:role/ops/admin
      username: second
`)
    expect(warnings).toEqual([
      warning('server.mapRoles[1].rolearn', 'duplicate of mapRoles[0] (role paths are ignored); the first entry wins'),
    ])
  })

  it('are not checked when MountedFile is not a backend (they are not used; upstream does not check them either)', () => {
    const { config } = load(
      'clusterID: c1\nserver:\n  backendMode: [EKSConfigMap]\n  mapRoles:\n    - username: nobody\n',
    )
    expect(config.backendMode).toEqual(['EKSConfigMap'])
  })
})

describe('wrong types', () => {
  it.each([
    ['port as a string', 'server:\n  port: "8080"', 'server.port: must be an integer, got string "8080"'],
    ['port out of range', 'server:\n  port: 70000', 'server.port: must be an integer >= 0 and <= 65535, got 70000'],
    ['port negative', 'server:\n  port: -1', 'server.port: must be an integer >= 0 and <= 65535, got -1'],
    ['port fractional', 'server:\n  port: 80.5', 'server.port: must be an integer >= 0 and <= 65535, got 80.5'],
    ['address as a number', 'server:\n  address: 5', 'server.address: must be a string, got number 5'],
    [
      'kubeconfigPregenerated as a string',
      'server:\n  kubeconfigPregenerated: "yes"',
      'server.kubeconfigPregenerated: must be true or false, got string "yes"',
    ],
    ['server as a list', 'server: [a]', 'server: must be a mapping'],
    ['server as a string', 'server: x', 'server: must be a mapping'],
    [
      'mapRoles as a string (aws-auth style)',
      'server:\n  mapRoles: |\n    - rolearn: x',
      'server.mapRoles: must be a list, got string "- rolearn: x\\n"',
    ],
    ['mapUsers as a mapping', 'server:\n  mapUsers: {a: 1}', 'server.mapUsers: must be a list, got a mapping'],
    [
      'backendMode as a number',
      'server:\n  backendMode: 5',
      'server.backendMode: must be a list of strings, got number 5',
    ],
    [
      'backendMode with a number',
      'server:\n  backendMode: [MountedFile, 5]',
      'server.backendMode: must be a list of strings, got a list',
    ],
    [
      'identityCacheSize negative',
      'server:\n  identityCacheSize: -1',
      'server.identityCacheSize: must be an integer >= 0, got -1',
    ],
    [
      'stsMaxConcurrency zero',
      'server:\n  stsMaxConcurrency: 0',
      'server.stsMaxConcurrency: must be an integer >= 1 and <= 10000, got 0',
    ],
    [
      'maxRequestBytes too small',
      'server:\n  maxRequestBytes: 100',
      'server.maxRequestBytes: must be an integer >= 1024 and <= 1048576, got 100',
    ],
    [
      'ec2DescribeInstancesQps negative',
      'server:\n  ec2DescribeInstancesQps: -1',
      'server.ec2DescribeInstancesQps: must be >= 0, got -1',
    ],
    [
      'ec2DescribeInstancesQps a string',
      'server:\n  ec2DescribeInstancesQps: fast',
      'server.ec2DescribeInstancesQps: must be a number, got string "fast"',
    ],
    [
      'ec2DescribeInstancesBurst zero',
      'server:\n  ec2DescribeInstancesBurst: 0',
      'server.ec2DescribeInstancesBurst: must be an integer >= 1, got 0',
    ],
    [
      'ec2DescribeInstancesRoleARN not an ARN',
      'server:\n  ec2DescribeInstancesRoleARN: nope',
      "server.ec2DescribeInstancesRoleARN: 'nope' is not a valid ARN",
    ],
    [
      'sourceARN without an account',
      'server:\n  sourceARN: arn:aws:eks:us-east-1::cluster/c',
      "server.sourceARN: 'arn:aws:eks:us-east-1::cluster/c' is not a valid ARN",
    ],
  ])('%s', (_name, yaml, problem) => {
    expectProblems(`clusterID: c1\n${yaml}\n`, [problem])
  })

  it('the whole document not a mapping', () => {
    expectProblems('- a\n- b\n', [
      '(top level): must be a mapping',
      'clusterID: cluster ID cannot be empty (set clusterID or --cluster-id)',
    ])
  })

  it.each([
    ['empty', ''],
    ['only comments', '# nothing configured yet\n'],
    ['only blank lines', '\n\n'],
    ['an explicit null document', '---\n'],
  ])('a file that is %s is an empty configuration', (_name, yaml) => {
    expectProblems(yaml, ['clusterID: cluster ID cannot be empty (set clusterID or --cluster-id)'])
    expect(load(yaml, { clusterId: 'c1' })).toEqual({ config: DEFAULT_CONFIG, warnings: [] })
  })
})

describe('files that cannot be read', () => {
  it('bad YAML: the message names the file, line and column', () => {
    const { err, file } = loadInvalid('clusterID: c1\nserver:\n  port: 1\n   address: x\n')
    expect(err.message.startsWith(`config file ${file} is not valid YAML: `)).toBe(true)
    expect(err.message).toMatch(/\(4:\d+\)/)
    expect(err.problems).toEqual([])
  })

  it('more than one YAML document', () => {
    const { err, file } = loadInvalid('clusterID: a\n---\nclusterID: b\n')
    expect(err.message).toBe(
      `config file ${file} is not valid YAML: expected a single document in the stream, but found more`,
    )
  })

  it('a missing file', () => {
    const file = join(dir, 'does-not-exist.yaml')
    expect(() => loadServerConfig(file)).toThrow(ConfigInvalid)
    expect(() => loadServerConfig(file)).toThrow(`could not read config file ${file}: ENOENT`)
  })
})

describe('partition', () => {
  it.each(['aws', 'aws-cn', 'aws-us-gov', 'aws-iso', 'aws-iso-b'])('%s is valid', (partition) => {
    expect(load(`clusterID: c1\nserver:\n  partition: ${partition}\n`).config.partition).toBe(partition)
  })

  it.each(['aws-nk', 'AWS', ' aws'])('%j is invalid', (partition) => {
    expectProblems(`clusterID: c1\nserver:\n  partition: "${partition}"\n`, [
      `server.partition: invalid partition '${partition}' (valid: aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc)`,
    ])
  })
})

describe('backendMode', () => {
  it.each<[string, string, string[]]>([
    ['a list', '[MountedFile, EKSConfigMap, CRD]', ['MountedFile', 'EKSConfigMap', 'CRD']],
    ['a whitespace-separated string', '"MountedFile  EKSConfigMap\tCRD"', ['MountedFile', 'EKSConfigMap', 'CRD']],
    ['a single string', 'EKSConfigMap', ['EKSConfigMap']],
  ])('%s', (_name, value, modes) => {
    const { config, warnings } = load(`clusterID: c1\nserver:\n  backendMode: ${value}\n`)
    expect(config.backendMode).toEqual(modes)
    expect(warnings).toEqual([])
  })

  it('the aliases File and ConfigMap, with a deprecation warning each', () => {
    const { config, warnings } = load('clusterID: c1\nserver:\n  backendMode: [File, ConfigMap]\n')
    expect(config.backendMode).toEqual(['MountedFile', 'EKSConfigMap'])
    expect(warnings).toEqual([
      warning('server.backendMode[0]', 'backend-mode "File" is deprecated, use "MountedFile" instead'),
      warning('server.backendMode[1]', 'backend-mode "ConfigMap" is deprecated, use "EKSConfigMap" instead'),
    ])
  })

  it.each<[string, string, string[]]>([
    [
      'an invalid mode',
      '[ModeFoo]',
      [
        'server.backendMode[0]: backend-mode "ModeFoo" is not a valid mode (valid: MountedFile, EKSConfigMap, CRD, DynamicFile)',
      ],
    ],
    [
      'modes are case-sensitive',
      '[mountedfile]',
      [
        'server.backendMode[0]: backend-mode "mountedfile" is not a valid mode (valid: MountedFile, EKSConfigMap, CRD, DynamicFile)',
      ],
    ],
    ['an empty list', '[]', ['server.backendMode: at least one backend-mode must be specified']],
    ['an empty string', '""', ['server.backendMode: at least one backend-mode must be specified']],
    [
      'a duplicate',
      '[MountedFile, MountedFile]',
      ['server.backendMode[1]: backend-mode [MountedFile MountedFile] has duplicates'],
    ],
    [
      'a duplicate through an alias',
      '[File, MountedFile]',
      ['server.backendMode[1]: backend-mode [File MountedFile] has duplicates'],
    ],
    [
      'several problems at once',
      '[Foo, CRD, CRD, Bar]',
      [
        'server.backendMode[0]: backend-mode "Foo" is not a valid mode (valid: MountedFile, EKSConfigMap, CRD, DynamicFile)',
        'server.backendMode[2]: backend-mode [Foo CRD CRD Bar] has duplicates',
        'server.backendMode[3]: backend-mode "Bar" is not a valid mode (valid: MountedFile, EKSConfigMap, CRD, DynamicFile)',
      ],
    ],
  ])('%s', (_name, value, problems) => {
    expectProblems(`clusterID: c1\nserver:\n  backendMode: ${value}\n`, problems)
  })

  it('an invalid mode given by flag', () => {
    expectProblems(
      'clusterID: c1\n',
      [
        'server.backendMode[0]: backend-mode "Nope" is not a valid mode (valid: MountedFile, EKSConfigMap, CRD, DynamicFile)',
      ],
      {
        backendMode: ['Nope'],
      },
    )
  })

  describe('DynamicFile and dynamicfilepath go together', () => {
    it('DynamicFile without dynamicfilepath', () => {
      expectProblems('clusterID: c1\nserver:\n  backendMode: [MountedFile, DynamicFile]\n', [
        'server.dynamicfilepath: DynamicFile is set in backendMode but dynamicfilepath is not set',
      ])
    })

    it('dynamicfilepath without DynamicFile', () => {
      expectProblems('clusterID: c1\nserver:\n  dynamicFilePath: /var/kia/mapping.json\n', [
        'server.dynamicfilepath: dynamicfilepath is set but DynamicFile is not in backendMode',
      ])
    })

    it('both', () => {
      const { config } = load('clusterID: c1\nserver:\n  backendMode: DynamicFile\n  DynamicFilePath: /m.json\n')
      expect(config.backendMode).toEqual(['DynamicFile'])
      expect(config.dynamicFile).toEqual({ path: '/m.json', userIdStrict: false })
    })
  })
})

describe('reservedPrefixConfig', () => {
  it('is indexed by backend mode (aliases resolved)', () => {
    const { config, warnings } = load(`
clusterID: c1
server:
  reservedPrefixConfig:
    - backendMode: File
      usernamePrefixReserveList: ['aws:', 'system:']
    - backendmode: DynamicFile
      usernameprefixreservelist: "iam: eks:"
    - backendMode: CRD
`)
    expect(warnings).toEqual([])
    expect(config.reservedPrefixes).toEqual({
      MountedFile: ['aws:', 'system:'],
      DynamicFile: ['iam:', 'eks:'],
      CRD: [],
    })
  })

  it.each<[string, string, string[]]>([
    [
      'an invalid mode',
      '- backendMode: Foo\n      usernamePrefixReserveList: [x]',
      ["server.reservedPrefixConfig[0].backendMode: invalid reserved prefix config: backend mode 'Foo' is not valid"],
    ],
    [
      'no mode',
      '- usernamePrefixReserveList: [x]',
      ["server.reservedPrefixConfig[0].backendMode: invalid reserved prefix config: backend mode '' is not valid"],
    ],
    [
      'a list of numbers',
      '- backendMode: CRD\n      usernamePrefixReserveList: [1]',
      ['server.reservedPrefixConfig[0].usernamePrefixReserveList: must be a list of strings, got a list'],
    ],
    ['not a list', 'x', ['server.reservedPrefixConfig: must be a list, got string "x"']],
    [
      'an entry not a mapping',
      '- x',
      [
        'server.reservedPrefixConfig[0]: must be a mapping',
        "server.reservedPrefixConfig[0].backendMode: invalid reserved prefix config: backend mode '' is not valid",
      ],
    ],
  ])('%s', (_name, yaml, problems) => {
    expectProblems(`clusterID: c1\nserver:\n  reservedPrefixConfig:\n    ${yaml}\n`, problems)
  })
})

describe('durations', () => {
  it.each<[string, number]>([
    ['90s', 90_000],
    ['1h30m', 5_400_000],
    ['2m', 120_000],
    ['500ms', 500],
    ['1.5s', 1_500],
    ['1m30s500ms', 90_500],
    ['30', 30_000],
    ['0.25', 250],
    ['0', 0],
  ])('identityCacheTTL: %s -> %d ms', (value, ms) => {
    expect(load(`clusterID: c1\nserver:\n  identityCacheTTL: ${value}\n`).config.identityCacheTtlMs).toBe(ms)
  })

  it.each([
    ['abc', 'string "abc"'],
    ['"90"', 'string "90"'],
    ['-5', 'number -5'],
    ['"-5s"', 'string "-5s"'],
    ['5d', 'string "5d"'],
    ['"1h 30m"', 'string "1h 30m"'],
    ['true', 'boolean true'],
    ['[1s]', 'a list'],
  ])('%s is rejected', (value, got) => {
    expectProblems(`clusterID: c1\nserver:\n  stsTimeout: ${value}\n`, [
      `server.stsTimeout: must be a duration such as 30s, 2m or 1h30m, got ${got}`,
    ])
  })

  it('parseDuration', () => {
    expect(parseDuration('1h')).toBe(3_600_000)
    expect(parseDuration(1.5)).toBe(1_500)
    expect(parseDuration('')).toBeUndefined()
    expect(parseDuration(Number.POSITIVE_INFINITY)).toBeUndefined()
    expect(parseDuration(null)).toBeUndefined()
  })
})

describe('unknown keys are warnings', () => {
  it('at the top level and in server, named as written; token keys at the top level are known', () => {
    const { config, warnings } = load(`
clusterID: c1
region: us-east-1
role: arn:aws:iam::111122223333:role/r
externalID: x
sessionName: s
tokenOnly: true
forwardSessionName: true
cache: true
defaultRole: arn:aws:iam::111122223333:role/r
Colour: blue
server:
  port: 21362
  mapRole: []
  BACKEND_MODE: CRD
`)
    expect(config.backendMode).toEqual(['MountedFile'])
    expect(warnings).toEqual([
      warning('Colour', 'unknown key (ignored)'),
      warning('server.mapRole', 'unknown key (ignored); did you mean "maproles"?'),
      warning('server.BACKEND_MODE', 'unknown key (ignored); did you mean "backendmode"?'),
    ])
  })
})

describe('ConfigInvalid', () => {
  it('names the file and lists every `path: message`, errors only', () => {
    const { err, file } = loadInvalid(`
server:
  partition: aws-nk
  port: nope
  backendMode: [File, Foo]
  stsTimeout: abc
  unknownKey: 1
  reservedPrefixConfig:
    - backendMode: Bar
  mapRoles:
    - rolearn: arn:aws:iam::111122223333:role/a
      username: a
    - rolearn: arn:aws:iam::111122223333:user/b
      username: b
`)
    const problems = [
      'clusterID: cluster ID cannot be empty (set clusterID or --cluster-id)',
      "server.partition: invalid partition 'aws-nk' (valid: aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc)",
      'server.port: must be an integer, got string "nope"',
      'server.backendMode[1]: backend-mode "Foo" is not a valid mode (valid: MountedFile, EKSConfigMap, CRD, DynamicFile)',
      "server.reservedPrefixConfig[0].backendMode: invalid reserved prefix config: backend mode 'Bar' is not valid",
      "server.mapRoles[1].rolearn: 'arn:aws:iam::111122223333:user/b' is not a role ARN",
      'server.stsTimeout: must be a duration such as 30s, 2m or 1h30m, got string "abc"',
    ]
    expect(err.message.startsWith(`invalid configuration in ${file}:\n`)).toBe(true)
    for (const p of problems) expect(err.message).toContain(`\n  - ${p}`)
    expect([...err.problems].sort()).toEqual([...problems].sort())
    expect(err.message).not.toContain('unknownKey')
    expect(err.message).not.toContain('deprecated')
  })
})

describe('unknown keys inside mapping entries', () => {
  it('warns about a misspelt field instead of silently dropping it', () => {
    const { warnings } = load(`clusterID: c
server:
  mapRoles:
    - rolearn: arn:aws:iam::111122223333:role/a
      username: a
      grups: [admins]
    - sso: {permissionSetName: Admin, accountID: "111122223333", partiton: aws}
      username: b
  mapUsers:
    - userarn: arn:aws:iam::111122223333:user/u
      username: u
      group: [x]
`)
    expect(warnings.map((w) => `${w.path}: ${w.message}`)).toEqual([
      'server.mapRoles[0].grups: unknown key (ignored); did you mean "groups"?',
      'server.mapRoles[1].sso.partiton: unknown key (ignored); did you mean "partition"?',
      'server.mapUsers[0].group: unknown key (ignored); did you mean "groups"?',
    ])
  })
})

describe('limits that would make the server useless are errors', () => {
  it.each<[string, string]>([
    ['stsTimeout: 0', 'server.stsTimeout: must be between 100ms and 60s, got 0ms (it would fail every STS call)'],
    ['stsTimeout: 50ms', 'server.stsTimeout: must be between 100ms and 60s, got 50ms (it would fail every STS call)'],
    [
      'stsTimeout: 2m',
      'server.stsTimeout: must be between 100ms and 60s, got 120000ms (kube-apiserver gives up on a review long before that)',
    ],
    [
      'stsQueueTimeout: 10m',
      'server.stsQueueTimeout: must be between 0ms and 60s, got 600000ms (kube-apiserver gives up on a review long before that)',
    ],
    ['stsMaxConcurrency: 100000', 'server.stsMaxConcurrency: must be an integer >= 1 and <= 10000, got 100000'],
    [
      'maxRequestBytes: 1073741824',
      'server.maxRequestBytes: must be an integer >= 1024 and <= 1048576, got 1073741824',
    ],
  ])('%s', (line, problem) => {
    expectProblems(`clusterID: c1\nserver:\n  ${line}\n`, [problem])
  })

  it('the bounds themselves are accepted', () => {
    const { config } = load('clusterID: c1\nserver:\n  stsTimeout: 100ms\n  stsQueueTimeout: 0\n')
    expect([config.stsTimeoutMs, config.stsQueueTimeoutMs]).toEqual([100, 0])
    expect(load('clusterID: c1\nserver:\n  stsTimeout: 60s\n').config.stsTimeoutMs).toBe(60_000)
  })

  it('the per-caller STS rate limit is off by default (every review comes from kube-apiserver)', () => {
    expect(load('clusterID: c1\n').config.callerRateLimit).toEqual({ perSecond: 0, burst: 1000 })
  })
})

describe('extraRegions', () => {
  it('regions of the partition that this release does not list yet', () => {
    const { config, warnings } = load('clusterID: c1\nserver:\n  extraRegions: [us-east-9, ap-north-7]\n')
    expect(config.extraRegions).toEqual(['us-east-9', 'ap-north-7'])
    expect(warnings).toEqual([])
    expect(
      load('clusterID: c1\nserver:\n  partition: aws-cn\n  extraRegions: cn-south-1\n').config.extraRegions,
    ).toEqual(['cn-south-1'])
  })

  it('a known region is a warning; another partition region or a non-region name is an error', () => {
    expect(load('clusterID: c1\nserver:\n  extraRegions: [us-west-2]\n').warnings).toEqual([
      warning('server.extraRegions[0]', 'us-west-2 is already a known region of partition aws'),
    ])
    expectProblems(
      'clusterID: c1\nserver:\n  extraRegions: [cn-north-1, us-gov-east-9, "sts.us-east-9.amazonaws.com", US-EAST-9, aws-global]\n',
      [
        'server.extraRegions[0]: cn-north-1 is a region of partition aws-cn, not of aws',
        'server.extraRegions[1]: us-gov-east-9 is a region of partition aws-us-gov, not of aws',
        'server.extraRegions[2]: "sts.us-east-9.amazonaws.com" is not a region name (such as us-east-1)',
        'server.extraRegions[3]: "US-EAST-9" is not a region name (such as us-east-1)',
        'server.extraRegions[4]: "aws-global" is not a region name (such as us-east-1)',
      ],
    )
  })
})
