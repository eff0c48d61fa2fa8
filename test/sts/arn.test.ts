import { describe, expect, it } from 'vitest'
import { ArnInvalid } from '../../src/shared/errors.js'
import { arnLike, canonicalizeArn, parseArn, stripRolePath } from '../../src/sts/arn.js'

/** Runs fn, expects an ArnInvalid with exactly this message. */
function expectArnInvalid(fn: () => unknown, message: string): void {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  expect(thrown).toBeInstanceOf(ArnInvalid)
  expect((thrown as ArnInvalid).code).toBe('ERR_ARN_INVALID')
  expect((thrown as ArnInvalid).message).toBe(message)
}

describe('parseArn', () => {
  it('splits into six sections, the resource keeping further colons', () => {
    expect(parseArn('arn:aws:testservice:us-east-1:000000000000:a:b:c')).toEqual({
      partition: 'aws',
      service: 'testservice',
      region: 'us-east-1',
      account: '000000000000',
      resource: 'a:b:c',
    })
  })

  it.each([
    ['NOT AN ARN', 'arn: invalid prefix'],
    ['ARN:aws:iam::123456789012:user/Alice', 'arn: invalid prefix'],
    ['arn', 'arn: invalid prefix'],
    ['arn:aws:iam::123456789012', 'arn: not enough sections'],
    ['arn:', 'arn: not enough sections'],
  ])('%j -> %s', (arn, message) => expectArnInvalid(() => parseArn(arn), message))
})

// upstream's pkg/arn Canonicalize and its TestUserARN
describe('canonicalizeArn', () => {
  it.each([
    ['arn:aws:iam::123456789012:user/Alice', 'user'],
    ['arn:aws:iam::123456789012:role/Users', 'role'],
    ['arn:aws:iam::123456789012:root', 'root'],
    ['arn:aws:sts::123456789012:federated-user/Bob', 'federated-user'],
    ['arn:aws-iso:iam::123456789012:user/Alice', 'user'],
    ['arn:aws-iso-b:iam::123456789012:user/Alice', 'user'],
    ['arn:aws-cn:iam::123456789012:user/Alice', 'user'],
    ['arn:aws-us-gov:iam::123456789012:role/Users', 'role'],
    // paths are kept for users and roles; only assumed-role ARNs are rewritten
    ['arn:aws:iam::123456789012:user/path/to/Alice', 'user'],
    ['arn:aws:iam::123456789012:role/path/to/Admin', 'role'],
  ])('%s is returned unchanged as %s', (arn, type) => {
    expect(canonicalizeArn(arn)).toEqual({ type, canonical: arn })
  })

  it.each([
    ['arn:aws:sts::123456789012:assumed-role/Admin/Session', 'arn:aws:iam::123456789012:role/Admin'],
    ['arn:aws:sts::123456789012:assumed-role/Org/Team/Admin/Session', 'arn:aws:iam::123456789012:role/Org/Team/Admin'],
    // region dropped, partition and account kept, case preserved
    ['arn:aws-cn:sts:cn-north-1:123456789012:assumed-role/MyRole/s', 'arn:aws-cn:iam::123456789012:role/MyRole'],
    ['arn:aws:sts::123456789012:assumed-role/CamelCase/SESSION', 'arn:aws:iam::123456789012:role/CamelCase'],
    [
      'arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/alice@example.com',
      'arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_0123456789abcdef',
    ],
  ])('%s -> %s', (arn, canonical) => {
    expect(canonicalizeArn(arn)).toEqual({ type: 'assumed-role', canonical })
  })

  it.each([
    ['NOT AN ARN', "arn 'NOT AN ARN' is invalid: 'arn: invalid prefix'"],
    ['arn', "arn 'arn' is invalid: 'arn: invalid prefix'"],
    ['arn:aws:iam::123456789012', "arn 'arn:aws:iam::123456789012' is invalid: 'arn: not enough sections'"],
    [
      'arn:aws-not-a-partition:iam::123456789012:user/Alice',
      "arn 'arn:aws-not-a-partition:iam::123456789012:user/Alice' does not have a recognized partition",
    ],
    [
      'arn::iam::123456789012:user/Alice',
      "arn 'arn::iam::123456789012:user/Alice' does not have a recognized partition",
    ],
    ['arn:aws:sts::123456789012:foo/bar', 'unrecognized resource foo/bar for service sts'],
    ['arn:aws:sts::123456789012:user/Alice', 'unrecognized resource user/Alice for service sts'],
    [
      'arn:aws:sts::123456789012:assumed-role/Admin',
      "assumed-role arn 'arn:aws:sts::123456789012:assumed-role/Admin' does not have a role",
    ],
    ['arn:aws:iam::123456789012:group/Devs', 'unrecognized resource group/Devs for service iam'],
    ['arn:aws:iam::123456789012:federated-user/Bob', 'unrecognized resource federated-user/Bob for service iam'],
    ['arn:aws:iam::123456789012:User/Alice', 'unrecognized resource User/Alice for service iam'],
    ['arn:aws:s3:::my-bucket', 'service s3 in arn arn:aws:s3:::my-bucket is not a valid service for identities'],
  ])('%j is refused: %s', (arn, message) => expectArnInvalid(() => canonicalizeArn(arn), message))
})

