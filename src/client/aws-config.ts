import { join } from 'node:path'

type Env = Readonly<Record<string, string | undefined>>
export type Section = Readonly<Record<string, string | undefined>>

/** The shared config and credentials files as the AWS SDK reads them, with their profiles merged. */
export interface AwsConfig {
  readonly configFile: string
  readonly credentialsFile: string
  /** Profiles of both files, the credentials file's keys winning (the SDK's parseKnownFiles). */
  readonly profiles: Readonly<Record<string, Section>>
  /** `[sso-session NAME]` sections of the config file. */
  readonly ssoSessions: Readonly<Record<string, Section>>
}

/** What a profile gets its credentials from, as the SDK's fromIni decides (in its order). */
export type ProfileKind = 'assume-role' | 'static' | 'web-identity' | 'process' | 'sso' | 'login' | 'none'

/** The SDK's home directory (its getHomeDir): HOME, USERPROFILE, HOMEDRIVE+HOMEPATH, then the OS. */
export function awsHomeDir(env: Env): string {
  if (env.HOME) return env.HOME
  if (env.USERPROFILE) return env.USERPROFILE
  if (env.HOMEPATH) return `${env.HOMEDRIVE ?? 'C:\\'}${env.HOMEPATH}`
  return process.getBuiltinModule('node:os').homedir()
}

/** AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE or their defaults, with `~/` expanded as the SDK does. */
export function sharedFilePaths(env: Env): { configFile: string; credentialsFile: string } {
  const home = awsHomeDir(env)
  const expand = (p: string) => (p.startsWith('~/') ? join(home, p.slice(2)) : p)
  return {
    configFile: expand(env.AWS_CONFIG_FILE || join(home, '.aws', 'config')),
    credentialsFile: expand(env.AWS_SHARED_CREDENTIALS_FILE || join(home, '.aws', 'credentials')),
  }
}

/**
 * Parses both files with the SDK's own loader (which caches each file's text for the life of the
 * process, so the credential chain that runs next sees exactly this content). A file that is
 * missing or unreadable counts as empty, as for the SDK.
 */
export async function loadAwsConfig(env: Env): Promise<AwsConfig> {
  const { configFile, credentialsFile } = sharedFilePaths(env)
  const { loadSharedConfigFiles } = await import('@smithy/core/config')
  const files = await loadSharedConfigFiles({ filepath: credentialsFile, configFilepath: configFile })
  const profiles: Record<string, Record<string, string | undefined>> = {}
  const ssoSessions: Record<string, Section> = {}
  for (const [name, section] of Object.entries(files.configFile)) {
    if (name.startsWith('sso-session.')) ssoSessions[name.slice('sso-session.'.length)] = section
    else if (!name.startsWith('services.')) profiles[name] = { ...section }
  }
  for (const [name, section] of Object.entries(files.credentialsFile)) {
    profiles[name] = { ...profiles[name], ...section }
  }
  return { configFile, credentialsFile, profiles, ssoSessions }
}

/** The profile's credential settings, classified in the order the SDK's fromIni tries them. */
export function profileKind(p: Section | undefined): ProfileKind {
  if (p === undefined) return 'none'
  if (p.role_arn !== undefined && (p.source_profile !== undefined || p.credential_source !== undefined)) {
    return 'assume-role'
  }
  if (p.aws_access_key_id !== undefined && p.aws_secret_access_key !== undefined) return 'static'
  if (p.web_identity_token_file !== undefined && p.role_arn !== undefined) return 'web-identity'
  if (p.credential_process !== undefined) return 'process'
  if (
    p.sso_session !== undefined ||
    p.sso_start_url !== undefined ||
    p.sso_account_id !== undefined ||
    p.sso_region !== undefined ||
    p.sso_role_name !== undefined
  ) {
    return 'sso'
  }
  if (p.login_session !== undefined) return 'login'
  return 'none'
}

/** How a profile kind is named in messages. */
export const KIND_NAMES: Readonly<Record<ProfileKind, string>> = {
  'assume-role': 'assume role',
  static: 'access keys',
  'web-identity': 'web identity',
  process: 'credential_process',
  sso: 'IAM Identity Center (SSO)',
  login: 'aws login',
  none: 'no credentials',
}
