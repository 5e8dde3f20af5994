import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runGit } from '../../src/upstream/sources/git.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

/**
 * git for watches parses a repository anyone can name. Suppose a crafted
 * repository makes git run what it wants (the test makes git run a shell
 * through an alias, which is what such a bug would give): in git's sandbox
 * that shell sees the read-only system, a private /tmp and the poll's work
 * directory, and nothing of the node's home, key or environment.
 */
describe('git for watches, taken over by a hostile repository', () => {
  const teardown = useTeardown()

  it('cannot read the node\'s key, home or environment, nor write outside its work directory', async () => {
    const home = await tempDir(teardown, 'buildhaus-home-')
    const secret = `SECRET-${randomBytes(16).toString('hex')}`
    await writeFile(join(home, 'key.pem'), `-----BEGIN PRIVATE KEY-----\n${secret}\n-----END PRIVATE KEY-----\n`, { mode: 0o600 })
    process.env.BUILDHAUS_TEST_SECRET = secret
    teardown(() => { delete process.env.BUILDHAUS_TEST_SECRET })
    const work = await tempDir(teardown)
    const script = [
      `cat ${home}/key.pem`,
      `ls -la ${home}`,
      `echo pwned > ${home}/pwned`,
      'env; cat /proc/*/environ | tr "\\0" "\\n"',
      'grep -rs SECRET /tmp /etc /dev/shm',
      'echo inside > /work/inside',
      'echo DONE'
    ].join('; ')
    const output = await runGit(() => ['-c', `alias.own=!{ ${script}; } 2>&1`, 'own'], { signal: AbortSignal.timeout(60_000), workDir: work })
    expect(output).toContain('DONE')
    expect(output).not.toContain(secret)
    expect(output).not.toContain('BEGIN PRIVATE KEY')
    expect(output).toMatch(/key\.pem: No such file or directory/)
    expect(existsSync(join(home, 'pwned'))).toBe(false)
    expect(await readFile(join(work, 'inside'), 'utf8')).toBe('inside\n')
  })
})
