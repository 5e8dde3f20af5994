import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { startNodeProcess } from '../helpers/cluster.js'
import { useTeardown } from '../helpers/temp-home.js'

/** The bundle bin/ runs (scripts/bundle.js; the vitest global setup builds it when src/ is newer). */
const BUNDLE = fileURLToPath(new URL('../../dist/bundle', import.meta.url))

describe('the bundle (dist/bundle/)', () => {
  const files = readdirSync(BUNDLE).filter((name) => name.endsWith('.js'))
  const sources = new Map(files.map((name) => [name, readFileSync(join(BUNDLE, name), 'utf8')]))

  it('finds every file it names relative to itself (the verify worker and the spawn helper, beside the modules that start them)', () => {
    // (.ts names are verify-pool's fallback when it runs from src/, as in tests.)
    const named = [...sources.values()].flatMap((source) => [...source.matchAll(/new URL\("\.\/([^"]+\.js)",\s*import\.meta\.url\)/g)].map((m) => m[1]!))
    expect(named).toContain('verify-worker.js')
    expect(named).toContain('spawn-helper-main.js')
    for (const name of named) expect(existsSync(join(BUNDLE, name)), name).toBe(true)
  })

  it('is ASCII only, in files of at most 1 MB, each with its source map (V8 would hold a file with one other character at two bytes a character; one big file costs its parse memory for good)', () => {
    for (const [name, source] of sources) {
      expect(Buffer.byteLength(source), `${name} has a character outside ASCII`).toBe(source.length)
      expect(source.length, name).toBeLessThanOrEqual(1024 * 1024)
      expect(existsSync(join(BUNDLE, `${name}.map`)), `${name}.map`).toBe(true)
    }
  })
})

describe('the bundled node', () => {
  const teardown = useTeardown()

  it('serves /metrics: a dependency it loads at first use (prom-client, CommonJS) has its exports in the bundle too', async () => {
    const node = await startNodeProcess(teardown)
    const response = await fetch(new URL('/metrics', node.apiUrl), { signal: AbortSignal.timeout(10_000) })
    const text = await response.text()
    expect(response.status, text).toBe(200)
    expect(text).toMatch(/^buildhaus_runs_yielded_total 0$/m)
    expect(text).toMatch(/^process_resident_memory_bytes \d+$/m)
  }, 60_000)
})
