import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { MappingFailed } from '../../src/shared/errors.js'
import {
  renderMapping,
  renderTemplate,
  TEMPLATE_VARIABLES,
  templateProblems,
  type PrivateDnsResolver,
} from '../../src/mapping/template.js'
import { identityOf } from '../support/identities.js'

const KNOWN_VARS = '{{EC2PrivateDNSName}}, {{AccountID}}, {{SessionName}}, {{SessionNameRaw}}, {{AccessKeyID}}'

/** Upstream's TestRenderTemplate identity: account 123, access key 321, the given session name. */
function session(sessionName: string, accessKeyId = '321', accountId = '123') {
  return identityOf('arn:aws:sts::111122223333:assumed-role/role/placeholder', { sessionName, accessKeyId, accountId })
}

/** Awaits p, expecting a MappingFailed with exactly this message. */
async function expectMappingFailed(p: Promise<unknown>, message: string, transient = false): Promise<MappingFailed> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(MappingFailed)
  expect((err as MappingFailed).code).toBe('ERR_MAPPING_FAILED')
  expect((err as MappingFailed).message).toBe(message)
  expect((err as MappingFailed).transient).toBe(transient)
  return err as MappingFailed
}

// upstream's pkg/server/server_test.go TestRenderTemplate
describe("renderTemplate (upstream's TestRenderTemplate)", () => {
  it.each([
    ['a-{{AccountID}}-b', 'jdoe', 'a-123-b'],
    ['a-{{AccessKeyID}}-b', 'jdoe', 'a-321-b'],
    ['a-{{SessionName}}-b', 'jdoe', 'a-jdoe-b'],
    ['a-{{SessionName}}-b', 'jdoe@example.com', 'a-jdoe-example.com-b'],
    ['a-{{SessionNameRaw}}-b', 'jdoe@example.com', 'a-jdoe@example.com-b'],
    [
      'a-{{AccountID}}-{{SessionName}}-{{SessionNameRaw}}-b',
      'jdoe@example.com',
      'a-123-jdoe-example.com-jdoe@example.com-b',
    ],
  ])('%s with session %s -> %s', async (template, sessionName, expected) => {
    expect(await renderTemplate(template, session(sessionName), undefined)).toBe(expected)
  })

  it('a-{{EC2PrivateDNSName}}-b with session i-aaaaa fails before any lookup', async () => {
    const resolve = vi.fn<PrivateDnsResolver>(async () => 'never')
    await expectMappingFailed(
      renderTemplate('a-{{EC2PrivateDNSName}}-b', session('i-aaaaa'), resolve),
      'SessionName did not contain an instance id',
    )
    expect(resolve).not.toHaveBeenCalled()
  })
})

describe('renderTemplate', () => {
  it.each([
    ['a template without variables', 'system:masters', 'system:masters'],
    ['every variable once', '{{AccountID}}/{{SessionName}}/{{SessionNameRaw}}/{{AccessKeyID}}', '123/a-b/a@b/321'],
    ['a variable used twice', '{{AccountID}}-{{AccountID}}', '123-123'],
    ['only "@" is replaced in SessionName', '{{SessionName}}', 'a-b'],
    ['adjacent variables', '{{AccountID}}{{AccessKeyID}}', '123321'],
    ['single braces are plain text', '{a}-{{AccountID}}-}', '{a}-123-}'],
    ['a variable inside a third brace', '{{{AccountID}}}', '{123}'],
  ])('%s', async (_name, template, expected) => {
    expect(await renderTemplate(template, session('a@b'), undefined)).toBe(expected)
  })

  it('replaces every "@" of the session name for SessionName, and nothing else', async () => {
    expect(await renderTemplate('{{SessionName}}', session('a@b@c.d_e=f,g+h'), undefined)).toBe('a-b-c.d_e=f,g+h')
  })

  it('renders an IAM user (no session) with an empty session name', async () => {
    const id = identityOf('arn:aws:iam::111122223333:user/alice', { accessKeyId: 'AKIAEXAMPLE' })
    expect(
      await renderTemplate('u:{{SessionName}}:{{SessionNameRaw}}:{{AccountID}}:{{AccessKeyID}}', id, undefined),
    ).toBe('u:::111122223333:AKIAEXAMPLE')
  })

  it('leaves a variable it does not know as written (compileRules rejects such templates first)', async () => {
    expect(await renderTemplate('a-{{Foo}}-{{AccountID}}', session('s'), undefined)).toBe('a-{{Foo}}-123')
  })

  describe('single pass: a value is inserted literally, never expanded again', () => {
    it.each([
      ['{{SessionNameRaw}}', '{{AccessKeyID}}', '{{AccessKeyID}}'],
      ['{{SessionName}}', '{{AccountID}}', '{{AccountID}}'],
      ['{{SessionNameRaw}}-{{AccessKeyID}}', '{{AccessKeyID}}', '{{AccessKeyID}}-321'],
      ['{{SessionNameRaw}}', '{{EC2PrivateDNSName}}', '{{EC2PrivateDNSName}}'],
      ['x{{SessionNameRaw}}y', "$& $1 $$ $' $`", "x$& $1 $$ $' $`y"],
    ])('%s with session %j -> %j', async (template, sessionName, expected) => {
      const resolve = vi.fn<PrivateDnsResolver>(async () => 'never')
      expect(await renderTemplate(template, session(sessionName), resolve)).toBe(expected)
      expect(resolve).not.toHaveBeenCalled()
    })

    it('{{SessionNameRaw}} renders to exactly the session name, whatever it is', async () => {
      await fc.assert(
        fc.asyncProperty(fc.string({ unit: 'binary' }), fc.string(), async (sessionName, accessKeyId) => {
          const id = session(sessionName, accessKeyId)
          expect(await renderTemplate('{{SessionNameRaw}}', id, undefined)).toBe(sessionName)
          expect(await renderTemplate('<{{SessionNameRaw}}>', id, undefined)).toBe(`<${sessionName}>`)
        }),
        { numRuns: 500 },
      )
    })

    it('the property holds for session names built from template syntax', async () => {
      const piece = fc.constantFrom(
        '{{',
        '}}',
        '{',
        '}',
        '@',
        '$&',
        '$1',
        ...TEMPLATE_VARIABLES,
        ...TEMPLATE_VARIABLES.map((v) => `{{${v}}}`),
      )
      await fc.assert(
        fc.asyncProperty(
          fc.array(piece, { maxLength: 12 }).map((parts) => parts.join('')),
          async (sessionName) => {
            const id = session(sessionName)
            expect(await renderTemplate('{{SessionNameRaw}}', id, undefined)).toBe(sessionName)
            expect(await renderTemplate('{{SessionName}}', id, undefined)).toBe(sessionName.replaceAll('@', '-'))
          },
        ),
        { numRuns: 500 },
      )
    })
  })
})

