import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { admit, DEFAULT_LIMITS, DEFAULT_POLICY, HARD_MAXIMUMS, hostMaximums, loadPolicy, PolicyFileError, type AdmissionPolicy, type HostCapacity } from '../../src/sandbox/index.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

const teardown = useTeardown()
const ALICE = 'a'.repeat(64)
const BOB = 'b'.repeat(64)
/** A roomy host: 64 GB, 200 GB free, 8 CPUs, one slot. */
const HOST: HostCapacity = { memoryMb: 65536, diskFreeMb: 204800, cpus: 8, slots: 1 }

const job = (over: Partial<Parameters<typeof admit>[1]> = {}): Parameters<typeof admit>[1] => ({ network: false, root: false, limits: {}, submitter: ALICE, ...over })

describe('admit', () => {
  it('admits a plain job with the default limits', () => {
    expect(admit(DEFAULT_POLICY, job())).toEqual({ ok: true, limits: { ...DEFAULT_LIMITS } })
  })

  it('keeps the limits a job asks for within the maximums', () => {
    const result = admit(DEFAULT_POLICY, job({ limits: { memoryMb: 512, wallSeconds: 60 } }))
    expect(result).toEqual({ ok: true, limits: { ...DEFAULT_LIMITS, memoryMb: 512, wallSeconds: 60 } })
  })

  it('refuses network and root when the policy does, naming what', () => {
    const strict: AdmissionPolicy = { ...DEFAULT_POLICY, network: false, root: false }
    expect(admit(strict, job({ network: true }))).toEqual({ ok: false, reason: 'refused by policy: network' })
    expect(admit(strict, job({ root: true }))).toEqual({ ok: false, reason: 'refused by policy: root' })
    expect(admit({ ...strict, network: true, root: true }, job({ network: true, root: true })).ok).toBe(true)
  })

  it('refuses limits over the node\'s maximum and caps defaults to it', () => {
    const small: AdmissionPolicy = { ...DEFAULT_POLICY, maxLimits: { ...HARD_MAXIMUMS, memoryMb: 1024 } }
    expect(admit(small, job({ limits: { memoryMb: 4096 } }))).toEqual({ ok: false, reason: 'refused by policy: memoryMb 4096 is over this node\'s maximum of 1024' })
    const admitted = admit(small, job())
    expect(admitted.ok && admitted.limits.memoryMb).toBe(1024)
  })

  it('refuses nonsense limits', () => {
    expect(admit(DEFAULT_POLICY, job({ limits: { processes: 1.5 } }))).toEqual({ ok: false, reason: 'refused by policy: processes must be a whole number (got 1.5)' })
    expect(admit(DEFAULT_POLICY, job({ limits: { memoryMb: 1 } })).ok).toBe(false)
  })

  it('admits only listed submitters when there is a list', () => {
    const listed: AdmissionPolicy = { ...DEFAULT_POLICY, submitters: [ALICE] }
    expect(admit(listed, job()).ok).toBe(true)
    const refused = admit(listed, job({ submitter: BOB }))
    expect(refused.ok).toBe(false)
    expect(!refused.ok && refused.reason).toMatch(/^refused by policy: submitter b{16}… is not on this node's list$/)
  })
})

describe('loadPolicy', () => {
  it('gives the defaults when there is no file, each maximum capped by the host', async () => {
    const dir = await tempDir(teardown)
    expect(await loadPolicy(join(dir, 'policy.json'), HOST)).toEqual({
      network: false,
      root: true,
      maxLimits: { ...HARD_MAXIMUMS, memoryMb: 32768, workspaceMb: 65536, fileMb: 16384, wallSeconds: 7200, cpuSeconds: 57600 }
    })
  })

  it('reads a policy, filling the maximums it leaves out with the host\'s caps', async () => {
    const dir = await tempDir(teardown)
    const path = join(dir, 'policy.json')
    await writeFile(path, JSON.stringify({ network: true, root: false, maxLimits: { memoryMb: 4096, wallSeconds: 600 }, submitters: [ALICE.toUpperCase()] }))
    expect(await loadPolicy(path, HOST)).toEqual({
      network: true,
      root: false,
      maxLimits: { ...hostMaximums(HOST), memoryMb: 4096, wallSeconds: 600 },
      submitters: [ALICE]
    })
  })

  it('says clearly what is wrong with a bad file', async () => {
    const dir = await tempDir(teardown)
    const path = join(dir, 'policy.json')
    const cases: Array<[string, RegExp]> = [
      ['{ "network": tru', /is not valid JSON/],
      ['{ "netwrok": true }', /Unrecognized key.*netwrok/],
      ['{ "maxLimits": { "memoryMb": 999999 } }', /maxLimits\.memoryMb: memoryMb must be at most 65536 \(the hard maximum\)/],
      ['{ "maxLimits": { "processes": 2 } }', /maxLimits\.processes: processes must be at least 8/],
      ['{ "submitters": ["not-a-key"] }', /submitters\.0: each submitter must be a 64-digit hex public key/],
      ['{ "root": "yes" }', /root: /]
    ]
    for (const [text, message] of cases) {
      await writeFile(path, text)
      const err = await loadPolicy(path, HOST).catch((e: unknown) => e)
      expect(err, text).toBeInstanceOf(PolicyFileError)
      expect((err as Error).name).toBe('PolicyFileError')
      expect((err as Error).message).toContain(path)
      expect((err as Error).message).toMatch(message)
    }
  })
})
