import t from 'tap'
import { findRegressions, formatRegression } from './compare.js'
import { parseChecks, type CheckResult, type CheckStatus } from './run-suite.js'

// The rule that decides whether CI fails: what passed directly must pass through the proxy.

const check = (scenario: string, id: string, status: CheckStatus, errorMessage?: string): CheckResult =>
  ({ scenario, id, name: id.toUpperCase(), status, ...(errorMessage === undefined ? {} : { errorMessage }) })

t.test('a pass lost, a scenario lost and a new failure are regressions; an INFO or WARNING that stays one is not', async (t) => {
  const direct = [
    check('ping', 'ping', 'SUCCESS'),
    check('ping', 'wire', 'SUCCESS'),
    check('tools', 'list', 'SUCCESS'),
    check('polling', 'event', 'INFO'),
    check('polling', 'event', 'INFO'),
    check('polling', 'retry', 'WARNING')
  ]
  const proxied = [
    check('ping', 'ping', 'FAILURE', 'got 403'),
    check('ping', 'wire', 'SUCCESS'),
    check('polling', 'event', 'INFO'),
    check('polling', 'retry', 'WARNING'),
    check('polling', 'extra', 'FAILURE', 'boom')
  ]
  t.same(findRegressions(direct, proxied).map(formatRegression), [
    'ping → ping (PING): SUCCESS directly, FAILURE through the proxy: got 403',
    'tools → list (LIST): SUCCESS directly, not run through the proxy',
    'polling → extra (EXTRA): not run directly, FAILURE through the proxy: boom'
  ])
  t.same(findRegressions(direct, direct), [], 'a run does not regress against itself')
})

t.test('a check id that a scenario repeats is counted: one of two passes lost is a regression', async (t) => {
  const direct = [check('streams', 'stream', 'SUCCESS'), check('streams', 'stream', 'SUCCESS')]
  const proxied = [check('streams', 'stream', 'SUCCESS'), check('streams', 'stream', 'WARNING', 'slow')]
  t.same(findRegressions(direct, proxied).map(formatRegression), ['streams → stream (STREAM): SUCCESS+SUCCESS directly, SUCCESS+WARNING through the proxy: slow'])
})

t.test('checks.json that is not what the suite writes is an error that names the file', async (t) => {
  t.same(parseChecks('ping', '[{"id":"ping","name":"Ping","status":"SUCCESS","details":{"n":1}}]', 'f.json'),
    [{ scenario: 'ping', id: 'ping', name: 'Ping', status: 'SUCCESS', details: { n: 1 } }])
  t.throws(() => parseChecks('ping', '{}', 'f.json'), /f\.json: expected an array of checks/)
  t.throws(() => parseChecks('ping', '[{"id":"ping","name":"Ping","status":"PASSED"}]', 'f.json'), /f\.json: check 0 .*unknown status/)
  t.throws(() => parseChecks('ping', '[null]', 'f.json'), /f\.json: check 0/)
})
