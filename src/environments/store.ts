import { createHash, randomBytes } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import { chmod, mkdir, open, readdir, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { leftByDeadNode, ownTag } from '../sandbox/proc.js'
import { describeError, InvalidInputError } from '../util/errors.js'
import { TypedEvents } from '../util/events.js'
import { componentLogger } from '../util/logger.js'
import { findDebianArchive } from './apt-sources.js'
import { runCommand } from './command.js'
import { CREATE_TIMEOUT_MS, DERIVE_TIMEOUT_MS, MAX_MANIFEST_BYTES, MAX_SMALL_FILE_BYTES, RECIPE_VERSION, UNKNOWN_PACKAGES_TTL_MS } from './constants.js'
import { deriveDebian, makeDebianBase } from './debian.js'
import { EnvironmentCreationError, EnvironmentInUseError, UnknownEnvironmentError, UnknownPackagesError } from './errors.js'
import { acquireLock, withLock } from './lock.js'
import { describeManifest, manifestBytes, manifestHash, parseManifest, type EnvironmentManifest } from './manifest.js'
import { checkEnvironmentName, debianRelease, normalisePackages } from './names.js'
import { importImageArchive } from './oci.js'
import { osReleaseName } from './root-fs.js'

const log = componentLogger('environments:store')

/**
 * The environments of one machine, in one directory that any number of
 * nodes and CLI commands may share:
 *
 *   DIR/                       (0711, like envs/ and envs/<hash>/: a build user passes through, nobody lists)
 *     envs/<hash>/root/        the file system, read-only to builds (no setuid or setgid file)
 *     envs/<hash>/manifest.json  its manifest (canonical JSON; <hash> is its sha256)
 *     envs/<hash>/info.json    name, packages asked for, size, when made, os name
 *     envs/<hash>/used         its modification time is when a build last used it
 *     envs/<hash>/users/<tag>  one file per lease: a build (of a live process) uses it
 *     names/<name>.json        which environment the name offers: { hash }
 *     derived/<key>.json       which environment a base plus packages made: { hash }
 *     derived/<key>.unknown.json  packages of that set the archive lacked, and when (an hour's memory)
 *     locks/                   flock(1) files: one maker per name or package set
 *     tmp/, trash/             environments being made, being removed
 *
 * An environment is made once however many builds ask for it at once: in
 * this process one promise is shared, between processes a lock is.
 */

export interface EnvironmentStoreOptions {
  dir: string
  /** The size bound `gc()` keeps the cache within. */
  maxBytes: number
  /** The Debian archive to make environments from (default: $BUILDHAUS_DEBIAN_MIRROR, else the machine's apt sources). */
  mirror?: string
  env?: NodeJS.ProcessEnv
}

/** What `list()` says of one environment. */
export interface EnvironmentInfo {
  hash: string
  name: string
  /** Packages installed on top of the named base (empty for a base). */
  requested: string[]
  /** The base's hash, for a derived environment. */
  base?: string
  manifest: EnvironmentManifest
  os: string
  sizeBytes: number
  /** ms since the epoch. */
  created: number
  lastUsed: number
  /** A build of a live process holds it. */
  inUse: boolean
  /** It is what its name offers (`names/<name>`), not only a leftover or a derived set. */
  named: boolean
}

/** An environment held for a build: not removed until released. */
export interface EnvironmentLease {
  name: string
  hash: string
  manifest: EnvironmentManifest
  /** The manifest's bytes (a blob whose sha256 is `hash`). */
  manifestBytes: Buffer
  /** The root directory the sandbox runs in. */
  root: string
  /** The system's name (its os-release), for the result's fingerprint. */
  os: string
  release: () => Promise<void>
}

export interface AcquireRequest {
  name: string
  /** Packages to install on top (a derived environment, made once per set). */
  packages?: readonly string[]
  /** Make the named base if this machine does not have it yet (the node does so for the names it offers). */
  create?: boolean
  onLine?: (line: string) => void
  signal?: AbortSignal
}

export interface MakeRequest {
  /** Make it anew even if the name already has an environment. */
  refresh?: boolean
  onLine?: (line: string) => void
  signal?: AbortSignal
}

export type EnvironmentStoreEvents = {
  /** A line of progress while an environment is made. */
  progress: CustomEvent<{ name: string, line: string }>
  /** An environment was made (or imported). */
  created: CustomEvent<{ name: string, hash: string }>
  removed: CustomEvent<{ name: string, hash: string }>
}

interface Info {
  name: string
  requested: string[]
  base?: string
  os: string
  sizeBytes: number
  created: number
  recipe: number
}

interface Cached {
  manifest: EnvironmentManifest
  bytes: Buffer
  info: Info
}

const HEX64 = /^[0-9a-f]{64}$/

/** A making in progress: its outcome, how to abandon it, and how many callers wait for it. */
interface Making {
  promise: Promise<string>
  controller: AbortController
  waiters: number
}

export class EnvironmentStore extends TypedEvents<EnvironmentStoreEvents> {
  readonly dir: string
  readonly maxBytes: number
  private readonly options: EnvironmentStoreOptions
  /** One making per key in this process; everyone who asks shares it. */
  private readonly making = new Map<string, Making>()
  private readonly listeners = new Map<string, Set<(line: string) => void>>()
  private readonly cache = new Map<string, Cached>()
  private leaseCounter = 0

  private constructor (options: EnvironmentStoreOptions) {
    super()
    this.dir = options.dir
    this.maxBytes = options.maxBytes
    this.options = options
  }

  /** Open (or make) the store's directory and clear what dead processes left half made or half removed. */
  static async open (options: EnvironmentStoreOptions): Promise<EnvironmentStore> {
    const store = new EnvironmentStore(options)
    // The build user (a root node's uid 65534) must pass through to the roots; bwrap binds them by path as that user.
    await mkdir(options.dir, { recursive: true, mode: 0o711 })
    await chmod(options.dir, 0o711).catch(() => {})
    for (const sub of ['envs', 'names', 'derived', 'locks', 'tmp', 'trash']) {
      // tmp/ too: apt fetches as its own user (_apt) into the root being made.
      await mkdir(join(options.dir, sub), { recursive: true, mode: sub === 'envs' || sub === 'tmp' ? 0o711 : 0o700 })
    }
    for (const sub of ['tmp', 'trash']) {
      for (const name of await readdir(join(options.dir, sub))) {
        if (leftByDeadNode(name)) await rm(join(options.dir, sub, name), { recursive: true, force: true }).catch(() => {})
      }
    }
    return store
  }

  // ------------------------------------------------------------- reading

  /** Every environment here, named ones first, then by name and age. */
  async list (): Promise<EnvironmentInfo[]> {
    const named = await this.namedHashes()
    const infos: EnvironmentInfo[] = []
    for (const hash of await readdir(join(this.dir, 'envs'))) {
      if (!HEX64.test(hash)) continue
      const info = await this.describe(hash, named)
      if (info !== undefined) infos.push(info)
    }
    return infos.sort((a, b) => Number(b.named) - Number(a.named) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) || b.created - a.created)
  }

  /** The environment a name offers here, if it has been made. */
  async lookup (name: string): Promise<EnvironmentInfo | undefined> {
    const hash = await this.namedHash(name)
    return hash === undefined ? undefined : await this.describe(hash, await this.namedHashes())
  }

  /** The manifest bytes of an environment held here (a blob whose sha256 is `hash`). */
  async manifestOf (hash: string): Promise<Buffer | undefined> {
    return (await this.load(hash))?.bytes
  }

  // ------------------------------------------------------------- using

  /**
   * Hold an environment for a build: the named base, or the base with
   * `packages` installed (made now if no build made that set before). Throws
   * UnknownEnvironmentError when the name has no environment here (and may
   * not or cannot be made), UnknownPackagesError, ArchiveUnreachableError or
   * EnvironmentCreationError when making it fails.
   */
  async acquire (request: AcquireRequest): Promise<EnvironmentLease> {
    const name = checkEnvironmentName(request.name)
    const packages = normalisePackages(request.packages ?? [])
    for (let attempt = 0; ; attempt++) {
      let baseHash = await this.namedHash(name)
      if (baseHash === undefined) {
        if (request.create !== true) throw new UnknownEnvironmentError(`this machine has no environment ${name}; make it with \`buildhaus-node env create ${name}\``)
        baseHash = await this.make(name, { ...request, refresh: false })
      }
      const hash = packages.length === 0 ? baseHash : await this.derived(name, baseHash, packages, request)
      const lease = await this.hold(hash, name)
      if (lease !== undefined) return lease
      // Removed between finding and holding it (a gc in another process): find or make it again, once.
      if (attempt > 0) throw new EnvironmentCreationError(`the environment ${name} keeps disappearing while it is being used; is another process removing it?`)
    }
  }

  /** Take a lease on an environment that exists; undefined if it is gone. */
  private async hold (hash: string, name: string): Promise<EnvironmentLease | undefined> {
    const envDir = join(this.dir, 'envs', hash)
    const marker = join(envDir, 'users', `${ownTag()}-${++this.leaseCounter}`)
    // The marker first, then the check: a remover that renamed the directory meanwhile sees the marker and puts it back.
    try {
      await mkdir(join(envDir, 'users'), { recursive: false, mode: 0o700 }).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'EEXIST') throw err })
      await writeFile(marker, '', { flag: 'wx' })
    } catch {
      return undefined
    }
    const loaded = await this.load(hash).catch(() => undefined)
    if (loaded === undefined || !await isDirectory(join(envDir, 'root'))) {
      await unlink(marker).catch(() => {})
      return undefined
    }
    const now = new Date()
    await utimes(join(envDir, 'used'), now, now).catch(async () => { await writeFile(join(envDir, 'used'), '') })
    let released: Promise<void> | undefined
    return {
      name,
      hash,
      manifest: loaded.manifest,
      manifestBytes: loaded.bytes,
      root: join(envDir, 'root'),
      os: loaded.info.os,
      release: async () => {
        released ??= unlink(marker).catch(() => {})
        await released
      }
    }
  }

  // ------------------------------------------------------------- making

  /**
   * Make the named base from its recipe (the Debian releases), once: a
   * second call while it is being made waits for the same making. Returns
   * its hash. With `refresh`, makes it anew even if the name has one.
   */
  async create (name: string, request: MakeRequest = {}): Promise<EnvironmentInfo> {
    checkEnvironmentName(name)
    const hash = await this.make(name, request)
    return (await this.describe(hash, await this.namedHashes()))!
  }

  /** Import an image archive (OCI layout or `docker save`) as the named environment. */
  async import (name: string, file: string, request: MakeRequest = {}): Promise<EnvironmentInfo> {
    checkEnvironmentName(name)
    const hash = await this.once(`name:${name}`, name, request, async (onLine, signal) => {
      return await this.build(name, [], undefined, onLine, async (root) => await importImageArchive(file, name, root, { onLine, signal }), async (hash) => {
        await writeAtomic(join(this.dir, 'names', `${name}.json`), JSON.stringify({ hash }))
      })
    })
    return (await this.describe(hash, await this.namedHashes()))!
  }

  private async make (name: string, request: MakeRequest): Promise<string> {
    const release = debianRelease(name)
    const existing = await this.namedHash(name)
    if (existing !== undefined && request.refresh !== true) return existing
    if (release === undefined) {
      throw new UnknownEnvironmentError(`buildhaus has no recipe for ${name} (it makes ${['debian-11', 'debian-12', 'debian-13'].join(', ')}, …); import an image of it with \`buildhaus-node env import ${name} FILE\``)
    }
    return await this.once(`name:${name}`, name, request, async (onLine, signal) => {
      // Made by another process while we waited for the lock.
      const made = await this.namedHash(name)
      if (made !== undefined && (request.refresh !== true || made !== existing)) return made
      const mirror = await findDebianArchive({ ...(this.options.mirror !== undefined ? { mirror: this.options.mirror } : {}), ...(this.options.env !== undefined ? { env: this.options.env } : {}) })
      onLine(`making ${name} (Debian ${release.suite}, variant minbase) from ${mirror}`)
      const timeout = { timeoutMs: CREATE_TIMEOUT_MS, onLine, signal }
      return await this.build(name, [], undefined, onLine, async (root) => await makeDebianBase(name, release, mirror, root, timeout), async (hash) => {
        await writeAtomic(join(this.dir, 'names', `${name}.json`), JSON.stringify({ hash }))
      })
    })
  }

  private async derived (name: string, baseHash: string, packages: string[], request: AcquireRequest): Promise<string> {
    const key = createHash('sha256').update(`${baseHash}\n${packages.join(' ')}`).digest('hex')
    const keyFile = join(this.dir, 'derived', `${key}.json`)
    const refusedFile = join(this.dir, 'derived', `${key}.unknown.json`)
    const known = await readHashFile(keyFile)
    if (known !== undefined && await isDirectory(join(this.dir, 'envs', known, 'root'))) return known
    await this.refuseKnownUnknowns(refusedFile, name)
    const label = `${name} + ${packages.join(', ')}`
    return await this.once(`derived:${key}`, label, request, async (onLine, signal) => {
      const made = await readHashFile(keyFile)
      if (made !== undefined && await isDirectory(join(this.dir, 'envs', made, 'root'))) return made
      await this.refuseKnownUnknowns(refusedFile, name)
      const base = await this.load(baseHash)
      if (base === undefined) throw new EnvironmentCreationError(`the environment ${name} (${baseHash.slice(0, 12)}) is gone; make it again`)
      onLine(`installing ${packages.join(', ')} into a copy of ${name} (${baseHash.slice(0, 12)})`)
      // The base must not be removed while it is being copied.
      const hold = await this.hold(baseHash, name)
      if (hold === undefined) throw new EnvironmentCreationError(`the environment ${name} was removed while packages were to be installed into it`)
      try {
        const options = { timeoutMs: DERIVE_TIMEOUT_MS, onLine, signal }
        return await this.build(name, packages, baseHash, onLine, async (root) => await deriveDebian({ baseRoot: hold.root, base: base.manifest, baseHash, packages, dir: root }, options), async (hash) => {
          await writeAtomic(keyFile, JSON.stringify({ hash, base: baseHash, packages }))
        })
      } catch (err) {
        // Remembered for a while, so that every job (and every node sharing this store) naming the same
        // packages is refused at once rather than after another copy and `apt-get update`.
        if (err instanceof UnknownPackagesError) await writeAtomic(refusedFile, JSON.stringify({ unknown: err.packages, message: err.message, time: Date.now() })).catch(() => {})
        throw err
      } finally {
        await hold.release()
      }
    })
  }

  /** Throw again an UnknownPackagesError found for this set within UNKNOWN_PACKAGES_TTL_MS. */
  private async refuseKnownUnknowns (file: string, name: string): Promise<void> {
    const bytes = await readBounded(file, 64 * 1024).catch(() => undefined)
    if (bytes === undefined) return
    let found: { unknown?: unknown, message?: unknown, time?: unknown }
    try {
      found = JSON.parse(bytes.toString('utf8')) as typeof found
    } catch {
      return
    }
    if (typeof found.time !== 'number' || Date.now() - found.time > UNKNOWN_PACKAGES_TTL_MS || !Array.isArray(found.unknown) || typeof found.message !== 'string') return
    const minutes = Math.max(1, Math.round((Date.now() - found.time) / 60_000))
    throw new UnknownPackagesError(found.unknown.filter((p): p is string => typeof p === 'string'), `${found.message} (as ${name}'s archive said ${minutes} min ago)`)
  }

  /**
   * Run `work` once for `key`: callers in this process share one making,
   * other processes wait on the key's lock (and then usually find it made).
   * A caller whose signal aborts stops waiting; the making itself is
   * abandoned only when no caller waits for it any more.
   */
  private async once (key: string, label: string, request: { onLine?: (line: string) => void, signal?: AbortSignal }, work: (onLine: (line: string) => void, signal: AbortSignal) => Promise<string>): Promise<string> {
    request.signal?.throwIfAborted()
    const listeners = this.listeners.get(key) ?? new Set<(line: string) => void>()
    this.listeners.set(key, listeners)
    const mine = request.onLine
    if (mine !== undefined) listeners.add(mine)
    let making = this.making.get(key)
    if (making === undefined) {
      const broadcast = (line: string): void => {
        this.emit('progress', { name: label, line })
        for (const listener of this.listeners.get(key) ?? []) {
          try {
            listener(line)
          } catch (err) {
            log.error('a progress listener threw: %s', describeError(err))
          }
        }
      }
      const controller = new AbortController()
      const lockFile = join(this.dir, 'locks', `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.lock`)
      const promise = (async () => {
        const lock = await acquireLock(lockFile, {
          timeoutMs: CREATE_TIMEOUT_MS,
          onWait: () => { broadcast(`waiting: another process is making ${label}`) },
          signal: controller.signal
        })
        try {
          return await work(broadcast, controller.signal)
        } finally {
          await lock.release()
        }
      })()
      const started: Making = { promise, controller, waiters: 0 }
      making = started
      this.making.set(key, started)
      void promise.finally(() => { if (this.making.get(key) === started) this.making.delete(key) }).catch(() => {})
    }
    const shared = making
    shared.waiters++
    let left = false
    const leave = (): void => {
      if (left) return
      left = true
      if (--shared.waiters === 0) shared.controller.abort(request.signal?.reason ?? new Error('nobody waits for it any more'))
    }
    try {
      const signal = request.signal
      if (signal === undefined) return await shared.promise
      return await new Promise<string>((resolve, reject) => {
        const onAbort = (): void => {
          leave()
          reject(signal.reason)
        }
        signal.addEventListener('abort', onAbort, { once: true })
        shared.promise.then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
      })
    } finally {
      leave()
      if (mine !== undefined) listeners.delete(mine)
      if (listeners.size === 0) this.listeners.delete(key)
    }
  }

  /**
   * Make a root in a private work directory with `make`, then move it into
   * place under its manifest's hash (if another making produced the same
   * manifest, that one is kept) and record it with `record`.
   */
  private async build (name: string, requested: string[], base: string | undefined, onLine: (line: string) => void, make: (root: string) => Promise<EnvironmentManifest>, record: (hash: string) => Promise<void>): Promise<string> {
    const work = join(this.dir, 'tmp', `${ownTag()}-${randomBytes(6).toString('hex')}`)
    await mkdir(work, { mode: 0o711 })
    try {
      const started = Date.now()
      const root = join(work, 'root')
      const manifest = await make(root)
      const bytes = manifestBytes(manifest)
      const hash = manifestHash(manifest)
      const target = join(this.dir, 'envs', hash)
      if (!await isDirectory(join(target, 'root'))) {
        await rm(target, { recursive: true, force: true })
        const info: Info = {
          name,
          requested,
          ...(base !== undefined ? { base } : {}),
          os: await osReleaseName(root) ?? name,
          sizeBytes: await sizeOf(root),
          created: Date.now(),
          recipe: RECIPE_VERSION
        }
        await writeFile(join(work, 'manifest.json'), bytes, { mode: 0o644 })
        await writeFile(join(work, 'info.json'), JSON.stringify(info), { mode: 0o644 })
        await writeFile(join(work, 'used'), '')
        await mkdir(join(work, 'users'), { mode: 0o700 })
        await chmod(work, 0o711)
        await rename(work, target)
        onLine(`made ${describeManifest(manifest)}: ${hash} (${manifest.packages.length} packages, ${Math.round(info.sizeBytes / 1024 / 1024)} MB) in ${Math.round((Date.now() - started) / 1000)} s`)
      } else {
        onLine(`made ${describeManifest(manifest)}: ${hash}, the same as one already here`)
      }
      await record(hash)
      this.emit('created', { name, hash })
      return hash
    } finally {
      await rm(work, { recursive: true, force: true }).catch(() => {})
    }
  }

  // ------------------------------------------------------------- removing

  /**
   * Remove the environment a name offers (or the one with this hash, or a
   * unique prefix of at least 8 digits of it). Refuses one in use.
   */
  async remove (nameOrHash: string): Promise<EnvironmentInfo> {
    return await this.withGcLock(async () => {
      const info = await this.find(nameOrHash)
      if (!await this.removeEnv(info.hash)) throw new EnvironmentInUseError(`the environment ${describeManifest(info.manifest)} (${info.hash.slice(0, 12)}) is in use by a build; try again when it is done`)
      return info
    })
  }

  /**
   * Keep the cache within `maxBytes` (default the store's bound): remove
   * the least recently used environments, never one in use, until the rest
   * fit. Returns what was removed.
   */
  async gc (maxBytes = this.maxBytes): Promise<{ removed: EnvironmentInfo[], keptBytes: number }> {
    return await this.withGcLock(async () => {
      const all = await this.list()
      let total = all.reduce((sum, e) => sum + e.sizeBytes, 0)
      const removed: EnvironmentInfo[] = []
      for (const candidate of [...all].sort((a, b) => a.lastUsed - b.lastUsed)) {
        if (total <= maxBytes) break
        if (candidate.inUse) continue
        if (await this.removeEnv(candidate.hash)) {
          removed.push(candidate)
          total -= candidate.sizeBytes
        }
      }
      return { removed, keptBytes: total }
    })
  }

  private async withGcLock<T> (fn: () => Promise<T>): Promise<T> {
    return await withLock(join(this.dir, 'locks', 'gc.lock'), { timeoutMs: 10 * 60_000 }, fn)
  }

  /** The environment a name offers, or the one with this hash (or a unique prefix of 8 digits or more); throws UnknownEnvironmentError. */
  async find (nameOrHash: string): Promise<EnvironmentInfo> {
    const named = await this.namedHashes()
    const byName = named.get(nameOrHash)
    if (byName !== undefined) {
      const info = await this.describe(byName, named)
      if (info !== undefined) return info
    }
    if (/^[0-9a-f]{8,64}$/.test(nameOrHash)) {
      const matches = (await readdir(join(this.dir, 'envs'))).filter((h) => HEX64.test(h) && h.startsWith(nameOrHash))
      if (matches.length > 1) throw new InvalidInputError(`${nameOrHash} is the start of ${matches.length} environments' hashes; give more digits`)
      const info = matches.length === 1 ? await this.describe(matches[0]!, named) : undefined
      if (info !== undefined) return info
    }
    throw new UnknownEnvironmentError(`there is no environment ${nameOrHash} here (see \`buildhaus-node env list\`)`)
  }

  /**
   * Move the environment aside, then look for leases: one taken meanwhile
   * (its marker is in the moved directory) puts it back. Only then delete.
   */
  private async removeEnv (hash: string): Promise<boolean> {
    const envDir = join(this.dir, 'envs', hash)
    const trash = join(this.dir, 'trash', `${ownTag()}-${hash}-${randomBytes(4).toString('hex')}`)
    const name = (await this.load(hash).catch(() => undefined))?.manifest.name ?? '?'
    try {
      await rename(envDir, trash)
    } catch {
      return false
    }
    if (await this.hasLiveUsers(join(trash, 'users'))) {
      await rename(trash, envDir)
      return false
    }
    this.cache.delete(hash)
    for (const sub of ['names', 'derived']) {
      for (const file of await readdir(join(this.dir, sub))) {
        if (await readHashFile(join(this.dir, sub, file)) === hash) await unlink(join(this.dir, sub, file)).catch(() => {})
      }
    }
    await rm(trash, { recursive: true, force: true })
    log('removed %s (%s)', hash, name)
    this.emit('removed', { name, hash })
    return true
  }

  private async hasLiveUsers (users: string): Promise<boolean> {
    for (const marker of await readdir(users).catch(() => [] as string[])) {
      if (!leftByDeadNode(marker)) return true
      await unlink(join(users, marker)).catch(() => {})
    }
    return false
  }

  // ------------------------------------------------------------- helpers

  private async namedHash (name: string): Promise<string | undefined> {
    const hash = await readHashFile(join(this.dir, 'names', `${name}.json`))
    return hash !== undefined && await isDirectory(join(this.dir, 'envs', hash, 'root')) ? hash : undefined
  }

  private async namedHashes (): Promise<Map<string, string>> {
    const named = new Map<string, string>()
    for (const file of await readdir(join(this.dir, 'names')).catch(() => [] as string[])) {
      if (!file.endsWith('.json')) continue
      const hash = await readHashFile(join(this.dir, 'names', file))
      if (hash !== undefined) named.set(file.slice(0, -'.json'.length), hash)
    }
    return named
  }

  private async load (hash: string): Promise<Cached | undefined> {
    const cached = this.cache.get(hash)
    if (cached !== undefined) return cached
    const envDir = join(this.dir, 'envs', hash)
    const bytes = await readBounded(join(envDir, 'manifest.json'), MAX_MANIFEST_BYTES)
    const infoText = await readBounded(join(envDir, 'info.json'), MAX_SMALL_FILE_BYTES)
    if (bytes === undefined || infoText === undefined) return undefined
    const manifest = parseManifest(bytes)
    if (manifestHash(manifest) !== hash) throw new EnvironmentCreationError(`the environment ${hash} holds another environment's manifest; remove it`)
    const loaded: Cached = { manifest, bytes, info: JSON.parse(infoText.toString('utf8')) as Info }
    this.cache.set(hash, loaded)
    return loaded
  }

  private async describe (hash: string, named: Map<string, string>): Promise<EnvironmentInfo | undefined> {
    const envDir = join(this.dir, 'envs', hash)
    const loaded = await this.load(hash).catch((err: unknown) => { log.error('skipping the environment %s: %s', hash, describeError(err)) })
    if (loaded === undefined) return undefined
    const used = await stat(join(envDir, 'used')).then((s) => s.mtimeMs, () => loaded.info.created)
    return {
      hash,
      name: loaded.manifest.name,
      requested: loaded.info.requested,
      ...(loaded.info.base !== undefined ? { base: loaded.info.base } : {}),
      manifest: loaded.manifest,
      os: loaded.info.os,
      sizeBytes: loaded.info.sizeBytes,
      created: loaded.info.created,
      lastUsed: Math.round(used),
      inUse: await this.hasLiveUsers(join(envDir, 'users')),
      named: named.get(loaded.manifest.name) === hash
    }
  }
}

