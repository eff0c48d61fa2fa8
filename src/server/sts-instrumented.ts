import type { StsHttpRequest, StsTransport } from '../sts/transport.js'
import type { Metrics } from '../shared/metrics.js'

/** Wraps the STS transport with upstream's STS metrics plus latency and in-flight gauges. */
export function instrumentSts(send: StsTransport, metrics: Metrics): StsTransport {
  return async function instrumentedSend(req: StsHttpRequest) {
    const region = stsRegionLabel(req.headers.host ?? '')
    const end = metrics.stsLatency.startTimer({ StsRegion: region })
    metrics.stsInflight.inc()
    try {
      const res = await send(req)
      metrics.stsResponses.inc({ ResponseCode: String(res.status), StsRegion: region })
      end({ outcome: res.status === 200 ? 'ok' : String(res.status) })
      return res
    } catch (err) {
      metrics.stsConnectionFailures.inc({ StsRegion: region })
      end({ outcome: 'connection_failure' })
      throw err
    } finally {
      metrics.stsInflight.dec()
    }
  }
}

function stsRegionLabel(host: string): string {
  if (host === 'sts.amazonaws.com') return 'global'
  return host.split('.')[1] ?? 'unknown'
}
