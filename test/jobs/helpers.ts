import { createHash } from 'node:crypto'
import { generateNodeKey } from '../../src/crypto/keys.js'
import { createSigner, type Signer } from '../../src/crypto/sign.js'
import { EntryCodec, type DecodedEntry, type EntryBody } from '../../src/ledger/entry.js'
import { jobEntryRules, type Artifact, type JobBody, type ResultBody, type ResultStatus } from '../../src/jobs/bodies.js'

/** A codec with the jobs layer's rules: every entry a test makes passes the same checks as the node's. */
export const codec = new EntryCodec(jobEntryRules)

export function sha (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

export function artifact (path: string, content: string): Artifact {
  return { path, sha256: sha(content), size: Buffer.byteLength(content) }
}

/**
 * A small world of authors writing signed chains. Lamport clocks come from
 * one counter, so entries made later have larger clocks, as in a mesh where
 * every author has seen the previous entries.
 */
export class World {
  clock = 0
  time = 1_700_000_000_000

  author (): Author {
    return new Author(this, createSigner(generateNodeKey()))
  }
}

export class Author {
  readonly key: string
  private seq = 0
  private prev: string | null = null

  constructor (private readonly world: World, readonly signer: Signer) {
    this.key = signer.publicHex
  }

  write (type: string, body: EntryBody): DecodedEntry {
    const made = codec.create(this.signer, { seq: this.seq, prev: this.prev, clock: ++this.world.clock, time: this.world.time += 1000, type, body })
    this.seq++
    this.prev = made.id
    return made
  }

  /** Write an entry at a seq this author already used: an equivocation. */
  fork (type: string, body: EntryBody, seq: number, prev: string | null): DecodedEntry {
    return codec.create(this.signer, { seq, prev, clock: ++this.world.clock, time: this.world.time += 1000, type, body })
  }

  job (fields: Partial<JobBody> = {}): DecodedEntry {
    return this.write('job', jobBody(fields))
  }

  claim (job: DecodedEntry, platform = 'linux-x64', lease = this.world.time + 15_000): DecodedEntry {
    return this.write('claim', { job: job.id, platform, lease })
  }

  result (job: DecodedEntry, fields: Partial<ResultBody> & { status?: ResultStatus } = {}): DecodedEntry {
    return this.write('result', resultBody(job.id, fields))
  }

  cancel (job: DecodedEntry, reason?: string): DecodedEntry {
    return this.write('cancel', { job: job.id, ...(reason !== undefined ? { reason } : {}) })
  }
}

export function jobBody (fields: Partial<JobBody> = {}): JobBody {
  return {
    name: 'demo',
    source: sha('source'),
    sourceSize: 1234,
    steps: [{ name: 'build', run: 'make' }, { name: 'test', run: 'make test' }],
    platforms: [{ selector: 'linux-x64', labels: ['linux-x64'], replicas: 2 }],
    artifacts: ['dist/*'],
    independent: [],
    timeout: 600,
    limits: {},
    network: false,
    root: false,
    ...fields
  }
}

export function platforms (...specs: Array<[string, number]>): JobBody['platforms'] {
  return specs.map(([selector, replicas]) => ({ selector, labels: selector.split('+'), replicas }))
}

export const GOOD = [artifact('dist/app.whl', 'wheel'), artifact('dist/app.tar.gz', 'sdist')].sort((a, b) => (a.path < b.path ? -1 : 1))
export const EVIL = [artifact('dist/app.whl', 'backdoored wheel'), artifact('dist/app.tar.gz', 'sdist')].sort((a, b) => (a.path < b.path ? -1 : 1))

export function resultBody (job: string, fields: Partial<ResultBody> = {}): ResultBody {
  const status = fields.status ?? 'pass'
  return {
    job,
    platform: 'linux-x64',
    status,
    steps: status === 'pass'
      ? [{ name: 'build', exit: 0, ms: 1200 }, { name: 'test', exit: 0, ms: 800 }]
      : [{ name: 'build', exit: 0, ms: 1200 }, { name: 'test', exit: 1, ms: 300 }],
    log: sha('log'),
    logSize: 3,
    artifacts: status === 'pass' ? GOOD : [],
    env: { os: 'Debian GNU/Linux 12', kernel: '6.1.0', arch: 'x64', sandbox: 'bubblewrap 0.8.0', tools: { node: '22.23.3' } },
    start: 1_700_000_000_000,
    end: 1_700_000_002_000,
    ...fields
  }
}

/** A deterministic shuffle (mulberry32), so a failing order can be replayed from its seed. */
export function shuffled<T> (items: readonly T[], seed: number): T[] {
  let state = seed >>> 0
  const random = (): number => {
    state = (state + 0x6D2B79F5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}
