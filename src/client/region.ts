import { requestedRegion, requestedRegionOrigin } from './fast-path.js'

type Env = Readonly<Record<string, string | undefined>>

/**
 * The region to sign for: --region, AWS_REGION, AWS_DEFAULT_REGION, the profile's `region`, then
 * us-east-1. Instance metadata is not asked: it would stall every kubectl call made off EC2.
 */
export async function resolveRegion(flag: string | undefined, env: Env): Promise<{ region: string; origin: string }> {
  const explicit = requestedRegion(flag, env)
  if (explicit) return { region: explicit, origin: requestedRegionOrigin(flag, env) }
  const { loadConfig, NODE_REGION_CONFIG_OPTIONS, NODE_REGION_CONFIG_FILE_OPTIONS } =
    await import('@smithy/core/config')
  try {
    const region = await loadConfig(NODE_REGION_CONFIG_OPTIONS, NODE_REGION_CONFIG_FILE_OPTIONS)()
    if (region) return { region, origin: `profile "${env.AWS_PROFILE || 'default'}"` }
  } catch {
    // no region configured anywhere
  }
  return { region: 'us-east-1', origin: 'default' }
}
