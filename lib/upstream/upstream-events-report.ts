import type { FastifyBaseLogger } from 'fastify'
import type { ProxyMetrics, RouteLabels } from '../metrics.js'
import type { UpstreamEndReason } from './upstream-stream.js'
import { codedCause } from './error-cause.js'

/** What logging and counting an upstream stream's troubles needs to know. */
export interface UpstreamReportContext {
  readonly metrics: ProxyMetrics
  readonly labels: RouteLabels
  readonly log: FastifyBaseLogger
  readonly upstreamUrl: string
  readonly maxEventBytes: number
  readonly idleTimeoutMs: number
}

/** A line the SSE spec says to ignore: counted, and logged at DEBUG. */
export function reportMalformedLine (report: UpstreamReportContext, reason: string): void {
  report.metrics.upstreamMalformed.inc({ ...report.labels, reason })
  report.log.debug({ upstream: report.upstreamUrl, reason }, 'ignored a malformed upstream SSE line')
}

/** Logs and counts how an upstream connection ended, whoever relays it. */
export function reportUpstreamEnd (report: UpstreamReportContext, reason: UpstreamEndReason, error?: Error): void {
  const { metrics, labels, log, upstreamUrl } = report
  if (reason === 'oversized-event') {
    metrics.upstreamMalformed.inc({ ...labels, reason })
    log.warn({ upstream: upstreamUrl, maxEventBytes: report.maxEventBytes }, 'upstream event exceeds limits.maxEventBytes; closing the stream')
  } else if (reason === 'failed') {
    reportFailure(report, error)
  } else if (reason === 'stalled') {
    metrics.upstreamStalls.inc(labels)
    log.info({ upstream: upstreamUrl, idleTimeoutMs: report.idleTimeoutMs }, 'upstream stream stalled: nothing within health.idleTimeoutSeconds')
  }
}

/**
 * An upstream that restarts or drops its connections is what the proxy is for: one
 * line with the root cause, such as `UND_ERR_SOCKET: other side closed`. An error with
 * no code anywhere in its chain came from no socket: it is unexpected, and keeps its stack.
 */
function reportFailure (report: UpstreamReportContext, error: Error | undefined): void {
  const { log, upstreamUrl } = report
  const cause = error === undefined ? 'closed before its end' : codedCause(error)
  if (cause === undefined) {
    log.warn({ upstream: upstreamUrl, err: error }, 'upstream stream failed')
  } else {
    log.info({ upstream: upstreamUrl, cause }, 'upstream stream failed')
  }
}
