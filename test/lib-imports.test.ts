import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const LIB = resolve(dirname(fileURLToPath(import.meta.url)), '../lib')
// `import type` counts too: a cycle of types still ties two units together, so neither can be read or changed alone.
const RELATIVE_IMPORT = /^\s*(?:import|export)\b[^'"]*?(?:\bfrom\s*)?['"](\.{1,2}\/[^'"]+)['"]/gm

function libFiles (folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name)
    if (entry.isDirectory()) return libFiles(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

function importGraph (files: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const file of files) {
    const imports = [...readFileSync(file, 'utf8').matchAll(RELATIVE_IMPORT)]
      .map((match) => resolve(dirname(file), (match[1] as string).replace(/\.js$/, '.ts')))
    graph.set(file, imports)
  }
  return graph
}

/** Every cycle a depth-first walk meets, each as the files along it: one per back edge. */
function importCycles (graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>()
  const path: string[] = []
  const cycles: string[][] = []
  const visit = (file: string): void => {
    state.set(file, 'open')
    path.push(file)
    for (const imported of graph.get(file) ?? []) {
      if (!graph.has(imported)) continue
      const seen = state.get(imported)
      if (seen === 'open') cycles.push([...path.slice(path.indexOf(imported)), imported])
      else if (seen === undefined) visit(imported)
    }
    path.pop()
    state.set(file, 'done')
  }
  for (const file of graph.keys()) if (!state.has(file)) visit(file)
  return cycles
}

const name = (file: string): string => relative(LIB, file)

t.test('no module of lib/ imports itself back through others, type imports included', async (t) => {
  const graph = importGraph(libFiles(LIB))
  t.ok(graph.size > 50, `the walk found the sources: ${graph.size} files`)
  t.ok([...graph.values()].some((imports) => imports.length > 0), 'and their relative imports')
  const cycles = importCycles(graph).map((cycle) => cycle.map(name).join(' -> '))
  t.same(cycles, [], cycles.length === 0 ? 'no cycle' : `import cycles:\n${cycles.join('\n')}`)
})

t.test('the walk does find a cycle where there is one', async (t) => {
  const a = join(LIB, 'a.ts')
  const b = join(LIB, 'b.ts')
  const c = join(LIB, 'c.ts')
  t.same(importCycles(new Map([[a, [b]], [b, [c]], [c, [a]]])).map((cycle) => cycle.map(name)), [['a.ts', 'b.ts', 'c.ts', 'a.ts']])
  t.same(importCycles(new Map([[a, [b]], [b, [c]], [c, []]])), [])
})

const PACKAGE_IMPORT = /^\s*(?:import|export)\b[^'"]*?(?:\bfrom\s*)?['"]([^./'"][^'"]*)['"]/gm
const IN_REDIS_STORE = join(LIB, 'store', 'redis') + '/'

function importsFolder (graph: ReadonlyMap<string, readonly string[]>, from: string, to: string): string[] {
  const inFolder = (file: string, folder: string): boolean => file.startsWith(join(LIB, folder) + '/')
  return [...graph].flatMap(([file, imports]) => inFolder(file, from) ? imports.filter((imported) => inFolder(imported, to)).map((imported) => `${name(file)} -> ${name(imported)}`) : [])
}

t.test('only lib/store/redis/ talks to Redis: no other module imports ioredis', async (t) => {
  const files = libFiles(LIB)
  const importers = files.filter((file) => [...readFileSync(file, 'utf8').matchAll(PACKAGE_IMPORT)].some((match) => match[1] === 'ioredis'))
  t.ok(importers.length > 0, `the walk finds the Redis store's imports: ${importers.map(name).join(', ')}`)
  const outside = importers.filter((file) => !file.startsWith(IN_REDIS_STORE)).map(name)
  t.same(outside, [], outside.length === 0 ? 'none outside lib/store/redis/' : `ioredis imported outside lib/store/redis/: ${outside.join(', ')}`)
})

t.test('the folders of the store do not import each other both ways', async (t) => {
  const graph = importGraph(libFiles(LIB))
  t.ok(importsFolder(graph, 'store', 'history').length > 0, 'the Redis store implements the history contract of lib/history/')
  t.same(importsFolder(graph, 'history', 'store'), [], 'lib/history/ (the engine-neutral contract and the local store) imports nothing of lib/store/')
  t.ok(importsFolder(graph, 'store', 'cluster').length > 0, 'the Redis store implements the interfaces of lib/cluster/')
  t.same(importsFolder(graph, 'cluster', 'store'), [], 'lib/cluster/ (engine-neutral) imports nothing of lib/store/')
})

t.test('the session directory is chosen once, at registration: only lib/index.ts imports its implementations', async (t) => {
  const graph = importGraph(libFiles(LIB))
  const implementations = ['local-directory.ts', 'shared-directory.ts'].map((file) => join(LIB, 'directory', file))
  const importers = [...graph].filter(([, imports]) => imports.some((imported) => implementations.includes(imported))).map(([file]) => name(file))
  t.same(importers, ['index.ts'], `importers: ${importers.join(', ')}`)
  const routes = [...graph].filter(([file]) => file.startsWith(join(LIB, 'routes') + '/'))
  t.ok(routes.some(([, imports]) => imports.includes(join(LIB, 'directory', 'session-directory.ts'))), 'the routes know the directory by its interface')
})