// upstream's pkg/arn StripPath and its TestStripPath
describe('stripRolePath', () => {
  it.each([
    ['arn:aws:iam::123456789012:role/Org/Team/Admin', 'arn:aws:iam::123456789012:role/Admin'],
    ['arn:aws:iam::123456789012:role/path/for/this-role/matt', 'arn:aws:iam::123456789012:role/matt'],
    ['arn:aws:iam::123456789012:role/Admin', 'arn:aws:iam::123456789012:role/Admin'],
    ['arn:aws:iam::123456789012:user/Alice', 'arn:aws:iam::123456789012:user/Alice'],
    ['arn:aws:iam::123456789012:user/path/Alice', 'arn:aws:iam::123456789012:user/path/Alice'],
    ['arn:aws:sts::123456789012:federated-user/Bob', 'arn:aws:sts::123456789012:federated-user/Bob'],
    ['arn:aws-cn:iam::123456789012:role/a/b/Name', 'arn:aws-cn:iam::123456789012:role/Name'],
  ])('%s -> %s', (arn, stripped) => {
    expect(stripRolePath(arn)).toBe(stripped)
  })

  it.each([
    ['NOT AN ARN', "arn 'NOT AN ARN' is invalid: 'arn: invalid prefix'"],
    ['arn:aws:iam::123', "arn 'arn:aws:iam::123' is invalid: 'arn: not enough sections'"],
    [
      'arn:aws-not-a-partition:iam::123456789012:role/a/b',
      "arn 'arn:aws-not-a-partition:iam::123456789012:role/a/b' does not have a recognized partition",
    ],
  ])('%j is refused: %s', (arn, message) => expectArnInvalid(() => stripRolePath(arn), message))
})

// upstream's pkg/arn/arnlike.go ArnLike and its TestArnLike
describe('arnLike', () => {
  const ROLE = 'arn:aws:iam::000000000000:role/some-role'
  const META = 'arn:aws:iam::000000000000:[resource]{with}\\metacharacters'
  const WACKY = 'arn:aws:iam::000000000000:wacky-new-[resource]{with}\\metacharacters'

  it.each([
    ['identical', ROLE, ROLE],
    ['wildcard resource', ROLE, 'arn:aws:iam::000000000000:*'],
    ['every section a wildcard', ROLE, 'arn:*:*:*:*:*'],
    ['double wildcard', ROLE, 'arn:aws:iam::000000000000:**'],
    ['wildcard on both sides', ROLE, 'arn:aws:iam::000000000000:*role*'],
    ['wildcard suffix', ROLE, 'arn:aws:iam::000000000000:ro*'],
    ['14 question marks for a 14-character resource', ROLE, `arn:aws:iam::000000000000:${'?'.repeat(14)}`],
    ['regex metacharacters are literal', META, META],
    ['metacharacters before a wildcard', WACKY, 'arn:aws:iam::000000000000:wacky-new-[reso*'],
    ['question mark inside a word', ROLE, 'arn:aws:iam::000000000000:role/some-r?le'],
    ['wildcard account', ROLE, 'arn:aws:iam::*:role/some-role'],
    [
      'wildcard matches a colon inside the resource',
      'arn:aws:testservice::000000000000:a:b:c',
      'arn:aws:testservice::000000000000:a:*',
    ],
    [
      'SSO role pattern',
      'arn:aws:iam::000000000000:role/aws-reserved/sso.amazonaws.com/us-west-2/AWSReservedSSO_Admin_0123456789abcdef',
      'arn:aws:iam::000000000000:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_Admin_????????????????',
    ],
  ])('true: %s', (_name, arn, pattern) => {
    expect(arnLike(arn, pattern)).toBe(true)
  })

  it.each([
    ['different account', ROLE, 'arn:aws:iam::000000000001:role/some-role'],
    [
      'a resource with colons does not match a pattern section without them',
      'arn:aws:testservice::000000000000:some:resource:with:delims',
      'arn:aws:testservice::**:delims',
    ],
    ['case-sensitive', ROLE, 'arn:aws:iam::000000000000:role/Some-Role'],
    ['"." is literal, not any character', ROLE, 'arn:aws:iam::000000000000:role.some-role'],
    ['"+" is literal', ROLE, 'arn:aws:iam::000000000000:role/some-ro+le'],
    ['a wildcard does not swallow the following sections', ROLE, 'arn:*:000000000000:role/some-role::'],
    ['anchored at the end', ROLE, 'arn:aws:iam::000000000000:role/some'],
    ['anchored at the start', ROLE, 'arn:aws:iam::000000000000:some-role'],
    ['13 question marks for a 14-character resource', ROLE, `arn:aws:iam::000000000000:${'?'.repeat(13)}`],
    // Deliberate difference from upstream: there `?` becomes `.?` (zero or one character), so 15
    // question marks match a 14-character resource. IAM's ArnLike, which we follow, needs exactly one.
    [
      '15 question marks for a 14-character resource (upstream: true)',
      ROLE,
      `arn:aws:iam::000000000000:${'?'.repeat(15)}`,
    ],
    ['a question mark does not match nothing (upstream: true)', ROLE, 'arn:aws:iam::000000000000:role/some-role?'],
  ])('false: %s', (_name, arn, pattern) => {
    expect(arnLike(arn, pattern)).toBe(false)
  })

  it.each([
    ['pattern with too few sections', ROLE, 'arn:*', 'could not parse ArnLike string: not enough sections'],
    [
      'pattern without the arn prefix',
      ROLE,
      'nar:aws:iam::000000000000:*',
      'could not parse ArnLike string: invalid prefix',
    ],
    [
      'input without the arn prefix',
      'nar:aws:iam::000000000000:role/some-role',
      'arn:*:*:*:*:*',
      'could not parse input arn: invalid prefix',
    ],
    [
      'input with five sections',
      'arn:aws:iam::000000000000',
      'arn:*:*:*:*:*',
      'could not parse input arn: not enough sections',
    ],
    ['input checked before the pattern', 'nar:x', 'arn:*', 'could not parse input arn: invalid prefix'],
  ])('error: %s', (_name, arn, pattern, message) => {
    expectArnInvalid(() => arnLike(arn, pattern), message)
  })
})
