import { resolve } from 'node:path'
import { EnvironmentStore, manifestBytes, type EnvironmentInfo } from '../../../environments/index.js'
import { defaultEnvironmentDir, parseEnvironmentCache } from '../../option-values.js'
import { resolveHome } from '../../home/home.js'
import { defineCommand, type CliIO } from '../command.js'
import { envListSpec, envCreateSpec, envImportSpec, envRemoveSpec, envGcSpec, envShowSpec } from '../specs.js'
import { formatAge, formatTable } from '../table.js'

/**
 * `buildhaus-node env …`: the environments of this machine (see
 * docs/ENVIRONMENTS.md). They work on the store directly, so they also work
 * while no node runs; several nodes and these commands may share a store.
 */

async function openStore (options: { home?: string | undefined, 'environment-dir'?: string | undefined, 'environment-cache'?: string | undefined }, io: CliIO): Promise<EnvironmentStore> {
  const dir = options['environment-dir'] !== undefined ? resolve(options['environment-dir']) : defaultEnvironmentDir(resolveHome(options.home, io.env))
  return await EnvironmentStore.open({ dir, maxBytes: parseEnvironmentCache(options['environment-cache']) * 1024 * 1024, env: io.env })
}

function megabytes (bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MB`
}

function label (env: Pick<EnvironmentInfo, 'name' | 'requested'>): string {
  return env.requested.length > 0 ? `${env.name} + ${env.requested.join(', ')}` : env.name
}

/** What `--json` prints of an environment (the manifest's packages left out: `env show` prints them). */
function summary (env: EnvironmentInfo): Record<string, unknown> {
  const { manifest, ...rest } = env
  const { packages, ...fields } = manifest
  return { ...rest, manifest: { ...fields, packageCount: packages.length } }
}

export const envListCommand = defineCommand({
  ...envListSpec,
  async run (options, _positionals, io) {
    const store = await openStore(options, io)
    const all = await store.list()
    if (options.json) {
      io.stdout.write(`${JSON.stringify(all.map(summary))}\n`)
      return 0
    }
    if (all.length === 0) {
      io.stdout.write('no environments here yet; make one with `buildhaus-node env create debian-12`\n')
      return 0
    }
    const now = Date.now()
    const rows = all.map((e) => [
      label(e),
      e.hash.slice(0, 12),
      String(e.manifest.packages.length),
      megabytes(e.sizeBytes),
      `${formatAge(now - e.lastUsed)}`,
      [e.named ? 'offered by name' : e.requested.length > 0 ? 'derived' : 'replaced', ...(e.inUse ? ['in use'] : [])].join(', ')
    ])
    const total = all.reduce((sum, e) => sum + e.sizeBytes, 0)
    io.stdout.write(formatTable(['ENVIRONMENT', 'HASH', 'PACKAGES', 'SIZE', 'LAST USED', 'STATE'], rows))
    io.stdout.write(`${all.length} environment${all.length === 1 ? '' : 's'}, ${megabytes(total)} of ${megabytes(store.maxBytes)} in ${store.dir}\n`)
    return 0
  }
})

export const envCreateCommand = defineCommand({
  ...envCreateSpec,
  async run (options, positionals, io) {
    const store = await EnvironmentStore.open({
      dir: options['environment-dir'] !== undefined ? resolve(options['environment-dir']) : defaultEnvironmentDir(resolveHome(options.home, io.env)),
      maxBytes: parseEnvironmentCache(options['environment-cache']) * 1024 * 1024,
      env: io.env,
      ...(options.mirror !== undefined ? { mirror: options.mirror } : {})
    })
    const name = positionals[0]!
    const existing = await store.lookup(name)
    if (existing !== undefined && !options.refresh) {
      io.stdout.write(options.json ? `${JSON.stringify(summary(existing))}\n` : `${name} is already here: ${existing.hash} (made ${new Date(existing.created).toISOString()}); --refresh makes it anew\n`)
      return 0
    }
    const made = await store.create(name, { refresh: options.refresh, signal: io.signal, onLine: (line) => { io.stderr.write(`${line}\n`) } })
    await store.gc()
    io.stdout.write(options.json ? `${JSON.stringify(summary(made))}\n` : `${label(made)}: ${made.hash} (${made.manifest.packages.length} packages, ${megabytes(made.sizeBytes)})\n`)
    return 0
  }
})

export const envImportCommand = defineCommand({
  ...envImportSpec,
  async run (options, positionals, io) {
    const store = await openStore(options, io)
    const made = await store.import(positionals[0]!, resolve(positionals[1]!), { signal: io.signal, onLine: (line) => { io.stderr.write(`${line}\n`) } })
    await store.gc()
    io.stdout.write(options.json ? `${JSON.stringify(summary(made))}\n` : `${label(made)}: ${made.hash} (${made.manifest.packages.length} packages, ${megabytes(made.sizeBytes)})\n`)
    return 0
  }
})

export const envRemoveCommand = defineCommand({
  ...envRemoveSpec,
  async run (options, positionals, io) {
    const store = await openStore(options, io)
    const removed = await store.remove(positionals[0]!)
    io.stdout.write(`removed ${label(removed)} (${removed.hash}, ${megabytes(removed.sizeBytes)})\n`)
    return 0
  }
})

export const envGcCommand = defineCommand({
  ...envGcSpec,
  async run (options, _positionals, io) {
    const store = await openStore(options, io)
    const { removed, keptBytes } = await store.gc()
    if (options.json) {
      io.stdout.write(`${JSON.stringify({ removed: removed.map((e) => ({ name: e.name, requested: e.requested, hash: e.hash, sizeBytes: e.sizeBytes })), keptBytes })}\n`)
      return 0
    }
    for (const env of removed) io.stdout.write(`removed ${label(env)} (${env.hash.slice(0, 12)}, ${megabytes(env.sizeBytes)})\n`)
    io.stdout.write(`${megabytes(keptBytes)} kept, bound ${megabytes(store.maxBytes)}\n`)
    return 0
  }
})

export const envShowCommand = defineCommand({
  ...envShowSpec,
  async run (options, positionals, io) {
    const store = await openStore(options, io)
    const env = await store.find(positionals[0]!)
    if (options.buildinfo) {
      const { manifest } = env
      io.stdout.write([
        `Environment: ${label(env)}`,
        `Environment-Hash: ${env.hash}`,
        `Origin: ${manifest.origin}${manifest.suite !== undefined ? ` ${manifest.suite}` : ''}`,
        `Date: ${manifest.date}`,
        `Build-Architecture: ${manifest.architecture}`,
        'Installed-Build-Depends:',
        manifest.packages.map((p) => ` ${p}`).join(',\n'),
        ''
      ].join('\n'))
      return 0
    }
    io.stdout.write(`${manifestBytes(env.manifest).toString('utf8')}\n`)
    return 0
  }
})
