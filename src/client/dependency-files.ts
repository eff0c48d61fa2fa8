import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { CacheError } from '../shared/errors.js'
import { awsHomeDir, loadAwsConfig, sharedFilePaths, type AwsConfig } from './aws-config.js'
import { MAX_DEPENDENCIES, recordedState, type Dependency } from './file-state.js'

type Env = Readonly<Record<string, string | undefined>>

/**
 * The files whose content decides which credentials the chain resolves, besides the environment:
 * the shared config and credentials files; the web identity token files named by
 * AWS_WEB_IDENTITY_TOKEN_FILE or by any profile; the container authorization token file; and the
 * IAM Identity Center token cache file (`~/.aws/sso/cache/<sha1>.json`, what `aws sso login` writes)
 * of every SSO session and start URL the config names. Deliberately more than the one profile in
 * use needs: a source_profile chain is covered without following it.
 */
export function dependencyPaths(env: Env, config: AwsConfig): string[] {
  const paths = [config.configFile, config.credentialsFile]
  if (env.AWS_WEB_IDENTITY_TOKEN_FILE) paths.push(env.AWS_WEB_IDENTITY_TOKEN_FILE)
  if (env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) paths.push(env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)
  const ssoIds = new Set<string>(Object.keys(config.ssoSessions))
  for (const p of Object.values(config.profiles)) {
    if (p.web_identity_token_file) paths.push(p.web_identity_token_file)
    if (p.sso_session) ssoIds.add(p.sso_session)
    else if (p.sso_start_url) ssoIds.add(p.sso_start_url)
  }
  const home = awsHomeDir(env)
  for (const id of [...ssoIds].sort()) {
    paths.push(join(home, '.aws', 'sso', 'cache', `${createHash('sha1').update(id).digest('hex')}.json`))
  }
  return [...new Set(paths)]
}

/**
 * The dependencies' states, taken before the chain reads them (a file edited meanwhile then no
 * longer matches, which costs a miss, never a wrong hit), and the parsed config for the chain. The
 * shared files are stat'ed before they are parsed; the others are named by the parsed config.
 */
export async function snapshotDependencies(
  env: Env,
  nowMs: number,
): Promise<{ deps: Dependency[]; config: AwsConfig }> {
  const { configFile, credentialsFile } = sharedFilePaths(env)
  const shared: Dependency[] = [
    [configFile, recordedState(configFile, nowMs)],
    [credentialsFile, recordedState(credentialsFile, nowMs)],
  ]
  const config = await loadAwsConfig(env)
  const rest = dependencyPaths(env, config).filter((p) => p !== configFile && p !== credentialsFile)
  const deps: Dependency[] = [...shared, ...rest.map((p): Dependency => [p, recordedState(p, nowMs)])]
  if (deps.length > MAX_DEPENDENCIES) {
    throw new CacheError(
      `the AWS config names ${deps.length} credential files; the cache follows at most ${MAX_DEPENDENCIES}`,
    )
  }
  return { deps, config }
}
