// The guard rails `validate` puts on role patterns the server accepts (lint.ts): warnings, which
// `validate --strict` turns into failures (see test/cli/role-patterns.test.ts).
import { describe, expect, it } from 'vitest'
import { patternFindings } from '../../src/mapping/lint.js'
import { compileRules } from '../../src/mapping/rules.js'

const A = '111122223333'
const findings = (name: string, groups: string[]) => {
  const { rules, problems } = compileRules({
    mapRoles: [{ rolearn: `arn:aws:iam::${A}:role/${name}`, username: 'u', groups }],
    mapUsers: [],
    mapAccounts: [],
  })
  expect(problems).toEqual([])
  return patternFindings(rules, 'data.').map((p) => `${p.path}: ${p.severity}: ${p.message}`)
}

describe('role pattern guard rails', () => {
  it.each([
    ['system:masters', true],
    ['system:{{SessionName}}', true],
    ['system{{SessionNameRaw}}', false], // a session name holds no ':'
    ['system:mast{{SessionNameRaw}}', true],
    ['system:{{SessionName}}-x', false],
    ['system:{{AccountID}}', false],
    ['system:{{AccessKeyID}}', false],
    ['system:master', false],
    ['developers', false],
  ])('group %s may grant system:masters: %s', (group, warned) => {
    const out = findings('dev-*', [group])
    expect(out.length).toBe(warned ? 1 : 0)
    if (warned)
      expect(out[0]).toMatch(
        /^data\.mapRoles\[0\]\.rolearn: warning: role pattern .* \(cluster admin, past every RBAC rule\)/,
      )
  })

  it('a session-name group says how it becomes system:masters', () => {
    expect(findings('dev-*', ['system:{{SessionName}}'])).toEqual([
      `data.mapRoles[0].rolearn: warning: role pattern arn:aws:iam::${A}:role/dev-* grants group 'system:{{SessionName}}', which a session name can turn into system:masters (cluster admin, past every RBAC rule), to every role of account ${A} whose name matches 'dev-*', roles created later included: map admin roles one by one, by exact ARN`,
    ])
  })

  it.each([
    ['*', true],
    ['?*', true],
    ['**', true],
    ['???', false],
    ['a*', false],
  ])('%s matches every role of the account: %s', (name, warned) => {
    expect(findings(name, []).some((f) => f.includes('matches every role of account'))).toBe(warned)
  })

  it('both at once are two warnings; an exact entry gets none', () => {
    expect(findings('*', ['system:masters'])).toHaveLength(2)
    expect(findings('Admin', ['system:masters'])).toEqual([])
  })
})
