import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { accessSync, constants } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'

// Debian puts nginx in /usr/sbin, which a user's PATH may lack.
const EXTRA_DIRECTORIES = ['/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']

// nginx is spawned, not forked: it does not notice the harness going, so the harness ends it on exit.
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

export interface RunningNginx {
  readonly port: number
  readonly pid: number
  stop: () => Promise<void>
}

/** The nginx binary: $NGINX_BIN, or `nginx` on the PATH or in the usual sbin folders. */
export function findNginx (): string | undefined {
  const candidates = [
    process.env.NGINX_BIN,
    ...[...(process.env.PATH ?? '').split(delimiter), ...EXTRA_DIRECTORIES].map((directory) => join(directory, 'nginx'))
  ]
  return candidates.find((candidate) => candidate !== undefined && candidate !== '' && isExecutable(candidate))
}

/**
 * nginx as a pass-through SSE proxy: one process (`master_process off`, so that
 * its CPU is one process's), `proxy_buffering off`, HTTP/1.1 upstream.
 */
export async function startNginx (binary: string, upstreamPort: number): Promise<RunningNginx> {
  const directory = await mkdtemp(join(tmpdir(), 'bench-nginx-'))
  const port = await freePort()
  const configPath = join(directory, 'nginx.conf')
  await writeFile(configPath, nginxConfig(directory, port, upstreamPort))
  const child = spawn(binary, ['-p', directory, '-c', configPath, '-e', join(directory, 'error.log')], { stdio: ['ignore', 'ignore', 'inherit'] })
  running.add(child)
  child.once('exit', () => running.delete(child))
  try {
    await waitUntilListening(port, child)
  } catch (error) {
    child.kill('SIGKILL')
    await rm(directory, { recursive: true, force: true })
    throw error
  }
  return {
    port,
    pid: child.pid ?? -1,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = once(child, 'exit')
        child.kill('SIGQUIT')
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
        await exited
        clearTimeout(timer)
      }
      await rm(directory, { recursive: true, force: true })
    }
  }
}

function nginxConfig (directory: string, port: number, upstreamPort: number): string {
  return `daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid ${directory}/nginx.pid;
error_log ${directory}/error.log warn;
events { worker_connections 10000; }
http {
  access_log off;
  client_body_temp_path ${directory}/client_body;
  proxy_temp_path ${directory}/proxy;
  fastcgi_temp_path ${directory}/fastcgi;
  uwsgi_temp_path ${directory}/uwsgi;
  scgi_temp_path ${directory}/scgi;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://127.0.0.1:${upstreamPort};
      proxy_http_version 1.1;
      proxy_set_header Connection '';
      proxy_buffering off;
      proxy_read_timeout 1h;
    }
  }
}
`
}

export function nginxVersion (binary: string): string {
  // nginx prints its version on stderr.
  const result = spawnSync(binary, ['-v'], { encoding: 'utf8' })
  return `${result.stderr}${result.stdout}`.trim() || 'nginx (version unknown)'
}

function isExecutable (path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** A port free right now: nginx needs its port in its config, not from the kernel. */
async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

async function waitUntilListening (port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nginx exited with code ${child.exitCode}`)
    if (await accepts(port)) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error('nginx did not listen within 10 s')
}

async function accepts (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}
