import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { DEFAULT_TIMEOUT_S } from '../../src/jobs/constants.js'
import { jobBodyFromSpec, parseJobSpec, readJobSpec, validateJobSpec, type JobSpec } from '../../src/jobs/spec.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { codec, sha } from './helpers.js'
import { generateNodeKey } from '../../src/crypto/keys.js'
import { createSigner } from '../../src/crypto/sign.js'

const source = { hash: sha('archive'), size: 4096 }

const example = {
  name: 'hello',
  platforms: ['linux-x64', ['debian-12', 'linux-arm64'], 'macos-arm64'],
  replicas: { 'linux-arm64+debian-12': 3 },
  steps: [{ name: 'build', run: 'python -m build' }, { name: 'test', run: 'pytest -q' }],
  artifacts: ['dist/*.whl', 'dist/*.tar.gz'],
  independent: ['dist/*.tar.gz', 'dist/*-none-any.whl'],
  timeout: 900,
  resources: { memoryMb: 2048, diskMb: 4096 },
  network: false
}

function specError (value: unknown): string {
  try {
    validateJobSpec(value)
  } catch (err) {
    expect((err as Error).name).toBe('JobSpecError')
    return (err as Error).message
  }
  throw new Error('the spec was accepted')
}

describe('job spec', () => {
  it('turns buildhaus.json into a job body that the codec accepts', () => {
    const body = jobBodyFromSpec(validateJobSpec(example), {}, source)
    expect(body).toEqual({
      name: 'hello',
      source: source.hash,
      sourceSize: 4096,
      steps: example.steps,
      platforms: [
        { selector: 'linux-x64', labels: ['linux-x64'], replicas: 2 },
        { selector: 'debian-12+linux-arm64', labels: ['debian-12', 'linux-arm64'], replicas: 3 },
        { selector: 'macos-arm64', labels: ['macos-arm64'], replicas: 2 }
      ],
      artifacts: example.artifacts,
      independent: example.independent,
      timeout: 900,
      limits: { memoryMb: 2048, diskMb: 4096 },
      network: false,
      root: false
    })
    const entry = codec.create(createSigner(generateNodeKey()), { seq: 0, prev: null, clock: 0, time: 1, type: 'job', body })
    expect(codec.decode(entry.line).id).toBe(entry.id)
  })

  it('applies CLI overrides: --platform replaces, a+b means both labels, --replicas and --timeout replace', () => {
    const spec = validateJobSpec(example)
    const body = jobBodyFromSpec(spec, { platforms: ['linux-x64+debian-12', 'linux-arm64'], replicas: 3, timeout: 60 }, source)
    expect(body.platforms).toEqual([
      { selector: 'debian-12+linux-x64', labels: ['debian-12', 'linux-x64'], replicas: 3 },
      { selector: 'linux-arm64', labels: ['linux-arm64'], replicas: 3 }
    ])
    expect(body.timeout).toBe(60)
  })

  it('takes one replica count for all platforms, and defaults to 2', () => {
    const base = { ...example, replicas: undefined }
    expect(jobBodyFromSpec(validateJobSpec({ ...base, replicas: 4 }), {}, source).platforms.map((p) => p.replicas)).toEqual([4, 4, 4])
    const { replicas: _, ...noReplicas } = example
    expect(jobBodyFromSpec(validateJobSpec(noReplicas), {}, source).platforms.map((p) => p.replicas)).toEqual([2, 2, 2])
  })

  it('names the field and what is expected', () => {
    const steps = [{ name: 'build', run: 'make' }, { name: 'test', run: '' }]
    expect(specError({ ...example, steps })).toBe('buildhaus.json: steps[1].run must be a non-empty string')
    expect(specError({ ...example, steps: [{ name: 'build' }] })).toBe('buildhaus.json: steps[0].run is required')
    expect(specError({ ...example, steps: [] })).toBe('buildhaus.json: steps must not be empty')
    expect(specError({ ...example, steps: [{ name: 'a', run: 'x' }, { name: 'a', run: 'y' }] })).toMatch(/^buildhaus\.json: steps\[1\]\.name repeats the step name "a"/)
    expect(specError({ ...example, name: undefined })).toBe('buildhaus.json: name is required')
    expect(specError({ ...example, timeout: 0 })).toBe('buildhaus.json: timeout must be at least 1')
    expect(specError({ ...example, timeout: 86_401 })).toBe('buildhaus.json: timeout must be at most 86400')
    expect(specError({ ...example, timeout: 1.5 })).toBe('buildhaus.json: timeout must be an integer')
    expect(specError({ ...example, replicas: 8 })).toBe('buildhaus.json: replicas must be at most 7')
    expect(specError({ ...example, replicas: 'many' })).toMatch(/^buildhaus\.json: replicas must be a replica count \(1 to 7\)/)
    expect(specError({ ...example, replicas: { 'linux-x32': 2 } })).toMatch(/^buildhaus\.json: replicas\["linux-x32"\] names no platform of "platforms"/)
    expect(specError({ ...example, platforms: ['Linux-X64'] })).toMatch(/^buildhaus\.json: platforms\[0\] must be a platform selector: label "Linux-X64" must be lower-case/)
    expect(specError({ ...example, platforms: [5] })).toMatch(/^buildhaus\.json: platforms\[0\] must be a selector/)
    expect(specError({ ...example, platforms: ['linux-x64', 'linux-x64'] })).toMatch(/platforms\[1\] repeats the platform "linux-x64"/)
    expect(specError({ ...example, artifacts: ['../etc/passwd'] })).toBe('buildhaus.json: artifacts[0] must not contain ".." segments')
    expect(specError({ ...example, artifacts: ['/abs/*'] })).toBe('buildhaus.json: artifacts[0] must be relative (no leading "/")')
    expect(specError({ ...example, artifacts: Array(65).fill('x') })).toBe('buildhaus.json: artifacts must have at most 64 items')
    expect(specError({ ...example, network: 'yes' })).toBe('buildhaus.json: network must be true or false')
    expect(specError({ ...example, resources: { memoryMb: -1 } })).toBe('buildhaus.json: resources.memoryMb must be at least 1')
    expect(specError({ ...example, steps: Array.from({ length: 33 }, (_, i) => ({ name: `s${i}`, run: 'x' })) })).toBe('buildhaus.json: steps must have at most 32 items')
    expect(specError({ ...example, name: 'x'.repeat(129) })).toBe('buildhaus.json: name must be at most 128 characters long')
    expect(specError({ ...example, name: 'bad\nname' })).toBe('buildhaus.json: name must not contain control characters')
    expect(specError({ ...example, platfroms: [] })).toBe('buildhaus.json: unknown field "platfroms"')
    expect(specError([])).toMatch(/^buildhaus\.json: must hold a JSON object/)
  })

  it('says when platforms come from neither the file nor the CLI; a timeout from neither is the default, written into the job', () => {
    const { platforms: _p, ...noPlatforms } = example
    const { timeout: _t, ...noTimeout } = example
    const { replicas: _r, ...noPlatformsOrReplicas } = noPlatforms
    expect(() => jobBodyFromSpec(validateJobSpec(noPlatformsOrReplicas), {}, source)).toThrow('buildhaus.json: platforms is required (e.g. "platforms": ["linux-x64"]), or pass --platform')
    expect(jobBodyFromSpec(validateJobSpec(noPlatformsOrReplicas), { platforms: ['linux-x64'] }, source).platforms).toHaveLength(1)
    expect(DEFAULT_TIMEOUT_S).toBe(30 * 60)
    expect(jobBodyFromSpec(validateJobSpec(noTimeout), {}, source).timeout).toBe(DEFAULT_TIMEOUT_S)
    expect(jobBodyFromSpec(validateJobSpec(noTimeout), { timeout: 30 }, source).timeout).toBe(30)
  })

  it('checks the overrides with the flag in the message', () => {
    const spec = validateJobSpec(example)
    expect(() => jobBodyFromSpec(spec, { replicas: 9 }, source)).toThrow('--replicas must be a whole number from 1 to 7, got 9')
    expect(() => jobBodyFromSpec(spec, { timeout: 0 }, source)).toThrow('--timeout must be a whole number from 1 to 86400 seconds, got 0')
    expect(() => jobBodyFromSpec(spec, { platforms: ['linux+'] }, source)).toThrow('--platform "linux+": a label must not be empty')
    expect(() => jobBodyFromSpec(spec, { platforms: ['a+b', 'b+a'] }, source)).toThrow('--platform a+b is given twice')
    expect(() => jobBodyFromSpec(spec, {}, { hash: 'nope', size: 1 })).toThrow(/source must be a sha256/)
  })

  it('refuses a job too large for one entry, saying what to shorten', () => {
    const steps = Array.from({ length: 20 }, (_, i) => ({ name: `s${i}`, run: 'x'.repeat(4000) }))
    expect(() => jobBodyFromSpec(validateJobSpec({ ...example, steps }), {}, source)).toThrow(/the job is \d+ bytes once encoded .* shorten the steps/)
  })

  describe('reading the file', () => {
    const teardown = useTeardown()

    it('reads buildhaus.json from the directory, and says when it is missing or not JSON', async () => {
      const dir = await tempDir(teardown)
      await expect(readJobSpec(dir)).rejects.toThrow(/there is no buildhaus\.json in .*: add one/)
      await writeFile(join(dir, 'buildhaus.json'), '{"name": "x",')
      await expect(readJobSpec(dir)).rejects.toThrow(/^buildhaus\.json: not valid JSON/)
      await writeFile(join(dir, 'buildhaus.json'), JSON.stringify(example))
      const spec: JobSpec = await readJobSpec(dir)
      expect(spec.name).toBe('hello')
      await writeFile(join(dir, 'buildhaus.json'), ' '.repeat(70_000))
      await expect(readJobSpec(dir)).rejects.toThrow(/larger than 65536 bytes/)
    })
  })

  it('parses text', () => {
    expect(parseJobSpec(JSON.stringify(example)).platforms).toEqual([['linux-x64'], ['debian-12', 'linux-arm64'], ['macos-arm64']])
  })
})
