import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/**
 * Every metric the server exports, created per registry (never module globals), so each test and
 * each server instance reads its own. Upstream's names are kept so existing dashboards work; our
 * additions use the `kube_iam_auth_` prefix.
 */
export function createMetrics(registry = new Registry(), opts: { defaultMetrics?: boolean } = {}) {
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry })
  const up = 'aws_iam_authenticator_'
  const ours = 'kube_iam_auth_'
  const registers = [registry]
  return {
    registry,
    // upstream's pkg/metrics names and labels; `result` keeps upstream's values, typo `uknown_user` included
    authenticateLatency: new Histogram({
      name: `${up}authenticate_latency_seconds`,
      help: 'Authenticate call latency in seconds',
      labelNames: ['result'] as const,
      registers,
    }),
    stsConnectionFailures: new Counter({
      name: `${up}sts_connection_failures_total`,
      help: 'STS requests that failed to connect or time out',
      labelNames: ['StsRegion'] as const,
      registers,
    }),
    stsResponses: new Counter({
      name: `${up}sts_responses_total`,
      help: 'STS responses by HTTP status',
      labelNames: ['ResponseCode', 'StsRegion'] as const,
      registers,
    }),
    stsThrottling: new Counter({
      name: `${up}sts_throttling_total`,
      help: 'STS requests that were throttled',
      labelNames: ['StsRegion'] as const,
      registers,
    }),
    configMapWatchFailures: new Counter({
      name: `${up}configmap_watch_failures_total`,
      help: 'aws-auth ConfigMap watch failures',
      registers,
    }),
    dynamicFileFailures: new Counter({
      name: `${up}dynamicfile_failures_total`,
      help: 'DynamicFile loads that failed',
      registers,
    }),
    ec2DescribeInstancesCalls: new Counter({
      name: `${up}ec2_describe_instances_calls_total`,
      help: 'EC2 DescribeInstances calls',
      registers,
    }),
    dynamicE2eLatency: new Histogram({
      name: `${up}dynamic_e2e_latency_seconds`,
      help: 'Time from a dynamic file update (its LastUpdatedDateTime) to it taking effect',
      labelNames: ['type'] as const,
      buckets: [1, 3, 5, 10, 15, 20, 30, 60],
      registers,
    }),
    dynamicFileEnabled: new Gauge({
      name: `${up}dynamic_file_enabled`,
      help: 'DynamicFile is in the backend chain',
      registers,
    }),
    dynamicFileOnly: new Gauge({ name: `${up}dynamic_file_only`, help: 'DynamicFile is the only backend', registers }),

    // kube-iam-auth additions
    reviews: new Counter({
      name: `${ours}reviews_total`,
      help: 'TokenReviews answered, by decision and reason code',
      labelNames: ['decision', 'reason'] as const,
      registers,
    }),
    identityCacheHits: new Counter({
      name: `${ours}identity_cache_hits_total`,
      help: 'Reviews answered from the identity cache',
      registers,
    }),
    identityCacheMisses: new Counter({
      name: `${ours}identity_cache_misses_total`,
      help: 'Reviews that needed STS',
      registers,
    }),
    identityCacheEntries: new Gauge({
      name: `${ours}identity_cache_entries`,
      help: 'Identities in the cache',
      registers,
    }),
    stsInflight: new Gauge({ name: `${ours}sts_inflight_requests`, help: 'STS requests in flight', registers }),
    stsQueued: new Gauge({ name: `${ours}sts_queued_requests`, help: 'STS requests waiting for a slot', registers }),
    stsQueueRejections: new Counter({
      name: `${ours}sts_queue_rejections_total`,
      help: 'Reviews refused (503) because no STS slot was free in time, by lane (confirmed or unknown credential)',
      labelNames: ['lane'] as const,
      registers,
    }),
    stsLaneRequests: new Counter({
      name: `${ours}sts_lane_requests_total`,
      help: 'Reviews that needed STS, by lane: confirmed (a credential STS confirmed and the mapping let in recently) or unknown',
      labelNames: ['lane'] as const,
      registers,
    }),
    rememberedRejections: new Counter({
      name: `${ours}sts_remembered_rejections_total`,
      help: 'Reviews refused locally because STS had just refused the same token, or does not know its credential',
      registers,
    }),
    confirmedCredentials: new Gauge({
      name: `${ours}sts_confirmed_credentials`,
      help: 'Credentials in the confirmed lane',
      registers,
    }),
    clusterIdReviews: new Counter({
      name: `${ours}cluster_id_reviews_total`,
      help: 'Reviews of tokens STS verified, by the cluster ID the token named (clusterID or one of clusterIDs)',
      labelNames: ['cluster_id'] as const,
      registers,
    }),
    stsCallsPerVerification: new Histogram({
      name: `${ours}sts_calls_per_verification`,
      help:
        'STS calls one verification made: 1, plus 1 for each accepted cluster ID tried before the one the token ' +
        'names (clusterIDs), by result (verified, refused, failed)',
      labelNames: ['result'] as const,
      buckets: [1, 2, 3, 4, 5],
      registers,
    }),
    auditLinesSuppressed: new Counter({
      name: `${ours}audit_lines_suppressed_total`,
      help: 'Denial and error log lines not written individually (counted in a summary line instead), by decision',
      labelNames: ['decision'] as const,
      registers,
    }),
    stsLatency: new Histogram({
      name: `${ours}sts_request_duration_seconds`,
      help: 'STS GetCallerIdentity latency by outcome',
      labelNames: ['StsRegion', 'outcome'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    ec2Responses: new Counter({
      name: `${ours}ec2_describe_instances_results_total`,
      help: 'EC2 DescribeInstances outcomes',
      labelNames: ['outcome'] as const,
      registers,
    }),
    sourceReloads: new Counter({
      name: `${ours}mapping_source_reloads_total`,
      help: 'Mapping source updates, by source and result (applied or rejected)',
      labelNames: ['source', 'result'] as const,
      registers,
    }),
    sourceSynced: new Gauge({
      name: `${ours}mapping_source_synced`,
      help: '1 when the mapping source has loaded a valid snapshot',
      labelNames: ['source'] as const,
      registers,
    }),
    sourceLastSuccess: new Gauge({
      name: `${ours}mapping_source_last_success_timestamp_seconds`,
      help: 'When the mapping source last applied a valid snapshot',
      labelNames: ['source'] as const,
      registers,
    }),
    sourceRejectedUpdate: new Gauge({
      name: `${ours}mapping_source_rejected_update`,
      help: '1 while the latest update of the source was rejected and the previous mapping stays in force',
      labelNames: ['source'] as const,
      registers,
    }),
    callerAuthFailures: new Counter({
      name: `${ours}caller_auth_failures_total`,
      help: 'Requests to /authenticate refused for a missing or invalid caller token, or rate limited',
      labelNames: ['reason'] as const,
      registers,
    }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>
