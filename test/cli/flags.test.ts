import { describe, expect, it } from 'vitest'
import { UsageError } from '../../src/shared/errors.js'
import { parseFlags } from '../../src/cli/flags.js'

const SPEC = {
  'cluster-id': { type: 'string', short: 'i' },
  cache: { type: 'boolean' },
  role: { type: 'string', short: 'r' },
} as const

describe('parseFlags (pflag syntax, as upstream kubeconfigs use it)', () => {
  it.each([
    [['-i', 'c1'], { 'cluster-id': 'c1' }],
    [['-ic1'], { 'cluster-id': 'c1' }],
    [['-i=c1'], { 'cluster-id': 'c1' }],
    [['--cluster-id', 'c1'], { 'cluster-id': 'c1' }],
    [['--cluster-id=c1'], { 'cluster-id': 'c1' }],
    [['--cluster-id='], { 'cluster-id': '' }],
    [['--cache'], { cache: true }],
    [['--cache=true'], { cache: true }],
    [['--cache=false'], { cache: false }],
    [['--cache=1', '-r', 'arn:aws:iam::1:role/x'], { cache: true, role: 'arn:aws:iam::1:role/x' }],
    [['-i', '--cache'], { 'cluster-id': '--cache' }],
  ] as const)('%j', (argv, expected) => {
    expect(parseFlags(argv, SPEC)).toEqual(expected)
  })

  it.each([
    [['--bogus'], 'unknown flag: --bogus'],
    [['-x'], "unknown shorthand flag: 'x' in -x"],
    [['-i'], 'flag needs an argument: --cluster-id'],
    [['--cache=maybe'], 'invalid argument "maybe" for "--cache" flag: expected true or false'],
    [['stray'], 'unexpected argument "stray"'],
    [['--'], 'unexpected argument "--"'],
  ] as const)('%j is a usage error', (argv, message) => {
    expect(() => parseFlags(argv, SPEC)).toThrow(new UsageError(message))
  })
})
