import { loadTrustDir, type TrustPolicy } from '../../jobs/index.js'
import { UsageError } from '../../util/errors.js'
import { resolveHome } from '../home.js'
import { loadMesh, trustModeOf, type LoadedMesh, type TrustMode } from '../mesh.js'
import type { OptionTable } from './command.js'
import type { DecodedEntry } from '../../ledger/entry.js'
import { foldMembership } from '../../membership/index.js'

/** The reader's own trust policy, for commands that judge results offline. */
export const trustOptions = {
  mesh: { type: 'string', placeholder: 'FILE', description: 'count the members of this mesh, recomputed from the log\'s vouches (default: mesh.json in $BUILDHAUS_HOME or the default home, else the project\'s keys/mesh.json)' },
  trust: { type: 'string', placeholder: 'DIR|everyone', description: 'count only builders whose public keys are in DIR (one file per key: NAME.pub with 64 hex digits, or NAME.pub.pem; see keys/README.md) instead of the members; `everyone` counts every key (unsafe: throwaway keys forge verdicts)' },
  quorum: { type: 'string', placeholder: 'N', description: 'agreeing distinct builders a platform needs (default: its replica count)' }
} as const satisfies OptionTable

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
