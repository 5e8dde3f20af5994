import { resolve } from 'node:path'
import { stat } from 'node:fs/promises'
import { MAX_SOURCE_BYTES } from '../../../archive/constants.js'
import { packDirectory } from '../../../archive/pack.js'
import type { JobView, SpecOverrides } from '../../../jobs/index.js'
// The module itself, not the layer's index: `submit` needs the spec reader, not the node's job service and sandbox
// (nor, for a buildhaus.json of the common shapes, zod: spec-file.ts loads the schema only when unsure).
import { readJobSpec } from '../../../jobs/spec-file.js'
import { connectFromOptions } from '../client.js'
import { UsageError } from '../../../util/errors.js'
import { defineCommand } from '../command.js'
import { submitSpec } from '../specs.js'
import { jobReport, short, verdictText } from '../job-format.js'
import { watchJob } from '../watch.js'

/** Extra time `--wait` gives beyond the job's own timeout: queueing, fetching, publishing. */
export function waitMarginMs (timeoutSeconds: number): number {
  return Math.max(30_000, timeoutSeconds * 250)
}

export const submitCommand = defineCommand({
  ...submitSpec,
  async run (options, positionals, io) {
    const dir = resolve(positionals[0] ?? '.')
    const info = await stat(dir).catch(() => undefined)
    if (info === undefined || !info.isDirectory()) throw new UsageError(`${dir} is not a directory; give the directory holding buildhaus.json`)
    const overrides: SpecOverrides = {}
    if (options.platform.length > 0) overrides.platforms = options.platform
    if (options.replicas !== undefined) overrides.replicas = wholeNumber('--replicas', options.replicas)
    if (options.timeout !== undefined) overrides.timeout = wholeNumber('--timeout', options.timeout)
    const waitTimeoutMs = options['wait-timeout'] === undefined ? undefined : wholeNumber('--wait-timeout', options['wait-timeout']) * 1000
    if (waitTimeoutMs !== undefined && !options.wait) throw new UsageError('--wait-timeout only makes sense with --wait')
    // Validate here first: a typo in buildhaus.json is reported before anything is packed or sent.
    const spec = await readJobSpec(dir)
    const client = await connectFromOptions(options, io.env, { timeoutMs: 120_000 })
    const say = (line: string): void => { if (!options.json) io.stderr.write(`${line}\n`) }
    const packed = await packDirectory(dir, { maxBytes: MAX_SOURCE_BYTES })
    say(`packed ${packed.files} files, ${packed.size} bytes, sha256 ${packed.sha256}`)
    const stored = await client.postBytes<{ hash: string, size: number }>('/api/blobs', packed.bytes, { signal: io.signal })
    if (stored.hash !== packed.sha256) throw new UsageError(`the node stored the source as ${stored.hash}, not ${packed.sha256}; the upload was damaged, try again`)
    const job = await client.postJson<JobView>('/api/jobs', { spec, overrides, source: { hash: stored.hash, size: stored.size } }, { signal: io.signal })
    say(`submitted job ${job.id} (${job.name}) for ${job.platforms.map((p) => `${p.selector}×${p.replicas}`).join(', ')}`)
    if (!options.wait) {
      io.stdout.write(options.json ? `${JSON.stringify(job)}\n` : `${job.id}\n`)
      return 0
    }
    const submittedAt = Date.now()
    const deadline = submittedAt + (waitTimeoutMs ?? job.spec.timeout * 1000 + waitMarginMs(job.spec.timeout))
    const watched = await watchJob(client, job.id, { deadline, signal: io.signal, progress: say })
    if (options.json) io.stdout.write(`${JSON.stringify(watched.job)}\n`)
    else io.stdout.write(jobReport(watched.job, client.url))
    if (!watched.final) {
      // Said even with --json (stdout stays one JSON document): exit code 3 alone is easy to misread.
      io.stderr.write(`no verdict for job ${short(job.id)} within ${Math.round((deadline - submittedAt) / 1000)} s (it is ${verdictText(watched.job.verdict)}); follow it with \`buildhaus-node status ${short(job.id)}\`\n`)
      return 3
    }
    return watched.job.verdict === 'verified' ? 0 : 1
  }
})

function wholeNumber (flag: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} ${JSON.stringify(text)} is not a whole number`)
  return Number(text)
}
