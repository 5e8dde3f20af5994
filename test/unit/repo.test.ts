import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

describe('the repository', () => {
  it('holds no leftover merge conflict markers', () => {
    const files = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n')
      .filter((f) => /\.(ts|js|mjs|json|md|css|html|txt|sh)$/.test(f) || f === '.ci/run')
    const marked: string[] = []
    for (const file of files) {
      let text: string
      try { text = readFileSync(join(ROOT, file), 'utf8') } catch { continue }
      text.split('\n').forEach((line, i) => { if (/^(<{7}|>{7}) /.test(line)) marked.push(`${file}:${i + 1}`) })
    }
    expect(marked).toEqual([])
  })
})
