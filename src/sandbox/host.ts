import { constants as fsConstants } from 'node:fs'
import { access, readFile, realpath } from 'node:fs/promises'
import { arch, release, type } from 'node:os'
import { basename, join } from 'node:path'
import { runHostCommand } from './host-process.js'
import type { EnvironmentFingerprint } from './types.js'

/** The PATH the node uses to find system tools, whatever its own environment says. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Absolute path of `name` on the system PATH (and the node's own PATH), or undefined. */
export async function findTool (name: string): Promise<string | undefined> {
  const dirs = [...SYSTEM_PATH.split(':'), ...(process.env.PATH ?? '').split(':')].filter((d) => d.startsWith('/'))
  for (const dir of new Set(dirs)) {
    const candidate = join(dir, name)
    try {
      await access(candidate, fsConstants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

/** stdout+stderr of a short command, or undefined when it cannot run, fails, takes over 5 s or says more than 1 MiB. */
export async function probeOutput (file: string, args: string[]): Promise<string | undefined> {
  try {
    const result = await runHostCommand(file, args, { timeoutMs: 5000, env: { PATH: SYSTEM_PATH, LANG: 'C' }, maxOutputBytes: 1024 * 1024 })
    if (result.code !== 0 || result.timedOut || result.truncated) return undefined
    return `${result.stdout}${result.stderr}`
  } catch {
    return undefined
  }
}

const TOOLS: Array<[string, string[]]> = [
  ['cc', ['--version']],
  ['c++', ['--version']],
  ['ld', ['--version']],
  ['make', ['--version']],
  ['python3', ['--version']],
  ['perl', ['-e', 'print "perl $^V\\n"']],
  ['git', ['--version']]
]

let cachedTools: Promise<Record<string, string>> | undefined

/**
 * Versions of the toolchain builds see (the sandbox binds the host's /usr, so
 * the host's tools are the sandbox's), first line each, plus which shell
 * /bin/sh is. Measured once per process.
 */
export async function toolVersions (): Promise<Record<string, string>> {
  cachedTools ??= (async () => {
    const tools: Record<string, string> = {}
    try {
      tools.sh = basename(await realpath('/bin/sh'))
    } catch {
      // no /bin/sh: the steps will say so
    }
    await Promise.all(TOOLS.map(async ([name, args]) => {
      const path = await findTool(name)
      if (path === undefined) return
      const first = (await probeOutput(path, args))?.split('\n').find((line) => line.trim() !== '')
      if (first !== undefined) tools[name] = first.trim()
    }))
    return Object.fromEntries(Object.entries(tools).sort(([a], [b]) => a < b ? -1 : 1))
  })()
  return await cachedTools
}

async function osName (): Promise<string> {
  try {
    const text = await readFile('/etc/os-release', 'utf8')
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text)
    if (pretty?.[1] !== undefined) return pretty[1]
  } catch {
    // not every system has it
  }
  return type()
}

export async function hostFingerprint (fields: Pick<EnvironmentFingerprint, 'sandbox' | 'bwrap' | 'limits' | 'seccomp' | 'warning'>): Promise<EnvironmentFingerprint> {
  const fingerprint: EnvironmentFingerprint = {
    os: await osName(),
    kernel: release(),
    arch: arch(),
    sandbox: fields.sandbox,
    tools: await toolVersions()
  }
  if (fields.bwrap !== undefined) fingerprint.bwrap = fields.bwrap
  if (fields.limits !== undefined) fingerprint.limits = fields.limits
  if (fields.seccomp !== undefined) fingerprint.seccomp = fields.seccomp
  if (fields.warning !== undefined) fingerprint.warning = fields.warning
  return fingerprint
}

/** What a run in an environment says of its system: the environment's name for itself, the host's kernel and sandbox, no host tools. */
export function environmentFingerprint (host: EnvironmentFingerprint, root: { os: string }): EnvironmentFingerprint {
  return { ...host, os: root.os, tools: {} }
}
