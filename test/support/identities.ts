// Identity builders for the mapping tests: what processCallerIdentityResponse would produce for an
// STS answer, with the canonical ARN computed by the production canonicalizer.

import type { Identity } from '../../src/sts/get-caller-identity.js'
import { canonicalizeArn } from '../../src/sts/arn.js'

export interface IdentityOverrides {
  /** Principal ID without the session part; default `AROA...` for roles, `AIDA...` otherwise. */
  readonly userId?: string
  /** Default: the session part of an assumed-role ARN, '' for everything else. */
  readonly sessionName?: string
  /** Default: the account section of the ARN. */
  readonly accountId?: string
  readonly accessKeyId?: string
  readonly stsEndpoint?: string
}

/** The identity STS reports for `arn`; canonicalArn is canonicalizeArn(arn).canonical. */
export function identityOf(arn: string, overrides: IdentityOverrides = {}): Identity {
  const { type, canonical } = canonicalizeArn(arn)
  const roleLike = type === 'role' || type === 'assumed-role'
  const sessionFromArn = type === 'assumed-role' ? (arn.split('/').at(-1) ?? '') : ''
  return {
    arn,
    canonicalArn: canonical,
    accountId: overrides.accountId ?? arn.split(':')[4] ?? '',
    userId: overrides.userId ?? (roleLike ? 'AROAEXAMPLEROLEID0001' : 'AIDAEXAMPLEUSERID0001'),
    sessionName: overrides.sessionName ?? sessionFromArn,
    accessKeyId: overrides.accessKeyId ?? (roleLike ? 'ASIAEXAMPLEKEYID0001' : 'AKIAEXAMPLEKEYID0001'),
    stsEndpoint: overrides.stsEndpoint ?? 'sts.amazonaws.com',
  }
}

/** An assumed-role session of `arn:<partition>:iam::<account>:role/<role>`. */
export function sessionOf(
  account: string,
  role: string,
  sessionName: string,
  overrides: Omit<IdentityOverrides, 'sessionName'> & { readonly partition?: string } = {},
): Identity {
  const { partition = 'aws', ...rest } = overrides
  return identityOf(`arn:${partition}:sts::${account}:assumed-role/${role}/${sessionName}`, { ...rest, sessionName })
}

/** An IAM user `arn:<partition>:iam::<account>:user/<name>` (name may include a path). */
export function userOf(
  account: string,
  name: string,
  overrides: IdentityOverrides & { readonly partition?: string } = {},
): Identity {
  const { partition = 'aws', ...rest } = overrides
  return identityOf(`arn:${partition}:iam::${account}:user/${name}`, rest)
}
