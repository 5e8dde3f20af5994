import { loadTrustDir, type TrustPolicy } from '../../jobs/trust.js'
import { UsageError } from '../../util/errors.js'
import { resolveHome } from '../home/home.js'
import { loadMesh, trustModeOf, type LoadedMesh, type TrustMode } from '../home/mesh.js'
import type { DecodedEntry } from '../../ledger/entry.js'
import { foldMembership } from '../../membership/fold.js'

/** The table of these options is in specs.ts, which `--help` reads without loading this module. */
export { trustOptions } from './specs.js'

/** As for `join --quorum`: more than the most replicas a job can ask for, fewer than a typo's worth. */
const MAX_QUORUM = 16

/** A policy, and the names a trust list gives its keys (file base names), for printing. */
export interface ReaderPolicy {
  policy: TrustPolicy
  names: ReadonlyMap<string, string>
  mode: TrustMode
  /** The mesh whose membership the audit recomputes (and counts, in `members` mode). */
  mesh: LoadedMesh
}

export interface TrustOptionValues {
  trust?: string | undefined
  quorum?: string | undefined
  mesh?: string | undefined
  /** The reader's node home, whose mesh.json is the default mesh (else $BUILDHAUS_HOME, else the default home). */
  home?: string | undefined
}

export async function readerPolicyFromOptions (options: TrustOptionValues, env: NodeJS.ProcessEnv = process.env): Promise<ReaderPolicy> {
  const policy: TrustPolicy = {}
  let names: ReadonlyMap<string, string> = new Map()
  const mode = trustModeOf(options.trust)
  if (mode === 'list') {
    const list = await loadTrustDir(options.trust!)
    policy.trusted = list.keys
    policy.basis = 'list'
    names = list.names
  } else if (mode === 'members') {
    // Filled in from the log by the audit (auditExport's `membership` option).
    policy.basis = 'members'
  }
  if (options.quorum !== undefined) {
    if (!/^\d+$/.test(options.quorum) || Number(options.quorum) < 1 || Number(options.quorum) > MAX_QUORUM) {
      throw new UsageError(`--quorum ${JSON.stringify(options.quorum)} is not a whole number from 1 to ${MAX_QUORUM}: give how many distinct builders must agree`)
    }
    policy.quorum = Number(options.quorum)
  }
  const mesh = await loadMesh(options.mesh, resolveHome(options.home, env))
  return { policy, names, mode, mesh }
}

/**
 * The reader's policy with the members filled in (in `members` mode) from
 * membership entries the reader has checked, under its own mesh definition.
 */
export function withMembers (reader: ReaderPolicy, entries: Iterable<DecodedEntry>): TrustPolicy {
  if (reader.mode !== 'members') return reader.policy
  const view = foldMembership(reader.mesh.definition, entries)
  return { ...reader.policy, trusted: new Set(view.members.map((m) => m.key)), basis: 'members' }
}

/** What auditExport needs to recompute membership under this reader's options. */
export function membershipOption (reader: ReaderPolicy): { definition: LoadedMesh['definition'], file: string, counts: boolean } {
  return { definition: reader.mesh.definition, file: reader.mesh.file, counts: reader.mode === 'members' }
}
