import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { packDirectory } from '../../src/archive/index.js'
import { createExecutor, type Executor, type ExecutorOptions, type RunOutcome, type RunRequest, type SandboxLimits } from '../../src/sandbox/index.js'
import { tempDir } from '../helpers/temp-home.js'

type Teardown = (fn: () => unknown) => void

/** Small limits so hostile jobs end fast. */
export const TEST_LIMITS: SandboxLimits = {
  wallSeconds: 20,
  cpuSeconds: 20,
  memoryMb: 128,
  processes: 64,
  fileMb: 64,
  openFiles: 256,
  workspaceMb: 64,
  logKb: 64,
  outputMb: 4
}

/**
 * The bubblewrap executor, or a loud failure: these tests need the real
 * sandbox (CI installs it), and a missing one must not pass as skipped.
 */
export async function bubblewrap (options: ExecutorOptions = {}): Promise<Executor> {
  try {
    return await createExecutor('bubblewrap', { pollMs: 100, ...options })
  } catch (err) {
    throw new Error(`the sandbox tests need bubblewrap: ${(err as Error).message}`, { cause: err })
  }
}

/** A tar.gz of the given files (path → content). */
export async function source (teardown: Teardown, files: Record<string, string> = {}): Promise<Buffer> {
  const dir = await tempDir(teardown, 'buildhaus-src-')
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true })
    await writeFile(join(dir, path), content)
  }
  return (await packDirectory(dir)).bytes
}

export interface JobOptions extends Partial<Omit<RunRequest, 'limits'>> {
  limits?: Partial<SandboxLimits>
}

/** Run a job and register its disposal for teardown. */
export async function runJob (executor: Executor, teardown: Teardown, workRoot: string, job: JobOptions): Promise<RunOutcome> {
  const request: RunRequest = {
    source: job.source ?? Buffer.alloc(1024),
    steps: job.steps ?? [],
    artifacts: job.artifacts ?? [],
    network: job.network ?? false,
    root: job.root ?? false,
    workRoot,
    ...job,
    limits: { ...TEST_LIMITS, ...job.limits }
  }
  const outcome = await executor.run(request)
  teardown(async () => { await outcome.dispose() })
  return outcome
}

export function logText (outcome: RunOutcome): string {
  return outcome.log.toString('utf8')
}

/** A one-step job. */
export function step (run: string, name = 'main'): { steps: Array<{ name: string, run: string }> } {
  return { steps: [{ name, run }] }
}
