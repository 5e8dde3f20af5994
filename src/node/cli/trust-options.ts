import { loadTrustDir, type TrustPolicy } from '../../jobs/index.js'
import { UsageError } from '../../util/errors.js'
import type { OptionTable } from './command.js'

/** The reader's own trust policy, for commands that judge results offline. */
export const trustOptions = {
  trust: { type: 'string', placeholder: 'DIR', description: 'believe only builders whose public keys are in DIR (one file per key: NAME.pub with 64 hex digits, or NAME.pub.pem; see keys/README.md); default: everyone' },
  quorum: { type: 'string', placeholder: 'N', description: 'agreeing distinct builders a platform needs (default: its replica count)' }
} as const satisfies OptionTable

/** As for `join --quorum`: more than the most replicas a job can ask for, fewer than a typo's worth. */
const MAX_QUORUM = 16

/** A policy, and the names a trust list gives its keys (file base names), for printing. */
export interface ReaderPolicy {
  policy: TrustPolicy
  names: ReadonlyMap<string, string>
}

export async function readerPolicyFromOptions (options: { trust?: string | undefined, quorum?: string | undefined }): Promise<ReaderPolicy> {
  const policy: TrustPolicy = {}
  let names: ReadonlyMap<string, string> = new Map()
  if (options.trust !== undefined) {
    const list = await loadTrustDir(options.trust)
    policy.trusted = list.keys
    names = list.names
  }
  if (options.quorum !== undefined) {
    if (!/^\d+$/.test(options.quorum) || Number(options.quorum) < 1 || Number(options.quorum) > MAX_QUORUM) {
      throw new UsageError(`--quorum ${JSON.stringify(options.quorum)} is not a whole number from 1 to ${MAX_QUORUM}: give how many distinct builders must agree`)
    }
    policy.quorum = Number(options.quorum)
  }
  return { policy, names }
}

export async function trustPolicyFromOptions (options: { trust?: string | undefined, quorum?: string | undefined }): Promise<TrustPolicy> {
  return (await readerPolicyFromOptions(options)).policy
}