describe('{{EC2PrivateDNSName}}', () => {
  it("upstream's node mapping: the instance ID in the session name becomes the node name", async () => {
    const resolve = vi.fn<PrivateDnsResolver>(async () => 'ip-172-31-27-14')
    const id = session('i-0c6f21bf1f24f9708')
    expect(await renderTemplate('system:node:{{EC2PrivateDNSName}}', id, resolve)).toBe('system:node:ip-172-31-27-14')
    expect(resolve.mock.calls).toEqual([['i-0c6f21bf1f24f9708']])
  })

  it('accepts the 8-digit form and combines with the other variables', async () => {
    const resolve = vi.fn<PrivateDnsResolver>(async (instance) => `ip-for-${instance}`)
    expect(
      await renderTemplate('{{EC2PrivateDNSName}}/{{AccountID}}/{{SessionName}}', session('i-0123abcd'), resolve),
    ).toBe('ip-for-i-0123abcd/123/i-0123abcd')
  })

  it('is looked up once per template even when used twice', async () => {
    const resolve = vi.fn<PrivateDnsResolver>(async () => 'ip-10-0-0-1')
    expect(await renderTemplate('{{EC2PrivateDNSName}}+{{EC2PrivateDNSName}}', session('i-0123abcd'), resolve)).toBe(
      'ip-10-0-0-1+ip-10-0-0-1',
    )
    expect(resolve).toHaveBeenCalledTimes(1)
  })

  it('is not looked up when the template does not use it', async () => {
    const resolve = vi.fn<PrivateDnsResolver>(async () => 'never')
    expect(await renderTemplate('{{SessionName}}', session('i-0123abcd'), resolve)).toBe('i-0123abcd')
    expect(resolve).not.toHaveBeenCalled()
  })

  it.each([
    ['i-aaaaa', 'too short'],
    ['i-0123abc', '7 digits'],
    ['i-0123456789', '10 digits'],
    ['i-0c6f21bf1f24f970', '16 digits'],
    ['i-0c6f21bf1f24f97088', '18 digits'],
    ['i-0C6F21BF1F24F9708', 'upper-case hex'],
    ['i-zzzzzzzz', 'not hex (upstream accepts any \\w)'],
    ['i-0123abcd ', 'trailing space'],
    [' i-0123abcd', 'leading space'],
    ['i-0123abcd\n', 'trailing newline'],
    ['x-0123abcd', 'wrong prefix'],
    ['', 'empty (an IAM user)'],
    ['jdoe@example.com', 'a person'],
  ])('session %j (%s) is not an instance ID: fails without a lookup', async (sessionName) => {
    const resolve = vi.fn<PrivateDnsResolver>(async () => 'never')
    await expectMappingFailed(
      renderTemplate('system:node:{{EC2PrivateDNSName}}', session(sessionName), resolve),
      'SessionName did not contain an instance id',
    )
    expect(resolve).not.toHaveBeenCalled()
  })

  it('fails when no EC2 lookup is configured', async () => {
    await expectMappingFailed(
      renderTemplate('system:node:{{EC2PrivateDNSName}}', session('i-0123abcd'), undefined),
      '{{EC2PrivateDNSName}} is used but no EC2 lookup is configured',
    )
  })

  it('passes a lookup failure through, transient flag included', async () => {
    const failure = new MappingFailed('EC2 DescribeInstances throttled', { transient: true })
    const err = await expectMappingFailed(
      renderTemplate('system:node:{{EC2PrivateDNSName}}', session('i-0123abcd'), async () => Promise.reject(failure)),
      'EC2 DescribeInstances throttled',
      true,
    )
    expect(err).toBe(failure)
  })
})

