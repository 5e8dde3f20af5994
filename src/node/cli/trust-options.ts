import { loadTrustDir, type TrustPolicy } from '../../jobs/index.js'
import { UsageError } from '../../util/errors.js'
import type { OptionTable } from './command.js'

/** The reader's own trust policy, for commands that judge results offline. */
export const trustOptions = {
  trust: { type: 'string', placeholder: 'DIR', description: 'believe only builders whose public keys are in DIR (one file per key, e.g. keys/trusted); default: everyone' },
  quorum: { type: 'string', placeholder: 'N', description: 'agreeing distinct builders a platform needs (default: its replica count)' }
} as const satisfies OptionTable

export async function trustPolicyFromOptions (options: { trust?: string | undefined, quorum?: string | undefined }): Promise<TrustPolicy> {
  const policy: TrustPolicy = {}
  if (options.trust !== undefined) policy.trusted = (await loadTrustDir(options.trust)).keys
  if (options.quorum !== undefined) {
    if (!/^\d+$/.test(options.quorum) || Number(options.quorum) < 1) throw new UsageError(`--quorum ${JSON.stringify(options.quorum)} is not a whole number of at least 1`)
    policy.quorum = Number(options.quorum)
  }
  return policy
}
