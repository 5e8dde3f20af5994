import { parseDeb822 } from './deb822.js'

/**
 * The installed packages of a root file system, from the package manager's
 * own database: dpkg's status file (Debian and its derivatives) or apk's
 * installed database (Alpine). A name → version map, ready for the manifest.
 */

/** Installed packages from the text of /var/lib/dpkg/status; `native` is the root's dpkg architecture. */
export function dpkgInstalled (status: string, native?: string): { packages: Map<string, string>, architecture?: string } {
  const installed = parseDeb822(status).filter((p) => /\binstalled$/.test(p.get('status') ?? '') && p.has('package') && p.has('version'))
  // Without /var/lib/dpkg/arch, dpkg's own architecture is the native one.
  const architecture = native ?? installed.find((p) => p.get('package') === 'dpkg')?.get('architecture')
  const packages = new Map<string, string>()
  for (const paragraph of installed) {
    const arch = paragraph.get('architecture')
    const foreign = arch !== undefined && arch !== 'all' && architecture !== undefined && arch !== architecture
    packages.set(`${paragraph.get('package')!}${foreign ? `:${arch}` : ''}`, paragraph.get('version')!)
  }
  return { packages, ...(architecture !== undefined ? { architecture } : {}) }
}

/** Installed packages from the text of Alpine's /lib/apk/db/installed (`P:` name, `V:` version, `A:` arch lines). */
export function apkInstalled (db: string): { packages: Map<string, string>, architecture?: string } {
  const packages = new Map<string, string>()
  let architecture: string | undefined
  for (const block of db.split(/\n\s*\n/)) {
    const fields = new Map<string, string>()
    for (const line of block.split('\n')) {
      const match = /^([A-Za-z]):(.*)$/.exec(line)
      if (match !== null && !fields.has(match[1]!)) fields.set(match[1]!, match[2]!.trim())
    }
    const name = fields.get('P')
    const version = fields.get('V')
    if (name === undefined || version === undefined) continue
    packages.set(name, version)
    architecture ??= fields.get('A')
  }
  return { packages, ...(architecture !== undefined ? { architecture } : {}) }
}
