import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * Vitest global setup: process tests run the compiled and bundled CLI
 * (dist/, dist/bundle/), so build once before the suite when src/ (or
 * bench/, or the bundle's own script) is newer than the bundle: `npm run
 * build`'s two steps, tsc and the bundle (scripts/bundle.js). `npm test` has already built in `pretest`, so this is
 * a no-op there; it is what makes `npx vitest run test/node/mesh.test.ts`
 * work on its own.
 */
export default function setup (): void {
  const root = fileURLToPath(new URL('../..', import.meta.url))
  const newestSource = Math.max(newest(join(root, 'src'), '.ts'), newest(join(root, 'bench'), '.ts'), newest(join(root, 'scripts'), '.js'), statSync(join(root, 'tsconfig.json')).mtimeMs)
  const bundled = join(root, 'dist', 'bundle', 'main.js')
  if (existsSync(bundled) && statSync(bundled).mtimeMs >= newestSource) return
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
  execFileSync(process.execPath, [join(root, 'scripts', 'bundle.js')], { cwd: root, stdio: 'inherit' })
}

function newest (dir: string, suffix: string): number {
  if (!existsSync(dir)) return 0
  let latest = 0
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    const info = statSync(path)
    if (info.isDirectory()) latest = Math.max(latest, newest(path, suffix))
    else if (name.endsWith(suffix)) latest = Math.max(latest, info.mtimeMs)
  }
  return latest
}
