import type { Reader } from '../shared/reader.js'
import type { RoleMapping, UserMapping } from './types.js'

/** Role and user entries keep their raw values; rules.ts validates them (shared with the ConfigMap). */
export function roleMapping(r: Reader): RoleMapping {
  r.warnUnknown(['rolearn', 'sso', 'username', 'groups', 'userid'])
  const sso = r.has('sso') ? r.object('sso') : undefined
  sso?.warnUnknown(['permissionsetname', 'accountid', 'partition'])
  return {
    rolearn: r.rawString('rolearn'),
    sso:
      sso === undefined
        ? undefined
        : {
            permissionSetName: sso.rawString('permissionSetName') as string,
            accountID: sso.accountString('accountID') as string,
            partition: sso.rawString('partition'),
          },
    username: r.rawString('username') as string,
    groups: r.rawStringList('groups') as string[],
    userid: r.rawString('userid'),
  }
}

export function userMapping(u: Reader): UserMapping {
  u.warnUnknown(['userarn', 'username', 'groups', 'userid'])
  return {
    userarn: u.rawString('userarn') as string,
    username: u.rawString('username') as string,
    groups: u.rawStringList('groups') as string[],
    userid: u.rawString('userid'),
  }
}
