import { pae, verifyDsse, type DsseEnvelope } from '../crypto/dsse.js'
import { canonicalJson } from '../util/canonical-json.js'
import type { Artifact, JobBody } from './bodies.js'
import type { JobView } from './view.js'

/**
 * Provenance: an in-toto Statement (v1) with a SLSA provenance v1 predicate
 * for one platform of one job, built only from what the log says (the job
 * entry, the platform, the agreed artifacts), serialised as RFC 8785
 * canonical JSON. Every builder that reaches the same outcome computes the
 * same bytes and signs their DSSE encoding in its result (`provenance`), so
 * the envelope of a verified platform carries one signature per agreeing
 * builder, each from the builder's own key, assembled by anyone from the log.
 *
 * The builders are named by the envelope's signatures (keyid = the builder's
 * Ed25519 public key in hex), not inside the statement: the statement must
 * be byte-identical for every builder, and none knows who else will agree
 * when it signs. See docs/PROVENANCE.md.
 */

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json'
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1'
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1'
/** What a buildhaus job is, as a SLSA build type (defined in docs/PROVENANCE.md). */
export const BUILD_TYPE = 'urn:buildhaus:build-type:job:v1'
/** The build platform: a buildhaus mesh, whose builders sign the envelope. */
export const BUILDER_ID = 'urn:buildhaus:builder:mesh:v1'

export interface ResourceDescriptor {
  name?: string
  uri?: string
  digest: Record<string, string>
  mediaType?: string
}

export interface ProvenanceStatement {
  _type: typeof STATEMENT_TYPE
  subject: ResourceDescriptor[]
  predicateType: typeof SLSA_PROVENANCE_V1
  predicate: {
    buildDefinition: {
      buildType: string
      externalParameters: Record<string, unknown>
      internalParameters: Record<string, unknown>
      resolvedDependencies: ResourceDescriptor[]
    }
    runDetails: {
      builder: { id: string }
      metadata: { invocationId: string }
    }
  }
}

/** What the statement needs of a job: its id, time and body (a JobView has them). */
export type ProvenanceJob = Pick<JobView, 'id' | 'time'> & { spec: JobBody }

/**
 * The environment a platform was built in, as a dependency, when the job
 * names one (the `environments` work adds `environment` to job bodies: a
 * content-addressed root file system). Absent: no entry.
 */
function environmentDependency (spec: JobBody): ResourceDescriptor | undefined {
  const environment = (spec as JobBody & { environment?: unknown }).environment
  if (typeof environment === 'string' && /^[0-9a-f]{64}$/.test(environment)) return { name: 'environment', uri: `buildhaus:blob:${environment}`, digest: { sha256: environment } }
  if (environment !== null && typeof environment === 'object' && typeof (environment as { sha256?: unknown }).sha256 === 'string') {
    const hash = (environment as { sha256: string }).sha256
    if (/^[0-9a-f]{64}$/.test(hash)) return { name: 'environment', uri: `buildhaus:blob:${hash}`, digest: { sha256: hash } }
  }
  return undefined
}

/** The statement for `platform` of `job` with these (sorted) artifacts: a pure function of log data. */
export function provenanceStatement (job: ProvenanceJob, platform: string, artifacts: readonly Artifact[]): ProvenanceStatement {
  const spec = job.spec
  const dependencies: ResourceDescriptor[] = [{ name: 'source', uri: `buildhaus:blob:${spec.source}`, digest: { sha256: spec.source }, mediaType: 'application/gzip' }]
  if (spec.upstream !== undefined) dependencies.push({ name: 'upstream', uri: spec.upstream.url, digest: { ...spec.upstream.digest } })
  const environment = environmentDependency(spec)
  if (environment !== undefined) dependencies.push(environment)
  const { source: _source, sourceSize: _size, upstream: _upstream, ...parameters } = spec
  return {
    _type: STATEMENT_TYPE,
    subject: [...artifacts].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map((a) => ({ name: a.path, digest: { sha256: a.sha256 } })),
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: { job: job.id, platform, ...parameters },
        internalParameters: { sourceDateEpoch: Math.floor(job.time / 1000) },
        resolvedDependencies: dependencies
      },
      runDetails: {
        builder: { id: BUILDER_ID },
        metadata: { invocationId: `${job.id}/${platform}` }
      }
    }
  }
}

/** The statement's payload bytes: RFC 8785 canonical JSON, UTF-8. */
export function statementBytes (statement: ProvenanceStatement): Buffer {
  return Buffer.from(canonicalJson(statement), 'utf8')
}

/** What a builder signs for its result (hex of the signature goes in the result's `provenance`). */
export function provenanceSigningInput (job: ProvenanceJob, platform: string, artifacts: readonly Artifact[]): Uint8Array {
  return pae(IN_TOTO_PAYLOAD_TYPE, statementBytes(provenanceStatement(job, platform, artifacts)))
}

export interface PlatformAttestation {
  platform: string
  /** The DSSE envelope: one signature per agreeing builder whose result carries a valid one. */
  envelope: DsseEnvelope
  statement: ProvenanceStatement
  /** Agreeing builders whose signature is in the envelope. */
  signers: string[]
  /** Agreeing builders without a valid signature (an older node, or a bad one): not in the envelope. */
  unsigned: string[]
}

/**
 * The envelope of every verified platform of a job with artifacts, under
 * the reader's policy (the view was folded with it): the deciding group's
 * builders' signatures, each checked against the statement recomputed from
 * the log. Platforms without a signature are left out.
 */
export function attestations (view: JobView): PlatformAttestation[] {
  const found: PlatformAttestation[] = []
  for (const platform of view.platforms) {
    if (platform.verdict !== 'verified' || platform.artifacts === undefined || platform.artifacts.length === 0) continue
    const statement = provenanceStatement(view, platform.selector, platform.artifacts)
    const payload = statementBytes(statement)
    const signers: string[] = []
    const unsigned: string[] = []
    const signatures: DsseEnvelope['signatures'] = []
    for (const result of platform.results) {
      if (!result.counted || result.agrees !== true) continue
      const sig = result.provenance
      if (sig !== undefined && verifyDsse(IN_TOTO_PAYLOAD_TYPE, payload, result.builder, sig)) {
        signers.push(result.builder)
        signatures.push({ keyid: result.builder, sig: Buffer.from(sig, 'hex').toString('base64') })
      } else {
        unsigned.push(result.builder)
      }
    }
    if (signatures.length === 0) continue
    found.push({ platform: platform.selector, envelope: { payloadType: IN_TOTO_PAYLOAD_TYPE, payload: payload.toString('base64'), signatures }, statement, signers, unsigned })
  }
  return found
}
