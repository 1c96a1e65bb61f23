import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import { chromium, type Browser } from 'playwright-core'

/** Debian's package; .ci/run installs it. */
export const CHROMIUM = '/usr/bin/chromium'

interface Teardown { teardown: (fn: () => unknown) => void }

/**
 * Headless Chromium, with names that resolve to this machine as a rebinding DNS
 * would: a page on `http://<name>:<port>/` is then on an origin that is not
 * localhost's, while its server runs here.
 */
export async function launchChromium (t: Teardown, names: readonly string[]): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is missing (${CHROMIUM}): install it with \`apt-get install -y --no-install-recommends chromium\` (Debian), as .ci/run does`)
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Without the background-networking flags, a closed network refuses Chromium's own connections.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--host-resolver-rules=${names.map((name) => `MAP ${name} 127.0.0.1`).join(', ')}`]
  })
  t.teardown(async () => await browser.close())
  return browser
}

/** `entry` and what it imports, bundled for the browser into a temporary folder that the test removes. */
export async function bundleForBrowser (t: Teardown, entry: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-sse-browser-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const outfile = join(dir, 'page.js')
  await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'browser', target: 'chrome120', outfile, logLevel: 'silent' })
  return await readFile(outfile, 'utf8')
}

/** A node:http server on 127.0.0.1 with one page that loads `script` as a module. */
export async function servePage (t: Teardown, script: string): Promise<number> {
  const server = createServer((request, response) => {
    if (request.url === '/page.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' }).end(script)
    } else {
      response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>MCP page</title><script type="module" src="/page.js"></script>')
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return (server.address() as AddressInfo).port
}
