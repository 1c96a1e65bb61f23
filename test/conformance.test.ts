import t, { type Test } from 'tap'
import { findRegressions, formatRegression, formatTally, tally, type Regression } from './conformance/compare.js'
import { startEverythingUpstream } from './conformance/everything-upstream.js'
import { runConformance, type CheckResult, type Selection, type SuiteRun } from './conformance/run-suite.js'
import { startProxy } from './helpers/proxy.js'

// The official MCP conformance suite, run at once directly against our everything-upstream
// and through the proxy in front of it (one streamable-http route, default options). Each run
// is a Node 22 child process; the four overlap, so the file takes as long as the slowest one
// (server-sse-polling through the proxy: about 12 s, 10 of them the scenario's own read timeout).

const RUN_TIMEOUT_MS = 120_000
const ACTIVE: Selection = { suite: 'active' }
// Pending in the suite (so not in `active`), but it is the one scenario about resuming a
// stream, which is what the proxy is for.
const POLLING: Selection = { scenario: 'server-sse-polling' }

const upstream = await startEverythingUpstream()
t.teardown(async () => await upstream.close())
const proxy = await startProxy(t, { routes: [{ kind: 'streamable-http', path: '/mcp', upstream: upstream.url }] })

const run = async (url: string, selection: Selection): Promise<SuiteRun> => await runConformance(url, selection, { timeoutMs: RUN_TIMEOUT_MS })
const [direct, proxied, pollingDirect, pollingProxied] = await Promise.all([
  run(upstream.url, ACTIVE),
  run(proxy.url('/mcp'), ACTIVE),
  run(upstream.url, POLLING),
  run(proxy.url('/mcp'), POLLING)
])

function unpassed (checks: CheckResult[]): string[] {
  return checks
    .filter((check) => check.status === 'FAILURE' || check.status === 'WARNING')
    .map((check) => `${check.scenario} → ${check.id} (${check.name}): ${check.status}${check.errorMessage === undefined ? '' : `: ${check.errorMessage}`}`)
}

/** One assertion; when it fails, its message and its diff list each regressed check by scenario and name. */
function assertNoRegressions (test: Test, regressions: Regression[], what: string): void {
  const lines = regressions.map(formatRegression)
  const listed = lines.length === 0 ? '' : `; ${lines.length} regress: ${lines.join('; ')}`
  test.same(lines, [], `${what}: every check that passes directly passes through the proxy${listed}`)
}

t.test('the active suite: every check passes against the everything-upstream', async (t) => {
  t.comment(formatTally('active suite, directly', tally(direct.checks), direct.durationMs))
  t.ok(direct.scenarios.length >= 30, `the active suite ran its scenarios (${direct.scenarios.length})`)
  t.same(unpassed(direct.checks), [], 'no check fails or warns directly')
})

t.test('the active suite through the proxy: every check that passes directly passes too', async (t) => {
  t.comment(formatTally('active suite, through the proxy', tally(proxied.checks), proxied.durationMs))
  t.same(proxied.scenarios, direct.scenarios, 'the same scenarios ran through the proxy')
  assertNoRegressions(t, findRegressions(direct.checks, proxied.checks), 'active suite')
})

t.test('server-sse-polling: the upstream closes its stream mid-call; the answer reaches the client both ways', async (t) => {
  t.comment(formatTally('server-sse-polling, directly', tally(pollingDirect.checks), pollingDirect.durationMs))
  t.comment(formatTally('server-sse-polling, through the proxy', tally(pollingProxied.checks), pollingProxied.durationMs))
  const statusOf = (suiteRun: SuiteRun, id: string): CheckResult | undefined => suiteRun.checks.find((check) => check.id === id)

  // Directly, the client resumes with a GET and Last-Event-ID, and the event store replays the answer.
  t.same(unpassed(pollingDirect.checks), [], 'no check fails or warns directly')
  for (const id of ['server-sse-priming-event', 'server-sse-retry-field', 'server-sse-disconnect-resume']) {
    t.equal(statusOf(pollingDirect, id)?.status, 'SUCCESS', `${id} passes directly`)
  }

  // Through the proxy, the client never sees the upstream's disconnect: the proxy resumes the
  // upstream stream itself and sends the answer on the client's POST stream. The check then
  // reports its INFO outcome for "answer received on the initial POST stream", by design.
  const resume = statusOf(pollingProxied, 'server-sse-disconnect-resume')
  t.equal(resume?.status, 'INFO', 'the proxy absorbs the disconnect')
  t.match(resume?.details, { receivedToolResponse: true }, 'the client gets the tool answer without resuming')
  const absorbed = (regression: Regression): boolean => regression.id === 'server-sse-disconnect-resume' && resume?.status === 'INFO'
  assertNoRegressions(t, findRegressions(pollingDirect.checks, pollingProxied.checks).filter((regression) => !absorbed(regression)), 'server-sse-polling')
})
