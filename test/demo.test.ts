import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { freePort } from './helpers/free-port.js'
import { startStandalone } from './helpers/standalone-process.js'

// `npm run demo` as a user runs it (the built demo), with short intervals and two faults.

/** The pids of every live process below `root`, from /proc. */
function descendantsOf (root: number): number[] {
  const parents = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      parents.set(Number(entry), ppid)
    } catch {
      // It exited while being read.
    }
  }
  const found: number[] = []
  const walk = (pid: number): void => {
    for (const [child, parent] of parents) {
      if (parent === pid) {
        found.push(child)
        walk(child)
      }
    }
  }
  walk(root)
  return found
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function isFree (port: number): Promise<boolean> {
  const server = createServer()
  return await new Promise((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** The commands under "Try it": each block is its comment line and the lines below it, as a user would paste them. */
function printedCommands (stdout: string): Array<{ about: string, script: string }> {
  const section = stdout.slice(stdout.indexOf('Try it'), stdout.indexOf('Below, a client'))
  return section.split('\n\n').filter((block) => block.startsWith('  # ')).map((block) => {
    const [comment = '', ...lines] = block.split('\n')
    return { about: comment.slice(4), script: lines.map((line) => line.slice(2)).join('\n') }
  })
}

/** Runs a printed command with sh, as pasted; resolves with its stdout once it ends or `until` holds for it. */
async function runPasted (script: string, until?: (stdout: string) => boolean): Promise<string> {
  const shell = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'], detached: true })
  let stdout = ''
  shell.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  const timer = setTimeout(() => process.kill(-(shell.pid ?? 0), 'SIGKILL'), 15000)
  while (shell.exitCode === null && shell.signalCode === null && until?.(stdout) !== true) {
    await Promise.race([once(shell.stdout, 'data'), once(shell, 'exit')])
  }
  clearTimeout(timer)
  // The stream a user stops with Ctrl-C: the whole group, curl included.
  if (shell.exitCode === null && shell.signalCode === null) process.kill(-(shell.pid ?? 0), 'SIGINT')
  return stdout
}

const dataNumbers = (text: string): number[] => [...text.matchAll(/^data: (\d+)\r?$/gm)].map((match) => Number(match[1]))
const consecutive = (numbers: number[]): boolean => numbers.length > 0 && numbers.every((n, index) => index === 0 || n === (numbers[index - 1] ?? 0) + 1)

t.test('npm run demo: the client\'s sequence survives an upstream kill and a client cut; the commands it prints work as pasted; SIGTERM stops it and all its children', async (t) => {
  const proxyPort = await freePort()
  const upstreamPort = await freePort()
  const demo = startStandalone(t, ['dist/examples/demo/run.js'], {
    DEMO_PROXY_PORT: String(proxyPort),
    DEMO_UPSTREAM_PORT: String(upstreamPort),
    DEMO_EVENT_INTERVAL_MS: '50',
    DEMO_FAULT_EVERY_MS: '500',
    DEMO_UPSTREAM_DOWN_MS: '300',
    DEMO_CLIENT_AWAY_MS: '300',
    DEMO_FAULTS: '2'
  })
  await demo.waitForStdout('[upstream killed]')
  await demo.waitForStdout('[upstream restarted, pid')
  await demo.waitForStdout('[client cut]')
  await demo.waitForStdout('[resumed: recovered]')

  const commands = printedCommands(demo.stdout())
  t.same(commands.map(({ about }) => about), [
    'the counting stream through the proxy (Ctrl-C to stop)',
    'leave after 1 s, then come back with the last id you got: the proxy replays what you missed',
    'MCP: initialize, keep the session id, then call a tool that streams its progress',
    'the same MCP server with the MCP Inspector\'s CLI',
    'liveness, readiness, and the proxy\'s own metrics'
  ])
  const [stream, resume, mcp, inspector, health] = commands.map(({ script }) => script)
  t.match(inspector, /^npx -y @modelcontextprotocol\/inspector@2 --cli http:\/\/127\.0\.0\.1:\d+\/mcp --transport http --method tools\/list$/,
    'the Inspector\'s command (not run here: npx would fetch it from the registry)')
  const [streamed, resumed, called, probed] = await Promise.all([
    runPasted(stream ?? '', (stdout) => dataNumbers(stdout).length >= 5),
    runPasted(resume ?? ''),
    runPasted(mcp ?? ''),
    runPasted(health ?? '')
  ])
  t.same(dataNumbers(streamed).slice(0, 5), [1, 2, 3, 4, 5], 'the counting stream, from 1')
  t.match(resumed, /^x-resume-status: recovered\r?$/m, 'the resume by hand is recovered')
  t.ok(consecutive(dataNumbers(resumed)) && (dataNumbers(resumed)[0] ?? 0) > 1, `and carries on where the first curl left: ${dataNumbers(resumed).slice(0, 3).join(' ')} ...`)
  t.equal(called.match(/notifications\/progress/g)?.length, 5, 'every progress notification of the tool call')
  t.match(called, '"text":"liftoff"', 'and its result')
  t.match(probed, '{"status":"ok"}\n{"status":"ready"}\n', 'liveness and readiness')
  t.match(probed, /^sse_events_forwarded_total\{route_kind="sse",route="\/events"\} \d+$/m, 'and the metrics')

  const children = descendantsOf(demo.child.pid ?? 0)
  // Whatever the outcome, this test leaves none of them behind.
  t.teardown(() => { for (const pid of children.filter(isAlive)) process.kill(pid, 'SIGKILL') })
  t.ok(children.length >= 2, `the demo runs its upstream and its proxy as processes: ${children.join(', ')}`)
  demo.child.kill('SIGTERM')
  t.equal(await demo.exited, 0, 'SIGTERM stops it cleanly')
  t.same(children.filter(isAlive), [], 'and none of its processes is left')
  t.ok(await isFree(proxyPort) && await isFree(upstreamPort), 'its ports are free again')

  const sequence = demo.stdout().slice(demo.stdout().indexOf('Ctrl-C stops it all.') + 'Ctrl-C stops it all.'.length)
  const printed = sequence.slice(0, sequence.indexOf('Stopped.')).replace(/\[[^\]]*\]/g, ' ').split(/\s+/).filter((word) => word !== '')
  const numbers = printed.map(Number)
  t.ok(numbers.length > 20 && numbers.every((n, index) => n === index + 1), `the client printed 1 to ${numbers.at(-1) ?? 0}, one by one`)
  t.notMatch(sequence, /GAP|DUPLICATE/)
  t.match(sequence, /Stopped\. The client got 1 to \d+: 0 lost, 0 duplicated, across 1 upstream kill\(s\) and 1 client cut\(s\); 1 of 1 resume\(s\) recovered\./)
})
