import type { SuitePlan } from '../plan.js'
import { progress } from '../progress.js'
import { resilienceOptions } from '../proxy-options.js'
import { originOf, startProxy } from '../proxy-process.js'
import type { ReconnectFigures } from '../report/results.js'
import { latencySummary } from '../statistics.js'
import type { Testbed } from '../testbed.js'
import { streamPath } from '../upstream/stream-request.js'

const RESUME_STREAM_RATE = 1000
const EVENTS_BETWEEN_RESUMES = 5

/**
 * Scenario 4, through the plugin with its defaults.
 * Upstream drops: the upstream ends the stream cleanly `dropAfterMs` after each
 * connection's first event and stays up; the proxy reconnects at once, with
 * Last-Event-ID, which the upstream honours (it goes on after that id). Timed
 * from the close to the first event of the new connection at the client.
 * Client resumes: the client cuts its connection, waits `awayMs`, and comes back
 * with the last id it saw; timed from its GET to the first replayed event.
 */
export async function runReconnect (testbed: Testbed, plan: SuitePlan['reconnect']): Promise<ReconnectFigures> {
  const proxy = await startProxy({ kind: 'plugin', options: resilienceOptions(testbed.upstreamOrigin) }, 'resilience-proxy')
  try {
    const origin = originOf(proxy)
    const dropUrl = `${origin}${streamPath({ eventBytes: 200, ratePerSecond: 0, dropAfterMs: plan.dropAfterMs, key: `drops-${process.pid}` })}`
    const dropTimeoutMs = 60_000 + plan.drops * 200
    const drops = latencySummary(await testbed.client.call('timeUpstreamDrops', dropUrl, plan.drops, dropTimeoutMs))
    progress(`reconnect: upstream drop to first event p50 ${drops.p50Ms?.toFixed(2) ?? '-'} ms, p99 ${drops.p99Ms?.toFixed(2) ?? '-'} ms over ${plan.drops} drops`)
    const resumeUrl = `${origin}${streamPath({ eventBytes: 200, ratePerSecond: RESUME_STREAM_RATE })}`
    const resumes = await testbed.client.call('timeResumes', resumeUrl, plan.resumes, plan.awayMs, EVENTS_BETWEEN_RESUMES)
    const resumeLatency = latencySummary(resumes.samples)
    progress(`reconnect: client resume p50 ${resumeLatency.p50Ms?.toFixed(2) ?? '-'} ms, p99 ${resumeLatency.p99Ms?.toFixed(2) ?? '-'} ms over ${plan.resumes} resumes, ${resumes.recovered} in order`)
    return {
      upstreamP50Ms: drops.p50Ms,
      upstreamP99Ms: drops.p99Ms,
      clientResumeP50Ms: resumeLatency.p50Ms,
      clientResumeP99Ms: resumeLatency.p99Ms,
      upstreamDrops: plan.drops,
      clientResumes: plan.resumes,
      clientResumesInOrder: resumes.recovered
    }
  } finally {
    await proxy.stop()
  }
}
