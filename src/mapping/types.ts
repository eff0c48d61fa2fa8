import type { Identity } from '../sts/get-caller-identity.js'

export type { Identity }

/** The backend names of upstream's `backendMode` (aliases File and ConfigMap are resolved on load). */
export const BACKEND_MODES = ['MountedFile', 'EKSConfigMap', 'CRD', 'DynamicFile'] as const
export type BackendMode = (typeof BACKEND_MODES)[number]

/** `mapRoles` entry, in upstream's field names. Exactly one of rolearn and sso. */
export interface RoleMapping {
  readonly rolearn?: string | undefined
  readonly sso?: SsoMapping | undefined
  readonly username: string
  readonly groups: readonly string[]
  readonly userid?: string | undefined
}

export interface SsoMapping {
  readonly permissionSetName: string
  readonly accountID: string
  readonly partition?: string | undefined
}

/** `mapUsers` entry. */
export interface UserMapping {
  readonly userarn: string
  readonly username: string
  readonly groups: readonly string[]
  readonly userid?: string | undefined
}

/** A username and groups before templates are rendered. */
export interface Mapping {
  readonly username: string
  readonly groups: readonly string[]
}

/** What kind of entry matched, strongest first (see rules.ts for the precedence). */
export type MatchKind = 'user' | 'role' | 'sso' | 'role-pattern'

/** An explicit match, with the rule that matched (for audit logs and `explain`), e.g. `mapRoles[2]`. */
export interface Match {
  readonly mapping: Mapping
  readonly rule: string
  readonly kind: MatchKind
  /** A role pattern match: the pattern as configured. */
  readonly pattern?: string | undefined
}

/** What a mapping source reports about itself on /status. */
export interface SourceStatus {
  readonly name: BackendMode
  readonly synced: boolean
  /**
   * False while the source cannot be read, or while its latest update was rejected; the last good
   * mapping stays in force meanwhile.
   */
  readonly healthy?: boolean
  /** The version of the mapping in force (resourceVersion, file mtime, config file). */
  readonly version?: string | undefined
  readonly lastSuccess?: string | undefined
  readonly lastError?: string | undefined
  readonly lastErrorTime?: string | undefined
  /**
   * The latest update that was not applied, until a valid one arrives (healthy is false meanwhile):
   * its version, its first problem and how many it has. The mapping of `version` stays in force.
   */
  readonly rejected?:
    { readonly version: string; readonly path: string; readonly message: string; readonly problems: number } | undefined
  readonly counts: { readonly roles: number; readonly users: number; readonly accounts: number }
}

/**
 * One mapping backend. Lookups are synchronous and total: they read the snapshot in force, never
 * throw and never do I/O, so a review costs no more than a map lookup whatever the backend.
 */
export interface Mapper {
  readonly name: BackendMode
  /** Resolves once the first snapshot is loaded (or failed); keeps it fresh until `signal` aborts. */
  start(signal: AbortSignal): Promise<void>
  /** The explicit mapping for this identity: user, then role, then SSO permission set, then role pattern. */
  lookup(identity: Identity): Match | undefined
  /** The rule (e.g. `mapAccounts[0]`) that allows every identity of this account, if any. */
  accountRule(accountId: string): string | undefined
  readonly reservedPrefixes: readonly string[]
  status(): SourceStatus
}