describe('renderMapping', () => {
  it('renders the username and every group, in order', async () => {
    const resolve = vi.fn<PrivateDnsResolver>(async () => 'ip-172-31-27-14')
    expect(
      await renderMapping(
        {
          username: 'system:node:{{EC2PrivateDNSName}}',
          groups: ['system:nodes', 'acct-{{AccountID}}', 'system:bootstrappers'],
        },
        session('i-0c6f21bf1f24f9708'),
        resolve,
      ),
    ).toEqual({ username: 'system:node:ip-172-31-27-14', groups: ['system:nodes', 'acct-123', 'system:bootstrappers'] })
  })

  it('names the username template that failed', async () => {
    const err = await expectMappingFailed(
      renderMapping({ username: 'n-{{EC2PrivateDNSName}}', groups: [] }, session('jdoe'), undefined),
      'error rendering username template "n-{{EC2PrivateDNSName}}": SessionName did not contain an instance id',
    )
    expect(err.cause).toBeInstanceOf(MappingFailed)
  })

  it('names the group template that failed', async () => {
    await expectMappingFailed(
      renderMapping({ username: 'u', groups: ['ok', 'g-{{EC2PrivateDNSName}}'] }, session('jdoe'), undefined),
      'error rendering group template "g-{{EC2PrivateDNSName}}": SessionName did not contain an instance id',
    )
  })

  it('keeps the transient flag of a lookup failure', async () => {
    const resolve: PrivateDnsResolver = async () => {
      throw new MappingFailed('EC2 DescribeInstances rate limit (15/s, burst 5) reached', { transient: true })
    }
    await expectMappingFailed(
      renderMapping({ username: 'system:node:{{EC2PrivateDNSName}}', groups: [] }, session('i-0123abcd'), resolve),
      'error rendering username template "system:node:{{EC2PrivateDNSName}}": EC2 DescribeInstances rate limit (15/s, burst 5) reached',
      true,
    )
  })

  it('does not wrap errors that are not MappingFailed', async () => {
    const bug = new TypeError('boom')
    const resolve: PrivateDnsResolver = async () => {
      throw bug
    }
    await expect(
      renderMapping({ username: '{{EC2PrivateDNSName}}', groups: [] }, session('i-0123abcd'), resolve),
    ).rejects.toBe(bug)
  })
})

describe('templateProblems', () => {
  const unknown = (name: string) => `unknown template variable {{${name}}} (known: ${KNOWN_VARS})`

  it.each([
    ['plain text', 'system:masters'],
    [
      'every known variable',
      'n:{{EC2PrivateDNSName}}:{{AccountID}}:{{SessionName}}:{{SessionNameRaw}}:{{AccessKeyID}}',
    ],
    ['single braces', '{a}b}'],
    ['a known variable inside a third brace', '{{{AccountID}}}'],
    ['empty', ''],
  ])('%s: no problem', (_name, template) => {
    expect(templateProblems(template)).toEqual([])
  })

  it.each<[string, string, string[]]>([
    ['unknown variable', 'a-{{Foo}}-b', [unknown('Foo')]],
    ['variables are case-sensitive', '{{accountid}}', [unknown('accountid')]],
    ['spaces inside the braces', '{{ AccountID }}', [unknown(' AccountID ')]],
    ['empty braces', 'a{{}}b', [unknown('')]],
    ['two unknown variables', '{{Foo}}{{Bar}}', [unknown('Foo'), unknown('Bar')]],
    ['unclosed', 'a-{{AccountID', [`unbalanced "{{" or "}}" in 'a-{{AccountID'`]],
    ['half closed', 'a-{{AccountID}', [`unbalanced "{{" or "}}" in 'a-{{AccountID}'`]],
    ['stray closing', 'a}}b', [`unbalanced "{{" or "}}" in 'a}}b'`]],
    ['stray opening after a good variable', '{{AccountID}}{{', [`unbalanced "{{" or "}}" in '{{AccountID}}{{'`]],
    ['nested', '{{Session{{AccountID}}Name}}', [`unbalanced "{{" or "}}" in '{{Session{{AccountID}}Name}}'`]],
    ['unknown and unbalanced', '{{Foo}} {{', [unknown('Foo'), `unbalanced "{{" or "}}" in '{{Foo}} {{'`]],
  ])('%s: %j', (_name, template, problems) => {
    expect(templateProblems(template)).toEqual(problems)
  })
})
