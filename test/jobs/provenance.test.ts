import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { attestations, foldJob, provenanceSigningInput, type Artifact, type JobBody } from '../../src/jobs/index.js'
import type { DecodedEntry } from '../../src/ledger/entry.js'
import { ROOT } from '../helpers/cluster.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { EVIL, GOOD, World, type Author } from './helpers.js'

const run = promisify(execFile)
const VERIFY = join(ROOT, 'test', 'fixtures', 'dsse_verify.py')

interface Checked { valid: string[], invalid: string[], subject: Array<{ name: string, digest: { sha256: string } }>, dependencies: Array<{ name: string, uri: string, digest: Record<string, string> }>, builder: string }

/** securesystemslib (Debian's python3-securesystemslib) checks what we made; never our own verifier. */
async function thirdPartyCheck (file: string, threshold: number, keys: string[]): Promise<{ code: number, checked: Checked[] }> {
  try {
    const { stdout } = await run('/usr/bin/python3', [VERIFY, file, String(threshold), ...keys])
    return { code: 0, checked: stdout.trim().split('\n').map((l) => JSON.parse(l) as Checked) }
  } catch (err) {
    const failed = err as { code: number, stdout: string, stderr: string }
    if (failed.stdout === undefined || failed.stdout.trim() === '') throw new Error(`dsse_verify.py failed: ${failed.stderr}`, { cause: err })
    return { code: failed.code, checked: failed.stdout.trim().split('\n').map((l) => JSON.parse(l) as Checked) }
  }
}

describe('provenance: in-toto statements in DSSE envelopes signed by every agreeing builder', () => {
  const teardown = useTeardown()
  const upstream = { url: 'https://example.org/hello-1.2.3.tgz', digest: { sha512: 'ab'.repeat(64) } }

  function signedResult (builder: Author, job: DecodedEntry, artifacts: Artifact[]): DecodedEntry {
    const view = { id: job.id, time: job.entry.time, spec: job.entry.body as unknown as JobBody }
    const provenance = Buffer.from(builder.signer.sign(provenanceSigningInput(view, 'linux-x64', artifacts))).toString('hex')
    return builder.result(job, { artifacts, provenance })
  }

  it('assembles one envelope per verified platform with each agreeing builder\'s signature, which securesystemslib verifies', async () => {
    const world = new World()
    const [submitter, a, b, evil] = [world.author(), world.author(), world.author(), world.author()]
    const job = submitter.job({ upstream })
    const view = foldJob(job, [signedResult(a, job, GOOD), signedResult(b, job, GOOD), signedResult(evil, job, EVIL)], { quorum: 2 })
    expect(view.verdict).toBe('verified')
    const [attestation, ...others] = attestations(view)
    expect(others).toEqual([])
    expect(attestation!.signers.sort()).toEqual([a.key, b.key].sort())

    const dir = await tempDir(teardown)
    const file = join(dir, 'job.intoto.jsonl')
    await writeFile(file, `${JSON.stringify(attestation!.envelope)}\n`)
    const { code, checked } = await thirdPartyCheck(file, 2, [a.key, b.key])
    expect(code).toBe(0)
    expect(checked[0]!.valid).toEqual([a.key, b.key].sort())
    expect(checked[0]!.subject).toEqual(GOOD.map((g) => ({ name: g.path, digest: { sha256: g.sha256 } })))
    expect(checked[0]!.dependencies).toEqual([
      { name: 'source', uri: `buildhaus:blob:${view.source}`, digest: { sha256: view.source }, mediaType: 'application/gzip' },
      { name: 'upstream', uri: upstream.url, digest: upstream.digest }
    ])
    expect(checked[0]!.builder).toBe('urn:buildhaus:builder:mesh:v1')

    // A threshold above the signers fails, and a signature moved to another key is refused.
    expect((await thirdPartyCheck(file, 3, [a.key, b.key, evil.key])).code).toBe(1)
    const forged = { ...attestation!.envelope, signatures: [{ keyid: evil.key, sig: attestation!.envelope.signatures[0]!.sig }] }
    await writeFile(file, `${JSON.stringify(forged)}\n`)
    const moved = await thirdPartyCheck(file, 1, [evil.key])
    expect(moved.code).toBe(1)
    expect(moved.checked[0]!.invalid).toEqual([evil.key])
  })

  it('a result whose signature covers other bytes is left out of the envelope and named', () => {
    const world = new World()
    const [submitter, a, b] = [world.author(), world.author(), world.author()]
    const job = submitter.job()
    const other = submitter.job({ name: 'another job' })
    const view0 = { id: other.id, time: other.entry.time, spec: other.entry.body as unknown as JobBody }
    const wrong = Buffer.from(b.signer.sign(provenanceSigningInput(view0, 'linux-x64', GOOD))).toString('hex')
    const view = foldJob(job, [signedResult(a, job, GOOD), b.result(job, { artifacts: GOOD, provenance: wrong })])
    const [attestation] = attestations(view)
    expect(attestation!.signers).toEqual([a.key])
    expect(attestation!.unsigned).toEqual([b.key])
    expect(attestation!.envelope.signatures).toHaveLength(1)
  })

  it('no envelope before a platform is verified', () => {
    const world = new World()
    const [submitter, a] = [world.author(), world.author()]
    const job = submitter.job()
    expect(attestations(foldJob(job, [signedResult(a, job, GOOD)]))).toEqual([])
  })
})
