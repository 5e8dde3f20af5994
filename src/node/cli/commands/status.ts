import type { JobView } from '../../../jobs/index.js'
import { connectFromOptions } from '../client.js'
import { defineCommand } from '../command.js'
import { statusSpec } from '../specs.js'
import { resolveJobId } from '../job-id.js'
import { jobReport } from '../job-format.js'
import { liveLogEvents, liveLogPrinter } from '../live-log.js'
import { FINAL_VERDICTS, watchJob } from '../watch.js'

/** `--follow` waits at most this long for a verdict (a job's own timeout is at most 24 h). */
const FOLLOW_LIMIT_MS = 25 * 60 * 60 * 1000

export const statusCommand = defineCommand({
  ...statusSpec,
  async run (options, positionals, io) {
    const client = await connectFromOptions(options, io.env)
    const id = await resolveJobId(client, positionals[0]!, io.signal)
    let job = await client.getJson<JobView>(`/api/jobs/${id}`, { signal: io.signal })
    const printer = liveLogPrinter((text) => { io.stdout.write(text) })
    if (options.follow && !FINAL_VERDICTS.has(job.verdict)) {
      const stop = new AbortController()
      const signal = AbortSignal.any([io.signal, stop.signal])
      const streaming = (async () => {
        try {
          for await (const event of liveLogEvents(client, id, { ...(options.platform !== undefined ? { platform: options.platform } : {}), signal })) printer.print(event)
        } catch {
          // The verdict below still comes; a lost stream only loses live text.
        }
      })()
      try {
        const watched = await watchJob(client, id, { deadline: Date.now() + FOLLOW_LIMIT_MS, signal: io.signal, progress: (line) => { io.stderr.write(`${line}\n`) } })
        job = watched.job
      } finally {
        // Let the stream deliver the runs' last lines (the server ends it once nothing runs), then stop it:
        // whatever it did not deliver is printed from the results' logs below.
        const grace = setTimeout(() => { stop.abort() }, 10_000)
        await streaming
        clearTimeout(grace)
        stop.abort()
        printer.flush()
      }
    }
    if (options.follow && !options.json) {
      // Builds whose live log was not seen to its end (they ended before we could follow, the stream
      // broke, another node ran them unseen): the rest of their log, from the result's log blob.
      for (const p of job.platforms) {
        if (options.platform !== undefined && p.selector !== options.platform) continue
        for (const r of p.results) {
          if (!r.latest || r.log === null || printer.ended(p.selector, r.builder)) continue
          try {
            const lines: string[] = []
            let size = 0
            for await (const line of client.stream(`/api/blobs/${r.log}`, { signal: io.signal })) {
              size += line.length + 1
              if (size > 64 * 1024 * 1024) break
              lines.push(line)
            }
            // The printer skips what it printed live (by offset); the result's log is the same text.
            printer.print({ event: 'log', platform: p.selector, builder: r.builder, offset: 0, text: lines.map((l) => `${l}\n`).join('') })
            printer.flush()
          } catch (err) {
            io.stderr.write(`could not read the log of ${p.selector} by ${r.builder.slice(0, 12)}: ${(err as Error).message}\n`)
          }
        }
      }
    }
    io.stdout.write(options.json ? `${JSON.stringify(job)}\n` : jobReport(job, client.url))
    // Scripts can tell the outcome from the exit code, as with `submit --wait`.
    if (!FINAL_VERDICTS.has(job.verdict)) return 3
    return job.verdict === 'verified' ? 0 : 1
  }
})
