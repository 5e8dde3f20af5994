import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sourceStack } from '../../src/util/source-stack.js'

describe('sourceStack', () => {
  let dir: string
  let stack: string

  // A minified bundle with its map, as scripts/bundle.js makes them, and the stack of an error thrown inside it.
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'buildhaus-source-stack-'))
    await mkdir(join(dir, 'src'))
    await writeFile(join(dir, 'src', 'inner.ts'), 'export function failWith (message: string): number {\n  const n: number = message.length\n  if (n > 0) throw new Error(message)\n  return n\n}\n')
    await writeFile(join(dir, 'src', 'outer.ts'), 'import { failWith } from \'./inner.js\'\n\nexport function runOuter (): number {\n  return failWith(\'kaboom\') + 1\n}\n')
    await build({ entryPoints: [join(dir, 'src', 'outer.ts')], bundle: true, format: 'esm', platform: 'node', minify: true, sourcemap: 'linked', outfile: join(dir, 'out', 'bundle.js'), logLevel: 'silent' })
    // In a Node.js of its own, as the node runs: no source maps applied (vitest applies them in its own processes).
    const script = `const { runOuter } = await import(${JSON.stringify(pathToFileURL(join(dir, 'out', 'bundle.js')).href)}); try { runOuter() } catch (err) { process.stdout.write(err.stack) }`
    stack = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 })
  })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('names the source file, line and function of each bundled frame', () => {
    expect(stack).toMatch(/bundle\.js:1:\d+/)
    const lines = sourceStack(stack).split('\n')
    expect(lines[0]).toBe('Error: kaboom')
    expect(lines[1]).toMatch(new RegExp(`^ {4}at failWith \\(${join(dir, 'src', 'inner.ts')}:3:\\d+\\)$`))
    expect(lines[2]).toMatch(new RegExp(`^ {4}at (\\S+ )?\\(?${join(dir, 'src', 'outer.ts')}:4:\\d+\\)?$`))
    // The frames outside the bundle (the script's) are left as they were.
    expect(lines.slice(3)).toEqual(stack.split('\n').slice(3))
  })

  it('leaves alone what it cannot map: no map, an unreadable map, not a stack', async () => {
    await writeFile(join(dir, 'out', 'broken.js.map'), '{ not json')
    const text = `Error: x\n    at f (${join(dir, 'out', 'nomap.js')}:1:5)\n    at g (${join(dir, 'out', 'broken.js')}:1:5)\n    at native`
    expect(sourceStack(text)).toBe(text)
    expect(sourceStack('just words')).toBe('just words')
  })
})
