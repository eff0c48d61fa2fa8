import type { AwsCredentialIdentity } from '@smithy/types'

export interface PrivateDnsOptions {
  readonly region: string
  /** Token-bucket rate for DescribeInstances calls; 0 = unlimited. Upstream default 15. */
  readonly qps: number
  /** Bucket size (>= 1). Upstream default 5. */
  readonly burst: number
  /** Assume this role for EC2 calls (ec2DescribeInstancesRoleARN); 60 min sessions, refreshed. */
  readonly roleArn?: string | undefined
  /** Adds x-amz-source-account / x-amz-source-arn to the AssumeRole call (confused-deputy protection). */
  readonly sourceArn?: string | undefined
  /** Default 6 h: positive entries expire (upstream's never do). */
  readonly cacheTtlMs?: number | undefined
  /** Default 30 s: "instance not found" is cached briefly. */
  readonly negativeTtlMs?: number | undefined
  /** Default 10 000 entries, least recently used evicted first. Also bounds lookups in flight. */
  readonly cacheSize?: number | undefined
  /** Default 50 ms: IDs requested within the window go in one DescribeInstances call. */
  readonly batchWindowMs?: number | undefined
  /** Default 100 IDs per call. */
  readonly maxBatch?: number | undefined
  /**
   * Default 5 s: how long one batch may take from its flush, waiting for the rate limiter, calling
   * EC2 (all pages) and retrying after "not found" included. So a lookup settles within
   * batchWindowMs + timeoutMs.
   */
  readonly timeoutMs?: number | undefined
}

/** AWS client settings that production leaves unset (then the SDK's default chain and AWS_ENDPOINT_URL_* apply). */
export interface AwsClientSettings {
  /** The credentials the EC2 client uses or, with `roleArn`, the ones that call AssumeRole. */
  readonly credentials?: AwsCredentialIdentity | undefined
  readonly ec2Endpoint?: string | undefined
  readonly stsEndpoint?: string | undefined
}

export interface PrivateDnsDeps {
  readonly now: () => number
  /** Every DescribeInstances call (each page), e.g. metrics.ec2DescribeInstancesCalls.inc(). */
  readonly onCall?: () => void
  /** The outcome of every DescribeInstances call (not of calls refused by the local rate limiter). */
  readonly onResult?: (outcome: EC2Outcome) => void
  /** Replaces the EC2 call (tests of the batching logic only); default: @aws-sdk/client-ec2. */
  readonly describe?: (ids: string[]) => Promise<Map<string, string>>
  readonly aws?: AwsClientSettings
}

export type EC2Outcome = 'ok' | 'not_found' | 'throttled' | 'error'

export interface PrivateDnsLookup {
  readonly resolve: (instanceId: string) => Promise<string>
  /** Rejects pending lookups, aborts calls in flight, clears timers and destroys the AWS clients. */
  readonly close: () => void
  /** Entries in the cache (positive and negative). */
  readonly size: number
}

/** One page of DescribeInstances: instance ID -> private DNS name. */
export interface Page {
  readonly found: Map<string, string>
  readonly nextToken?: string | undefined
}

export type PageFn = (ids: string[], nextToken: string | undefined, signal: AbortSignal) => Promise<Page>
