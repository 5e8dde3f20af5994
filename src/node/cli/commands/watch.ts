import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
// The constants alone, not the layer's index: that loads zod and the node's job service.
import { MAX_SPEC_FILE_BYTES, SPEC_FILE_NAME, WATCH_KINDS, type WatchKind } from '../../../jobs/constants.js'
import { UsageError } from '../../../util/errors.js'
import type { WatchListing } from '../../api/routes/watches.js'
import { connectFromOptions } from '../client.js'
import { defineCommand } from '../command.js'
import { watchAddSpec, watchListSpec, watchRemoveSpec } from '../specs.js'
import { short, when } from '../job-format.js'
import { formatTable } from '../table.js'
import { defaultDebianArchive, defaultNpmRegistry, defaultPypiIndex } from '../upstream-defaults.js'

/** The job template from --job: a buildhaus.json (or a directory holding one), `{version}` in its steps. */
async function readTemplate (path: string): Promise<unknown> {
  const info = await stat(path).catch(() => undefined)
  if (info === undefined) throw new UsageError(`--job ${path} does not exist; give a buildhaus.json (or its directory) whose steps may use {version}`)
  const file = info.isDirectory() ? join(path, SPEC_FILE_NAME) : path
  const text = await readFile(file, 'utf8').catch(() => { throw new UsageError(`cannot read ${file}`) })
  if (text.length > MAX_SPEC_FILE_BYTES) throw new UsageError(`${file} is larger than ${MAX_SPEC_FILE_BYTES} bytes`)
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new UsageError(`${file} is not JSON (${(err as Error).message})`)
  }
}

export const watchAddCommand = defineCommand({
  ...watchAddSpec,
  async run (options, positionals, io) {
    const [kindText, target] = positionals as [string, string]
    if (!(WATCH_KINDS as readonly string[]).includes(kindText)) throw new UsageError(`"${kindText}" is not a kind of watch; use git, npm, pypi or debian`)
    const kind = kindText as WatchKind
    const body: Record<string, unknown> = { kind }
    if (kind === 'git') {
      body.source = target
      if (options.ref !== undefined) body.ref = options.ref
    } else {
      body.package = target
      body.source = kind === 'npm' ? (options.registry ?? await defaultNpmRegistry(io.env))
        : kind === 'pypi' ? (options.index ?? await defaultPypiIndex(io.env))
          : (options.archive ?? await defaultDebianArchive(options.suite ?? ''))
      if (kind === 'debian') {
        if (options.suite === undefined) throw new UsageError('a debian watch needs --suite (e.g. --suite bookworm)')
        body.suite = options.suite
      }
    }
    if (options.interval !== undefined) {
      if (!/^\d+$/.test(options.interval)) throw new UsageError(`--interval ${JSON.stringify(options.interval)} is not a whole number of seconds`)
      body.interval = Number(options.interval)
    }
    if (options.job !== undefined) {
      body.job = await readTemplate(options.job)
      const overrides: Record<string, unknown> = {}
      if (options.platform.length > 0) overrides.platforms = options.platform
      if (options.replicas !== undefined) overrides.replicas = Number(options.replicas)
      if (Object.keys(overrides).length > 0) body.overrides = overrides
    } else if (options.platform.length > 0 || options.replicas !== undefined) {
      throw new UsageError('--platform and --replicas change the --job template; without --job each release\'s own buildhaus.json decides')
    }
    const node = await connectFromOptions(options, io.env)
    const watch = await node.postJson<WatchListing>('/api/watches', body, { signal: io.signal })
    io.stdout.write(options.json ? `${JSON.stringify(watch)}\n` : `${watch.id}\n`)
    if (!options.json) io.stderr.write(`watching ${describe(watch)} every ${watch.spec.interval} s; polled by ${watch.pollers.length > 0 ? watch.pollers.map(short).join(', ') : 'no live poller yet'}\n`)
    return 0
  }
})

function describe (watch: WatchListing): string {
  const s = watch.spec
  if (s.kind === 'git') return `git ${s.source} ${s.ref ?? 'refs/tags/*'}`
  if (s.kind === 'debian') return `debian ${s.package!} in ${s.suite!} (${s.source})`
  return `${s.kind} ${s.package!} (${s.source})`
}

export const watchListCommand = defineCommand({
  ...watchListSpec,
  async run (options, _positionals, io) {
    const node = await connectFromOptions(options, io.env)
    const { watches } = await node.getJson<{ watches: WatchListing[] }>('/api/watches', { signal: io.signal })
    const shown = watches.filter((w) => options.removed || !w.removed)
    if (options.json) {
      io.stdout.write(`${JSON.stringify({ watches: shown })}\n`)
      return 0
    }
    if (shown.length === 0) {
      io.stdout.write('no watches (add one with `buildhaus-node watch add npm PACKAGE`, see docs/WATCHES.md)\n')
      return 0
    }
    const rows = shown.map((w) => {
      const releases = Object.keys(w.jobs)
      return [
        short(w.id),
        describe(w),
        releases.length === 0 ? '-' : `${releases.length} (latest ${releases.at(-1)!})`,
        w.lastSuccess !== undefined ? `${when(w.lastSuccess.time)} by ${short(w.lastSuccess.author)}` : '-',
        w.lastFailure !== undefined ? `${when(w.lastFailure.time)}: ${w.lastFailure.reason ?? 'failed'}` : '-',
        w.removed ? 'removed' : w.ignored !== undefined ? `ignored: ${w.ignored}` : w.pollers.length > 0 ? `polled by ${short(w.pollers[0]!)}` : 'no live poller'
      ]
    })
    io.stdout.write(formatTable(['WATCH', 'WHAT', 'RELEASES BUILT', 'LAST SUCCESS', 'LAST FAILURE', 'STATE'], rows))
    return 0
  }
})

export const watchRemoveCommand = defineCommand({
  ...watchRemoveSpec,
  async run (options, positionals, io) {
    const node = await connectFromOptions(options, io.env)
    let id = positionals[0]!
    if (!/^[0-9a-f]{64}$/.test(id)) {
      const { watches } = await node.getJson<{ watches: WatchListing[] }>('/api/watches', { signal: io.signal })
      const found = watches.filter((w) => w.id.startsWith(id))
      if (found.length !== 1) throw new UsageError(found.length === 0 ? `no watch starts with ${id} (see \`buildhaus-node watch list\`)` : `${id} names ${found.length} watches; give more digits`)
      id = found[0]!.id
    }
    const removed = await node.deleteJson<WatchListing>('DELETE', `/api/watches/${id}`, io.signal)
    io.stdout.write(options.json ? `${JSON.stringify(removed)}\n` : `removed watch ${short(id)}\n`)
    return 0
  }
})
