import { existsSync } from 'node:fs'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { attestations } from '../../../jobs/provenance.js'
import type { JobView } from '../../../jobs/view.js'
import { UsageError } from '../../../util/errors.js'
import { connectFromOptions, type NodeClient } from '../client.js'
import { checkedEntries, checkedLines, checkedMembershipEntries, downloadChecked, foldChecked, inside, logSlice, wantedFiles, type WantedFile } from '../release.js'
import { defineCommand, type CliIO } from '../command.js'
import { fetchSpec, releaseSpec } from '../specs.js'
import { resolveJobId } from '../job-id.js'
import { readerPolicyFromOptions, withMembers } from '../trust-options.js'
import type { DecodedEntry } from '../../../ledger/entry.js'

/** `JOB` or `JOB/PATH` (a path or glob of artifacts). */
function splitTarget (text: string): { job: string, path?: string } {
  const slash = text.indexOf('/')
  if (slash < 0) return { job: text }
  const path = text.slice(slash + 1)
  return path === '' ? { job: text.slice(0, slash) } : { job: text.slice(0, slash), path }
}

async function emptyDir (dir: string): Promise<void> {
  if (existsSync(dir) && (await readdir(dir)).length > 0) throw new UsageError(`${dir} is not empty; give a new or empty directory with -o`)
  await mkdir(dir, { recursive: true })
}

interface Checked { id: string, view: JobView, entries: DecodedEntry[], files: WantedFile[], client: NodeClient, membership: DecodedEntry[] }

/** Locate the node, check the job's entries here and fold them under the user's policy; the files to write. */
async function checkedJob (target: string, options: { api?: string | undefined, home?: string | undefined, trust?: string | undefined, quorum?: string | undefined, mesh?: string | undefined, platform?: string | undefined }, io: CliIO): Promise<Checked> {
  const { job, path } = splitTarget(target)
  const client = await connectFromOptions(options, io.env, { timeoutMs: 60_000 })
  const id = await resolveJobId(client, job, io.signal)
  const reader = await readerPolicyFromOptions(options, io.env)
  // By default the reader counts its mesh's members, recomputed here from the node's checked vouches.
  const membership = reader.mode === 'members' ? await checkedMembershipEntries(client, io.signal) : []
  const entries = await checkedEntries(client, id, io.signal)
  const view = foldChecked(id, entries, withMembers(reader, membership))
  const files = wantedFiles(view, { ...(options.platform !== undefined ? { platform: options.platform } : {}), ...(path !== undefined ? { pathGlob: path } : {}) })
  return { id, view, entries, files, client, membership }
}

export const fetchCommand = defineCommand({
  ...fetchSpec,
  async run (options, positionals, io) {
    if (options.output === undefined) throw new UsageError('give the directory to write to with -o DIR')
    const { view, files, client } = await checkedJob(positionals[0]!, options, io)
    await emptyDir(options.output)
    for (const file of files) await downloadChecked(client, file.artifact, inside(options.output, file.target), io.signal)
    if (options.json) io.stdout.write(`${JSON.stringify({ job: view.id, files: files.map((f) => ({ path: f.target, platform: f.platform, sha256: f.artifact.sha256, size: f.artifact.size })) })}\n`)
    else for (const f of files) io.stdout.write(`${f.artifact.sha256}  ${join(options.output, f.target)}\n`)
    io.stderr.write(`${files.length} verified file${files.length === 1 ? '' : 's'} of job ${view.id.slice(0, 12)} (${view.name}), every hash checked\n`)
    return 0
  }
})

export const releaseCommand = defineCommand({
  ...releaseSpec,
  async run (options, positionals, io) {
    if (options.output === undefined) throw new UsageError('give the directory to write to with -o DIR')
    const { id, view, entries, files, client, membership } = await checkedJob(positionals[0]!, options, io)
    await emptyDir(options.output)
    const dir = options.output
    for (const file of files) await downloadChecked(client, file.artifact, inside(join(dir, 'artifacts'), file.target), io.signal)
    // The watch that triggered the job belongs to its proof: what was watched, by whom.
    // The vouches that make its builders members belong to its proof too (audit --slice --mesh recomputes them).
    const proof = [...entries, ...membership]
    const trigger = view.spec.trigger
    if (trigger !== undefined) {
      try {
        const watch = await client.getJson<Record<string, unknown> & { id: string }>(`/api/entries/${trigger.watch}`, { signal: io.signal })
        const { id: watchId, ...entry } = watch
        proof.push(...checkedLines([entry], watchId))
      } catch (err) {
        io.stderr.write(`note: the watch entry ${trigger.watch.slice(0, 12)} that triggered the job is not in the release (${(err as Error).message})\n`)
      }
    }
    await writeFile(join(dir, 'log.ndjson'), logSlice(proof).map((line) => `${line}\n`).join(''))
    const envelopes = attestations(view)
    await writeFile(join(dir, 'provenance.intoto.jsonl'), envelopes.map((a) => `${JSON.stringify(a.envelope)}\n`).join(''))
    await writeFile(join(dir, 'SHA256SUMS'), files.map((f) => `${f.artifact.sha256}  artifacts/${f.target}\n`).join(''))
    const manifest = {
      job: id,
      name: view.name,
      verdict: view.verdict,
      ...(view.spec.trigger !== undefined ? { trigger: view.spec.trigger } : {}),
      ...(view.spec.upstream !== undefined ? { upstream: view.spec.upstream } : {}),
      source: view.source,
      platforms: view.platforms.filter((p) => p.verdict === 'verified').map((p) => ({
        selector: p.selector,
        agreeing: p.agreeing,
        quorum: p.quorum,
        builders: p.results.filter((r) => r.counted && r.agrees === true).map((r) => r.builder).sort()
      })),
      files: files.map((f) => ({ path: `artifacts/${f.target}`, platform: f.platform, sha256: f.artifact.sha256, size: f.artifact.size })),
      provenance: envelopes.map((a) => ({ platform: a.platform, signers: a.signers })),
      check: [
        'buildhaus-node audit --slice log.ndjson --mesh MESH.json [--trust DIR]',
        'buildhaus-node verify --log log.ndjson --slice --mesh MESH.json --job <job> artifacts/<file> [--trust DIR]',
        'sha256sum -c SHA256SUMS'
      ]
    }
    await writeFile(join(dir, 'release.json'), `${JSON.stringify(manifest, null, 2)}\n`)
    if (options.json) io.stdout.write(`${JSON.stringify(manifest)}\n`)
    else io.stdout.write(`${dir}: ${files.length} verified file${files.length === 1 ? '' : 's'}, ${envelopes.length} provenance envelope${envelopes.length === 1 ? '' : 's'}, ${proof.length} log entries (release.json says how to check them)\n`)
    return 0
  }
})