async function isDirectory (path: string): Promise<boolean> {
  return await stat(path).then((s) => s.isDirectory(), () => false)
}

async function readBounded (path: string, maxBytes: number): Promise<Buffer | undefined> {
  let handle
  try {
    handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW)
  } catch {
    return undefined
  }
  try {
    const size = (await handle.stat()).size
    if (size > maxBytes) throw new EnvironmentCreationError(`${path} is larger than ${maxBytes} bytes`)
    const buffer = Buffer.alloc(size)
    const { bytesRead } = await handle.read(buffer, 0, size, 0)
    return buffer.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}

async function readHashFile (path: string): Promise<string | undefined> {
  const bytes = await readBounded(path, 64 * 1024).catch(() => undefined)
  if (bytes === undefined) return undefined
  try {
    const hash = (JSON.parse(bytes.toString('utf8')) as { hash?: unknown }).hash
    return typeof hash === 'string' && HEX64.test(hash) ? hash : undefined
  } catch {
    return undefined
  }
}

async function writeAtomic (path: string, text: string): Promise<void> {
  const tmp = `${path}.${ownTag()}-${randomBytes(4).toString('hex')}.tmp`
  await writeFile(tmp, text, { mode: 0o644 })
  await rename(tmp, path)
}

/** Bytes a tree takes on disk (du, each hard-linked file once). */
async function sizeOf (dir: string): Promise<number> {
  const result = await runCommand('du', ['-s', '-x', '-B1', '--', dir], { timeoutMs: 5 * 60_000 })
  const bytes = Number.parseInt(result.tail.at(-1)?.split('\t')[0] ?? '', 10)
  if (result.code !== 0 || !Number.isSafeInteger(bytes)) throw new EnvironmentCreationError(`cannot measure ${dir} with du`)
  return bytes
}
