import { fnv1a64 } from './hash.js'

type Env = Readonly<Record<string, string | undefined>>

/** Besides every AWS_* variable: the ones the AWS SDK uses to find ~/.aws (its getHomeDir). */
const HOME_VARIABLES = new Set(['HOME', 'USERPROFILE', 'HOMEDRIVE', 'HOMEPATH'])

/**
 * The names of the environment variables that can change which credentials the AWS SDK's chain
 * resolves, sorted: every AWS_* variable (keys, AWS_PROFILE, AWS_CONFIG_FILE,
 * AWS_SHARED_CREDENTIALS_FILE, AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_CONTAINER_*,
 * AWS_EC2_METADATA_*, endpoint overrides, and whatever the SDK reads next year) and the home
 * directory variables. Empty values count as unset, as the SDK reads them.
 */
export function credentialVariables(env: Env): string[] {
  return Object.keys(env)
    .filter(
      (name) => (name.startsWith('AWS_') || HOME_VARIABLES.has(name)) && env[name] !== '' && env[name] !== undefined,
    )
    .sort()
}

/**
 * A fingerprint of those variables and their values. It goes into the cache key, so a change to any
 * of them (another key, profile, credentials file, role, token file, endpoint) selects another
 * entry. Values are hashed, never stored: AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN are among them.
 */
export function environmentFingerprint(env: Env): string {
  return fnv1a64(
    credentialVariables(env)
      .map((name) => `${name}=${env[name]}`)
      .join('\0'),
  )
}

/**
 * True when the AWS SDK's chain would take the static keys in the environment: its first step,
 * which it skips when AWS_PROFILE is set.
 */
export function usesEnvironmentKeys(env: Env): boolean {
  return !env.AWS_PROFILE && !!env.AWS_ACCESS_KEY_ID && !!env.AWS_SECRET_ACCESS_KEY
}
