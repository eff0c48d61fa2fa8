import { MappingFailed } from '../../shared/errors.js'
import type { EC2Outcome } from './types.js'

const NOT_FOUND_CODES = new Set(['InvalidInstanceID.NotFound', 'InvalidInstanceID.Malformed'])
const THROTTLE_CODES = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
])

/** What an EC2 (or local) failure means for the lookup, and for the outcome metric. */
export function outcomeOf(err: unknown): EC2Outcome {
  if (err instanceof MappingFailed) return 'error'
  const e = err as { name?: unknown; Code?: unknown; $metadata?: { httpStatusCode?: number } } | null
  const code = typeof e?.Code === 'string' ? e.Code : typeof e?.name === 'string' ? e.name : ''
  if (NOT_FOUND_CODES.has(code)) return 'not_found'
  if (THROTTLE_CODES.has(code) || e?.$metadata?.httpStatusCode === 429) return 'throttled'
  return 'error'
}

/**
 * Anything but "not found" may go away on retry: throttling, 5xx, network, timeouts, and also
 * access denied (our configuration, not the node, is at fault; the review should not be a denial).
 */
export function toMappingFailed(err: unknown): MappingFailed {
  if (err instanceof MappingFailed) return err
  const what = outcomeOf(err) === 'throttled' ? 'was throttled' : 'failed'
  return new MappingFailed(`EC2 DescribeInstances ${what}: ${errorMessage(err)}`, { transient: true, cause: err })
}

/** The instance IDs an EC2 error message names (InvalidInstanceID.NotFound lists the unknown ones). */
export function instanceIdsIn(message: string): string[] {
  return message.match(/\bi-[0-9a-f]{8}(?:[0-9a-f]{9})?\b/g) ?? []
}

export function errorMessage(err: unknown): string {
  const e = err as { name?: unknown; message?: unknown } | null
  const message = typeof e?.message === 'string' ? e.message : String(err)
  return typeof e?.name === 'string' && e.name !== 'Error' && !message.includes(e.name)
    ? `${e.name}: ${message}`
    : message
}

export const notFound = (id: string): MappingFailed => new MappingFailed(`failed to find node ${id}`)

export const timedOut = (ms: number): MappingFailed =>
  new MappingFailed(`EC2 DescribeInstances timed out after ${ms} ms`, { transient: true })

export const closedError = (): MappingFailed =>
  new MappingFailed('EC2 private DNS lookup is closed', { transient: true })
