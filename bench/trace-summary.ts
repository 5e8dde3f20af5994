import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { percentile, round } from './stats.js'

/**
 * Reads the traces of `BENCH_TRACE=DIR node dist/bench/user.js` (see
 * src/util/trace.ts): for each timed job, every point noted by the node
 * processes, named by the node's role in that job (`sub`: the node that
 * took the POST and wrote the job entry; `bld`: the one that claimed it;
 * `oth`: the third) and placed in ms after the client's POST; then, per
 * kind of run (back to back, after quiet), the median of each point, and
 * the spawns (with how long each blocked its node) that fell inside a job.
 *
 * `node dist/bench/trace-summary.js DIR`
 */
interface Point { at: number, what: string, id: string, file: string }

async function readPoints (dir: string): Promise<{ client: Point[], nodes: Point[] }> {
  const client: Point[] = []
  const nodes: Point[] = []
  let names: string[]
  try {
    names = (await readdir(dir)).filter((n) => n.startsWith('trace-') && n.endsWith('.txt'))
  } catch (err) {
    throw new Error(`cannot read the directory ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)}): give the directory BENCH_TRACE wrote to`, { cause: err })
  }
  if (!names.includes('trace-client.txt') || names.length < 2) {
    throw new Error(`${dir} holds no whole trace (the client's trace-client.txt and the nodes' trace-<pid>.txt): run BENCH_TRACE=${dir} node dist/bench/user.js first, and let it finish`)
  }
  for (const name of names) {
    for (const line of (await readFile(join(dir, name), 'utf8')).split('\n')) {
      const [at, what, id] = line.split(' ')
      if (at === undefined || what === undefined || id === undefined) continue
      const point = { at: Number(at), what, id, file: name }
      if (name === 'trace-client.txt') client.push(point)
      else nodes.push(point)
    }
  }
  return { client, nodes }
}

export async function traceSummary (dir: string): Promise<Record<string, unknown>> {
  const { client, nodes } = await readPoints(dir)
  const byJob = new Map<string, Point[]>()
  for (const point of nodes) {
    const list = byJob.get(point.id) ?? []
    list.push(point)
    byJob.set(point.id, list)
  }
  const spawns = nodes.filter((p) => p.what.startsWith('spawn-'))
  const kinds = new Map<string, Array<{ post: number, seen: number, id: string }>>()
  for (const post of client.filter((p) => p.what.startsWith('post-'))) {
    const label = post.what.slice(5)
    const seen = client.find((p) => p.what === `seen-${label}` && p.id === post.id)
    if (seen === undefined) continue
    const list = kinds.get(label) ?? []
    list.push({ post: post.at, seen: seen.at, id: post.id })
    kinds.set(label, list)
  }
  const out: Record<string, unknown> = {}
  for (const [label, jobs] of kinds) {
    const offsets = new Map<string, number[]>()
    const spawnsIn: string[] = []
    for (const job of jobs) {
      const points = byJob.get(job.id) ?? []
      const submitter = points.find((p) => p.what === 'created-job')?.file
      const builder = points.find((p) => p.what === 'created-claim')?.file
      const role = (file: string): string => file === submitter && file === builder ? 'sub+bld' : file === submitter ? 'sub' : file === builder ? 'bld' : 'oth'
      const seenKinds = new Set<string>()
      for (const point of points.sort((a, b) => a.at - b.at)) {
        const key = `${role(point.file)} ${point.what}`
        // The first of each kind (a point seen twice, e.g. two copies, counts once).
        if (seenKinds.has(key)) continue
        seenKinds.add(key)
        const list = offsets.get(key) ?? []
        list.push(point.at - job.post)
        offsets.set(key, list)
      }
      const seen = offsets.get('client seen') ?? []
      seen.push(job.seen - job.post)
      offsets.set('client seen', seen)
      for (const s of spawns) {
        if (s.at >= job.post - 50 && s.at <= job.seen) spawnsIn.push(`${role(s.file)} ${s.what} at ${round(s.at - job.post, 1)} blocked ${s.id} ms`)
      }
    }
    const rows = [...offsets.entries()].map(([key, values]) => ({ key, n: values.length, p50: round(percentile([...values].sort((a, b) => a - b), 0.5), 1) }))
    rows.sort((a, b) => a.p50 - b.p50)
    out[label] = { jobs: jobs.length, medianAfterPostMs: Object.fromEntries(rows.map((r) => [r.key, `${r.p50} (n ${r.n})`])), spawnsWithinJobs: spawnsIn }
  }
  return out
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dir = process.argv[2]
  if (dir === undefined) {
    console.error('usage: node dist/bench/trace-summary.js DIR (a BENCH_TRACE directory)')
    process.exit(2)
  }
  try {
    console.log(JSON.stringify(await traceSummary(dir), null, 2))
  } catch (err) {
    console.error(`trace-summary: ${err instanceof Error ? err.message : String(err)}`)
    process.exit(1)
  }
}
