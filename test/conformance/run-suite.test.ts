import t from 'tap'
import { conformanceNode, runConformance } from './run-suite.js'

// How the suite's runner finds its Node 22, and what it says when the suite gives it nothing.

t.test('the suite runs on MCP_CONFORMANCE_NODE, else the runtime install, else this Node if it is 22 or later', async (t) => {
  const here = process.execPath
  const v20 = { execPath: '/usr/bin/node', version: 'v20.20.2' }
  t.equal(conformanceNode({ MCP_CONFORMANCE_NODE: here }, '/nowhere', v20), here)
  t.throws(() => conformanceNode({ MCP_CONFORMANCE_NODE: '/nowhere/node' }, here, v20), /MCP_CONFORMANCE_NODE names no file: \/nowhere\/node/)
  t.equal(conformanceNode({}, here, v20), here, 'the runtime install')
  t.equal(conformanceNode({ MCP_CONFORMANCE_NODE: '' }, '/nowhere', { execPath: '/opt/node22', version: 'v22.12.0' }), '/opt/node22')
  t.throws(() => conformanceNode({}, '/nowhere', v20), /needs Node 22 or later, and this is v20\.20\.2: `npm run conformance:runtime`/)
})

t.test('a run that writes no results fails with the end of the suite\'s output', async (t) => {
  await t.rejects(runConformance('http://127.0.0.1:9/mcp', { scenario: 'no-such-scenario' }, { timeoutMs: 60_000 }),
    /wrote no results for http:\/\/127\.0\.0\.1:9\/mcp; its output ended with:\n[^]*no-such-scenario/)
})

t.test('a run that outlasts its time is killed, and says so', async (t) => {
  await t.rejects(runConformance('http://127.0.0.1:9/mcp', { suite: 'active' }, { timeoutMs: 1 }), /did not finish within 1 ms/)
})
