import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { packDirectory } from '../../src/archive/index.js'
import { readJobSpec, type JobSpec, type JobView, type SpecOverrides } from '../../src/jobs/index.js'
import type { RunningNode } from '../../src/node/daemon.js'
import { tempDir } from './temp-home.js'

type Teardown = (fn: () => unknown) => void

/** A buildhaus.json as a test writes it (fields as in docs/JOBS.md; anything goes, to test refusals). */
export type SpecJson = Record<string, unknown>

/**
 * Write a job directory at `dir` (made if missing): buildhaus.json from
 * `spec` (an object, or text written as is to test refusals) plus extra files
 * (relative path → content; subdirectories are made).
 */
export async function writeJobDir (dir: string, spec: SpecJson | string, files: Record<string, string> = {}): Promise<string> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'buildhaus.json'), typeof spec === 'string' ? spec : JSON.stringify(spec, null, 2))
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true })
    await writeFile(join(dir, path), content)
  }
  return dir
}

/** writeJobDir in a fresh temporary directory, removed at teardown. */
export async function tempJobDir (teardown: Teardown, spec: SpecJson | string, files: Record<string, string> = {}): Promise<string> {
  return await writeJobDir(await tempDir(teardown, 'buildhaus-job-'), spec, files)
}

export interface SortJobOptions {
  name?: string
  /** Shell run as the build step; it must leave dist/out.txt. */
  build?: string
  replicas?: number
  timeout?: number
}

/**
 * The fault and hostile tests' job, in a directory named after it under
 * `parent`: a deterministic build (sort a word list) that passes and leaves
 * one artifact, so every honest replica agrees and the job ends `verified`.
 */
export async function sortJobDir (parent: string, options: SortJobOptions = {}): Promise<string> {
  const name = options.name ?? 'fault-job'
  return await writeJobDir(join(parent, name.replace(/[^A-Za-z0-9._-]/g, '_')), {
    name,
    platforms: ['linux-x64'],
    replicas: options.replicas ?? 2,
    steps: [{ name: 'build', run: options.build ?? 'mkdir -p dist && sort words.txt > dist/out.txt' }],
    artifacts: ['dist/*'],
    timeout: options.timeout ?? 60
  }, { 'words.txt': `${name}\npear\napple\n` })
}

/** Pack a job directory into an in-process node's blob store and submit it there, as `submit` does (optionally renamed, with overrides). */
export async function submitDir (node: RunningNode, dir: string, change: { name?: string, overrides?: SpecOverrides } = {}): Promise<JobView> {
  const spec: JobSpec = { ...await readJobSpec(dir), ...(change.name !== undefined ? { name: change.name } : {}) }
  const packed = await packDirectory(dir)
  const source = await node.blobs.put(packed.bytes)
  return await node.jobs.submit({ spec, ...(change.overrides !== undefined ? { overrides: change.overrides } : {}), source })
}
