import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { MAX_LABEL_LENGTH, PLATFORM_LABEL_PATTERN } from '../gossip/presence/constants.js'

/**
 * The labels a node offers by default: `<os>-<arch>` as Node names them
 * (`linux-x64`, `linux-arm64`, `darwin-arm64`, `win32-x64`), and on Linux the
 * distribution as `<ID>-<VERSION_ID>` from /etc/os-release (`debian-12`,
 * `ubuntu-24.04`; just `<ID>` for rolling releases such as `arch`). A job's
 * selector asks for any subset, e.g. `linux-x64` or `linux-x64+debian-12`.
 */
export function detectPlatforms (osRelease = readOsRelease()): string[] {
  const labels = [`${process.platform}-${process.arch}`.toLowerCase()]
  if (process.platform === 'linux' && osRelease !== undefined) {
    const distro = distroLabel(osRelease)
    if (distro !== undefined) labels.push(distro)
  }
  return labels.filter(isPlatformLabel)
}

export function isPlatformLabel (label: string): boolean {
  return label.length <= MAX_LABEL_LENGTH && PLATFORM_LABEL_PATTERN.test(label)
}

/** `debian-12` from the text of /etc/os-release, or undefined when it names no usable ID. */
export function distroLabel (osRelease: string): string | undefined {
  const fields = new Map<string, string>()
  for (const line of osRelease.split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line.trim())
    if (match !== null) fields.set(match[1]!, match[2]!.replace(/^(["'])(.*)\1$/, '$2'))
  }
  const id = fields.get('ID')?.toLowerCase()
  if (id === undefined || id === '') return undefined
  const version = fields.get('VERSION_ID')?.toLowerCase()
  const label = version !== undefined && version !== '' ? `${id}-${version}` : id
  return isPlatformLabel(label) ? label : undefined
}

function readOsRelease (): string | undefined {
  for (const path of ['/etc/os-release', '/usr/lib/os-release']) {
    try {
      return readFileSync(path, 'utf8')
    } catch {}
  }
  return undefined
}

/**
 * Default build slots: half the CPUs, at least one. A build usually runs its
 * compiler on several cores (make -j), and the machine is a volunteer's, so a
 * node leaves room for its owner.
 */
export function defaultSlots (cpus = availableParallelism()): number {
  return Math.max(1, Math.floor(cpus / 2))
}
